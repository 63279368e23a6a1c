//! Networks: `/v2.0/networks`. A new network is `ACTIVE` at once (there is no agent to wait for) and
//! has its segment (`segments.rs`: type, physical network, segmentation ID, allocated or checked) and the
//! MTU its type leaves; one with ports or floating IPs on it is not deleted (`NetworkInUse`), but for
//! the ports Neutron deletes with their network (`AUTO_DELETE_PORT_OWNERS`: its DHCP port, …), which go
//! with it, as do its subnets and segment.

use std::sync::Arc;

use serde_json::Value;

use super::address_scopes;
use super::crud::{merge, new_object, to_json, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::floating_ips::{release_floating_ip, FLOATINGIP_OWNER};
use super::policy::{by_owner, Access, Caller};
use super::ports::release_port;
use super::segments::Segments;
use super::subnets::mtu_fits;
use crate::db::{Db, DbError};
use crate::model::{FloatingIp, Network, NetworkType, Port, Store, Subnet, DHCP_OWNER};

/// Neutron's `AUTO_DELETE_PORT_OWNERS`: the ports a network's or a subnet's deletion takes with it
/// instead of counting them as in use.
pub(super) const AUTO_DELETE_PORT_OWNERS: &[&str] =
    &[DHCP_OWNER, "network:distributed", "network:floatingip_agent_gateway"];

/// True for a port Neutron deletes with its network.
pub(super) fn auto_deleted(p: &Port) -> bool {
    AUTO_DELETE_PORT_OWNERS.contains(&p.device_owner.as_str())
}

/// A network to create: checked, its segment not taken yet.
pub(super) struct NetworkDraft {
    net: Network,
    /// The request gave an MTU (checked against its type's once the type is known), or takes the largest.
    mtu_given: bool,
    segments: Arc<Segments>,
}

impl Resource for Network {
    const ONE: &'static str = "network";
    const MANY: &'static str = "networks";
    const CREATE: &'static [&'static str] = &[
        "name",
        "description",
        "project_id",
        "tenant_id",
        "admin_state_up",
        "mtu",
        "port_security_enabled",
        "shared",
        "router:external",
        "provider:network_type",
        "provider:segmentation_id",
        "provider:physical_network",
        "availability_zone_hints",
        "dns_domain",
        "is_default",
        "qos_policy_id",
    ];
    const CREATE_IGNORED: &'static [&'static str] =
        &["availability_zone_hints", "dns_domain", "is_default", "qos_policy_id"];
    const UPDATE: &'static [&'static str] =
        &["name", "description", "admin_state_up", "mtu", "port_security_enabled", "shared", "router:external"];
    const ADMIN_ONLY: &'static [&'static str] = &[
        "shared",
        "router:external",
        "provider:network_type",
        "provider:segmentation_id",
        "provider:physical_network",
        "is_default",
    ];
    const ADMIN_ONLY_SHOWN: &'static [&'static str] =
        &["provider:network_type", "provider:segmentation_id", "provider:physical_network"];

    const SHOWN: &'static [&'static str] = &["subnets", "ipv4_address_scope", "ipv6_address_scope"];
    type Draft = NetworkDraft;

    /// Shared and external networks are seen by everybody.
    fn access(_db: &dyn Db, caller: &Caller, views: &[Value]) -> ApiResult<Vec<Access>> {
        Ok(views
            .iter()
            .map(|v| match by_owner(caller, v) {
                Access::None if v["shared"] == true || v["router:external"] == true => Access::Read,
                a => a,
            })
            .collect())
    }

    fn draft(mut attrs: Attrs, settings: &Settings) -> ApiResult<NetworkDraft> {
        // Neutron converts the segment to an integer (`convert_to_int`): the OpenStack client sends a string.
        if let Some(Value::String(id)) = attrs.get("provider:segmentation_id") {
            let n: u32 = id.trim().parse().map_err(|_| {
                let reason = format!("Invalid input for provider:segmentation_id. Reason: '{id}' is not an integer.");
                ApiError::new(axum::http::StatusCode::BAD_REQUEST, "InvalidInput", reason)
            })?;
            attrs.insert("provider:segmentation_id".into(), n.into());
        }
        if let Some(Value::String(t)) = attrs.get("provider:network_type") {
            t.parse::<NetworkType>()
                .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_REQUEST, "InvalidInput", e))?;
        }
        let mtu_given = attrs.get("mtu").is_some_and(|m| !m.is_null());
        let net: Network = new_object(attrs, Some("ACTIVE"))?;
        settings.segments.check_provider(&net)?;
        Ok(NetworkDraft { net, mtu_given, segments: settings.segments.clone() })
    }

    fn insert(db: &dyn Db, d: NetworkDraft) -> ApiResult<Network> {
        let NetworkDraft { mut net, mtu_given, segments } = d;
        segments.take(db, &mut net)?;
        if !mtu_given {
            net.mtu = net.network_type.map_or(segments.physnet_mtu, |t| segments.max_mtu(t));
        }
        let created = segments.check_mtu(&net).and_then(|()| Ok(Store::new(db).create(net.clone())?));
        if created.is_err() {
            segments.give_back(db, &net);
        }
        created
    }

    /// A new MTU must fit the network's type.
    fn change(db: &dyn Db, settings: &Settings, cur: &Network, attrs: Attrs) -> ApiResult<Network> {
        let next = merge(cur, attrs)?;
        if next.mtu != cur.mtu {
            settings.segments.check_mtu(&next)?;
            let s = Store::new(db);
            for sub in next.subnets.iter().filter_map(|id| s.get::<Subnet>(id).ok().flatten()) {
                mtu_fits(next.mtu, sub.ip_version, &next.id)?;
            }
        }
        Ok(next)
    }

    /// Refused while ports (but the auto-deleted ones) or floating IPs pointing at a port are on it;
    /// then its auto-deleted ports, its other floating IPs and its subnets are deleted.
    fn before_delete(db: &dyn Db, n: &Network) -> ApiResult<()> {
        let s = Store::new(db);
        let id = &n.id;
        let (ports, _) = s.list::<Port>()?;
        let ports: Vec<Port> = ports.into_iter().filter(|p| p.network_id == *id).collect();
        let floating: Vec<FloatingIp> =
            s.list::<FloatingIp>()?.0.into_iter().filter(|f| f.floating_network_id == *id).collect();
        // (The ports of the floating IPs that go with it go too.)
        let goes = |p: &Port| {
            auto_deleted(p) || p.device_owner == FLOATINGIP_OWNER && floating.iter().any(|f| f.id == p.device_id)
        };
        if floating.iter().any(|f| f.port_id.is_some()) || ports.iter().any(|p| !goes(p)) {
            return Err(ApiError::conflict(
                "NetworkInUse",
                format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network."),
            ));
        }
        for p in &ports {
            match s.delete::<Port>(&p.id, None) {
                Ok(_) => release_port(db, p),
                Err(DbError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Floating IPs pointing nowhere go with their external network, as Neutron's
        // `delete_disassociated_floatingips`.
        for f in &floating {
            match s.delete::<FloatingIp>(&f.id, None) {
                Ok(_) => release_floating_ip(db, f)?,
                Err(DbError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for sub in &n.subnets {
            let _ = s.delete::<Subnet>(sub, None);
        }
        Ok(())
    }

    fn after_delete(db: &dyn Db, settings: &Settings, n: &Network) -> ApiResult<()> {
        settings.segments.give_back(db, n);
        Ok(())
    }

    /// With the address scopes of its subnets' pools (`address-scope`).
    fn views(db: &dyn Db, nets: Vec<Network>) -> ApiResult<Vec<Value>> {
        let scopes = address_scopes::network_scopes(db, &nets)?;
        Ok(nets
            .iter()
            .zip(scopes)
            .map(|(n, (v4, v6))| {
                let mut v = to_json(n);
                v["ipv4_address_scope"] = v4.into();
                v["ipv6_address_scope"] = v6.into();
                v
            })
            .collect())
    }
}

//! Floating IPs: `/v2.0/floatingips`. The address comes from the first IPv4 subnet of an external
//! network (asked for, or the first free one: [`ipam`]); associated with a port, the floating IP names
//! the router that NATs it: the one with its gateway on that external network and an interface on the
//! port's subnet (none: `ExternalGatewayForFloatingIPNotFound`). An update without `port_id`
//! disassociates.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::crud::{blocking, new_id, to_json, writable, Api, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::ipam;
use super::policy::{access_to_network, network_access, Access, Caller};
use super::ports::{delete_service_port, new_service_port};
use crate::db::Db;
use crate::model::{FloatingIp, Network, Port, Router, Standard, Store, Subnet, ROUTER_INTERFACE};

/// The router that can NAT `port`'s address to `floating_network`: gateway on that network and an
/// interface on the port's subnet.
fn floating_router(db: &dyn Db, floating_network: &str, port: &Port) -> ApiResult<String> {
    let s = Store::new(db);
    let (routers, _) = s.list::<Router>()?;
    let (ports, _) = s.list::<Port>()?;
    let subnets: Vec<&str> = port.fixed_ips.iter().map(|f| f.subnet_id.as_str()).collect();
    routers
        .iter()
        .filter(|r| r.external_gateway_info.as_ref().is_some_and(|g| g.network_id == floating_network))
        .find(|r| {
            ports.iter().any(|p| {
                p.device_owner == ROUTER_INTERFACE
                    && p.device_id == r.id
                    && p.fixed_ips.iter().any(|f| subnets.contains(&f.subnet_id.as_str()))
            })
        })
        .map(|r| r.id.clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "ExternalGatewayForFloatingIPNotFound",
                format!("External network {floating_network} is not reachable from subnet(s) {subnets:?}."),
            )
        })
}

/// Points `f` at `port_id` (or nowhere), checking the port and finding the router.
pub(super) fn associate(
    db: &dyn Db,
    f: &mut FloatingIp,
    port_id: Option<String>,
    fixed: Option<String>,
) -> ApiResult<()> {
    match port_id {
        None => {
            (f.port_id, f.fixed_ip_address, f.router_id) = (None, None, None);
            f.status = "DOWN".into();
        }
        Some(pid) => {
            let p: Port = Store::new(db).get(&pid)?.ok_or_else(|| ApiError::not_found("port", &pid))?;
            let addr = match fixed {
                Some(a) if p.fixed_ips.iter().any(|x| x.ip_address == a) => a,
                Some(a) => return Err(ApiError::bad(format!("Port {pid} does not have fixed ip {a}"))),
                None => p
                    .fixed_ips
                    .iter()
                    .find(|x| !x.ip_address.contains(':'))
                    .map(|x| x.ip_address.clone())
                    .ok_or_else(|| ApiError::bad(format!("Port {pid} has no IPv4 address")))?,
            };
            let (others, _) = Store::new(db).list::<FloatingIp>()?;
            if let Some(o) = others.iter().find(|o| {
                o.id != f.id
                    && o.port_id.as_deref() == Some(pid.as_str())
                    && o.fixed_ip_address.as_deref() == Some(addr.as_str())
            }) {
                return Err(ApiError::conflict(
                    "FloatingIPPortAlreadyAssociated",
                    format!("Cannot associate floating IP {} ({}) with port {pid} using fixed IP {addr}, as that fixed IP already has a floating IP on external network {}.", f.floating_ip_address, f.id, o.floating_network_id),
                ));
            }
            f.router_id = Some(floating_router(db, &f.floating_network_id, &p)?);
            (f.port_id, f.fixed_ip_address) = (Some(pid), Some(addr));
            f.status = "ACTIVE".into();
        }
    }
    Ok(())
}

fn string(attrs: &Attrs, k: &str) -> Option<String> {
    attrs.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// `GET /v2.0/floatingip_pools` (`floatingip-pools`): the subnets floating IPs come from (IPv4 subnets
/// of the external networks the caller may see).
pub(super) async fn pools(
    axum::extract::State(api): axum::extract::State<Api>,
    caller: Caller,
) -> ApiResult<axum::Json<Value>> {
    let pools = blocking(&api, move |db| {
        let s = Store::new(db);
        let (nets, _) = s.list::<Network>()?;
        let (subnets, _) = s.list::<Subnet>()?;
        let external: Vec<&Network> =
            nets.iter().filter(|n| n.external && network_access(&caller, n) != Access::None).collect();
        Ok(subnets
            .iter()
            .filter(|sub| sub.ip_version == 4 && external.iter().any(|n| n.id == sub.network_id))
            .map(|sub| {
                json!({"subnet_id": sub.id, "subnet_name": sub.name, "network_id": sub.network_id, "cidr": sub.cidr,
                       "project_id": sub.project_id, "tenant_id": sub.project_id})
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(axum::Json(json!({ "floatingip_pools": pools })))
}

/// The `device_owner` of a floating IP's port on its external network.
pub(super) const FLOATINGIP_OWNER: &str = "network:floatingip";

/// Gives back a deleted floating IP's address: its port goes (one stored before floating IPs had ports
/// gives its address back to the pool directly).
pub(super) fn release_floating_ip(db: &dyn Db, f: &FloatingIp) -> ApiResult<()> {
    let s = Store::new(db);
    let (ports, _) = s.list::<Port>()?;
    let mut had_port = false;
    for p in ports.iter().filter(|p| p.device_owner == FLOATINGIP_OWNER && p.device_id == f.id) {
        delete_service_port(db, p)?;
        had_port = true;
    }
    if !had_port {
        if let Some(net) = s.get::<Network>(&f.floating_network_id)? {
            for sid in &net.subnets {
                ipam::release(db, sid, &f.floating_ip_address);
            }
        }
    }
    Ok(())
}

/// The port a request points a floating IP at is one the caller may change (another's is not found),
/// and, unless the caller is an admin, of the caller's project (Neutron's `_internal_fip_assoc_data`).
fn callers_port(db: &dyn Db, caller: &Caller, attrs: &Attrs) -> ApiResult<()> {
    match string(attrs, "port_id") {
        Some(id) if Store::new(db).get::<Port>(&id)?.is_some() => {
            let p: Port = writable(db, caller, &id, "update_port")?;
            if !caller.admin && caller.project.as_deref() != Some(p.project_id.as_str()) {
                return Err(ApiError::bad(format!(
                    "Cannot create floating IP and bind it to Port {id}, since that port is owned by a different project."
                )));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A floating IP request checked without the DB.
pub(super) struct FloatingIpDraft {
    network_id: String,
    project_id: String,
    port_id: Option<String>,
    fixed: Option<String>,
    /// `floating_ip_address`, if asked for.
    wanted: Option<String>,
    description: String,
    /// `subnet_id`: the external subnet to take the address from (`floatingip-pools`).
    subnet: Option<String>,
}

impl Resource for FloatingIp {
    const ONE: &'static str = "floatingip";
    const MANY: &'static str = "floatingips";
    const CREATE: &'static [&'static str] = &[
        "floating_network_id",
        "port_id",
        "fixed_ip_address",
        "floating_ip_address",
        "project_id",
        "tenant_id",
        "description",
        "subnet_id",
    ];
    const UPDATE: &'static [&'static str] = &["port_id", "fixed_ip_address", "description"];
    const ADMIN_ONLY: &'static [&'static str] = &["floating_ip_address"];

    const SHOWN: &'static [&'static str] = &["router_id"];
    /// With `port_details` (`fip-port-details`): the port it points at, as Neutron summarises it.
    fn views(db: &dyn Db, fips: Vec<FloatingIp>) -> ApiResult<Vec<Value>> {
        let s = Store::new(db);
        fips.iter()
            .map(|f| {
                let mut v = to_json(f);
                let port = f.port_id.as_deref().map(|p| s.get::<Port>(p)).transpose()?.flatten();
                v["port_details"] = port.map_or(Value::Null, |p| {
                    json!({"name": p.name, "network_id": p.network_id, "mac_address": p.mac_address,
                           "admin_state_up": p.admin_state_up, "status": p.status, "device_id": p.device_id,
                           "device_owner": p.device_owner})
                });
                Ok(v)
            })
            .collect()
    }

    type Draft = FloatingIpDraft;

    /// From a network the caller may see, for a port of the caller's.
    fn authorize_create(db: &dyn Db, caller: &Caller, attrs: &Attrs) -> ApiResult<()> {
        let net = string(attrs, "floating_network_id").unwrap_or_default();
        if access_to_network(db, caller, &net)? == Access::None {
            return Err(ApiError::not_found("network", &net));
        }
        callers_port(db, caller, attrs)
    }

    fn authorize_update(db: &dyn Db, caller: &Caller, _cur: &FloatingIp, attrs: &Attrs) -> ApiResult<()> {
        callers_port(db, caller, attrs)
    }

    fn draft(attrs: Attrs, _: &Settings) -> ApiResult<FloatingIpDraft> {
        let network_id =
            string(&attrs, "floating_network_id").ok_or_else(|| ApiError::bad("floating_network_id is required"))?;
        Ok(FloatingIpDraft {
            network_id,
            project_id: string(&attrs, "project_id").unwrap_or_default(),
            port_id: string(&attrs, "port_id"),
            fixed: string(&attrs, "fixed_ip_address"),
            wanted: string(&attrs, "floating_ip_address"),
            description: string(&attrs, "description").unwrap_or_default(),
            subnet: string(&attrs, "subnet_id"),
        })
    }

    fn insert(db: &dyn Db, d: FloatingIpDraft) -> ApiResult<FloatingIp> {
        let s = Store::new(db);
        let net_id = d.network_id;
        let net: Network = s.get(&net_id)?.ok_or_else(|| ApiError::not_found("network", &net_id))?;
        if !net.external {
            return Err(ApiError::bad(format!(
                "Bad floatingip request: Network {net_id} is not a valid external network."
            )));
        }
        let sub = net
            .subnets
            .iter()
            .filter_map(|id| s.get::<Subnet>(id).ok().flatten())
            .find(|x| x.ip_version == 4 && d.subnet.as_ref().is_none_or(|want| *want == x.id))
            .ok_or_else(|| match &d.subnet {
                Some(want) => ApiError::bad(format!(
                    "Bad floatingip request: subnet {want} is not an IPv4 subnet of network {net_id}."
                )),
                None => ApiError::bad(format!("Network {net_id} has no IPv4 subnet")),
            })?;
        let id = new_id();
        // Its address is a port's on the external network (`network:floatingip`), as Neutron's: the
        // network's users see it taken.
        let mut asked = json!({"subnet_id": sub.id});
        if let Some(a) = &d.wanted {
            let ip: std::net::IpAddr =
                a.parse().map_err(|_| ApiError::bad(format!("Invalid floating_ip_address {a}")))?;
            asked["ip_address"] = ip.to_string().into();
        }
        let port = new_service_port(db, &net_id, (FLOATINGIP_OWNER, &id), Some(vec![asked]))?;
        let address = port.fixed_ips.first().map(|f| f.ip_address.clone()).unwrap_or_default();
        let mut f = FloatingIp {
            id,
            project_id: d.project_id,
            floating_network_id: net_id,
            floating_ip_address: address.clone(),
            port_id: None,
            fixed_ip_address: None,
            router_id: None,
            status: "DOWN".into(),
            standard: Standard { description: d.description, ..Standard::default() },
            revision_number: 0,
        };
        let made = associate(db, &mut f, d.port_id, d.fixed).and_then(|()| Ok(s.create(f)?));
        if made.is_err() {
            let _ = delete_service_port(db, &port);
        }
        made
    }

    /// Not a merge: a request with `port_id` (or `fixed_ip_address`) says where the floating IP points
    /// now (`port_id: null`: nowhere), and so does an empty one (nowhere, Neutron's oldest way to
    /// disassociate); one with other attributes only keeps where it points (a description change).
    fn change(db: &dyn Db, _: &Settings, cur: &FloatingIp, attrs: Attrs) -> ApiResult<FloatingIp> {
        let mut f = cur.clone();
        if let Some(d) = attrs.get("description") {
            f.standard.description =
                d.as_str().ok_or_else(|| ApiError::bad("description must be a string"))?.to_owned();
        }
        if attrs.is_empty() || attrs.contains_key("port_id") || attrs.contains_key("fixed_ip_address") {
            associate(db, &mut f, string(&attrs, "port_id"), string(&attrs, "fixed_ip_address"))?;
        }
        Ok(f)
    }

    /// Its address goes back to the external network's pool.
    fn after_delete(db: &dyn Db, _: &Settings, f: &FloatingIp) -> ApiResult<()> {
        release_floating_ip(db, f)
    }
}

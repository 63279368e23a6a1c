//! Floating IPs: `/v2.0/floatingips`. The address comes from the first IPv4 subnet of an external
//! network (asked for, or the first free one: [`ipam`]); associated with a port, the floating IP names
//! the router that NATs it: the one with its gateway on that external network and an interface on the
//! port's subnet (none: `ExternalGatewayForFloatingIPNotFound`). An update without `port_id`
//! disassociates.

use axum::http::StatusCode;
use serde_json::Value;

use super::crud::{new_id, writable, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::ipam;
use super::policy::{access_to_network, Access, Caller};
use crate::cidr::Cidr;
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

/// The port a request points a floating IP at is one the caller may change (another's is not found).
fn callers_port(db: &dyn Db, caller: &Caller, attrs: &Attrs) -> ApiResult<()> {
    match string(attrs, "port_id") {
        Some(p) if Store::new(db).get::<Port>(&p)?.is_some() => {
            writable::<Port>(db, caller, &p, "update_port").map(drop)
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
            .find(|x| x.ip_version == 4)
            .ok_or_else(|| ApiError::bad(format!("Network {net_id} has no IPv4 subnet")))?;
        let id = new_id();
        let address = match d.wanted {
            Some(a) => {
                let ip: std::net::IpAddr =
                    a.parse().map_err(|_| ApiError::bad(format!("Invalid floating_ip_address {a}")))?;
                if !Cidr::parse_network(&sub.cidr).is_some_and(|c| c.contains(ip))
                    || !ipam::take(db, &sub.id, &ip.to_string(), &id)?
                {
                    return Err(ApiError::conflict(
                        "IpAddressAlreadyAllocated",
                        format!("IP address {a} already allocated or not on network {net_id}"),
                    ));
                }
                ip.to_string()
            }
            None => ipam::allocate(db, &sub, &id)?.ok_or_else(|| {
                ApiError::conflict(
                    "IpAddressGenerationFailure",
                    format!("No more IP addresses available on network {net_id}."),
                )
            })?,
        };
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
        if let Err(e) = associate(db, &mut f, d.port_id, d.fixed) {
            ipam::release(db, &sub.id, &address);
            return Err(e);
        }
        Ok(s.create(f)?)
    }

    /// Not a merge: a request with `port_id` (or `fixed_ip_address`) says where the floating IP points
    /// now (`port_id: null`: nowhere); one without keeps where it points (a description change).
    fn change(db: &dyn Db, _: &Settings, cur: &FloatingIp, attrs: Attrs) -> ApiResult<FloatingIp> {
        let mut f = cur.clone();
        if let Some(d) = attrs.get("description") {
            f.standard.description =
                d.as_str().ok_or_else(|| ApiError::bad("description must be a string"))?.to_owned();
        }
        if attrs.contains_key("port_id") || attrs.contains_key("fixed_ip_address") {
            associate(db, &mut f, string(&attrs, "port_id"), string(&attrs, "fixed_ip_address"))?;
        }
        Ok(f)
    }

    /// Its address goes back to the external network's pool.
    fn after_delete(db: &dyn Db, _: &Settings, f: &FloatingIp) -> ApiResult<()> {
        if let Some(net) = Store::new(db).get::<Network>(&f.floating_network_id)? {
            for sid in &net.subnets {
                ipam::release(db, sid, &f.floating_ip_address);
            }
        }
        Ok(())
    }
}

//! Routers: `/v2.0/routers`, their interfaces (`PUT …/add_router_interface`,
//! `…/remove_router_interface`) and extra routes (`routes` on an update). An interface is a port with
//! `device_owner` [`ROUTER_INTERFACE`] and `device_id` the router's id, as in Neutron: added on a subnet,
//! it is a new port with the subnet's gateway address; added with a port, that port. A router with
//! interfaces is not deleted (`RouterInUse`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::crud::{blocking, merge, new_id, new_object, Api, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::ipam;
use super::ports::{release_port, take_new_mac};
use crate::cidr::Cidr;
use crate::db::Db;
use crate::model::{FixedIp, Port, Router, Store, Subnet, ROUTER_INTERFACE};

impl Resource for Router {
    const ONE: &'static str = "router";
    const MANY: &'static str = "routers";
    const CREATE: &'static [&'static str] = &[
        "name",
        "description",
        "project_id",
        "tenant_id",
        "admin_state_up",
        "external_gateway_info",
        "distributed",
        "ha",
        "availability_zone_hints",
    ];
    const CREATE_IGNORED: &'static [&'static str] = &["description", "distributed", "ha", "availability_zone_hints"];
    const UPDATE: &'static [&'static str] =
        &["name", "description", "admin_state_up", "external_gateway_info", "routes"];
    const UPDATE_IGNORED: &'static [&'static str] = &["description"];

    type Draft = Router;

    fn draft(attrs: Attrs, _: &Settings) -> ApiResult<Router> {
        new_object(attrs, Some("ACTIVE"))
    }

    fn insert(db: &dyn Db, r: Router) -> ApiResult<Router> {
        Ok(Store::new(db).create(r)?)
    }

    /// Extra routes: a destination network (no host bits) and a next hop address.
    fn change(_db: &dyn Db, _: &Settings, cur: &Router, attrs: Attrs) -> ApiResult<Router> {
        let r = merge(cur, attrs)?;
        for route in &r.routes {
            if Cidr::parse_network(&route.destination).is_none() || route.nexthop.parse::<std::net::IpAddr>().is_err() {
                return Err(ApiError::bad(format!("Invalid route {} via {}", route.destination, route.nexthop)));
            }
        }
        Ok(r)
    }

    fn before_delete(db: &dyn Db, r: &Router) -> ApiResult<()> {
        if !router_ports(db, &r.id)?.is_empty() {
            return Err(ApiError::conflict("RouterInUse", format!("Router {} still has ports", r.id)));
        }
        Ok(())
    }
}

fn router_ports(db: &dyn Db, router_id: &str) -> ApiResult<Vec<Port>> {
    let (ports, _) = Store::new(db).list::<Port>()?;
    Ok(ports.into_iter().filter(|p| p.device_owner == ROUTER_INTERFACE && p.device_id == router_id).collect())
}

/// What Neutron answers to an interface added or removed.
fn interface_info(r: &Router, p: &Port) -> Value {
    let subnet_ids: Vec<&str> = p.fixed_ips.iter().map(|f| f.subnet_id.as_str()).collect();
    json!({"id": r.id, "tenant_id": r.project_id, "project_id": r.project_id, "port_id": p.id,
           "network_id": p.network_id, "subnet_id": subnet_ids.first(), "subnet_ids": subnet_ids})
}

/// The body of an interface request: `subnet_id` and `port_id`, either may be missing.
fn interface_body(raw: &[u8]) -> ApiResult<(Option<String>, Option<String>)> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    Ok((v["subnet_id"].as_str().map(str::to_owned), v["port_id"].as_str().map(str::to_owned)))
}

/// `{"subnet_id": S}`: a port on S's network with S's gateway address; `{"port_id": P}`: that port.
pub(super) async fn add_router_interface(
    State(api): State<Api>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let (subnet_id, port_id) = interface_body(&raw)?;
    blocking(&api, move |db| {
        let s = Store::new(db);
        let r: Router = s.get(&id)?.ok_or_else(|| ApiError::not_found("router", &id))?;
        let port = match (subnet_id, port_id) {
            (Some(sid), None) => {
                let sub: Subnet = s.get(&sid)?.ok_or_else(|| ApiError::not_found("subnet", &sid))?;
                let gw = sub.gateway_ip.clone().ok_or_else(|| {
                    ApiError::bad(format!("Bad router request: Subnet {sid} does not have a gateway IP"))
                })?;
                let pid = new_id();
                if !ipam::take(db, &sid, &gw, &pid)? {
                    return Err(ApiError::bad(format!(
                        "Bad router request: Router already has a port on subnet {sid} (or {gw} is in use)."
                    )));
                }
                let mut p = Port::new(pid, sub.network_id.clone());
                p.project_id = r.project_id.clone();
                p.fixed_ips = vec![FixedIp { subnet_id: sid.clone(), ip_address: gw.clone() }];
                (p.device_owner, p.device_id) = (ROUTER_INTERFACE.into(), r.id.clone());
                (p.port_security_enabled, p.status) = (Some(false), "ACTIVE".into());
                match take_new_mac(db, &p.network_id, &p.id) {
                    Ok(mac) => p.mac_address = mac,
                    Err(e) => {
                        ipam::release(db, &sid, &gw);
                        return Err(e);
                    }
                }
                s.create(p)?
            }
            (None, Some(pid)) => {
                let mut p: Port = s.get(&pid)?.ok_or_else(|| ApiError::not_found("port", &pid))?;
                if !p.device_owner.is_empty() || !p.device_id.is_empty() {
                    return Err(ApiError::conflict("PortInUse", format!("Port {pid} is in use by {}", p.device_owner)));
                }
                p.device_owner = ROUTER_INTERFACE.into();
                p.device_id = r.id.clone();
                s.update(p)?
            }
            _ => return Err(ApiError::bad("Bad router request: give exactly one of subnet_id and port_id")),
        };
        Ok(Json(interface_info(&r, &port)))
    })
    .await
}

/// `{"subnet_id": S}` or `{"port_id": P}`: the router's interface port on S, or P, is deleted.
pub(super) async fn remove_router_interface(
    State(api): State<Api>,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let (subnet_id, port_id) = interface_body(&raw)?;
    blocking(&api, move |db| {
        let s = Store::new(db);
        let r: Router = s.get(&id)?.ok_or_else(|| ApiError::not_found("router", &id))?;
        let port = router_ports(db, &id)?
            .into_iter()
            .find(|p| {
                port_id.as_deref() == Some(p.id.as_str())
                    || p.fixed_ips.iter().any(|f| subnet_id.as_deref() == Some(f.subnet_id.as_str()))
            })
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "RouterInterfaceNotFound",
                    format!("Router {id} has no such interface"),
                )
            })?;
        s.delete::<Port>(&port.id, None)?;
        release_port(db, &port);
        Ok(Json(interface_info(&r, &port)))
    })
    .await
}

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

use super::crud::{
    blocking, body, merge, new_id, new_object, shown_view, to_json, touch, uuid_like, visible, writable, Api, Attrs,
    Resource, Settings,
};
use super::error::{ApiError, ApiResult};
use super::ipam;
use super::policy::Caller;
use super::ports::{delete_service_port, new_service_port_on, release_port, take_new_mac};
use crate::cidr::Cidr;
use crate::db::Db;
use crate::model::{
    ExternalGateway, FixedIp, Network, Port, Route, Router, Store, Subnet, ROUTER_GATEWAY, ROUTER_INTERFACE,
};

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
    const CREATE_IGNORED: &'static [&'static str] = &["distributed", "ha", "availability_zone_hints"];
    const UPDATE: &'static [&'static str] =
        &["name", "description", "admin_state_up", "external_gateway_info", "routes"];
    const ADMIN_ONLY: &'static [&'static str] = &["distributed", "ha"];

    type Draft = Router;

    fn draft(attrs: Attrs, _: &Settings) -> ApiResult<Router> {
        new_object(attrs, Some("ACTIVE"))
    }

    fn authorize_create(_db: &dyn Db, caller: &Caller, attrs: &Attrs) -> ApiResult<()> {
        gateway_choices(caller, attrs, "create")
    }

    fn authorize_update(_db: &dyn Db, caller: &Caller, _cur: &Router, attrs: &Attrs) -> ApiResult<()> {
        gateway_choices(caller, attrs, "update")
    }

    /// With a gateway, its port on the external network is made first (and deleted if the router is
    /// not).
    fn insert(db: &dyn Db, mut r: Router) -> ApiResult<Router> {
        let port = take_gateway(db, &r.id, None, &mut r.external_gateway_info)?;
        Store::new(db).create(r).map_err(|e| {
            if let Some(p) = &port {
                let _ = delete_service_port(db, p);
            }
            e.into()
        })
    }

    /// Extra routes: a destination network (no host bits) and a next hop address. A new gateway takes
    /// its port here; [`Resource::settle`] deletes the old one once written (or the new one if not).
    fn change(db: &dyn Db, _: &Settings, cur: &Router, attrs: Attrs) -> ApiResult<Router> {
        let mut r = merge(cur, attrs)?;
        for route in &r.routes {
            if Cidr::parse_network(&route.destination).is_none() || route.nexthop.parse::<std::net::IpAddr>().is_err() {
                return Err(ApiError::bad(format!("Invalid route {} via {}", route.destination, route.nexthop)));
            }
        }
        take_gateway(db, &r.id, cur.external_gateway_info.as_ref(), &mut r.external_gateway_info)?;
        Ok(r)
    }

    fn settle(db: &dyn Db, cur: &Router, next: &Router, written: bool) {
        // The port is the gateway's network and addresses; `enable_snat` alone changes no port.
        let port_of =
            |g: &Option<ExternalGateway>| g.as_ref().map(|g| (g.network_id.clone(), g.external_fixed_ips.clone()));
        if port_of(&cur.external_gateway_info) == port_of(&next.external_gateway_info) {
            return;
        }
        let gone = if written { &cur.external_gateway_info } else { &next.external_gateway_info };
        if let Some(g) = gone {
            if let Err(e) = drop_gateway(db, &cur.id, Some(g)) {
                tracing::warn!(router = %cur.id, "a gateway port left behind: {e:?}");
            }
        }
    }

    fn before_delete(db: &dyn Db, r: &Router) -> ApiResult<()> {
        if !router_ports(db, &r.id)?.is_empty() {
            return Err(ApiError::conflict("RouterInUse", format!("Router {} still has ports", r.id)));
        }
        Ok(())
    }

    fn after_delete(db: &dyn Db, _: &Settings, r: &Router) -> ApiResult<()> {
        drop_gateway(db, &r.id, None)
    }
}

/// Only an admin chooses the gateway's addresses or SNAT (`create_router:external_gateway_info:
/// external_fixed_ips`, `…:enable_snat`).
fn gateway_choices(caller: &Caller, attrs: &Attrs, action: &str) -> ApiResult<()> {
    let Some(Value::Object(g)) = attrs.get("external_gateway_info") else { return Ok(()) };
    match ["external_fixed_ips", "enable_snat"].iter().find(|k| g.contains_key(**k)) {
        Some(k) => caller.must_be_admin(&format!("{action}_router:external_gateway_info:{k}")),
        None => Ok(()),
    }
}

/// The gateway `next` asks for, over `cur` (the router's now): on an external network (404 if there is
/// none, 400 if it is not external), with its port (`network:router_gateway`) made, bound to a node
/// ([`super::agents::gateway_host`]: the node that serves its NAT), and its addresses
/// in `external_fixed_ips`: those asked for, else Neutron's default. The same network without new
/// addresses keeps the port it has (`None` returned: no port made).
fn take_gateway(
    db: &dyn Db,
    router: &str,
    cur: Option<&ExternalGateway>,
    next: &mut Option<ExternalGateway>,
) -> ApiResult<Option<Port>> {
    let Some(g) = next else { return Ok(None) };
    if let Some(c) = cur.filter(|c| c.network_id == g.network_id) {
        if g.external_fixed_ips.is_empty() || g.external_fixed_ips == c.external_fixed_ips {
            g.external_fixed_ips = c.external_fixed_ips.clone();
            return Ok(None);
        }
    }
    let net: Network =
        Store::new(db).get(&g.network_id)?.ok_or_else(|| ApiError::not_found("network", &g.network_id))?;
    if !net.external {
        return Err(ApiError::bad(format!("Bad router request: Network {} is not an external network.", net.id)));
    }
    let asked = (!g.external_fixed_ips.is_empty()).then(|| g.external_fixed_ips.iter().map(to_json).collect());
    let host = super::agents::gateway_host(db)?;
    let port = new_service_port_on(db, &net.id, (ROUTER_GATEWAY, router), asked, &host)?;
    g.external_fixed_ips = port.fixed_ips.clone();
    Ok(Some(port))
}

/// Deletes router `router`'s gateway port for `gateway` (the one with its addresses), or every gateway
/// port of the router (`None`).
fn drop_gateway(db: &dyn Db, router: &str, gateway: Option<&ExternalGateway>) -> ApiResult<()> {
    let (ports, _) = Store::new(db).list::<Port>()?;
    for p in ports.iter().filter(|p| p.device_owner == ROUTER_GATEWAY && p.device_id == router) {
        if gateway.is_none_or(|g| g.network_id == p.network_id && g.external_fixed_ips == p.fixed_ips) {
            delete_service_port(db, p)?;
        }
    }
    Ok(())
}

fn router_ports(db: &dyn Db, router_id: &str) -> ApiResult<Vec<Port>> {
    let (ports, _) = Store::new(db).list::<Port>()?;
    Ok(ports.into_iter().filter(|p| p.device_owner == ROUTER_INTERFACE && p.device_id == router_id).collect())
}

/// `PUT …/add_extraroutes` `{"router": {"routes": [...]}}` (`extraroute-atomic`): the routes join the
/// router's (one it has stays once), in one write that another writer cannot lose; the router.
pub(super) async fn add_extraroutes(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    extraroutes(api, caller, id, &raw, true).await
}

/// `PUT …/remove_extraroutes`: the routes named leave the router's (one it does not have: nothing).
pub(super) async fn remove_extraroutes(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    extraroutes(api, caller, id, &raw, false).await
}

async fn extraroutes(api: Api, caller: Caller, id: String, raw: &[u8], add: bool) -> ApiResult<Json<Value>> {
    let attrs = body(raw, "router", &["routes"])?;
    let routes: Vec<Route> = serde_json::from_value(attrs.get("routes").cloned().unwrap_or(Value::Null))
        .map_err(|e| ApiError::bad(format!("Invalid input for routes: {e}")))?;
    let settings = api.settings.clone();
    let rule = if add { "add_extraroutes" } else { "remove_extraroutes" };
    blocking(&api, move |db| {
        let s = Store::new(db);
        for _ in 0..8 {
            let cur: Router = writable(db, &caller, &id, rule)?;
            let mut wanted = cur.routes.clone();
            if add {
                for r in &routes {
                    if !wanted.contains(r) {
                        wanted.push(r.clone());
                    }
                }
            } else {
                wanted.retain(|r| !routes.contains(r));
            }
            let mut change = Attrs::new();
            change.insert("routes".into(), to_json(&wanted));
            let next = Router::change(db, &settings, &cur, change)?;
            match s.update(next) {
                Ok(written) => return Ok(Json(json!({ "router": shown_view(db, &caller, written)? }))),
                Err(crate::db::DbError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::revision_conflict())
    })
    .await
}

/// A router's interfaces are on subnets that do not overlap (Neutron's `_check_for_dup_router_subnets`):
/// a new one on `subnets` overlapping one it has is a 400.
fn no_overlap(db: &dyn Db, router: &str, subnets: &[String]) -> ApiResult<()> {
    let s = Store::new(db);
    let new: Vec<Subnet> = subnets.iter().filter_map(|id| s.get::<Subnet>(id).ok().flatten()).collect();
    for p in router_ports(db, router)? {
        for f in &p.fixed_ips {
            let Some(old) = s.get::<Subnet>(&f.subnet_id)? else { continue };
            for n in &new {
                if n.id == old.id {
                    return Err(ApiError::bad(format!(
                        "Bad router request: Router already has a port on subnet {}.",
                        n.id
                    )));
                }
                let (Some(a), Some(b)) = (Cidr::parse_network(&n.cidr), Cidr::parse_network(&old.cidr)) else {
                    continue;
                };
                if a.overlaps(&b) {
                    return Err(ApiError::bad(format!(
                        "Bad router request: Cidr {} of subnet {} overlaps with cidr {} of subnet {}.",
                        n.cidr, n.id, old.cidr, old.id
                    )));
                }
            }
        }
    }
    Ok(())
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
    let id = |k: &str| match v[k].as_str() {
        Some(s) if !uuid_like(s) => {
            Err(ApiError::bad(format!("Invalid input for operation: {s} is not a valid UUID ({k}).")))
        }
        s => Ok(s.map(str::to_owned)),
    };
    Ok((id("subnet_id")?, id("port_id")?))
}

/// `{"subnet_id": S}`: a port on S's network with S's gateway address; `{"port_id": P}`: that port.
pub(super) async fn add_router_interface(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let (subnet_id, port_id) = interface_body(&raw)?;
    blocking(&api, move |db| {
        let s = Store::new(db);
        let r: Router = writable(db, &caller, &id, "add_router_interface")?;
        let port = match (subnet_id, port_id) {
            (Some(sid), None) => {
                let (_, sub): (_, Subnet) = visible(db, &caller, &sid)?;
                no_overlap(db, &r.id, std::slice::from_ref(&sub.id))?;
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
                let mut p: Port = writable(db, &caller, &pid, "add_router_interface")?;
                if !p.device_owner.is_empty() || !p.device_id.is_empty() {
                    return Err(ApiError::conflict("PortInUse", format!("Port {pid} is in use by {}", p.device_owner)));
                }
                if p.fixed_ips.is_empty() {
                    return Err(ApiError::bad("Bad router request: Router port must have at least one fixed IP"));
                }
                let subnets: Vec<String> = p.fixed_ips.iter().map(|f| f.subnet_id.clone()).collect();
                no_overlap(db, &r.id, &subnets)?;
                p.device_owner = ROUTER_INTERFACE.into();
                p.device_id = r.id.clone();
                s.update(p)?
            }
            _ => return Err(ApiError::bad("Bad router request: give exactly one of subnet_id and port_id")),
        };
        touch::<Router>(db, &r.id);
        Ok(Json(interface_info(&r, &port)))
    })
    .await
}

/// `{"subnet_id": S}` or `{"port_id": P}`: the router's interface port on S, or P, is deleted.
pub(super) async fn remove_router_interface(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let (subnet_id, port_id) = interface_body(&raw)?;
    blocking(&api, move |db| {
        let s = Store::new(db);
        let r: Router = writable(db, &caller, &id, "remove_router_interface")?;
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
        touch::<Router>(db, &r.id);
        Ok(Json(interface_info(&r, &port)))
    })
    .await
}

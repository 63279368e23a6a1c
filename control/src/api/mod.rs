//! The Neutron API (northbound), `/v2.0/…` with Neutron's JSON bodies, status codes, `fields` and filter
//! query parameters, and its error body `{"NeutronError": {"type", "message", "detail"}}`. This step:
//! the version documents, `extensions`, networks, subnets (CIDR and pool checks, no overlap within a
//! network) and ports (MACs generated as Neutron's `fa:16:3e:…`, fixed IPs allocated from the pools and
//! never twice: `ipam`). Routers, floating IPs and security groups come next.
//!
//! Handlers run the (synchronous) DB calls on tokio's blocking pool.

pub mod ipam;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::cidr::{ip_from_bits, Cidr};
use crate::db::{Db, DbError};
use crate::model::{
    Direction, EtherType, FixedIp, FloatingIp, Network, Object, Port, Router as NeutronRouter, SecurityGroup,
    SecurityGroupRule, Store, Subnet, ROUTER_INTERFACE,
};

type Router = NeutronRouter;

/// What every handler shares.
#[derive(Clone)]
pub struct Api {
    pub db: Arc<dyn Db>,
}

/// An error in Neutron's shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into() }
    }
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }
    fn not_found(what: &str, id: &str) -> ApiError {
        let kind = match what {
            "network" => "NetworkNotFound",
            "subnet" => "SubnetNotFound",
            "port" => "PortNotFound",
            "router" => "RouterNotFound",
            "security_group" => "SecurityGroupNotFound",
            "security_group_rule" => "SecurityGroupRuleNotFound",
            "floatingip" => "FloatingIPNotFound",
            _ => "NotFound",
        };
        ApiError::new(StatusCode::NOT_FOUND, kind, format!("{what} {id} could not be found."))
    }
    fn conflict(kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, kind, message)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        match e {
            DbError::Conflict { .. } => ApiError::conflict("RevisionConflict", "the object changed meanwhile; retry"),
            DbError::Invalid(m) => ApiError::bad(m),
            e => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"NeutronError": {"type": self.kind, "message": self.message, "detail": ""}});
        (self.status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A stored subnet's CIDR: the API only stores valid ones, but the DB may hold anything (another writer,
/// damage): an error for this request, never a panic of the process.
fn stored_cidr(s: &Subnet) -> ApiResult<Cidr> {
    Cidr::parse_network(&s.cidr).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("stored subnet {} has an invalid cidr {:?}", s.id, s.cidr),
        )
    })
}

async fn blocking<T: Send + 'static>(
    api: &Api,
    f: impl FnOnce(&dyn Db) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let db = api.db.clone();
    tokio::task::spawn_blocking(move || f(&*db))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e.to_string()))?
}

/// The API's routes over `db`.
pub fn router(db: Arc<dyn Db>) -> axum::Router {
    axum::Router::new()
        .route("/", get(versions))
        .route("/v2.0", get(resources))
        .route("/v2.0/", get(resources))
        .route("/v2.0/extensions", get(extensions))
        .route("/v2.0/networks", get(list::<Network>).post(create_network))
        .route("/v2.0/networks/{id}", get(show::<Network>).put(update_network).delete(delete_network))
        .route("/v2.0/subnets", get(list::<Subnet>).post(create_subnet))
        .route("/v2.0/subnets/{id}", get(show::<Subnet>).put(update_subnet).delete(delete_subnet))
        .route("/v2.0/ports", get(list::<Port>).post(create_port))
        .route("/v2.0/ports/{id}", get(show::<Port>).put(update_port).delete(delete_port))
        .route("/v2.0/routers", get(list::<Router>).post(create_router))
        .route("/v2.0/routers/{id}", get(show::<Router>).put(update_router).delete(delete_router))
        .route("/v2.0/routers/{id}/add_router_interface", axum::routing::put(add_router_interface))
        .route("/v2.0/routers/{id}/remove_router_interface", axum::routing::put(remove_router_interface))
        .route("/v2.0/security-groups", get(list_groups).post(create_group))
        .route("/v2.0/security-groups/{id}", get(show_group).put(update_group).delete(delete_group))
        .route("/v2.0/security-group-rules", get(list::<SecurityGroupRule>).post(create_rule))
        .route("/v2.0/security-group-rules/{id}", get(show::<SecurityGroupRule>).delete(delete_rule))
        .route("/v2.0/floatingips", get(list::<FloatingIp>).post(create_floatingip))
        .route("/v2.0/floatingips/{id}", get(show::<FloatingIp>).put(update_floatingip).delete(delete_floatingip))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "HTTPNotFound", "no such resource") })
        .with_state(Api { db })
}

async fn versions() -> Json<Value> {
    Json(json!({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"href": "/v2.0/", "rel": "self"}]}]}))
}

async fn resources() -> Json<Value> {
    let r: Vec<Value> = ["network", "subnet", "port", "router", "security_group", "security_group_rule", "floatingip"]
        .iter()
        .map(|n| json!({"name": n, "collection": format!("{n}s"), "links": [{"href": format!("/v2.0/{n}s"), "rel": "self"}]}))
        .collect();
    Json(json!({ "resources": r }))
}

async fn extensions() -> Json<Value> {
    let ext = |alias: &str, name: &str| json!({"alias": alias, "name": name, "description": name, "links": [], "updated": "2026-11-25T00:00:00Z"});
    Json(json!({"extensions": [
        ext("binding", "Port Binding"), ext("provider", "Provider Network"), ext("external-net", "Neutron external network"),
        ext("port-security", "Port Security"), ext("allowed-address-pairs", "Allowed Address Pairs"),
        ext("standard-attr-revisions", "Resource revision numbers"), ext("net-mtu", "Network MTU"),
        ext("router", "Neutron L3 Router"), ext("extraroute", "Neutron Extra Route"),
        ext("security-group", "security-group"), ext("external-net", "Neutron external network"),
    ]}))
}

/// The JSON name of a model type: `network` → `networks`.
trait Named: Object + Send + 'static {
    const ONE: &'static str;
    const MANY: &'static str;
}
macro_rules! named {
    ($($t:ty: $one:literal, $many:literal;)*) => {
        $(impl Named for $t {
            const ONE: &'static str = $one;
            const MANY: &'static str = $many;
        })*
    };
}
named! {
    Network: "network", "networks";
    Subnet: "subnet", "subnets";
    Port: "port", "ports";
    Router: "router", "routers";
    SecurityGroupRule: "security_group_rule", "security_group_rules";
    FloatingIp: "floatingip", "floatingips";
}

/// Applies `fields=` and equality filters (`name=x`, repeated values mean any of them) to objects.
fn present(objects: Vec<Value>, query: &[(String, String)]) -> Vec<Value> {
    let fields: Vec<&str> = query.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.as_str()).collect();
    let mut filters: HashMap<&str, Vec<&str>> = HashMap::new();
    for (k, v) in
        query.iter().filter(|(k, _)| !matches!(k.as_str(), "fields" | "limit" | "marker" | "sort_key" | "sort_dir"))
    {
        filters.entry(k.as_str()).or_default().push(v.as_str());
    }
    objects
        .into_iter()
        .filter(|o| {
            filters.iter().all(|(k, vs)| {
                let v = &o[*k];
                vs.iter().any(|want| match v {
                    Value::String(s) => s == want,
                    Value::Bool(b) => want.eq_ignore_ascii_case(&b.to_string()),
                    Value::Number(n) => n.to_string() == *want,
                    Value::Array(a) => a.iter().any(|x| x.as_str() == Some(*want)),
                    _ => false,
                })
            })
        })
        .map(|o| select(o, &fields))
        .collect()
}

fn select(o: Value, fields: &[&str]) -> Value {
    if fields.is_empty() {
        return o;
    }
    let Value::Object(m) = o else { return o };
    Value::Object(m.into_iter().filter(|(k, _)| fields.contains(&k.as_str())).collect())
}

async fn list<T: Named>(State(api): State<Api>, Query(q): Query<Vec<(String, String)>>) -> ApiResult<Json<Value>> {
    let objects = blocking(&api, |db| Ok(Store::new(db).list::<T>()?.0)).await?;
    let values = objects.iter().map(|o| serde_json::to_value(o).expect("model serialises")).collect();
    Ok(Json(json!({ T::MANY: present(values, &q) })))
}

async fn show<T: Named>(
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let idc = id.clone();
    let o = blocking(&api, move |db| Ok(Store::new(db).get::<T>(&idc)?)).await?;
    let o = o.ok_or_else(|| ApiError::not_found(T::ONE, &id))?;
    let fields: Vec<&str> = q.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.as_str()).collect();
    Ok(Json(json!({ T::ONE: select(serde_json::to_value(&o).expect("model serialises"), &fields) })))
}

/// The body `{"<one>": {...}}` as an object, with only the attributes in `allowed`.
fn body(raw: &[u8], one: &str, allowed: &[&str]) -> ApiResult<Map<String, Value>> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let Some(Value::Object(m)) = v.get(one).cloned() else {
        return Err(ApiError::bad(format!("the body must be {{\"{one}\": {{...}}}}")));
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad(format!("Unrecognized attribute(s) '{k}'")));
    }
    Ok(m)
}

/// Neutron's older `tenant_id` is `project_id`.
fn normalise(attrs: &mut Map<String, Value>) {
    if let Some(t) = attrs.remove("tenant_id") {
        attrs.entry("project_id").or_insert(t);
    }
}

/// A new object from the request's attributes, with a fresh id and `status`; everything the request
/// leaves out takes the model's defaults (Neutron's, in `model.rs`): one place for them.
fn new_object<T: Object>(attrs: Map<String, Value>, status: Option<&str>) -> ApiResult<T> {
    let mut v = Value::Object(attrs);
    v["id"] = json!(new_id());
    if let Some(st) = status {
        v["status"] = json!(st);
    }
    serde_json::from_value(v).map_err(|e| ApiError::bad(format!("invalid attribute value: {e}")))
}

/// Merges the request's attributes over an object's JSON and decodes it back: type errors are 400s.
fn merge<T: Object>(base: &T, attrs: Map<String, Value>) -> ApiResult<T> {
    let mut v = serde_json::to_value(base).expect("model serialises");
    for (k, x) in attrs {
        v[k] = x;
    }
    serde_json::from_value(v).map_err(|e| ApiError::bad(format!("invalid attribute value: {e}")))
}

fn new_id() -> String {
    let (a, b) = (rand_u64(), rand_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

const NETWORK_ATTRS: &[&str] = &[
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

async fn create_network(State(api): State<Api>, raw: axum::body::Bytes) -> ApiResult<Response> {
    let mut attrs = body(&raw, "network", NETWORK_ATTRS)?;
    normalise(&mut attrs);
    for k in ["availability_zone_hints", "dns_domain", "is_default", "qos_policy_id"] {
        attrs.remove(k);
    }
    let n: Network = new_object(attrs, Some("ACTIVE"))?;
    let n = blocking(&api, move |db| Ok(Store::new(db).create(n)?)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "network": n }))).into_response())
}

async fn update_network(
    State(api): State<Api>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let attrs = body(
        &raw,
        "network",
        &["name", "description", "admin_state_up", "mtu", "port_security_enabled", "shared", "router:external"],
    )?;
    let n = blocking(&api, move |db| {
        let s = Store::new(db);
        let cur: Network = s.get(&id)?.ok_or_else(|| ApiError::not_found("network", &id))?;
        Ok(s.update(merge(&cur, attrs)?)?)
    })
    .await?;
    Ok(Json(json!({ "network": n })))
}

async fn delete_network(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        let s = Store::new(db);
        let n: Network = s.get(&id)?.ok_or_else(|| ApiError::not_found("network", &id))?;
        let (ports, _) = s.list::<Port>()?;
        let floating = s.list::<FloatingIp>()?.0.iter().any(|f| f.floating_network_id == id);
        if floating || ports.iter().any(|p| p.network_id == id) {
            return Err(ApiError::conflict(
                "NetworkInUse",
                format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network."),
            ));
        }
        for sub in &n.subnets {
            let _ = s.delete::<Subnet>(sub, None);
        }
        s.delete::<Network>(&id, None)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

const SUBNET_ATTRS: &[&str] = &[
    "name",
    "description",
    "project_id",
    "tenant_id",
    "network_id",
    "ip_version",
    "cidr",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "subnetpool_id",
    "segment_id",
];

async fn create_subnet(State(api): State<Api>, raw: axum::body::Bytes) -> ApiResult<Response> {
    let mut attrs = body(&raw, "subnet", SUBNET_ATTRS)?;
    normalise(&mut attrs);
    attrs.remove("subnetpool_id");
    attrs.remove("segment_id");
    let cidr_s = attrs.get("cidr").and_then(Value::as_str).ok_or_else(|| ApiError::bad("cidr is required"))?.to_owned();
    let cidr = Cidr::parse_network(&cidr_s)
        .ok_or_else(|| ApiError::bad(format!("Invalid input for cidr: '{cidr_s}' is not a valid IP subnet")))?;
    let version = attrs.get("ip_version").and_then(Value::as_u64).unwrap_or(cidr.ip_version() as u64);
    if version != cidr.ip_version() as u64 {
        return Err(ApiError::bad(format!("Invalid input: cidr {cidr_s} is not an IPv{version} subnet")));
    }
    let network_id = attrs
        .get("network_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("network_id is required"))?
        .to_owned();
    // Gateway: given (must be in the CIDR), null (none), or the first address.
    let gateway = match attrs.get("gateway_ip") {
        Some(Value::Null) => None,
        Some(Value::String(g)) => {
            let ip: std::net::IpAddr =
                g.parse().map_err(|_| ApiError::bad(format!("Invalid input for gateway_ip: '{g}'")))?;
            if !cidr.contains(ip) {
                return Err(ApiError::bad(format!(
                    "Gateway ip {g} conflicts with allocation pool or is outside {cidr_s}"
                )));
            }
            Some(g.clone())
        }
        Some(_) => return Err(ApiError::bad("gateway_ip must be a string or null")),
        None => Some(ip_from_bits(cidr.is_v6(), cidr.base() + 1).to_string()),
    };
    let gw_bits = gateway.as_deref().and_then(ipam::parse_ip).map(|(_, b)| b);
    let base = Subnet {
        id: new_id(),
        name: String::new(),
        project_id: String::new(),
        network_id: network_id.clone(),
        ip_version: version as u8,
        cidr: cidr_s.clone(),
        gateway_ip: gateway,
        allocation_pools: ipam::default_pools(&cidr, gw_bits),
        dns_nameservers: Vec::new(),
        host_routes: Vec::new(),
        enable_dhcp: true,
        ipv6_ra_mode: None,
        ipv6_address_mode: None,
        revision_number: 0,
    };
    attrs.remove("gateway_ip");
    attrs.remove("description");
    let mut sub = merge(&base, attrs)?;
    sub.ip_version = version as u8;
    for p in &sub.allocation_pools {
        let ok = |s: &str| s.parse().is_ok_and(|ip| cidr.contains(ip));
        if !ok(&p.start) || !ok(&p.end) || ipam::parse_ip(&p.start) > ipam::parse_ip(&p.end) {
            return Err(ApiError::bad(format!(
                "The allocation pool {}-{} spans beyond the subnet cidr {cidr_s}.",
                p.start, p.end
            )));
        }
        if gw_bits.is_some_and(|g| ipam::in_pools(&Subnet { allocation_pools: vec![p.clone()], ..sub.clone() }, g)) {
            return Err(ApiError::conflict(
                "GatewayConflictWithAllocationPools",
                format!(
                    "Gateway ip {} conflicts with allocation pool {}-{}",
                    sub.gateway_ip.as_deref().unwrap_or(""),
                    p.start,
                    p.end
                ),
            ));
        }
    }
    let sub = blocking(&api, move |db| {
        let s = Store::new(db);
        let mut net: Network = s.get(&network_id)?.ok_or_else(|| ApiError::not_found("network", &network_id))?;
        let (all, _) = s.list::<Subnet>()?;
        if let Some(o) = all.iter().filter(|o| o.network_id == network_id).find(|o| Cidr::parse_network(&o.cidr).is_some_and(|c| c.overlaps(&cidr))) {
            return Err(ApiError::bad(format!("Invalid input for operation: Requested subnet with cidr: {cidr_s} for network: {network_id} overlaps with another subnet ({}).", o.cidr)));
        }
        let sub = s.create(sub)?;
        // Attach it to the network, retrying if the network moved meanwhile.
        loop {
            net.subnets.push(sub.id.clone());
            match s.update(net) {
                Ok(_) => break,
                Err(DbError::Conflict { .. }) => {
                    net = s.get(&network_id)?.ok_or_else(|| ApiError::not_found("network", &network_id))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(sub)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "subnet": sub }))).into_response())
}

async fn update_subnet(
    State(api): State<Api>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let attrs =
        body(&raw, "subnet", &["name", "description", "dns_nameservers", "host_routes", "enable_dhcp", "gateway_ip"])?;
    let sub = blocking(&api, move |db| {
        let s = Store::new(db);
        let cur: Subnet = s.get(&id)?.ok_or_else(|| ApiError::not_found("subnet", &id))?;
        let mut attrs = attrs;
        attrs.remove("description");
        let next = merge(&cur, attrs)?;
        if next.gateway_ip != cur.gateway_ip {
            if let Some(g) = &next.gateway_ip {
                // The same rules as at creation: inside the CIDR, outside the pools, not taken by a port.
                let cidr = stored_cidr(&cur)?;
                let ip = g.parse().ok().filter(|ip| cidr.contains(*ip));
                let Some(ip) = ip else {
                    return Err(ApiError::bad(format!("Invalid input for gateway_ip: '{g}' is not in {}", cur.cidr)));
                };
                let bits = ipam::parse_ip(g).map(|(_, b)| b).unwrap_or_default();
                if ipam::in_pools(&cur, bits) || db.get(&ipam::ipam_table(&id), &ip.to_string())?.is_some() {
                    return Err(ApiError::conflict(
                        "GatewayConflictWithAllocationPools",
                        format!("Gateway ip {g} conflicts with an allocation pool or a port"),
                    ));
                }
            }
        }
        Ok(s.update(next)?)
    })
    .await?;
    Ok(Json(json!({ "subnet": sub })))
}

async fn delete_subnet(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        let s = Store::new(db);
        let sub: Subnet = s.get(&id)?.ok_or_else(|| ApiError::not_found("subnet", &id))?;
        if !db.list(&ipam::ipam_table(&id))?.0.is_empty() {
            return Err(ApiError::conflict("SubnetInUse", format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet.")));
        }
        s.delete::<Subnet>(&id, None)?;
        if let Some(mut net) = s.get::<Network>(&sub.network_id)? {
            net.subnets.retain(|x| *x != id);
            let _ = s.update(net);
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

const PORT_ATTRS: &[&str] = &[
    "name",
    "description",
    "project_id",
    "tenant_id",
    "network_id",
    "mac_address",
    "fixed_ips",
    "device_owner",
    "device_id",
    "security_groups",
    "allowed_address_pairs",
    "port_security_enabled",
    "admin_state_up",
    "binding:host_id",
    "binding:profile",
    "binding:vnic_type",
];

/// A MAC as Neutron makes them: `fa:16:3e` and three random bytes.
fn neutron_mac() -> String {
    let r = rand_u64();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", r & 0xff, (r >> 8) & 0xff, (r >> 16) & 0xff)
}

/// A new MAC, unused in the network, taken for `port_id`.
fn take_new_mac(db: &dyn Db, network_id: &str, port_id: &str) -> ApiResult<String> {
    loop {
        let mac = neutron_mac();
        match db.create(&ipam::mac_table(network_id), &mac, port_id.as_bytes()) {
            Ok(_) => return Ok(mac),
            Err(DbError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Takes the port's MAC and fixed IPs in the DB (releasing what it took if one fails).
fn allocate_port(db: &dyn Db, p: &mut Port, requested: Option<Vec<Value>>, mac_given: bool) -> ApiResult<()> {
    if mac_given {
        if pipelines::wire::Mac::parse(&p.mac_address.to_lowercase()).is_none_or(|m| !m.is_unicast()) {
            return Err(ApiError::bad(format!(
                "Invalid input for mac_address: '{}' is not a valid MAC address",
                p.mac_address
            )));
        }
        p.mac_address = p.mac_address.to_lowercase();
        if db.create(&ipam::mac_table(&p.network_id), &p.mac_address, p.id.as_bytes()).is_err() {
            return Err(ApiError::conflict(
                "MacAddressInUse",
                format!(
                    "Unable to complete operation for network {}. The mac address {} is in use.",
                    p.network_id, p.mac_address
                ),
            ));
        }
    } else {
        p.mac_address = take_new_mac(db, &p.network_id, &p.id)?;
    }
    match take_fixed_ips(db, p, requested, &[]) {
        Ok(ips) => {
            p.fixed_ips = ips;
            Ok(())
        }
        Err(e) => {
            let _ = db.delete(&ipam::mac_table(&p.network_id), &p.mac_address, None);
            Err(e)
        }
    }
}

/// Takes the fixed IPs `requested` for port `p` (`None`: one from the first subnet of each IP version),
/// releasing what it took if one fails. Addresses in `keep` (the port's own, on an update) are kept
/// without being taken again.
fn take_fixed_ips(
    db: &dyn Db,
    p: &Port,
    requested: Option<Vec<Value>>,
    keep: &[crate::model::FixedIp],
) -> ApiResult<Vec<crate::model::FixedIp>> {
    let s = Store::new(db);
    let net: Network = s.get(&p.network_id)?.ok_or_else(|| ApiError::not_found("network", &p.network_id))?;
    let subnets: Vec<Subnet> = net.subnets.iter().filter_map(|id| s.get::<Subnet>(id).ok().flatten()).collect();
    let mut taken: Vec<(String, String)> = Vec::new();
    let mut kept: Vec<(String, String)> = Vec::new();
    let result = (|| -> ApiResult<()> {
        match requested {
            None => {
                // One address from the first subnet of each IP version, as Neutron does.
                for v in [4u8, 6] {
                    if let Some(sub) = subnets.iter().find(|x| x.ip_version == v) {
                        let ip = ipam::allocate(db, sub, &p.id)?.ok_or_else(|| {
                            ApiError::conflict(
                                "IpAddressGenerationFailure",
                                format!("No more IP addresses available on network {}.", p.network_id),
                            )
                        })?;
                        taken.push((sub.id.clone(), ip));
                    }
                }
            }
            Some(list) => {
                for f in list {
                    let sid = f.get("subnet_id").and_then(Value::as_str);
                    let ip = f.get("ip_address").and_then(Value::as_str);
                    let sub = match (sid, ip) {
                        (Some(id), _) => subnets.iter().find(|x| x.id == id).ok_or_else(|| {
                            ApiError::bad(format!("Invalid input: subnet {id} is not on network {}", p.network_id))
                        })?,
                        (None, Some(ip)) => {
                            let a: std::net::IpAddr = ip
                                .parse()
                                .map_err(|_| ApiError::bad(format!("Invalid input for ip_address: '{ip}'")))?;
                            subnets
                                .iter()
                                .find(|x| Cidr::parse_network(&x.cidr).is_some_and(|c| c.contains(a)))
                                .ok_or_else(|| {
                                    ApiError::bad(format!(
                                        "IP address {ip} is not a valid IP for any subnet of network {}",
                                        p.network_id
                                    ))
                                })?
                        }
                        (None, None) => return Err(ApiError::bad("a fixed IP needs subnet_id or ip_address")),
                    };
                    // The port's own address (named, or any on the subnet when only the subnet is named).
                    let mine = keep.iter().find(|k| {
                        k.subnet_id == sub.id
                            && match ip {
                                Some(ip) => ip.parse::<std::net::IpAddr>().ok() == k.ip_address.parse().ok(),
                                None => !kept.iter().any(|(s, a)| *s == k.subnet_id && *a == k.ip_address),
                            }
                    });
                    if let Some(k) = mine {
                        kept.push((k.subnet_id.clone(), k.ip_address.clone()));
                        continue;
                    }
                    let got = match ip {
                        Some(ip) => {
                            let a: std::net::IpAddr = ip
                                .parse()
                                .map_err(|_| ApiError::bad(format!("Invalid input for ip_address: '{ip}'")))?;
                            let c = stored_cidr(sub)?;
                            if !c.contains(a) {
                                return Err(ApiError::bad(format!(
                                    "IP address {ip} is not a valid IP for the specified subnet."
                                )));
                            }
                            let ip = a.to_string();
                            if sub.gateway_ip.as_deref() == Some(ip.as_str()) || !ipam::take(db, &sub.id, &ip, &p.id)? {
                                return Err(ApiError::conflict(
                                    "IpAddressAlreadyAllocated",
                                    format!("IP address {ip} already allocated in subnet {}", sub.id),
                                ));
                            }
                            ip
                        }
                        None => ipam::allocate(db, sub, &p.id)?.ok_or_else(|| {
                            ApiError::conflict(
                                "IpAddressGenerationFailure",
                                format!("No more IP addresses available on subnet {}.", sub.id),
                            )
                        })?,
                    };
                    taken.push((sub.id.clone(), got));
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        release_ips(db, &taken);
        return Err(e);
    }
    Ok(kept
        .into_iter()
        .chain(taken)
        .map(|(subnet_id, ip_address)| crate::model::FixedIp { subnet_id, ip_address })
        .collect())
}

fn release_ips(db: &dyn Db, ips: &[(String, String)]) {
    for (sid, ip) in ips {
        ipam::release(db, sid, ip);
    }
}

async fn create_port(State(api): State<Api>, raw: axum::body::Bytes) -> ApiResult<Response> {
    let mut attrs = body(&raw, "port", PORT_ATTRS)?;
    normalise(&mut attrs);
    attrs.remove("description");
    let network_id = attrs
        .get("network_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("network_id is required"))?
        .to_owned();
    let requested = match attrs.remove("fixed_ips") {
        None => None,
        Some(Value::Array(a)) => Some(a),
        Some(_) => return Err(ApiError::bad("fixed_ips must be a list")),
    };
    let mac_given = attrs.contains_key("mac_address");
    let base = Port::new(new_id(), network_id);
    let sg_given = attrs.contains_key("security_groups");
    let mut p = merge(&base, attrs)?;
    let p = blocking(&api, move |db| {
        let s = Store::new(db);
        for g in &p.security_groups {
            s.get::<SecurityGroup>(g)?.ok_or_else(|| ApiError::not_found("security_group", g))?;
        }
        if !sg_given && p.port_security_enabled != Some(false) {
            p.security_groups = vec![default_group(db, &p.project_id)?];
        }
        allocate_port(db, &mut p, requested, mac_given)?;
        Ok(Store::new(db).create(p)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "port": p }))).into_response())
}

async fn update_port(State(api): State<Api>, Path(id): Path<String>, raw: axum::body::Bytes) -> ApiResult<Json<Value>> {
    let attrs = body(
        &raw,
        "port",
        &[
            "name",
            "description",
            "device_owner",
            "device_id",
            "security_groups",
            "allowed_address_pairs",
            "port_security_enabled",
            "admin_state_up",
            "binding:host_id",
            "binding:profile",
            "binding:vnic_type",
            "fixed_ips",
        ],
    )?;
    let p = blocking(&api, move |db| {
        let s = Store::new(db);
        let cur: Port = s.get(&id)?.ok_or_else(|| ApiError::not_found("port", &id))?;
        let mut attrs = attrs;
        attrs.remove("description");
        let requested = match attrs.remove("fixed_ips") {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(_) => return Err(ApiError::bad("fixed_ips must be a list")),
        };
        let mut next = merge(&cur, attrs)?;
        let Some(requested) = requested else { return Ok(s.update(next)?) };
        // New addresses are taken first, the port written (compare-and-swap), then the old ones released;
        // a failed write gives back what it took.
        next.fixed_ips = take_fixed_ips(db, &cur, Some(requested), &cur.fixed_ips)?;
        let fresh: Vec<(String, String)> = next
            .fixed_ips
            .iter()
            .filter(|f| !cur.fixed_ips.contains(f))
            .map(|f| (f.subnet_id.clone(), f.ip_address.clone()))
            .collect();
        let stale: Vec<(String, String)> = cur
            .fixed_ips
            .iter()
            .filter(|f| !next.fixed_ips.contains(f))
            .map(|f| (f.subnet_id.clone(), f.ip_address.clone()))
            .collect();
        match s.update(next) {
            Ok(p) => {
                release_ips(db, &stale);
                Ok(p)
            }
            Err(e) => {
                release_ips(db, &fresh);
                Err(e.into())
            }
        }
    })
    .await?;
    Ok(Json(json!({ "port": p })))
}

async fn delete_port(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        let s = Store::new(db);
        let p: Port = s.get(&id)?.ok_or_else(|| ApiError::not_found("port", &id))?;
        if p.device_owner == ROUTER_INTERFACE {
            return Err(ApiError::conflict(
                "PortInUse",
                format!(
                    "Port {id} has owner {ROUTER_INTERFACE} and therefore cannot be deleted directly via the port API."
                ),
            ));
        }
        // Its floating IPs are disassociated, as Neutron does.
        for mut f in s.list::<FloatingIp>()?.0.into_iter().filter(|f| f.port_id.as_deref() == Some(id.as_str())) {
            associate(db, &mut f, None, None)?;
            s.update(f)?;
        }
        s.delete::<Port>(&id, None)?;
        for f in &p.fixed_ips {
            ipam::release(db, &f.subnet_id, &f.ip_address);
        }
        let _ = db.delete(&ipam::mac_table(&p.network_id), &p.mac_address, None);
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn create_router(State(api): State<Api>, raw: axum::body::Bytes) -> ApiResult<Response> {
    let mut attrs = body(
        &raw,
        "router",
        &[
            "name",
            "description",
            "project_id",
            "tenant_id",
            "admin_state_up",
            "external_gateway_info",
            "distributed",
            "ha",
            "availability_zone_hints",
        ],
    )?;
    normalise(&mut attrs);
    for k in ["description", "distributed", "ha", "availability_zone_hints"] {
        attrs.remove(k);
    }
    let r: Router = new_object(attrs, Some("ACTIVE"))?;
    let r = blocking(&api, move |db| Ok(Store::new(db).create(r)?)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "router": r }))).into_response())
}

async fn update_router(
    State(api): State<Api>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let attrs = body(&raw, "router", &["name", "description", "admin_state_up", "external_gateway_info", "routes"])?;
    let r = blocking(&api, move |db| {
        let s = Store::new(db);
        let cur: Router = s.get(&id)?.ok_or_else(|| ApiError::not_found("router", &id))?;
        let mut attrs = attrs;
        attrs.remove("description");
        let r = merge(&cur, attrs)?;
        for route in &r.routes {
            if Cidr::parse_network(&route.destination).is_none() || route.nexthop.parse::<std::net::IpAddr>().is_err() {
                return Err(ApiError::bad(format!("Invalid route {} via {}", route.destination, route.nexthop)));
            }
        }
        Ok(s.update(r)?)
    })
    .await?;
    Ok(Json(json!({ "router": r })))
}

fn router_ports(db: &dyn Db, router_id: &str) -> ApiResult<Vec<Port>> {
    let (ports, _) = Store::new(db).list::<Port>()?;
    Ok(ports.into_iter().filter(|p| p.device_owner == ROUTER_INTERFACE && p.device_id == router_id).collect())
}

async fn delete_router(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        let s = Store::new(db);
        s.get::<Router>(&id)?.ok_or_else(|| ApiError::not_found("router", &id))?;
        if !router_ports(db, &id)?.is_empty() {
            return Err(ApiError::conflict("RouterInUse", format!("Router {id} still has ports")));
        }
        s.delete::<Router>(&id, None)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

fn interface_info(r: &Router, p: &Port) -> Value {
    let subnet_ids: Vec<&str> = p.fixed_ips.iter().map(|f| f.subnet_id.as_str()).collect();
    json!({"id": r.id, "tenant_id": r.project_id, "project_id": r.project_id, "port_id": p.id,
           "network_id": p.network_id, "subnet_id": subnet_ids.first(), "subnet_ids": subnet_ids})
}

/// `{"subnet_id": S}`: a port on S's network with S's gateway address; `{"port_id": P}`: that port.
async fn add_router_interface(
    State(api): State<Api>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let v: Value = serde_json::from_slice(&raw).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let (subnet_id, port_id) = (v["subnet_id"].as_str().map(str::to_owned), v["port_id"].as_str().map(str::to_owned));
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

async fn remove_router_interface(
    State(api): State<Api>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let v: Value = serde_json::from_slice(&raw).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let (subnet_id, port_id) = (v["subnet_id"].as_str().map(str::to_owned), v["port_id"].as_str().map(str::to_owned));
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
        for f in &port.fixed_ips {
            ipam::release(db, &f.subnet_id, &f.ip_address);
        }
        let _ = db.delete(&ipam::mac_table(&port.network_id), &port.mac_address, None);
        Ok(Json(interface_info(&r, &port)))
    })
    .await
}

/// `routes`, refusing every request but the version document without `X-Auth-Token: token` (401, in
/// Neutron's error shape): the static token that protects an API not on loopback.
pub fn with_token(routes: axum::Router, token: String) -> axum::Router {
    let token = Arc::new(token);
    routes.layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
        let token = token.clone();
        async move {
            let ok = req.uri().path() == "/"
                || req.headers().get("x-auth-token").and_then(|v| v.to_str().ok()) == Some(token.as_str());
            if ok {
                next.run(req).await
            } else {
                ApiError::new(StatusCode::UNAUTHORIZED, "HTTPUnauthorized", "a valid X-Auth-Token is required")
                    .into_response()
            }
        }
    }))
}

/// Serves the API on `listen` until `stop` is set (checked every 100 ms), on a runtime of its own;
/// with `token`, only to requests that carry it.
pub fn serve_until(
    listen: &str,
    db: Arc<dyn Db>,
    token: Option<String>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("api").enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        tracing::info!(listen = %listener.local_addr()?, "Neutron API listening");
        eprintln!("dragonflow: Neutron API on http://{}/v2.0", listener.local_addr()?);
        let stopped = async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        };
        let local = listener.local_addr()?;
        if token.is_none() && !local.ip().is_loopback() {
            tracing::warn!(%local, "the API listens beyond loopback without a token (--token): anyone reaching it may change the cloud");
        }
        let routes = match token {
            Some(t) => with_token(router(db), t),
            None => router(db),
        };
        axum::serve(listener, routes).with_graceful_shutdown(stopped).await
    })
}

/// The project's `default` security group (ingress from its own members, egress anywhere, as
/// Neutron's), made on first use. Its id is derived from the project, so concurrent first uses agree.
fn default_group(db: &dyn Db, project: &str) -> ApiResult<String> {
    let id = format!("default-{}", if project.is_empty() { "none" } else { project });
    let s = Store::new(db);
    if s.get::<SecurityGroup>(&id)?.is_some() {
        return Ok(id);
    }
    let g = SecurityGroup {
        id: id.clone(),
        name: "default".into(),
        description: "Default security group".into(),
        project_id: project.into(),
        security_group_rules: Vec::new(),
        revision_number: 0,
    };
    match s.create(g) {
        Ok(_) | Err(DbError::AlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }
    for (direction, ethertype, remote) in [
        (Direction::Ingress, EtherType::IPv4, Some(id.clone())),
        (Direction::Ingress, EtherType::IPv6, Some(id.clone())),
        (Direction::Egress, EtherType::IPv4, None),
        (Direction::Egress, EtherType::IPv6, None),
    ] {
        let r = rule(&id, direction, ethertype, remote);
        let rid = format!("{id}-{}-{}", direction_name(direction), ethertype_name(ethertype));
        let _ = s.create(SecurityGroupRule { id: rid, ..r });
    }
    Ok(id)
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

fn ethertype_name(e: EtherType) -> &'static str {
    match e {
        EtherType::IPv4 => "IPv4",
        EtherType::IPv6 => "IPv6",
    }
}

fn rule(group: &str, direction: Direction, ethertype: EtherType, remote_group: Option<String>) -> SecurityGroupRule {
    SecurityGroupRule {
        id: new_id(),
        security_group_id: group.into(),
        direction,
        ethertype,
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: remote_group,
        revision_number: 0,
    }
}

/// A group as Neutron shows it: with its rules.
fn group_json(g: &SecurityGroup, rules: &[SecurityGroupRule]) -> Value {
    let mut v = serde_json::to_value(g).expect("model serialises");
    v["security_group_rules"] =
        serde_json::to_value(rules.iter().filter(|r| r.security_group_id == g.id).collect::<Vec<_>>())
            .expect("model serialises");
    v["tenant_id"] = v["project_id"].clone();
    v
}

async fn list_groups(State(api): State<Api>, Query(q): Query<Vec<(String, String)>>) -> ApiResult<Json<Value>> {
    let (groups, rules) = blocking(&api, |db| {
        let s = Store::new(db);
        Ok((s.list::<SecurityGroup>()?.0, s.list::<SecurityGroupRule>()?.0))
    })
    .await?;
    let values = groups.iter().map(|g| group_json(g, &rules)).collect();
    Ok(Json(json!({ "security_groups": present(values, &q) })))
}

async fn show_group(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let idc = id.clone();
    let (g, rules) = blocking(&api, move |db| {
        let s = Store::new(db);
        Ok((s.get::<SecurityGroup>(&idc)?, s.list::<SecurityGroupRule>()?.0))
    })
    .await?;
    let g = g.ok_or_else(|| ApiError::not_found("security_group", &id))?;
    Ok(Json(json!({ "security_group": group_json(&g, &rules) })))
}

async fn create_group(State(api): State<Api>, raw: axum::body::Bytes) -> ApiResult<Response> {
    let mut attrs = body(&raw, "security_group", &["name", "description", "project_id", "tenant_id", "stateful"])?;
    normalise(&mut attrs);
    attrs.remove("stateful");
    let g: SecurityGroup = new_object(attrs, None)?;
    let (g, rules) = blocking(&api, move |db| {
        let s = Store::new(db);
        let g = s.create(g)?;
        // Neutron gives a new group egress to anywhere, IPv4 and IPv6.
        let rules = [EtherType::IPv4, EtherType::IPv6]
            .into_iter()
            .map(|e| s.create(rule(&g.id, Direction::Egress, e, None)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((g, rules))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "security_group": group_json(&g, &rules) }))).into_response())
}

async fn update_group(
    State(api): State<Api>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let attrs = body(&raw, "security_group", &["name", "description"])?;
    let (g, rules) = blocking(&api, move |db| {
        let s = Store::new(db);
        let cur: SecurityGroup = s.get(&id)?.ok_or_else(|| ApiError::not_found("security_group", &id))?;
        Ok((s.update(merge(&cur, attrs)?)?, s.list::<SecurityGroupRule>()?.0))
    })
    .await?;
    Ok(Json(json!({ "security_group": group_json(&g, &rules) })))
}

async fn delete_group(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        let s = Store::new(db);
        s.get::<SecurityGroup>(&id)?.ok_or_else(|| ApiError::not_found("security_group", &id))?;
        if s.list::<Port>()?.0.iter().any(|p| p.security_groups.contains(&id)) {
            return Err(ApiError::conflict("SecurityGroupInUse", format!("Security Group {id} in use.")));
        }
        for r in s.list::<SecurityGroupRule>()?.0.iter().filter(|r| r.security_group_id == id) {
            let _ = s.delete::<SecurityGroupRule>(&r.id, None);
        }
        s.delete::<SecurityGroup>(&id, None)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

async fn create_rule(State(api): State<Api>, raw: axum::body::Bytes) -> ApiResult<Response> {
    let mut attrs = body(
        &raw,
        "security_group_rule",
        &[
            "security_group_id",
            "direction",
            "ethertype",
            "protocol",
            "port_range_min",
            "port_range_max",
            "remote_ip_prefix",
            "remote_group_id",
            "description",
            "project_id",
            "tenant_id",
        ],
    )?;
    for k in ["description", "project_id", "tenant_id"] {
        attrs.remove(k);
    }
    attrs.entry("ethertype").or_insert(json!("IPv4"));
    if let Some(Value::Number(n)) = attrs.get("protocol") {
        let n = n.to_string();
        attrs.insert("protocol".into(), json!(n));
    }
    let mut r: SecurityGroupRule = {
        let mut v = Value::Object(attrs);
        v["id"] = json!(new_id());
        serde_json::from_value(v).map_err(|e| ApiError::bad(format!("invalid security group rule: {e}")))?
    };
    if let Some(p) = &r.protocol {
        let p = p.to_lowercase();
        let ok =
            matches!(p.as_str(), "tcp" | "udp" | "icmp" | "ipv6-icmp" | "icmpv6" | "any") || p.parse::<u8>().is_ok();
        if !ok {
            return Err(ApiError::bad(format!("Security group rule protocol {p} not supported.")));
        }
        r.protocol = Some(p);
    }
    if let (Some(a), Some(b)) = (r.port_range_min, r.port_range_max) {
        if a > b {
            return Err(ApiError::bad("For TCP/UDP protocols, port_range_min must be <= port_range_max"));
        }
    }
    if (r.port_range_min.is_some() || r.port_range_max.is_some()) && r.protocol.is_none() {
        return Err(ApiError::bad("Must also specify protocol if port range is given."));
    }
    if let Some(prefix) = &r.remote_ip_prefix {
        let c =
            Cidr::parse_network(prefix).ok_or_else(|| ApiError::bad(format!("Invalid remote_ip_prefix {prefix}")))?;
        if c.is_v6() != (r.ethertype == EtherType::IPv6) {
            return Err(ApiError::bad(format!(
                "Conflicting value ethertype {} for CIDR {prefix}",
                ethertype_name(r.ethertype)
            )));
        }
        if r.remote_group_id.is_some() {
            return Err(ApiError::bad("Only remote_ip_prefix or remote_group_id may be provided."));
        }
    }
    let r = blocking(&api, move |db| {
        let s = Store::new(db);
        s.get::<SecurityGroup>(&r.security_group_id)?
            .ok_or_else(|| ApiError::not_found("security_group", &r.security_group_id))?;
        if let Some(g) = &r.remote_group_id {
            s.get::<SecurityGroup>(g)?.ok_or_else(|| ApiError::not_found("security_group", g))?;
        }
        let same = |o: &SecurityGroupRule| SecurityGroupRule { id: String::new(), revision_number: 0, ..o.clone() };
        if s.list::<SecurityGroupRule>()?.0.iter().any(|o| same(o) == same(&r)) {
            return Err(ApiError::conflict("SecurityGroupRuleExists", "Security group rule already exists."));
        }
        Ok(s.create(r)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "security_group_rule": r }))).into_response())
}

async fn delete_rule(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        Store::new(db).delete::<SecurityGroupRule>(&id, None).map_err(|e| match e {
            DbError::NotFound => ApiError::not_found("security_group_rule", &id),
            e => e.into(),
        })?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

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
fn associate(db: &dyn Db, f: &mut FloatingIp, port_id: Option<String>, fixed: Option<String>) -> ApiResult<()> {
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

async fn create_floatingip(State(api): State<Api>, raw: axum::body::Bytes) -> ApiResult<Response> {
    let attrs = body(
        &raw,
        "floatingip",
        &[
            "floating_network_id",
            "port_id",
            "fixed_ip_address",
            "floating_ip_address",
            "project_id",
            "tenant_id",
            "description",
            "subnet_id",
        ],
    )?;
    let net_id = attrs
        .get("floating_network_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad("floating_network_id is required"))?
        .to_owned();
    let project = attrs.get("project_id").or(attrs.get("tenant_id")).and_then(Value::as_str).unwrap_or("").to_owned();
    let port_id = attrs.get("port_id").and_then(Value::as_str).map(str::to_owned);
    let fixed = attrs.get("fixed_ip_address").and_then(Value::as_str).map(str::to_owned);
    let wanted = attrs.get("floating_ip_address").and_then(Value::as_str).map(str::to_owned);
    let f = blocking(&api, move |db| {
        let s = Store::new(db);
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
        let address = match wanted {
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
            project_id: project,
            floating_network_id: net_id,
            floating_ip_address: address.clone(),
            port_id: None,
            fixed_ip_address: None,
            router_id: None,
            status: "DOWN".into(),
            revision_number: 0,
        };
        if let Err(e) = associate(db, &mut f, port_id, fixed) {
            ipam::release(db, &sub.id, &address);
            return Err(e);
        }
        Ok(s.create(f)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "floatingip": f }))).into_response())
}

async fn update_floatingip(
    State(api): State<Api>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let attrs = body(&raw, "floatingip", &["port_id", "fixed_ip_address", "description"])?;
    let port_id = attrs.get("port_id").and_then(Value::as_str).map(str::to_owned);
    let fixed = attrs.get("fixed_ip_address").and_then(Value::as_str).map(str::to_owned);
    let f = blocking(&api, move |db| {
        let s = Store::new(db);
        let mut f: FloatingIp = s.get(&id)?.ok_or_else(|| ApiError::not_found("floatingip", &id))?;
        associate(db, &mut f, port_id, fixed)?;
        Ok(s.update(f)?)
    })
    .await?;
    Ok(Json(json!({ "floatingip": f })))
}

async fn delete_floatingip(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        let s = Store::new(db);
        let f: FloatingIp = s.get(&id)?.ok_or_else(|| ApiError::not_found("floatingip", &id))?;
        s.delete::<FloatingIp>(&id, None)?;
        if let Some(net) = s.get::<Network>(&f.floating_network_id)? {
            for sid in &net.subnets {
                ipam::release(db, sid, &f.floating_ip_address);
            }
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

//! The server: every route of the API in one table ([`router`]), the documents that describe it (the
//! version document at `/`, the resources at `/v2.0`, the extensions), the static token guard
//! ([`with_token`]) and [`serve_until`], which the binary runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::Json;
use serde_json::{json, Value};

use super::crud::{create, delete, list, show, update, Api, Resource, Settings};
use super::error::ApiError;
use super::floating_ips;
use super::ip_availability;
use super::keystone::{with_keystone, Keystone};
use super::quotas;
use super::routers::{add_extraroutes, add_router_interface, remove_extraroutes, remove_router_interface};
use super::security_group_rules::delete_rule;
use super::subnetpools;
use super::tags;
use crate::db::Db;
use crate::model::{
    AddressScope, Agent, FloatingIp, Network, Port, Router, SecurityGroup, SecurityGroupRule, Subnet, SubnetPool,
};

/// The API's routes over `db`, with `settings`.
pub fn router(db: Arc<dyn Db>, settings: Settings) -> axum::Router {
    let r = axum::Router::new()
        .route("/", get(versions))
        .route("/v2.0", get(resources))
        .route("/v2.0/", get(resources))
        .route("/v2.0/extensions", get(extensions))
        .route("/v2.0/extensions/{alias}", get(show_extension))
        .route("/v2.0/routers/{id}/add_router_interface", put(add_router_interface))
        .route("/v2.0/routers/{id}/remove_router_interface", put(remove_router_interface))
        .route("/v2.0/floatingip_pools", get(floating_ips::pools))
        .route("/v2.0/floatingip-pools", get(floating_ips::pools))
        .route("/v2.0/subnetpools/{id}/add_prefixes", put(subnetpools::add_prefixes))
        .route("/v2.0/subnetpools/{id}/remove_prefixes", put(subnetpools::remove_prefixes))
        .route("/v2.0/routers/{id}/add_extraroutes", put(add_extraroutes))
        .route("/v2.0/routers/{id}/remove_extraroutes", put(remove_extraroutes))
        .route("/v2.0/security-group-rules", get(list::<SecurityGroupRule>).post(create::<SecurityGroupRule>))
        .route("/v2.0/security-group-rules/{id}", get(show::<SecurityGroupRule>).delete(delete_rule));
    let r = resource::<Network>(r, "networks");
    let r = resource::<Subnet>(r, "subnets");
    let r = resource::<Port>(r, "ports");
    let r = resource::<Router>(r, "routers");
    let r = resource::<SecurityGroup>(r, "security-groups");
    let r = resource::<FloatingIp>(r, "floatingips");
    let r = resource::<SubnetPool>(r, "subnetpools");
    let r = resource::<AddressScope>(r, "address-scopes");
    let r = r
        .route("/v2.0/quotas", get(quotas::list))
        .route("/v2.0/quotas/{id}", get(quotas::show).put(quotas::update).delete(quotas::reset))
        .route("/v2.0/quotas/{id}/default", get(quotas::defaults))
        .route("/v2.0/quotas/{id}/details", get(quotas::details))
        .route("/v2.0/network-ip-availabilities", get(ip_availability::list))
        .route("/v2.0/network-ip-availabilities/{id}", get(ip_availability::show))
        .route("/v2.0/agents", get(list::<Agent>))
        .route("/v2.0/agents/{id}", get(show::<Agent>).put(update::<Agent>).delete(delete::<Agent>));
    r.fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "HTTPNotFound", "no such resource") })
        .with_state(Api { db, settings })
}

/// The routes of resource `T` at `/v2.0/<path>`: the collection, an object, and its tags.
fn resource<T: Resource>(r: axum::Router<Api>, path: &str) -> axum::Router<Api> {
    r.route(&format!("/v2.0/{path}"), get(list::<T>).post(create::<T>))
        .route(&format!("/v2.0/{path}/{{id}}"), get(show::<T>).put(update::<T>).delete(delete::<T>))
        .route(
            &format!("/v2.0/{path}/{{id}}/tags"),
            get(tags::list::<T>).put(tags::replace::<T>).delete(tags::remove_all::<T>),
        )
        .route(
            &format!("/v2.0/{path}/{{id}}/tags/{{tag}}"),
            get(tags::show::<T>).put(tags::add::<T>).delete(tags::remove::<T>),
        )
}

async fn versions() -> Json<Value> {
    Json(json!({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"href": "/v2.0/", "rel": "self"}]}]}))
}

async fn resources() -> Json<Value> {
    let r: Vec<Value> = ["network", "subnet", "port", "router", "security_group", "security_group_rule", "floatingip", "subnetpool"]
        .iter()
        .map(|n| json!({"name": n, "collection": format!("{n}s"), "links": [{"href": format!("/v2.0/{n}s"), "rel": "self"}]}))
        .collect();
    Json(json!({ "resources": r }))
}

/// The extensions the API implements (alias, name): what `/v2.0/extensions` lists. Only these: Tempest
/// and the clients use a listed extension, and skip what is not listed.
const EXTENSIONS: &[(&str, &str)] = &[
    ("binding", "Port Binding"),
    ("provider", "Provider Network"),
    ("external-net", "Neutron external network"),
    ("port-security", "Port Security"),
    ("allowed-address-pairs", "Allowed Address Pairs"),
    ("standard-attr-revisions", "Resource revision numbers"),
    ("net-mtu", "Network MTU"),
    ("router", "Neutron L3 Router"),
    ("extraroute", "Neutron Extra Route"),
    ("security-group", "security-group"),
    ("extra_dhcp_opt", "Neutron Extra DHCP options"),
    ("stateful-security-group", "Stateful security group"),
    ("security-groups-normalized-cidr", "Normalized CIDR field for security group rules"),
    (
        "security-groups-rules-belongs-to-default-sg",
        "Security group rule belongs to the project's default security group",
    ),
    ("filter-validation", "Filter parameters validation"),
    ("pagination", "Pagination support"),
    ("sorting", "Sorting support"),
    ("ip-substring-filtering", "IP address substring filtering"),
    ("standard-attr-description", "standard-attr-description"),
    ("standard-attr-timestamp", "Resource timestamps"),
    ("standard-attr-tag", "Tag support for resources with standard attribute"),
    ("tag", "Tag support"),
    ("tag-ext", "Tag support for resources: subnet, subnetpool, port, router"),
    ("agent", "agent"),
    ("subnet_allocation", "Subnet Allocation"),
    ("extraroute-atomic", "Atomically add/remove extra routes"),
    ("revision-if-match", "If-Match constraints based on revision_number"),
    ("project-id", "project_id field enabled"),
    ("net-mtu-writable", "Network MTU (writable)"),
    ("fip-port-details", "Floating IP Port Details Extension"),
    ("floatingip-pools", "Floating IP Pools Extension"),
    ("subnetpool-prefix-ops", "Subnet Pool Prefix Operations"),
    ("quotas", "Quota management support"),
    ("quota_details", "Quota details management support"),
    ("quota-check-limit", "Quota engine limit check"),
    ("quota-check-limit-default", "Default quota limit check"),
    ("network-ip-availability", "Network IP Availability"),
    ("port-mac-address-regenerate", "Neutron Port MAC address regenerate"),
    ("tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation"),
    ("address-scope", "Address scope"),
    ("default-subnetpools", "Default Subnetpools"),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode"),
];

fn extension(alias: &str, name: &str) -> Value {
    json!({"alias": alias, "name": name, "description": name, "links": [], "updated": "2026-11-25T00:00:00Z"})
}

async fn extensions() -> Json<Value> {
    Json(json!({"extensions": EXTENSIONS.iter().map(|(a, n)| extension(a, n)).collect::<Vec<_>>()}))
}

async fn show_extension(Path(alias): Path<String>) -> Result<Json<Value>, ApiError> {
    match EXTENSIONS.iter().find(|(a, _)| *a == alias) {
        Some((a, n)) => Ok(Json(json!({"extension": extension(a, n)}))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "HTTPNotFound",
            format!("Extension with alias {alias} does not exist"),
        )),
    }
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

/// How the API knows who asks.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Nobody is asked for anything: every request is the operator's (for loopback).
    #[default]
    Off,
    /// Every request must carry this static token (`X-Auth-Token`); it is the operator's.
    Token(String),
    /// Every request carries a Keystone token, validated at this identity URL (`http://host:5000/v3`);
    /// the token's project and roles decide what it sees and may change (`policy.rs`).
    Keystone(String),
}

/// Serves the API on `listen` until `stop` is set (checked every 100 ms), on a runtime of its own,
/// with `auth` in front.
pub fn serve_until(
    listen: &str,
    db: Arc<dyn Db>,
    settings: Settings,
    auth: Auth,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let keystone = match &auth {
        Auth::Keystone(url) => Some(Arc::new(Keystone::new(url).map_err(std::io::Error::other)?)),
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("api").enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        tracing::info!(listen = %listener.local_addr()?, "Neutron API listening");
        eprintln!("dragonflow: Neutron API on http://{}/v2.0", listener.local_addr()?);
        let stopped = async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let local = listener.local_addr()?;
        if matches!(auth, Auth::Off) && !local.ip().is_loopback() {
            tracing::warn!(%local, "the API listens beyond loopback without authentication (--token, --keystone): anyone reaching it may change the cloud");
        }
        let routes = match (auth, keystone) {
            (Auth::Token(t), _) => with_token(router(db, settings), t),
            (Auth::Keystone(_), Some(k)) => with_keystone(router(db, settings), k),
            _ => router(db, settings),
        };
        axum::serve(listener, routes).with_graceful_shutdown(stopped).await
    })
}

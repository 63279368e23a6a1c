//! The API behind Keystone tokens: who sees and changes what (Neutron's default policy). Keystone here
//! is an in-process stand-in that answers `GET /v3/auth/tokens` as Keystone does for three tokens; the
//! real Keystone is exercised by `tests/tempest/run.sh`, whose per-test projects depend on this.

mod api_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use api_server::{serve_with, Server};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use test_support::{error_type, Neutron};

/// A stand-in Keystone on a loopback port: `admin-t` (admin in project `admin`), `p1-t` and `p2-t`
/// (members of `p1` and `p2`); it counts the validations it answers.
struct FakeKeystone {
    url: String,
    asked: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

fn fake_keystone() -> FakeKeystone {
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let app = axum::Router::new().route(
        "/v3/auth/tokens",
        axum::routing::get(move |h: HeaderMap| {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::Relaxed);
                let header = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let (auth, subject) = (header("x-auth-token"), header("x-subject-token"));
                // Keystone's policy: a token validates itself; anything else here is unknown.
                let (project, role) = match subject.as_str() {
                    _ if auth != subject => return (StatusCode::FORBIDDEN, axum::Json(json!({}))),
                    "admin-t" => ("admin", "admin"),
                    "p1-t" => ("p1", "member"),
                    "p2-t" => ("p2", "member"),
                    _ => return (StatusCode::NOT_FOUND, axum::Json(json!({"error": {"code": 404}}))),
                };
                let token = json!({"token": {"project": {"id": project, "name": project},
                    "roles": [{"id": "r", "name": role}, {"id": "r2", "name": "reader"}],
                    "expires_at": "2999-01-01T00:00:00.000000Z"}});
                (StatusCode::OK, axum::Json(token))
            }
        }),
    );
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/v3", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    FakeKeystone { url, asked, _rt: rt }
}

/// The API behind `keystone`.
fn behind(name: &str, keystone: &str) -> Server {
    let k = Arc::new(control::api::Keystone::new(keystone).unwrap());
    serve_with(name, move |routes| control::api::with_keystone(routes, k))
}

fn ids(v: &Value, many: &str) -> Vec<String> {
    v[many].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_project_sees_and_changes_only_its_own_and_admin_everything() {
    let k = fake_keystone();
    let s = behind("policy-own", &k.url);
    let as_ = |t: &str| Neutron::new(s.addr()).with_token(t);
    let (admin, p1, p2) = (as_("admin-t"), as_("p1-t"), as_("p2-t"));

    assert_eq!(s.call("GET", "/", None).0, 200, "the version document is for anybody");
    let (st, v) = s.get("/v2.0/networks");
    assert_eq!((st, error_type(&v)), (401, "HTTPUnauthorized"), "no token");
    let (st, v) = as_("forged").get("/v2.0/networks");
    assert_eq!((st, error_type(&v)), (401, "HTTPUnauthorized"), "a token Keystone does not know");

    // A project's network is its own: the others do not even find it.
    let n1 = p1.create("network", json!({"name": "n1"}));
    assert_eq!(n1["project_id"], "p1", "a create without a project is the caller's project's");
    assert!(n1.get("provider:network_type").is_none(), "provider attributes are the admin's to see: {n1}");
    let path = format!("/v2.0/networks/{}", n1["id"].as_str().unwrap());
    assert_eq!(ids(&p2.get("/v2.0/networks").1, "networks"), Vec::<String>::new());
    for (st, v) in [p2.get(&path), p2.put(&path, json!({"network": {"name": "mine"}})), p2.delete(&path)] {
        assert_eq!((st, error_type(&v)), (404, "NetworkNotFound"), "{v}");
    }
    assert_eq!(ids(&admin.get("/v2.0/networks").1, "networks"), [n1["id"].as_str().unwrap()]);
    let (st, v) = admin.get(&path);
    assert_eq!((st, v["network"]["provider:network_type"].as_str()), (200, Some("vxlan")), "{v}");

    // Another project in a request is the admin's to name.
    let (st, v) = p1.post("/v2.0/networks", json!({"network": {"name": "x", "project_id": "p2"}}));
    assert_eq!((st, error_type(&v)), (400, "HTTPBadRequest"), "{v}");
    let (st, v) = p1.post("/v2.0/networks", json!({"network": {"name": "x", "tenant_id": "p2"}}));
    assert_eq!(st, 400, "tenant_id is project_id: {v}");
    let for_p2 = admin.create("network", json!({"name": "for-p2", "project_id": "p2"}));
    assert_eq!(ids(&p2.get("/v2.0/networks").1, "networks"), [for_p2["id"].as_str().unwrap()]);

    // Admin-only attributes: 403 for a project.
    for body in [json!({"shared": true}), json!({"router:external": true}), json!({"provider:network_type": "vxlan"})] {
        let (st, v) = p1.post("/v2.0/networks", json!({ "network": body }));
        assert_eq!((st, error_type(&v)), (403, "PolicyNotAuthorized"), "{v}");
    }
    let (st, v) = p1.put(&path, json!({"network": {"shared": true}}));
    assert_eq!((st, error_type(&v)), (403, "PolicyNotAuthorized"), "{v}");
    let (st, _) = p1.put(&path, json!({"network": {"name": "renamed"}}));
    assert_eq!(st, 200, "the owner changes its own");

    // Subnets and ports of a project's network are its own too.
    let sub = p1.create("subnet", json!({"network_id": n1["id"], "cidr": "10.1.0.0/24", "ip_version": 4}));
    assert_eq!(sub["project_id"], "p1");
    let (st, v) =
        p2.post("/v2.0/subnets", json!({"subnet": {"network_id": n1["id"], "cidr": "10.2.0.0/24", "ip_version": 4}}));
    assert_eq!((st, error_type(&v)), (404, "NetworkNotFound"), "a subnet on a network the caller cannot see");
    let (st, v) = p2.post("/v2.0/ports", json!({"port": {"network_id": n1["id"]}}));
    assert_eq!((st, error_type(&v)), (404, "NetworkNotFound"), "a port on a network the caller cannot see");
    let port = p1.create("port", json!({"network_id": n1["id"]}));
    assert!(port.get("binding:vif_type").is_none(), "binding details are the admin's to see: {port}");
    assert_eq!(ids(&p2.get("/v2.0/ports").1, "ports"), Vec::<String>::new());
    assert_eq!(ids(&p2.get("/v2.0/subnets").1, "subnets"), Vec::<String>::new());

    // Security groups: each project its own default group, and nobody else's.
    let (_, v) = p2.get("/v2.0/security-groups");
    let groups = v["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{v}");
    assert_eq!((groups[0]["name"].as_str(), groups[0]["project_id"].as_str()), (Some("default"), Some("p2")));
    let (_, v) = p1.post("/v2.0/security-groups", json!({"security_group": {"name": "web"}}));
    let mine = &v["security_group"];
    let (st, v) = p2.post(
        "/v2.0/security-group-rules",
        json!({"security_group_rule": {"security_group_id": mine["id"], "direction": "ingress"}}),
    );
    assert_eq!((st, error_type(&v)), (404, "SecurityGroupNotFound"), "{v}");
    let (_, rules) = p1.get("/v2.0/security-group-rules");
    let rule = rules["security_group_rules"][0]["id"].as_str().unwrap().to_owned();
    let (st, _) = p2.delete(&format!("/v2.0/security-group-rules/{rule}"));
    assert_eq!(st, 404, "another project's rule");

    // Routers: another project's router takes no interface from it.
    let r1 = p1.create("router", json!({"name": "r1"}));
    let add = format!("/v2.0/routers/{}/add_router_interface", r1["id"].as_str().unwrap());
    let (st, v) = p2.put(&add, json!({"subnet_id": sub["id"]}));
    assert_eq!((st, error_type(&v)), (404, "RouterNotFound"), "{v}");
    let (st, v) = p1.put(&add, json!({"subnet_id": sub["id"]}));
    assert_eq!(st, 200, "{v}");
}

#[test]
fn a_shared_network_is_seen_by_all_and_changed_by_its_owner() {
    let k = fake_keystone();
    let s = behind("policy-shared", &k.url);
    let as_ = |t: &str| Neutron::new(s.addr()).with_token(t);
    let (admin, p2) = (as_("admin-t"), as_("p2-t"));
    let net = admin.create("network", json!({"name": "shared", "shared": true}));
    let sub = admin.create("subnet", json!({"network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}));
    let path = format!("/v2.0/networks/{}", net["id"].as_str().unwrap());

    let (st, v) = p2.get(&path);
    assert_eq!((st, v["network"]["shared"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(ids(&p2.get("/v2.0/subnets").1, "subnets"), [sub["id"].as_str().unwrap()], "its subnets too");
    let (st, v) = p2.put(&path, json!({"network": {"name": "taken"}}));
    assert_eq!((st, error_type(&v)), (403, "PolicyNotAuthorized"), "seen, not changed: {v}");
    let (st, v) = p2.delete(&path);
    assert_eq!((st, error_type(&v)), (403, "PolicyNotAuthorized"), "{v}");
    let (st, v) =
        p2.post("/v2.0/subnets", json!({"subnet": {"network_id": net["id"], "cidr": "10.8.0.0/24", "ip_version": 4}}));
    assert_eq!((st, error_type(&v)), (403, "PolicyNotAuthorized"), "subnets are the network owner's: {v}");

    // A port on it is the caller's; the addresses and MAC are the network owner's to choose.
    let port = p2.create("port", json!({"network_id": net["id"]}));
    assert_eq!(port["project_id"], "p2");
    for body in [
        json!({"network_id": net["id"], "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.9.0.50"}]}),
        json!({"network_id": net["id"], "mac_address": "fa:16:3e:00:00:01"}),
        json!({"network_id": net["id"], "device_owner": "network:dhcp"}),
        json!({"network_id": net["id"], "binding:host_id": "h1"}),
    ] {
        let (st, v) = p2.post("/v2.0/ports", json!({ "port": body }));
        assert_eq!((st, error_type(&v)), (403, "PolicyNotAuthorized"), "{body}: {v}");
    }
    // The network's owner sees the port, and may delete it.
    let (_, v) = admin.get("/v2.0/ports");
    assert!(v["ports"][0].get("binding:vif_type").is_some(), "the admin sees binding details: {v}");
    let (st, v) = p2.put(
        &format!("/v2.0/ports/{}", port["id"].as_str().unwrap()),
        json!({"port": {"mac_address": "fa:16:3e:00:00:02"}}),
    );
    assert_eq!((st, error_type(&v)), (403, "PolicyNotAuthorized"), "a new MAC is the admin's: {v}");
    let (st, _) = admin.delete(&format!("/v2.0/ports/{}", port["id"].as_str().unwrap()));
    assert_eq!(st, 204);
}

#[test]
fn tokens_are_validated_once_and_keystone_down_is_503() {
    let k = fake_keystone();
    let s = behind("policy-cache", &k.url);
    let p1 = Neutron::new(s.addr()).with_token("p1-t");
    for _ in 0..5 {
        assert_eq!(p1.get("/v2.0/networks").0, 200);
    }
    assert_eq!(k.asked.load(Ordering::Relaxed), 1, "a valid token is remembered");
    let forged = Neutron::new(s.addr()).with_token("forged");
    for _ in 0..3 {
        assert_eq!(forged.get("/v2.0/networks").0, 401);
    }
    assert_eq!(k.asked.load(Ordering::Relaxed), 4, "an invalid one is asked about each time");

    // Nothing listens where this Keystone is said to be.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v3", closed.local_addr().unwrap());
    drop(closed);
    let down = behind("policy-down", &url);
    let (st, v) = Neutron::new(down.addr()).with_token("p1-t").get("/v2.0/networks");
    assert_eq!((st, error_type(&v)), (503, "ServiceUnavailable"), "{v}");
}

/// Agents (each node's local controller, from its reports) are the admin's: a project lists none and
/// finds none; the admin sees them alive while they report, describes and disables them, deletes them.
#[test]
fn agents_are_the_admins() {
    use control::db::embedded::EmbeddedDb;
    use control::model::{now_utc, Agent, Store};
    let k = fake_keystone();
    let dir = std::env::temp_dir().join(format!("df-api-agents-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Arc::new(EmbeddedDb::open(&dir).unwrap());
    let report = |id: &str, heartbeat: &str| {
        let a = Agent {
            id: id.into(),
            tunnel_ip: "10.0.0.1".into(),
            tunnel_types: vec![],
            created_at: now_utc(),
            started_at: now_utc(),
            heartbeat_timestamp: heartbeat.into(),
            admin_state_up: true,
            description: String::new(),
            revision_number: 0,
        };
        Store::new(&*db).create(a).unwrap();
    };
    report("node-1", &now_utc());
    report("node-2", "2020-01-01T00:00:00Z");
    let ks = Arc::new(control::api::Keystone::new(&k.url).unwrap());
    let s = api_server::serve_db(db.clone(), dir, control::api::Settings::default(), move |r| {
        control::api::with_keystone(r, ks)
    });
    let as_ = |t: &str| Neutron::new(s.addr()).with_token(t);
    let (admin, p1) = (as_("admin-t"), as_("p1-t"));

    let (st, v) = p1.get("/v2.0/agents");
    assert_eq!((st, v["agents"].clone()), (200, json!([])), "a project lists none");
    assert_eq!(p1.get("/v2.0/agents/node-1").0, 404);
    assert_eq!(p1.put("/v2.0/agents/node-1", json!({"agent": {"description": "mine"}})).0, 404);
    let (_, v) = admin.get("/v2.0/agents?sort_key=host");
    let alive: Vec<(&str, bool)> =
        v["agents"].as_array().unwrap().iter().map(|a| (a["host"].as_str().unwrap(), a["alive"] == true)).collect();
    assert_eq!(alive, [("node-1", true), ("node-2", false)], "{v}");
    let (st, v) =
        admin.put("/v2.0/agents/node-1", json!({"agent": {"description": "rack 3", "admin_state_up": false}}));
    assert_eq!(
        (st, v["agent"]["description"].as_str(), v["agent"]["admin_state_up"].as_bool()),
        (200, Some("rack 3"), Some(false)),
        "{v}"
    );
    let (st, _) = admin.put("/v2.0/agents/node-1", json!({"agent": {"host": "elsewhere"}}));
    assert_eq!(st, 400, "only admin_state_up and description change");
    let (_, v) = admin.get("/v2.0/agents?agent_type=Dragonflow%20local%20controller&alive=false");
    assert_eq!(ids(&v, "agents"), ["node-2"]);
    assert_eq!(admin.post("/v2.0/agents", json!({"agent": {}})).0, 405, "nodes make agents, not the API");
    assert_eq!(admin.delete("/v2.0/agents/node-2").0, 204);
    assert_eq!(ids(&admin.get("/v2.0/agents").1, "agents"), ["node-1"]);
}

/// Quotas: each project's limits (its own or the defaults), set, forced and reset by an admin, read by
/// the project; a create (one or a bulk) past a limit is refused before anything is stored; what a
/// project has is counted as its lists show it (a rule is its group's project's).
#[test]
fn quotas_limit_what_a_project_creates() {
    let k = fake_keystone();
    let s = behind("quotas", &k.url);
    let as_ = |t: &str| Neutron::new(s.addr()).with_token(t);
    let (admin, p1, p2) = (as_("admin-t"), as_("p1-t"), as_("p2-t"));
    let quota = |v: &Value, r: &str| v["quota"][r].clone();

    // Neutron's defaults; a project reads its own, and only its own.
    let (st, v) = p1.get("/v2.0/quotas/p1");
    assert_eq!(
        (st, quota(&v, "network"), quota(&v, "port"), quota(&v, "subnetpool")),
        (200, json!(100), json!(500), json!(-1))
    );
    assert_eq!(p1.get("/v2.0/quotas/p1/default").1, v, "no limits of its own: the defaults");
    assert_eq!(p1.get("/v2.0/quotas/tenant").1, json!({"tenant": {"tenant_id": "p1"}}));
    for (st, v) in [
        p1.get("/v2.0/quotas/p2"),
        p1.get("/v2.0/quotas"),
        p1.put("/v2.0/quotas/p1", json!({"quota": {"network": 1000}})),
        p1.delete("/v2.0/quotas/p1"),
    ] {
        assert_eq!((st, error_type(&v)), (403, "PolicyNotAuthorized"), "{v}");
    }

    // The admin sets limits (Neutron converts strings to integers) and lists the projects that have some.
    let (st, v) = admin.put("/v2.0/quotas/p1", json!({"quota": {"network": "2", "router": 0}}));
    assert_eq!(
        (st, quota(&v, "network"), quota(&v, "router"), quota(&v, "port")),
        (200, json!(2), json!(0), json!(500)),
        "{v}"
    );
    let (_, v) = admin.get("/v2.0/quotas");
    let listed: Vec<(&str, &str, i64)> = v["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["project_id"].as_str().unwrap(), q["tenant_id"].as_str().unwrap(), q["network"].as_i64().unwrap()))
        .collect();
    assert_eq!(listed, [("p1", "p1", 2)], "{v}");
    for bad in
        [json!({"networks": 1}), json!({"network": -2}), json!({"network": "many"}), json!({"network": 1u64 << 31})]
    {
        let (st, v) = admin.put("/v2.0/quotas/p1", json!({ "quota": bad }));
        assert_eq!(st, 400, "{bad}: {v}");
    }

    // Enforced: a bulk past the limit stores nothing; one more is refused; another project is not limited.
    let net = p1.create("network", json!({"name": "a"}));
    let (st, v) = p1.post("/v2.0/networks", json!({"networks": [{"name": "b"}, {"name": "c"}]}));
    assert_eq!((st, error_type(&v)), (409, "OverQuota"), "{v}");
    assert_eq!(p1.get("/v2.0/networks").1["networks"].as_array().unwrap().len(), 1, "nothing of the bulk stored");
    p1.create("network", json!({"name": "b"}));
    let (st, v) = p1.post("/v2.0/networks", json!({"network": {"name": "c"}}));
    assert_eq!((st, error_type(&v)), (409, "OverQuota"), "{v}");
    let (st, v) = admin.post("/v2.0/networks", json!({"network": {"name": "c", "project_id": "p1"}}));
    assert_eq!((st, error_type(&v)), (409, "OverQuota"), "the admin creating for p1 counts against p1: {v}");
    let (st, v) = p1.post("/v2.0/routers", json!({"router": {"name": "r"}}));
    assert_eq!((st, error_type(&v)), (409, "OverQuota"), "a limit of 0: {v}");
    p2.create("network", json!({"name": "p2's"}));

    // Details: limit, use and reservations.
    let (_, v) = p1.get("/v2.0/quotas/p1/details");
    assert_eq!(quota(&v, "network"), json!({"limit": 2, "used": 2, "reserved": 0}), "{v}");
    assert_eq!(quota(&v, "router"), json!({"limit": 0, "used": 0, "reserved": 0}), "{v}");

    // Rules count against their group's project, however made.
    let (_, v) = p1.get("/v2.0/security-groups");
    let group = v["security_groups"][0]["id"].clone();
    let rules = p1.get("/v2.0/quotas/p1/details").1["quota"]["security_group_rule"]["used"].as_i64().unwrap();
    assert!(rules >= 4, "the default group's rules count: {rules}");
    admin.put("/v2.0/quotas/p1", json!({"quota": {"security_group_rule": rules + 1}}));
    let rule = |port: u16| json!({"security_group_rule": {"security_group_id": group, "direction": "ingress", "protocol": "tcp", "port_range_min": port, "port_range_max": port}});
    assert_eq!(admin.post("/v2.0/security-group-rules", rule(22)).0, 201);
    let (st, v) = admin.post("/v2.0/security-group-rules", rule(80));
    assert_eq!((st, error_type(&v)), (409, "OverQuota"), "the admin's rule in p1's group counts against p1: {v}");
    let (st, v) = p2.post("/v2.0/security-group-rules", rule(80));
    assert_eq!((st, error_type(&v)), (404, "SecurityGroupNotFound"), "not found before over quota: {v}");
    // A new group's two egress rules count: refused whole when they do not fit.
    admin.put("/v2.0/quotas/p1", json!({"quota": {"security_group_rule": rules + 2}}));
    let (st, v) = p1.post("/v2.0/security-groups", json!({"security_group": {"name": "web"}}));
    assert_eq!((st, error_type(&v)), (409, "OverQuota"), "{v}");
    assert_eq!(p1.get("/v2.0/security-groups").1["security_groups"].as_array().unwrap().len(), 1, "no group made");
    admin.put("/v2.0/quotas/p1", json!({"quota": {"security_group_rule": rules + 3}}));
    let (st, v) = p1.post("/v2.0/security-groups", json!({"security_group": {"name": "web"}}));
    assert_eq!(st, 201, "{v}");

    // A limit below the use is refused unless forced; forced, the next create is refused.
    let (st, v) = admin.put("/v2.0/quotas/p1", json!({"quota": {"network": 1}}));
    assert_eq!((st, error_type(&v)), (400, "InvalidQuotaValue"), "{v}");
    let (st, v) = admin.put("/v2.0/quotas/p1", json!({"quota": {"network": 1, "check_limit": false}}));
    assert_eq!((st, quota(&v, "network")), (200, json!(1)), "{v}");
    let (st, v) = admin.put("/v2.0/quotas/p1", json!({"quota": {"network": 0, "force": true}}));
    assert_eq!((st, quota(&v, "network")), (200, json!(0)), "{v}");
    let (st, _) = admin.put("/v2.0/quotas/p1", json!({"quota": {"network": 0, "force": true, "check_limit": true}}));
    assert_eq!(st, 400, "check_limit asked for wins over force");
    p1.delete(&format!("/v2.0/networks/{}", net["id"].as_str().unwrap()));

    // Reset: the defaults again, and not listed.
    assert_eq!(admin.delete("/v2.0/quotas/p1").0, 204);
    let (st, v) = admin.delete("/v2.0/quotas/p1");
    assert_eq!((st, error_type(&v)), (404, "TenantQuotaNotFound"), "{v}");
    assert_eq!(admin.get("/v2.0/quotas").1, json!({"quotas": []}));
    assert_eq!(quota(&p1.get("/v2.0/quotas/p1").1, "network"), json!(100));
    p1.create("router", json!({"name": "r"}));
}

/// Network IP availability is the admin's: a project lists none and finds none.
#[test]
fn ip_availability_is_the_admins() {
    let k = fake_keystone();
    let s = behind("ip-availability", &k.url);
    let as_ = |t: &str| Neutron::new(s.addr()).with_token(t);
    let (admin, p1) = (as_("admin-t"), as_("p1-t"));
    let net = p1.create("network", json!({"name": "mine"}));
    let path = format!("/v2.0/network-ip-availabilities/{}", net["id"].as_str().unwrap());
    assert_eq!(p1.get("/v2.0/network-ip-availabilities").1, json!({"network_ip_availabilities": []}));
    assert_eq!(p1.get(&path).0, 404);
    let (_, v) = admin.get("/v2.0/network-ip-availabilities");
    assert_eq!(v["network_ip_availabilities"][0]["project_id"], "p1", "{v}");
    assert_eq!(admin.get(&path).0, 200);
}

/// Address scopes: a project's own or a shared one (only an admin shares, never unshares); a subnet pool
/// joins a scope it may (its own, its IP version) with prefixes apart from the scope's other pools'; a
/// scope with pools stays; networks show their pools' scopes.
#[test]
fn address_scopes_hold_pools_with_prefixes_apart() {
    let k = fake_keystone();
    let s = behind("address-scopes", &k.url);
    let as_ = |t: &str| Neutron::new(s.addr()).with_token(t);
    let (admin, p1, p2) = (as_("admin-t"), as_("p1-t"), as_("p2-t"));
    let scope = |c: &Neutron, body: Value| c.post("/v2.0/address-scopes", json!({ "address_scope": body }));

    let (st, v) = scope(&p1, json!({"name": "s4", "ip_version": "4"}));
    assert_eq!(
        (st, v["address_scope"]["ip_version"].clone(), v["address_scope"]["shared"].clone()),
        (201, json!(4), json!(false)),
        "{v}"
    );
    let s4 = v["address_scope"]["id"].as_str().unwrap().to_owned();
    for bad in [json!({"name": "x"}), json!({"ip_version": 5}), json!({"ip_version": "v4"})] {
        assert_eq!(scope(&p1, bad.clone()).0, 400, "{bad}");
    }
    assert_eq!(scope(&p1, json!({"ip_version": 4, "shared": true})).0, 403, "sharing is the admin's");
    assert_eq!(p2.get(&format!("/v2.0/address-scopes/{s4}")).0, 404, "another project's");
    let (_, v) = scope(&admin, json!({"name": "shared6", "ip_version": 6, "shared": true}));
    let shared6 = v["address_scope"]["id"].as_str().unwrap().to_owned();
    assert_eq!(p2.get(&format!("/v2.0/address-scopes/{shared6}")).0, 200, "a shared one is seen by all");
    let (st, v) = admin.put(&format!("/v2.0/address-scopes/{shared6}"), json!({"address_scope": {"shared": false}}));
    assert_eq!((st, error_type(&v)), (400, "AddressScopeUpdateError"), "{v}");

    // Pools join scopes.
    let pool = |c: &Neutron, prefixes: Value, scope: Value| {
        c.post(
            "/v2.0/subnetpools",
            json!({"subnetpool": {"name": "sp", "prefixes": prefixes, "address_scope_id": scope}}),
        )
    };
    let (st, v) = pool(&p1, json!(["20.0.0.0/18", "30.0.0.0/18"]), json!(s4));
    assert_eq!((st, v["subnetpool"]["address_scope_id"].clone()), (201, json!(s4)), "{v}");
    let sp1 = v["subnetpool"]["id"].as_str().unwrap().to_owned();
    let (st, v) = pool(&p1, json!(["40.0.0.0/18", "30.0.0.0/12"]), json!(s4));
    assert_eq!((st, error_type(&v)), (409, "AddressScopePrefixConflict"), "{v}");
    let (st, v) = pool(&p1, json!(["10.0.0.0/8"]), json!("not-a-uuid"));
    assert_eq!(st, 400, "{v}");
    let (st, v) = pool(&p1, json!(["10.0.0.0/8"]), json!("5f1f1bd9-1b44-4a8c-9d3d-0c1a5f3b6d11"));
    assert_eq!((st, error_type(&v)), (404, "AddressScopeNotFound"), "{v}");
    let (st, v) = pool(&p2, json!(["10.0.0.0/8"]), json!(s4));
    assert_eq!(st, 404, "another project's scope: {v}");
    let (st, v) = pool(&p2, json!(["2001:db8::/48"]), json!(shared6));
    assert_eq!((st, error_type(&v)), (400, "IllegalSubnetPoolAssociationToAddressScope"), "shared, not its own: {v}");
    let (st, v) = pool(&p1, json!(["10.0.0.0/8"]), json!(shared6));
    assert_eq!(st, 400, "the wrong IP version (and not its own): {v}");

    // In one bulk, the second pool sees the first in the scope.
    let (st, v) = p1.post(
        "/v2.0/subnetpools",
        json!({"subnetpools": [{"name": "b1", "prefixes": ["60.0.0.0/16"], "address_scope_id": s4},
                               {"name": "b2", "prefixes": ["60.0.1.0/24"], "address_scope_id": s4}]}),
    );
    assert_eq!((st, error_type(&v)), (409, "AddressScopePrefixConflict"), "{v}");
    assert_eq!(p1.get("/v2.0/subnetpools?name=b1").1["subnetpools"], json!([]), "the bulk undone");

    // Updates: join, prefixes that collide, leave.
    let (_, v) = pool(&p1, json!(["20.0.10.0/24"]), Value::Null);
    let sp2 = v["subnetpool"]["id"].as_str().unwrap().to_owned();
    let sp2_path = format!("/v2.0/subnetpools/{sp2}");
    let (st, v) = p1.put(&sp2_path, json!({"subnetpool": {"address_scope_id": s4}}));
    assert_eq!((st, error_type(&v)), (409, "AddressScopePrefixConflict"), "20.0.10.0/24 is in sp1's 20.0.0.0/18: {v}");
    let (st, v) = p1.put(&sp2_path, json!({"subnetpool": {"prefixes": ["20.128.0.0/24"]}}));
    assert_eq!(st, 400, "prefixes only grow: {v}");
    let (_, v) = pool(&p1, json!(["50.0.0.0/24"]), json!(s4));
    let sp3 = v["subnetpool"]["id"].as_str().unwrap().to_owned();
    let (st, v) = p1
        .put(&format!("/v2.0/subnetpools/{sp3}"), json!({"subnetpool": {"prefixes": ["50.0.0.0/24", "30.0.0.0/12"]}}));
    assert_eq!((st, error_type(&v)), (409, "AddressScopePrefixConflict"), "{v}");
    let (st, v) = p1.put(&format!("/v2.0/subnetpools/{sp3}/add_prefixes"), json!({"prefixes": ["20.0.0.0/12"]}));
    assert_eq!((st, error_type(&v)), (409, "AddressScopePrefixConflict"), "add_prefixes too: {v}");
    let (st, v) = p1.put(&format!("/v2.0/subnetpools/{sp3}"), json!({"subnetpool": {"address_scope_id": null}}));
    assert_eq!((st, v["subnetpool"]["address_scope_id"].clone()), (200, Value::Null), "{v}");

    // Networks show their pools' scope; a scope with pools stays.
    let net = p1.create("network", json!({"name": "scoped"}));
    let (st, v) = p1.post(
        "/v2.0/subnets",
        json!({"subnet": {"network_id": net["id"], "subnetpool_id": sp1, "prefixlen": 24, "ip_version": 4}}),
    );
    assert_eq!(st, 201, "{v}");
    let shown = p1.show("network", net["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        (shown["ipv4_address_scope"].clone(), shown["ipv6_address_scope"].clone()),
        (json!(s4), Value::Null),
        "{shown}"
    );
    let (st, v) = p1.delete(&format!("/v2.0/address-scopes/{s4}"));
    assert_eq!((st, error_type(&v)), (409, "AddressScopeInUse"), "{v}");
    let (st, v) = p1.put(&format!("/v2.0/address-scopes/{s4}"), json!({"address_scope": {"name": "renamed"}}));
    assert_eq!((st, v["address_scope"]["name"].clone()), (200, json!("renamed")), "{v}");
}

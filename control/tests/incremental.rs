//! The incremental controller against the reference: random batches of changes (networks, subnets, ports
//! bound here, elsewhere or nowhere, router interfaces, routers with routes; deletes of things still
//! referenced, ports moving between hosts and networks) are applied; after every batch, the patched
//! tables must equal a full compilation of the same model with the same keys.

use control::compile::{compile, Model};
use control::controller::Controller;
use control::db::embedded::EmbeddedDb;
use control::db::{Entry, Event};
use pipelines::tables::Tables;
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    Network { n: u8, up: bool, security: bool },
    DelNetwork(u8),
    Subnet { s: u8, n: u8, wide: bool },
    DelSubnet(u8),
    Port { p: u8, n: u8, s: u8, host: u8, router: Option<u8>, up: bool, pair: bool },
    DelPort(u8),
    Router { r: u8, route: bool },
    DelRouter(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4u8, any::<bool>(), any::<bool>()).prop_map(|(n, up, security)| Op::Network { n, up, security }),
        (0..4u8).prop_map(Op::DelNetwork),
        (0..6u8, 0..4u8, any::<bool>()).prop_map(|(s, n, wide)| Op::Subnet { s, n, wide }),
        (0..6u8).prop_map(Op::DelSubnet),
        (0..12u8, 0..4u8, 0..6u8, 0..3u8, prop::option::weighted(0.3, 0..3u8), any::<bool>(), any::<bool>())
            .prop_map(|(p, n, s, host, router, up, pair)| Op::Port { p, n, s, host, router, up, pair }),
        (0..12u8).prop_map(Op::DelPort),
        (0..3u8, any::<bool>()).prop_map(|(r, route)| Op::Router { r, route }),
        (0..3u8).prop_map(Op::DelRouter),
    ]
}

fn event(rev: &mut u64, op: &Op) -> Event {
    *rev += 1;
    let put = |table: &str, key: String, v: serde_json::Value| {
        Event::Put(Entry { table: table.into(), key, value: v.to_string().into_bytes(), revision: *rev, created: *rev })
    };
    let del = |table: &str, key: String| Event::Delete { table: table.into(), key, revision: *rev };
    match *op {
        Op::Network { n, up, security } => put(
            "network",
            format!("n{n}"),
            json!({"id": format!("n{n}"), "admin_state_up": up, "port_security_enabled": security}),
        ),
        Op::DelNetwork(n) => del("network", format!("n{n}")),
        Op::Subnet { s, n, wide } => put(
            "subnet",
            format!("s{s}"),
            json!({"id": format!("s{s}"), "network_id": format!("n{n}"), "ip_version": 4,
                   "cidr": if wide { format!("10.{n}.0.0/16") } else { format!("10.{n}.0.0/24") }}),
        ),
        Op::DelSubnet(s) => del("subnet", format!("s{s}")),
        Op::Port { p, n, s, host, router, up, pair } => {
            let host = ["here", "other", ""][host as usize];
            // Unique MAC and address per port, as the API guarantees.
            let (owner, device, ip, host) = match router {
                Some(r) => ("network:router_interface", format!("r{r}"), format!("10.{n}.0.{}", 200 + p), ""),
                None => ("compute:nova", String::new(), format!("10.{n}.0.{}", 2 + p), host),
            };
            let pairs = if pair { json!([{"ip_address": format!("10.{n}.1.{p}")}]) } else { json!([]) };
            put(
                "port",
                format!("p{p}"),
                json!({"id": format!("p{p}"), "network_id": format!("n{n}"), "mac_address": format!("fa:16:3e:00:00:{p:02x}"),
                       "fixed_ips": [{"subnet_id": format!("s{s}"), "ip_address": ip}], "device_owner": owner,
                       "device_id": device, "binding:host_id": host, "admin_state_up": up,
                       "allowed_address_pairs": pairs}),
            )
        }
        Op::DelPort(p) => del("port", format!("p{p}")),
        Op::Router { r, route } => {
            let routes =
                if route { json!([{"destination": "192.168.0.0/16", "nexthop": "10.1.0.9"}]) } else { json!([]) };
            put("router", format!("r{r}"), json!({"id": format!("r{r}"), "routes": routes}))
        }
        Op::DelRouter(r) => del("router", format!("r{r}")),
    }
}

/// The dataplane index of a port plumbed here: its number (stable, as the node's slots are).
fn local(p: &control::model::Port) -> Option<u16> {
    p.id[1..].parse().ok()
}

/// The tables as a comparable value: maps compare by content; flood lists sorted; no trailing free slot.
fn canonical(t: &Tables) -> String {
    let mut ports = t.ports.clone();
    while ports.last().is_some_and(Option::is_none) {
        ports.pop();
    }
    let sorted = |m: &dyn Fn() -> Vec<String>| {
        let mut v = m();
        v.sort();
        v
    };
    let nets = sorted(&|| {
        t.networks
            .iter()
            .map(|(k, n)| {
                let mut l = n.local_ports.clone();
                l.sort();
                format!("{k}:{l:?}")
            })
            .collect()
    });
    format!(
        "ports {ports:?}\nnets {nets:?}\nl2 {:?}\narp {:?}\nnd {:?}\nrouter_macs {:?}\nroutes {:?}\nremote {:?}",
        sorted(&|| t.l2.iter().map(|x| format!("{x:?}")).collect()),
        sorted(&|| t.arp.iter().map(|x| format!("{x:?}")).collect()),
        sorted(&|| t.nd.iter().map(|x| format!("{x:?}")).collect()),
        sorted(&|| t.router_macs.iter().map(|x| format!("{x:?}")).collect()),
        sorted(&|| t.routers.iter().map(|x| format!("{x:?}")).collect()),
        sorted(&|| t.remote.iter().map(|x| format!("{x:?}")).collect()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn incremental_tables_equal_a_full_compilation(batches in prop::collection::vec(prop::collection::vec(op(), 1..6), 1..16)) {
        let dir = std::env::temp_dir().join(format!("df-incr-{}-{:?}", std::process::id(), std::thread::current().id()));
        let db = EmbeddedDb::open(&dir).unwrap();
        let mut c = Controller::new(&db, "here");
        c.reset(Model::default());
        let mut current = c.tables(&local).map(|x| x.0).unwrap_or_default();
        let mut rev = 0;
        for batch in &batches {
            for op in batch {
                c.apply(&event(&mut rev, op));
            }
            if let Some((t, _)) = c.tables(&local) {
                current = t;
            }
            let model = c.model().clone();
            let (reference, _) = compile(&model, "here", c.keys_mut(), &local);
            prop_assert_eq!(canonical(&current), canonical(&reference), "after {:?}", batch);
        }
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The incremental, selective controller against the reference: random batches of changes (networks,
//! subnets, ports bound here, elsewhere or nowhere, router interfaces, routers with routes; deletes of
//! things still referenced, ports moving between hosts and networks) are written to a real (embedded) DB
//! and the controller applies what its watch delivers. After every batch, the patched tables must equal
//! a full compilation of the whole DB with the same keys, and the controller must hold nothing of a
//! network it does not need.

use control::compile::{compile, networks_needed, Model};
use control::controller::Controller;
use control::db::embedded::EmbeddedDb;
use control::db::{Db, DbError};
use control::model::{Network, Object, Port, Router, Store, Subnet};
use pipelines::tables::Tables;
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    Network {
        n: u8,
        up: bool,
        security: bool,
    },
    DelNetwork(u8),
    /// Subnet `s` is on network `s % 4`: a subnet never changes network, as in Neutron.
    Subnet {
        s: u8,
        wide: bool,
    },
    DelSubnet(u8),
    Port {
        p: u8,
        n: u8,
        s: u8,
        host: u8,
        router: Option<u8>,
        up: bool,
        pair: bool,
    },
    DelPort(u8),
    Router {
        r: u8,
        route: bool,
    },
    DelRouter(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4u8, any::<bool>(), any::<bool>()).prop_map(|(n, up, security)| Op::Network { n, up, security }),
        (0..4u8).prop_map(Op::DelNetwork),
        (0..8u8, any::<bool>()).prop_map(|(s, wide)| Op::Subnet { s, wide }),
        (0..8u8).prop_map(Op::DelSubnet),
        (0..12u8, 0..4u8, 0..2u8, 0..3u8, prop::option::weighted(0.3, 0..3u8), any::<bool>(), any::<bool>())
            .prop_map(|(p, n, s, host, router, up, pair)| Op::Port { p, n, s, host, router, up, pair }),
        (0..12u8).prop_map(Op::DelPort),
        (0..3u8, any::<bool>()).prop_map(|(r, route)| Op::Router { r, route }),
        (0..3u8).prop_map(Op::DelRouter),
    ]
}

/// Writes `op` into the DB (create or compare-and-swap update; deleting what is not there is a no-op).
fn write(db: &EmbeddedDb, op: &Op) {
    let put = |table: &str, key: String, v: serde_json::Value| {
        let bytes = v.to_string().into_bytes();
        match db.get(table, &key).unwrap() {
            Some(e) => db.update(table, &key, &bytes, e.revision).map(drop),
            None => db.create(table, &key, &bytes).map(drop),
        }
        .unwrap()
    };
    let del = |table: &str, key: String| match db.delete(table, &key, None) {
        Ok(_) | Err(DbError::NotFound) => {}
        Err(e) => panic!("delete {table}/{key}: {e}"),
    };
    match *op {
        Op::Network { n, up, security } => put(
            "network",
            format!("n{n}"),
            json!({"id": format!("n{n}"), "admin_state_up": up, "port_security_enabled": security}),
        ),
        Op::DelNetwork(n) => del("network", format!("n{n}")),
        Op::Subnet { s, wide } => put(
            "subnet",
            format!("s{s}"),
            json!({"id": format!("s{s}"), "network_id": format!("n{}", s % 4), "ip_version": 4,
                   "cidr": if wide { format!("10.{}.0.0/16", s % 4) } else { format!("10.{}.0.0/24", s % 4) }}),
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
                       "fixed_ips": [{"subnet_id": format!("s{}", n + 4 * s), "ip_address": ip}], "device_owner": owner,
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

/// The whole DB as a model: what a node that held everything would compile.
fn everything(db: &EmbeddedDb) -> Model {
    fn all<T: Object>(db: &EmbeddedDb) -> std::collections::HashMap<String, T> {
        Store::new(db).list::<T>().unwrap().0.into_iter().map(|o| (o.id().to_owned(), o)).collect()
    }
    Model {
        networks: all::<Network>(db),
        subnets: all::<Subnet>(db),
        ports: all::<Port>(db),
        routers: all::<Router>(db),
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
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn incremental_tables_equal_a_full_compilation(batches in prop::collection::vec(prop::collection::vec(op(), 1..6), 1..16)) {
        static CASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("df-incr-{}-{case}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = EmbeddedDb::open(&dir).unwrap();
        let watch = db.watch(None, 0).unwrap();
        let mut c = Controller::new(&db, "here");
        c.sync().unwrap();
        let mut current = c.tables(&local).map(|x| x.0).unwrap_or_default();
        for batch in &batches {
            for op in batch {
                write(&db, op);
            }
            while let Ok(ev) = watch.events.try_recv() {
                c.apply(&ev);
            }
            if let Some((t, _)) = c.tables(&local) {
                current = t;
            }
            let full = everything(&db);
            let (reference, _) = compile(&full, "here", c.keys_mut(), &local);
            prop_assert_eq!(canonical(&current), canonical(&reference), "after {:?}", batch);
            // Selective: nothing held of a network the node does not need.
            let needed = networks_needed(&full, "here");
            let held = c.model();
            prop_assert!(held.networks.keys().all(|n| needed.contains(n)), "networks {:?} / {:?}", held.networks.keys(), needed);
            prop_assert!(held.subnets.values().all(|s| needed.contains(&s.network_id)));
            prop_assert!(held.ports.values().all(|p| p.host_id == "here" || p.device_owner == "network:router_interface" || needed.contains(&p.network_id)));
        }
        drop(watch);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

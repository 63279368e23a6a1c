//! The local controller following a real DB (embedded): each change that concerns the node is compiled
//! and published, changes elsewhere publish nothing, bad contents are skipped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control::compile::Summary;
use control::controller::{Binding, Controller, Node};
use control::db::embedded::EmbeddedDb;
use control::db::Db;
use control::model::{FixedIp, Network, Port, Store, Subnet};

fn network(id: &str) -> Network {
    serde_json::from_value(serde_json::json!({"id": id})).unwrap()
}

fn vm(id: &str, net: &str, host: &str, mac: &str, ip: &str) -> Port {
    let mut p = Port::new(id.into(), net.into());
    p.mac_address = mac.into();
    p.fixed_ips = vec![FixedIp { subnet_id: format!("{net}-s"), ip_address: ip.into() }];
    p.host_id = host.into();
    p
}

type Published = (Summary, Option<(bool, u32)>, Instant);

/// A node whose one plumbed port is vm1 (index 0); it records what it is told.
struct TestNode {
    published: crossbeam_channel::Sender<Published>,
    bound: crossbeam_channel::Sender<(Vec<String>, bool)>,
}

impl Node for TestNode {
    fn bind(&mut self, changes: &[Binding<'_>], resync: bool) {
        let names = changes
            .iter()
            .map(|c| match c {
                Binding::Bound(p) => format!("+{}", p.id),
                Binding::Unbound(id) => format!("-{id}"),
            })
            .collect();
        let _ = self.bound.send((names, resync));
    }

    fn local(&self, p: &Port) -> Option<u16> {
        (p.id == "vm1").then_some(0)
    }

    fn publish(&mut self, t: pipelines::tables::Tables, s: Summary) {
        let _ = self.published.send((s, t.port(0).map(|e| (e.up, e.lport)), Instant::now()));
    }
}

#[test]
fn the_controller_publishes_what_concerns_its_node_and_only_that() {
    let dir = std::env::temp_dir().join(format!("df-ctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Arc::new(EmbeddedDb::open(&dir).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = crossbeam_channel::unbounded::<Published>();
    let (btx, brx) = crossbeam_channel::unbounded();
    let thread = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut c = Controller::new(&*db, "here");
            c.run(&mut TestNode { published: tx, bound: btx }, &stop).unwrap();
        })
    };
    let binding = || brx.recv_timeout(Duration::from_secs(5)).expect("a bind call");
    assert_eq!(binding(), (vec![], true), "the first sync binds nothing");
    let next = || rx.recv_timeout(Duration::from_secs(5)).expect("a publication");
    assert_eq!(next().0, Summary::default(), "the empty start");

    let s = Store::new(&*db);
    s.create(network("net1")).unwrap();
    let sub: Subnet = serde_json::from_value(
        serde_json::json!({"id": "net1-s", "network_id": "net1", "ip_version": 4, "cidr": "10.0.0.0/24"}),
    )
    .unwrap();
    s.create(sub).unwrap();
    // Nothing bound here yet: the network is not this node's, nothing to publish.
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    let t0 = Instant::now();
    s.create(vm("vm1", "net1", "here", "fa:16:3e:00:00:01", "10.0.0.5")).unwrap();
    assert_eq!(binding(), (vec!["+vm1".to_owned()], false), "the node is told to plumb vm1");
    let (sum, port0, at) = next();
    assert_eq!((sum.networks, sum.local_ports, port0.map(|p| p.0)), (1, 1, Some(true)));
    eprintln!("port create to publication: {:?}", at - t0);
    // A port bound elsewhere in this network: published (it is a remote port here).
    s.create(vm("vm2", "net1", "other", "fa:16:3e:00:00:02", "10.0.0.6")).unwrap();
    assert_eq!(next().0.remote_ports, 1);
    // Another network, nothing of it here: nothing published.
    s.create(network("net9")).unwrap();
    s.create(vm("vm9", "net9", "other", "fa:16:3e:00:00:09", "10.9.0.9")).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "a change elsewhere published tables here");
    // Bad contents in the DB: skipped, the controller goes on.
    db.create("port", "garbage", b"{not json").unwrap();
    let mut p: Port = s.get("vm1").unwrap().unwrap();
    p.admin_state_up = false;
    s.update(p).unwrap();
    assert_eq!(binding().0, vec!["+vm1".to_owned()], "admin state is the node's business too");
    let (_, port0, _) = next();
    assert_eq!(port0.map(|p| p.0), Some(false), "the port is down in the new tables");
    // So is its binding profile (it may want another device); the tables do not change: nothing published.
    let mut p: Port = s.get("vm1").unwrap().unwrap();
    p.profile.insert("pci_slot".into(), "0000:00:05.0".into());
    s.update(p).unwrap();
    assert_eq!(binding().0, vec!["+vm1".to_owned()], "a new binding profile is the node's business");
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "unchanged tables were published");
    // The node's own write-back (status, vif type) is not echoed to it, and changes no table.
    let mut p: Port = s.get("vm1").unwrap().unwrap();
    (p.status, p.vif_type) = ("DOWN".into(), "tap".into());
    s.update(p).unwrap();
    assert!(brx.recv_timeout(Duration::from_millis(300)).is_err(), "a status write was sent back to the node");
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "a status write recompiled the tables");
    s.delete::<Port>("vm1", None).unwrap();
    assert_eq!(binding().0, vec!["-vm1".to_owned()]);
    let (sum, port0, _) = next();
    assert_eq!((sum.local_ports, port0), (0, None));
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    // A controller starting now lists the bad entry too: skipped, not fatal.
    let mut c = Controller::new(&*db, "other");
    c.sync().unwrap();
    assert_eq!(c.model().ports.len(), 2, "vm2 and vm9, not the garbage");
    let _ = std::fs::remove_dir_all(&dir);
}

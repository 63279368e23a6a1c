//! How long one route change takes to reach the workers, with 1,000 to 1,000,000 routes in the router:
//! the local controller's path from the router's new route list in hand (the last tables cloned, the
//! router taken out and put back with the new list, `TablesBuilder::router` editing it by difference,
//! the result published with one atomic swap), timed per change over 200 changes, each removing one
//! route and adding another. Also the table's memory (trie chunks and bytes) and the time to build it
//! from nothing. The routes are the route-count scenarios' (`benches::routes`: mixed lengths from /24 to
//! /32, so that the trie has chunks at every level).
//!
//!   publish_routes [ROUTES...]     (default 1000 100000 1000000)

use std::time::Instant;

use pipelines::publish::Publisher;
use pipelines::routing::RouterIface;
use pipelines::tables::TablesBuilder;
use pipelines::wire::{IpNet, Ipv4Addr, Mac};

fn route(i: usize) -> (IpNet, IpNet) {
    (benches::routes::prefix(i, false), IpNet::host_v4(Ipv4Addr::new(10, 2, 0, 2)))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let counts: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() { vec![1000, 100_000, 1_000_000] } else { counts };
    let ifaces = [
        RouterIface {
            network: 1,
            mac: Mac([0xfa, 0x16, 0x3e, 0, 0, 0xfe]),
            ip: IpNet::V4(Ipv4Addr::new(10, 0, 0, 254), 24),
        },
        RouterIface {
            network: 2,
            mac: Mac([0xfa, 0x16, 0x3e, 0, 0, 0xfd]),
            ip: IpNet::V4(Ipv4Addr::new(10, 2, 0, 254), 24),
        },
    ];
    println!("| routes | build from nothing | trie chunks | trie MB | change published: p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|");
    for n in counts {
        let mut routes: Vec<(IpNet, IpNet)> = (0..n).map(route).collect();
        let start = Instant::now();
        let mut b = TablesBuilder::new();
        b.router(1, &ifaces, routes.as_slice());
        let t = b.build();
        let built = start.elapsed().as_secs_f64();
        let chunks = t.routers[&1].trie_chunks().0;
        let mb = t.routers[&1].trie_bytes().0 as f64 / 1e6;
        let mut publisher = Publisher::new(t, 1);
        let mut times = Vec::new();
        for k in 0..200 {
            // One route in, one out: the list the DB now holds for the router.
            routes.swap_remove(k % routes.len());
            routes.push(route(n + k));
            // The list as the controller's router fragment holds it (built from the DB's router object,
            // outside the timed part: parsing a Neutron router of a million routes is the API's cost).
            let list: std::sync::Arc<[(IpNet, IpNet)]> = routes.as_slice().into();
            let start = Instant::now();
            let mut b = TablesBuilder::from_tables(publisher.current().clone());
            b.remove_router(1);
            b.router(1, &ifaces, list);
            publisher.publish(b.build());
            times.push(start.elapsed().as_secs_f64() * 1e6);
            publisher.reclaim();
            let r = &publisher.current().routers[&1];
            let IpNet::V4(added, _) = route(n + k).0 else { unreachable!() };
            assert!(r.route_v4(added).is_some(), "the route added is published");
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {n} | {:.0} ms | {chunks} | {mb:.1} | {:.0} µs | {:.0} µs | {:.0} µs |",
            built * 1e3,
            pct(&times, 0.5),
            pct(&times, 0.99),
            times[times.len() - 1]
        );
    }
}

//! The route lookup alone, by route count: nanoseconds per lookup, one at a time and in batches of 32,
//! over a router holding the route-count scenarios' routes (`benches::routes`) and destinations spread
//! over them at random, IPv4 and IPv6. What the switch's own time per packet at N routes owes to the trie
//! itself, apart from the rest of the pipeline and the packets' own cache misses.
//!
//!   lpm_lookup [ROUTES...]     (default 1 1000 100000 1000000)

use std::hint::black_box;
use std::time::Instant;

use benches::routes::{host, prefix, Rng};
use pipelines::routing::{Router, RouterIface};
use pipelines::wire::{IpNet, Ipv4Addr, Ipv6Addr, Mac};

const LOOKUPS: usize = 1 << 22;

fn router(n: usize, v6: bool) -> Router {
    let mut r = Router::default();
    r.add_iface(RouterIface {
        network: 1,
        mac: Mac([2, 0, 0, 0, 0, 1]),
        ip: IpNet::V4(Ipv4Addr::new(10, 0, 0, 254), 24),
    });
    r.add_iface(RouterIface {
        network: 2,
        mac: Mac([2, 0, 0, 0, 0, 2]),
        ip: IpNet::V4(Ipv4Addr::new(10, 2, 0, 254), 24),
    });
    let mut six = [0u8; 16];
    six[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    six[5] = 2;
    six[15] = 0xfe;
    r.add_iface(RouterIface { network: 2, mac: Mac([2, 0, 0, 0, 0, 2]), ip: IpNet::V6(Ipv6Addr(six), 64) });
    six[15] = 2;
    let via = if v6 { IpNet::V6(Ipv6Addr(six), 128) } else { IpNet::host_v4(Ipv4Addr::new(10, 2, 0, 2)) };
    let routes: Vec<(IpNet, IpNet)> = (0..n).map(|i| (prefix(i, v6), via)).collect();
    r.set_routes(routes);
    r
}

/// `count` random hosts of random routes (`benches::routes::host`), as 16 bytes (IPv4 in the first 4).
fn destinations(n: usize, v6: bool, count: usize) -> Vec<[u8; 16]> {
    let mut rng = Rng::new(7);
    (0..count)
        .map(|_| {
            let i = rng.below(n as u64) as usize;
            let h = host(i, v6, &mut rng);
            let mut a = [0u8; 16];
            if v6 {
                a = h.to_be_bytes();
            } else {
                a[..4].copy_from_slice(&(h as u32).to_be_bytes());
            }
            a
        })
        .collect()
}

fn main() {
    let counts: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() { vec![1, 1000, 100_000, 1_000_000] } else { counts };
    println!("| routes | family | trie MB | one at a time, ns | batches of 32, ns |");
    println!("|---|---|---|---|---|");
    for n in counts {
        for v6 in [false, true] {
            let r = router(n, v6);
            let dsts = destinations(n, v6, LOOKUPS);
            let (b4, b6) = r.trie_bytes();
            let mb = (if v6 { b6 } else { b4 }) as f64 / 1e6;
            let mut sum = 0u64;
            let start = Instant::now();
            for d in &dsts {
                sum +=
                    u64::from(if v6 { r.hop_v6(Ipv6Addr(*d)) } else { r.hop_v4(Ipv4Addr(d[..4].try_into().unwrap())) });
            }
            let one = start.elapsed().as_secs_f64() * 1e9 / LOOKUPS as f64;
            let mut out = [0; 32];
            let start = Instant::now();
            for batch in dsts.chunks(32) {
                if v6 {
                    r.hops_v6(black_box(batch), &mut out);
                } else {
                    let mut v4 = [[0u8; 4]; 32];
                    for (x, d) in v4.iter_mut().zip(batch) {
                        *x = d[..4].try_into().unwrap();
                    }
                    r.hops_v4(black_box(&v4[..batch.len()]), &mut out);
                }
                sum += out.iter().map(|&h| u64::from(h)).sum::<u64>();
            }
            let batched = start.elapsed().as_secs_f64() * 1e9 / LOOKUPS as f64;
            black_box(sum);
            println!("| {n} | {} | {mb:.1} | {one:.1} | {batched:.1} |", if v6 { "IPv6" } else { "IPv4" });
        }
    }
}

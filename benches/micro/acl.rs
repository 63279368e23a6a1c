//! The security-group lookup alone (`pipelines::acl`), by rule count: ns per `Acl::allows` for a port
//! with 1, 100 and 1,000 IPv4 rules of a realistic mix (TCP and UDP single ports and ranges, ICMP types,
//! remote prefixes from /8 to /32 and remote-group-like lists of /32 hosts), for queries that some rule
//! allows (`hit`) and queries from an address no rule names (`miss`, which searches as deep); and the
//! compile time of the 1,000 rules. Prints each port's `Acl::memory()` first.
//! `cargo bench -p benches --bench acl`; criterion reports time per 1,024 lookups and lookups per second.

use std::hint::black_box;

use benches::routes::Rng;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pipelines::acl::{Acl, Query, Rule, ICMP, L4, TCP, UDP};
use pipelines::wire::{IpNet, Ipv4Addr};

const QUERIES: usize = 1024;
const PORTS: [u16; 8] = [22, 80, 443, 3306, 5432, 6379, 8080, 9090];

/// A prefix of 10.0.0.0/8 of a random length from /8 to /32.
fn prefix(rng: &mut Rng) -> IpNet {
    let len = 8 + rng.below(25) as u8;
    let a = 0x0a00_0000 | (rng.next_u64() as u32 & 0x00ff_ffff);
    IpNet::V4(Ipv4Addr::from_u32(a), len).network()
}

fn port(rng: &mut Rng) -> u16 {
    if rng.below(2) == 0 {
        PORTS[rng.below(PORTS.len() as u64) as usize]
    } else {
        1024 + rng.below(64_000) as u16
    }
}

/// `n` rules: 4 in 10 TCP (single ports and ranges), 2 UDP, 1 ICMP, 3 remote-group-like lists of 8 to
/// 32 hosts.
fn rules(n: usize) -> Vec<Rule> {
    let single = |p| L4::Ports(p, p);
    let mut rng = Rng::new(0xac1);
    (0..n)
        .map(|i| {
            let (proto, l4, remote) = match i % 10 {
                0 | 1 => (TCP, single(port(&mut rng)), Some(vec![prefix(&mut rng)])),
                2 | 3 => {
                    let lo = port(&mut rng);
                    (TCP, L4::Ports(lo, lo.saturating_add(1 + rng.below(1000) as u16)), Some(vec![prefix(&mut rng)]))
                }
                4 => (UDP, single(port(&mut rng)), None),
                5 => {
                    let lo = port(&mut rng);
                    (UDP, L4::Ports(lo, lo.saturating_add(100)), Some(vec![prefix(&mut rng)]))
                }
                6 => {
                    let ty = [0, 3, 8, 11][rng.below(4) as usize];
                    let code = if rng.below(2) == 0 { None } else { Some(rng.below(4) as u8) };
                    (ICMP, L4::Icmp { ty, code }, Some(vec![prefix(&mut rng)]))
                }
                _ => {
                    let hosts = 8 + rng.below(25) as usize;
                    let members = (0..hosts)
                        .map(|_| IpNet::host_v4(Ipv4Addr::from_u32(0x0a00_0000 | (rng.next_u64() as u32 & 0xffffff))))
                        .collect();
                    ([TCP, UDP][rng.below(2) as usize], single(port(&mut rng)), Some(members))
                }
            };
            Rule { v6: false, proto: Some(proto), l4, remote }
        })
        .collect()
}

/// A query inside a random rule: its protocol, a port or ICMP type and code it allows, and an address
/// of one of its prefixes (`hit`); or, for a random rule with remote addresses, an address of
/// 192.168.0.0/16, which no rule names (`miss`).
fn queries(rules: &[Rule], hit: bool) -> Vec<Query> {
    let mut rng = Rng::new(0x9e7);
    let limited: Vec<&Rule> = rules.iter().filter(|r| hit || r.remote.is_some()).collect();
    (0..QUERIES)
        .map(|_| {
            let r = limited[rng.below(limited.len() as u64) as usize];
            let proto = r.proto.unwrap_or(TCP);
            let l4 = match r.l4 {
                L4::Ports(lo, hi) => lo + rng.below(u64::from(hi - lo) + 1) as u16,
                L4::Icmp { ty, code } => Query::icmp_l4(ty, code.unwrap_or(rng.below(4) as u8)),
                L4::Any => port(&mut rng),
            };
            let remote = match r.remote.as_deref() {
                Some(nets) if hit => {
                    let IpNet::V4(a, len) = nets[rng.below(nets.len() as u64) as usize] else { unreachable!() };
                    let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                    a.to_u32() | (rng.next_u64() as u32 & host)
                }
                None if hit => 0x0a00_0000 | (rng.next_u64() as u32 & 0xffffff),
                _ => 0xc0a8_0000 | (rng.next_u64() as u32 & 0xffff),
            };
            Query::v4(proto, l4, Ipv4Addr::from_u32(remote))
        })
        .collect()
}

fn acl(c: &mut Criterion) {
    let mut g = c.benchmark_group("acl_allows_per_1024");
    g.throughput(Throughput::Elements(QUERIES as u64));
    for n in [1, 100, 1000] {
        let rules = rules(n);
        let acl = Acl::compile(&rules);
        println!("acl: {n} rules, {} bytes", acl.memory());
        for hit in [true, false] {
            let qs = queries(&rules, hit);
            let allowed = qs.iter().filter(|q| acl.allows(q)).count();
            // What the queries get, to know the mix: a miss of one rule may be allowed by another.
            println!("acl: {n} rules, {} queries: {allowed} of {QUERIES} allowed", if hit { "hit" } else { "miss" });
            g.bench_function(format!("{n}_rules_{}", if hit { "hit" } else { "miss" }), |b| {
                b.iter(|| black_box(&qs).iter().filter(|q| acl.allows(q)).count())
            });
        }
    }
    g.finish();
    let rules = rules(1000);
    c.bench_function("acl_compile_1000_rules", |b| b.iter(|| Acl::compile(black_box(&rules))));
}

criterion_group!(benches, acl);
criterion_main!(benches);

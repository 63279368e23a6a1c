//! The harness's traffic and tables on heap buffers, shared by the criterion benchmark (`pipeline.rs`)
//! and the instruction counter (`pipeline_ir.rs`).
#![allow(dead_code)]

use std::path::Path;

use control::config::StaticTopology;
use pipelines::buf::HeapBuf;
use pipelines::tables::Tables;
use pipelines::wire::Mac;

pub const BURST: usize = 32;

pub fn tables(config: &str, names: &[&str]) -> Tables {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(config);
    compile(&StaticTopology::load(&path).expect("bench config"), names)
}

pub fn compile(cfg: &StaticTopology, names: &[&str]) -> Tables {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    control::static_topology::compile_over(None, cfg, &names).expect("compiles")
}

/// The route-count scenario `l3-routes:N:v4|v6` (`benches::routes`): its tables and 4,096 frames.
pub fn routed(spec: &str, names: &[&str]) -> Option<(Tables, Bursts)> {
    let mut it = spec.strip_prefix("l3-routes:")?.split(':');
    let n: usize = it.next()?.parse().ok()?;
    let v6 = it.next()? == "v6";
    let cfg = StaticTopology::from_toml_str(&benches::routes::config_toml(n, v6)).expect("generated config");
    Some((compile(&cfg, names), Bursts::of(benches::routes::frames(n, v6, false, 4096))))
}

/// The mixed-traffic scenario `mixed:N` (`benches::mixed`): its tables and 4,096 frames.
pub fn mixed(spec: &str, names: &[&str]) -> Option<(Tables, Bursts)> {
    let n: usize = spec.strip_prefix("mixed:")?.parse().ok()?;
    let cfg = StaticTopology::from_toml_str(&benches::mixed::config_toml(n)).expect("generated config");
    Some((compile(&cfg, names), Bursts::of(benches::mixed::frames(n, 4096))))
}

/// `l3.toml` with network 2 made the router's external network (`ext-gw-mode`): the sink port is the
/// uplink of a flat network instead of VM2, the router's interface there its gateway with SNAT on, and
/// the next hop 10.2.0.2's MAC learned as ARP would. Every packet of the 1,000 flows is routed and
/// translated (after the first of each flow: found in the worker's NAT table).
pub fn snat_tables(names: &[&str]) -> Tables {
    use pipelines::nat::RouterNat;
    use pipelines::tables::{TablesBuilder, Uplink};
    use pipelines::wire::Ipv4Addr;
    let mut b = TablesBuilder::from_tables(tables("l3.toml", names));
    b.remove_local_port(1);
    b.uplink(2, Uplink { port: 1, vlan: None });
    let gw = Ipv4Addr::new(10, 2, 0, 254);
    b.router_nat(1, RouterNat { network: 2, snat: Some(gw), fips: Vec::new(), redirect: None });
    let t = b.build();
    t.learned.learn(2, Ipv4Addr::new(10, 2, 0, 2), VM2, false);
    t
}

/// The harness's flow `i` (gen_pcaps.py): VM1 → `dst`, 10.0.0.x → `dst_ip`, UDP ports per flow.
pub fn frame(i: usize, dst: Mac, l3: bool) -> Vec<u8> {
    use pipelines::fixtures::{udp4, VM1};
    use pipelines::wire::Ipv4Addr;
    let src = Ipv4Addr::new(10, 0, 0, 1 + (i % 200) as u8);
    let dip = if l3 {
        Ipv4Addr::new(10, 1, ((i / 250) % 250) as u8, 1 + (i % 250) as u8)
    } else {
        Ipv4Addr::new(10, 0, 0, 201 + ((i / 200) % 50) as u8)
    };
    let mut f = udp4(VM1, dst, src, dip);
    f.resize(60, 0);
    f
}

/// The harness's `vxlan-1kflows` traffic (gen_pcaps.py): VM2 → VM1 flows in VXLAN VNI 100 from
/// 192.168.100.2 (02:00:00:00:00:02) to 192.168.100.1 (02:00:00:00:00:01).
pub fn vxlan_frames() -> Vec<Vec<u8>> {
    use pipelines::buf::PacketBuf;
    use pipelines::fixtures::{udp4, VM1};
    use pipelines::tunnel::{encap, Encap, Segment, Underlay};
    use pipelines::wire::Ipv4Addr;
    let peer = Underlay {
        port: 0,
        mac: Mac([2, 0, 0, 0, 0, 2]),
        ip: Ipv4Addr::new(192, 168, 100, 2),
        dont_fragment: false,
        ttl: 64,
    };
    (0..1000)
        .map(|i| {
            let mut inner = udp4(
                VM2,
                VM1,
                Ipv4Addr::new(10, 0, 0, 201 + ((i / 200) % 50) as u8),
                Ipv4Addr::new(10, 0, 0, 1 + (i % 200) as u8),
            );
            inner.resize(60, 0);
            let mut p = HeapBuf::new(&inner);
            let seg = Segment { encap: Encap::Vxlan, id: 100 };
            assert!(encap(&peer, Ipv4Addr::new(192, 168, 100, 1), Mac([2, 0, 0, 0, 0, 1]), seg, &mut p));
            p.data().to_vec()
        })
        .collect()
}

pub struct Bursts {
    frames: Vec<Vec<u8>>,
    pkts: Vec<HeapBuf>,
    next: usize,
}

impl Bursts {
    pub fn new(dst: Mac, l3: bool) -> Bursts {
        Bursts::of((0..1000).map(|i| frame(i, dst, l3)).collect())
    }

    /// Bursts of `frames`, in turn (buffers as large as the largest frame).
    pub fn of(frames: Vec<Vec<u8>>) -> Bursts {
        let largest = frames.iter().max_by_key(|f| f.len()).expect("frames").clone();
        Bursts { pkts: (0..BURST).map(|_| HeapBuf::new(&largest)).collect(), frames, next: 0 }
    }

    /// The next burst of the 1,000 flows, written over the same buffers.
    pub fn restore(&mut self) -> &mut [HeapBuf] {
        for p in self.pkts.iter_mut() {
            assert!(p.refill(&self.frames[self.next]));
            self.next = (self.next + 1) % self.frames.len();
        }
        &mut self.pkts
    }
}

pub const VM2: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 2]);
pub const ROUTER: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0xfe]);

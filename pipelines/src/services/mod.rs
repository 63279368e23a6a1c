//! The node's own services to its VMs, answered on the slow path: DHCPv4 (`dhcp4.rs`), DHCPv6
//! (`dhcp6.rs`) and IPv6 router advertisements (`ra.rs`), each node for its own ports only (Dragonflow's
//! distributed DHCP: no central agent to fail or to scale).
//!
//! How a packet gets here. The `punt` stage (`stages/punt.rs`) hands a worker's DHCP requests and router
//! solicitations from a port that has [`PortServices`] to the control side, rate-limited per port; the
//! dataplane carries them over a bounded ring to its slow-path thread, which calls [`SlowPath::handle`]
//! and sends the answer out of the port the request came in by (through a worker's tx queue). Unsolicited
//! router advertisements come from [`SlowPath::tick`], which the same thread calls every 100 ms. Both
//! read the tables the workers read (the published snapshot), so a change of a subnet's DNS servers, host
//! routes or MTU is in the next answer (a client's next renewal), and a port that is gone or unbound is
//! answered no more.
//!
//! Why the slow path and not the workers: an answer is built from many options (a few hundred bytes),
//! per port, for a few packets per VM per lease; the slow path keeps the workers' code to one test per
//! packet (`punt`), and the same ring serves what comes next (ICMP errors, metadata, reactive L3). The
//! rate it answers at is measured in `benches/RESULTS.md`.
//!
//! The configuration is compiled by the control plane, whole, per local port ([`PortServices`]): the
//! slow path reads nothing else. Addresses are the port's fixed IPs from the API: the server never
//! chooses one.
//!
//! Counters: every message type in and out, and every packet left unanswered with its reason, in
//! [`Stats`] (`dhcp4.*`, `dhcp6.*`, `ra.*`, `slowpath.*`).

mod dhcp4;
mod dhcp6;

/// The DHCPv4 and DHCPv6 option codes the server writes itself: an extra option may not name them.
pub use dhcp4::SERVERS_OWN as DHCP4_SERVERS_OWN;
pub use dhcp6::SERVERS_OWN as DHCP6_SERVERS_OWN;
mod frame;
mod ra;

use std::collections::{BTreeMap, HashMap};

use crate::tables::Tables;
use crate::wire::{EtherType, IpProtocol, Ipv4Addr, Ipv4Packet, Ipv6Addr, Ipv6Packet, Mac, UdpPacket};

/// What the slow path serves on one local port, compiled by the control plane from the port, its
/// subnets, its network and the routers on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortServices {
    /// The port's logical key, for the leases and the logs.
    pub lport: u32,
    /// The port's MAC: the only client the server answers on this port (as OVN's `eth.src` match).
    pub mac: Mac,
    /// DHCPv4, if the port has an address on a subnet with `enable_dhcp`.
    pub dhcp4: Option<Dhcp4>,
    /// DHCPv6, if the port is on an IPv6 subnet with `enable_dhcp` and a DHCPv6 address mode.
    pub dhcp6: Option<Dhcp6>,
    /// The router advertisements of the port's network: one per router interface on it whose subnets
    /// have an `ipv6_ra_mode`.
    pub ra: Vec<RouterAdvert>,
}

/// A port's DHCPv4 lease and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp4 {
    /// The network's DHCP port: its MAC and its address on the subnet (the server identifier).
    pub server_mac: Mac,
    pub server_ip: Ipv4Addr,
    /// The port's fixed IP, and its subnet's prefix length.
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// The subnet's gateway.
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub host_name: Option<String>,
    pub lease_secs: u32,
    /// The network's MTU.
    pub mtu: u16,
    /// Classless static routes (option 121): (destination, prefix length, next hop); the subnet's host
    /// routes and, as Neutron, the default route through the gateway (a client that gets option 121
    /// ignores option 3, RFC 3442).
    pub routes: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
    /// The port's `extra_dhcp_opts` for IPv4, encoded: each replaces the option of its code.
    pub extra: Vec<(u8, Vec<u8>)>,
}

/// A port's DHCPv6 service: stateful (an address) or stateless (information only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp6 {
    /// The network's DHCP port's MAC: the server's DUID and the replies' source.
    pub server_mac: Mac,
    /// The port's address on a `dhcpv6-stateful` subnet; `None`: stateless.
    pub address: Option<Ipv6Addr>,
    pub dns: Vec<Ipv6Addr>,
    pub domain: Option<String>,
    pub lease_secs: u32,
    /// The port's `extra_dhcp_opts` for IPv6, encoded.
    pub extra: Vec<(u16, Vec<u8>)>,
}

/// The router advertisement of one router interface, as radvd sends it for Neutron.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterAdvert {
    /// The interface's MAC; the advertisement comes from its link-local address.
    pub router_mac: Mac,
    /// M: addresses by DHCPv6 (`dhcpv6-stateful`); O: other configuration by DHCPv6.
    pub managed: bool,
    pub other: bool,
    /// (prefix, length, autonomous): the interface's subnets with an RA mode; autonomous for `slaac`
    /// and `dhcpv6-stateless`.
    pub prefixes: Vec<(Ipv6Addr, u8, bool)>,
    /// The network's MTU (not advertised below IPv6's minimum, 1280, as Neutron's radvd).
    pub mtu: u32,
    /// Recursive DNS servers (RDNSS): the `slaac` subnets' DNS servers, at most three (Neutron's radvd).
    pub dns: Vec<Ipv6Addr>,
}

/// Named counters of the slow path (what came in, what went out, what was left unanswered and why).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats(BTreeMap<&'static str, u64>);

impl Stats {
    pub(crate) fn bump(&mut self, name: &'static str) {
        *self.0.entry(name).or_default() += 1;
    }

    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// Every counter that counted something.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Stats) {
        for (k, v) in other.iter() {
            *self.0.entry(k).or_default() += v;
        }
    }
}

/// An answer of the slow path: a frame, and the port it leaves by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub port: u16,
    pub frame: Vec<u8>,
}

/// The slow path's state: the DHCPv4 leases it gave (what [`SlowPath::lease`] tells; forgotten once
/// expired), when each port's next unsolicited router advertisement is due, its counters.
///
/// Thread-safety: one per slow-path thread, owned by it; plain fields.
#[derive(Debug)]
pub struct SlowPath {
    stats: Stats,
    /// Logical port → the address and expiry (ms) of its DHCPv4 lease.
    leases: HashMap<u32, (Ipv4Addr, u64)>,
    /// Port index → the advertising state of the port there.
    adverts: HashMap<u16, ra::Advertising>,
    /// IPv4 identification of the next frame sent.
    ident: u16,
    /// xorshift state: the advertisements' random intervals.
    rng: u64,
}

impl SlowPath {
    /// `seed` starts the randomness (a thread seeds it from its clock; tests and goldens from a constant).
    pub fn new(seed: u64) -> SlowPath {
        SlowPath { stats: Stats::default(), leases: HashMap::new(), adverts: HashMap::new(), ident: 1, rng: seed | 1 }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Counts one of the caller's own events (the dataplane's: an answer it could not send).
    pub fn count(&mut self, name: &'static str) {
        self.stats.bump(name);
    }

    /// The DHCPv4 lease of logical port `lport`: its address and when it expires (ms, on the caller's
    /// clock).
    pub fn lease(&self, lport: u32) -> Option<(Ipv4Addr, u64)> {
        self.leases.get(&lport).copied()
    }

    /// A packet the workers punted from port `port` (its frame as received): the answer, out of the same
    /// port, if it gets one. `now_ms`: a clock in milliseconds that never goes back.
    pub fn handle(&mut self, t: &Tables, port: u16, frame: &[u8], now_ms: u64) -> Option<Answer> {
        self.stats.bump("slowpath.in");
        let Some(svc) = t.services_of(port) else {
            // The port went, or lost its services, since the worker punted it.
            self.stats.bump("slowpath.no_service");
            return None;
        };
        let Some((src_mac, l3)) = frame::ethernet(frame) else {
            self.stats.bump("slowpath.malformed");
            return None;
        };
        let out = match l3 {
            (EtherType::Ipv4, b) => self.ipv4(svc, src_mac, b, now_ms),
            (EtherType::Ipv6, b) => self.ipv6(svc, src_mac, b, now_ms, port),
            _ => {
                self.stats.bump("slowpath.malformed");
                None
            }
        };
        out.map(|frame| Answer { port, frame })
    }

    /// The router advertisements due at `now_ms` on the ports of `t` (unsolicited: the first soon after
    /// a port appears, then every 30 to 100 s, as Neutron's radvd), appended to `out`. Also forgets the
    /// leases that expired (a port deleted with its lease leaves no trace).
    pub fn tick(&mut self, t: &Tables, now_ms: u64, out: &mut Vec<Answer>) {
        ra::tick(self, t, now_ms, out);
        self.leases.retain(|_, (_, expires)| *expires > now_ms);
    }

    fn ipv4(&mut self, svc: &PortServices, src_mac: Mac, b: &[u8], now_ms: u64) -> Option<Vec<u8>> {
        let Ok(ip) = Ipv4Packet::new_checked(b) else { return self.malformed() };
        if !ip.verify_checksum() || ip.protocol() != IpProtocol::Udp || ip.is_fragment() {
            return self.malformed();
        }
        let payload = &b[ip.header_len()..ip.total_len() as usize];
        let Ok(udp) = UdpPacket::new_checked(payload) else { return self.malformed() };
        let pseudo = crate::wire::checksum::pseudo_v4(ip.src().0, ip.dst().0, 17, udp.len());
        if udp.dst_port() != crate::wire::dhcpv4::SERVER_PORT || !udp.verify_checksum(pseudo, true) {
            return self.malformed();
        }
        let Some(d) = &svc.dhcp4 else {
            self.stats.bump("dhcp4.no_service");
            return None;
        };
        let ident = self.next_ident();
        dhcp4::answer(self, svc, d, src_mac, ip.dst(), udp.payload(), now_ms, ident)
    }

    fn ipv6(&mut self, svc: &PortServices, src_mac: Mac, b: &[u8], now_ms: u64, port: u16) -> Option<Vec<u8>> {
        let Ok(ip) = Ipv6Packet::new_checked(b) else { return self.malformed() };
        let Ok((proto, off)) = ip.upper_layer() else { return self.malformed() };
        let end = 40 + ip.payload_len() as usize;
        let Some(l4) = b.get(off..end) else { return self.malformed() };
        let (src, dst) = (ip.src(), ip.dst());
        match proto {
            IpProtocol::Udp => {
                let Ok(udp) = UdpPacket::new_checked(l4) else { return self.malformed() };
                let pseudo = crate::wire::checksum::pseudo_v6(src.0, dst.0, 17, l4.len() as u32);
                if udp.dst_port() != crate::wire::dhcpv6::SERVER_PORT || !udp.verify_checksum(pseudo, false) {
                    return self.malformed();
                }
                let Some(d) = &svc.dhcp6 else {
                    self.stats.bump("dhcp6.no_service");
                    return None;
                };
                dhcp6::answer(self, svc, d, src_mac, src, udp.payload())
            }
            IpProtocol::Icmpv6 => ra::solicited(self, svc, src_mac, src, dst, ip.hop_limit(), l4, now_ms, port),
            _ => self.malformed(),
        }
    }

    fn malformed<T>(&mut self) -> Option<T> {
        self.stats.bump("slowpath.malformed");
        None
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// A random number in `lo..=hi`.
    fn random(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        lo + self.rng % (hi - lo + 1)
    }
}

/// The EUI-64 interface identifier of `mac` in the /64 `prefix`: the address SLAAC gives a host (RFC
/// 4862, the interface identifier of RFC 4291 appendix A), and the one Neutron's IPAM computes.
pub fn eui64(prefix: Ipv6Addr, mac: Mac) -> Ipv6Addr {
    let mut a = prefix.0;
    let m = mac.0;
    a[8..16].copy_from_slice(&[m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]);
    Ipv6Addr(a)
}

#[cfg(test)]
mod tests;

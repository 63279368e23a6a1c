//! Punt: hands the requests the node's slow path answers (`services`) to it, instead of the network.
//! A pending packet from a port with services (`Tables::services`) is punted if it is a DHCPv4 request
//! (IPv4 UDP to port 67, broadcast or to the network's DHCP port, the port having DHCPv4), a DHCPv6
//! client message (IPv6 UDP to port 547, to ff02::1:2 or the DHCP port, the port having DHCPv6) or a
//! router solicitation (ICMPv6 133, the port's network having a router that advertises). Everything else goes on; so do these from a port without the service (DHCP off: the
//! request is switched as any broadcast, as Neutron's network without a DHCP agent).
//!
//! Rate-limited per port ([`PuntLimiter`]): a flood from one VM costs the slow path at most its port's
//! rate and never starves another port, nor the control thread. Over the rate, a request is dropped and
//! counted (`punt.rate_limited`) and the next one that fits goes: a port is never blocked for a while,
//! the defect of Dragonflow's DHCP app (3 messages a second blocked a port for 100 s).
//! Drops: `punt.rate_limited`.

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::{flags, Action, Meta};
use crate::stages::WorkerState;
use crate::tables::Tables;
use crate::wire::icmpv6::ROUTER_SOLICIT;
use crate::wire::Ipv6Addr;

/// Punts per second each port may send to the slow path, by default, per worker.
pub const DEFAULT_RATE: u32 = 100;
/// How many a port may send at once after a quiet while, by default.
pub const DEFAULT_BURST: u32 = 200;

/// Per-port token buckets of punts, kept by one worker (so a port's rate over N workers is N × the
/// rate). A bucket holds up to `burst` punts and fills at `rate` a second, by the worker's clock (ms).
///
/// Thread-safety: one per worker, in its [`WorkerState`]; plain fields. Allocated once, for every port
/// index the dataplane has.
#[derive(Debug, Clone)]
pub struct PuntLimiter {
    /// Microseconds of credit one punt costs; 0: no limit.
    cost_us: u64,
    /// Most credit a bucket holds, µs.
    cap_us: u64,
    /// Per port index: (credit µs, the time it was last filled, ms).
    buckets: Vec<(u64, u64)>,
    /// Punts refused since the worker last looked ([`PuntLimiter::take_refused`]).
    refused: u32,
}

impl PuntLimiter {
    /// `rate` punts a second per port (0: no limit), at most `burst` at once, for port indexes below
    /// `ports` (those above are refused).
    pub fn new(rate: u32, burst: u32, ports: usize) -> PuntLimiter {
        let cost_us = if rate == 0 { 0 } else { (1_000_000 / u64::from(rate)).max(1) };
        let cap_us = cost_us * u64::from(burst.max(1));
        // Every bucket starts full.
        PuntLimiter { cost_us, cap_us, buckets: vec![(cap_us, 0); ports], refused: 0 }
    }

    /// Whether port `port` may punt one more at `now_ms`; takes its credit if so.
    #[inline]
    pub fn allow(&mut self, port: u16, now_ms: u64) -> bool {
        if self.cost_us == 0 {
            return true;
        }
        let Some((credit, last)) = self.buckets.get_mut(port as usize) else { return false };
        let filled = now_ms.saturating_sub(*last).saturating_mul(1000);
        *credit = credit.saturating_add(filled).min(self.cap_us);
        *last = (*last).max(now_ms);
        if *credit >= self.cost_us {
            *credit -= self.cost_us;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// How many punts were refused since the last call (the worker polls a flooding port less).
    #[inline]
    pub fn take_refused(&mut self) -> u32 {
        std::mem::take(&mut self.refused)
    }
}

impl Default for PuntLimiter {
    fn default() -> Self {
        PuntLimiter::new(DEFAULT_RATE, DEFAULT_BURST, 64)
    }
}

/// One packet, punted (or refused) if it is a pending request for the slow path.
#[inline(always)]
pub fn packet<B: PacketBuf>(t: &Tables, w: &mut WorkerState, p: &B, m: &mut Meta) {
    if !m.pending() || t.services.is_empty() || m.has(flags::LATER_FRAGMENT) {
        return;
    }
    let d = p.data();
    let Some(kind) = kind(d, m) else { return };
    if wanted(t, kind, d, m) {
        if w.punt.allow(m.in_port, w.now_ms) {
            m.action = Action::Punt;
        } else {
            m.drop(Reason::PuntRateLimited);
        }
    }
}

/// What the slow path serves.
#[derive(Clone, Copy)]
enum Kind {
    Dhcp4,
    Dhcp6,
    RouterSolicit,
}

/// The kind of request a packet is, from its headers alone (before any table lookup).
#[inline(always)]
fn kind(d: &[u8], m: &Meta) -> Option<Kind> {
    let l4 = m.l4_off as usize;
    let udp_dst = || d.get(l4 + 2..l4 + 4).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match m.ip_proto {
        17 if m.has(flags::IPV4) && udp_dst() == Some(crate::wire::dhcpv4::SERVER_PORT) => Some(Kind::Dhcp4),
        17 if m.has(flags::IPV6) && udp_dst() == Some(crate::wire::dhcpv6::SERVER_PORT) => Some(Kind::Dhcp6),
        58 if m.has(flags::IPV6) && d.get(l4) == Some(&ROUTER_SOLICIT) => Some(Kind::RouterSolicit),
        _ => None,
    }
}

/// Whether the slow path serves this kind of request from the packet's port, to this destination: a DHCP
/// request to everyone (IPv4 broadcast, the DHCPv6 servers' group) or to the network's DHCP port (a
/// renewal); a DHCP message to another server (a relay, a server of the VM's own elsewhere) goes on as
/// any packet.
#[cold]
fn wanted(t: &Tables, kind: Kind, d: &[u8], m: &Meta) -> bool {
    let Some(svc) = t.services_of(m.in_port) else { return false };
    let l3 = m.l3_off as usize;
    match kind {
        Kind::Dhcp4 => svc
            .dhcp4
            .as_ref()
            .is_some_and(|s| d.get(l3 + 16..l3 + 20).is_some_and(|dst| dst == [255; 4] || dst == s.server_ip.0)),
        Kind::Dhcp6 => svc.dhcp6.as_ref().is_some_and(|s| {
            let dst = d.get(l3 + 24..l3 + 40);
            dst.is_some_and(|dst| dst == ALL_DHCP_AGENTS || dst == Ipv6Addr::link_local_from_mac(s.server_mac).0)
        }),
        Kind::RouterSolicit => !svc.ra.is_empty(),
    }
}

/// ff02::1:2, All_DHCP_Relay_Agents_and_Servers (RFC 8415 7.1).
const ALL_DHCP_AGENTS: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2];

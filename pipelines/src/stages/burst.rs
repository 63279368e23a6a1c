//! The burst fast path. A burst comes from one port, and in the common case every packet of it has the
//! same Ethernet header (one VM talking to one peer, or to its router): the decisions that depend only on
//! that header (in-port binding, source MAC, router or L2 lookup, egress port state) are taken once, for
//! the burst's first packet, by the per-packet path; each following packet with the same 14 header bytes
//! then only gets what depends on it alone: its IPv4 header checked, its source address checked against
//! the port's, and, to a router, its route.
//!
//! Anything the fast path does not handle itself (another header, IPv4 options, fragments, DHCP, a
//! source address the port does not own, IPv6, ARP, ...) goes through the per-packet path, so the
//! decisions are exactly the per-packet path's: `tests/burst_equivalence.rs` checks that on random bursts.

use crate::buf::PacketBuf;
use crate::meta::{flags, Action, Meta};
use crate::routing::Router;
use crate::stages::{egress, l3_route, BurstMemo, WorkerState};
use crate::tables::{PortEntry, Tables};
use crate::wire::{Ipv4Addr, Mac};

/// What the first packet's header decided, for the packets that share it.
pub(crate) struct Template<'t> {
    in_port: u16,
    header: [u8; 14],
    src: Mac,
    port: &'t PortEntry,
    kind: Kind<'t>,
}

enum Kind<'t> {
    /// Switched out of this port.
    Switch(u16),
    /// To this router's interface.
    Route(u32, &'t Router),
}

impl<'t> Template<'t> {
    /// The first 14 bytes of a packet, taken before the per-packet path decides it (the router rewrites
    /// them).
    #[inline(always)]
    pub(crate) fn header<B: PacketBuf>(p: &B) -> Option<[u8; 14]> {
        p.data().get(..14)?.try_into().ok()
    }

    /// The template of a packet the per-packet path has just decided (`header`: its bytes before), if its
    /// kind is one the fast path repeats: untagged IPv4 unicast that passed classification and port
    /// security and was either switched to a port or handed to a router.
    pub(crate) fn of(t: &'t Tables, memo: &mut BurstMemo<'t>, header: [u8; 14], m: &Meta) -> Option<Template<'t>> {
        if m.flags != flags::IPV4 || m.l3_off != 14 {
            return None;
        }
        let dst = Mac(header[..6].try_into().ok()?);
        let port = memo.port(t, m.in_port)?;
        let passed_port_security = m.action != Action::Drop || m.reason.is_l3_route();
        // The in-port's network: a routed packet's `m.network` is already the egress network.
        let kind = match memo.router(t, port.network, dst) {
            // The router's verdicts are per packet: past classify and port security is enough.
            Some((key, r)) if passed_port_security => Kind::Route(key, r),
            None if m.action == Action::Output => Kind::Switch(m.out_port),
            _ => return None,
        };
        Some(Template { in_port: m.in_port, header, src: Mac(header[6..12].try_into().ok()?), port, kind })
    }

    /// Decides packet `p` if the fast path covers it (true); false leaves `m` untouched for the
    /// per-packet path.
    #[inline(always)]
    pub(crate) fn packet<B: PacketBuf>(
        &self,
        t: &Tables,
        memo: &mut BurstMemo<'_>,
        w: &mut WorkerState,
        p: &mut B,
        m: &mut Meta,
    ) -> bool {
        let d = p.data();
        if m.in_port != self.in_port || d.len() < 14 + 20 + 4 || d[..14] != self.header {
            return false;
        }
        let ip = &d[14..];
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        // No options, no fragment (offset or more-fragments), a length the frame holds.
        if ip[0] != 0x45 || total < 20 || total > ip.len() || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
            return false;
        }
        let proto = ip[9];
        if proto == 17 {
            // DHCP (server replies are port security's to drop; requests are the DHCP stage's).
            let (sport, dport) = (u16::from_be_bytes([ip[20], ip[21]]), u16::from_be_bytes([ip[22], ip[23]]));
            if matches!(sport, 67 | 68) || matches!(dport, 67 | 68) {
                return false;
            }
        }
        if self.port.security {
            let src = Ipv4Addr(ip[12..16].try_into().expect("20-byte header"));
            if !self.port.v4_allowed(self.src, src) {
                return false;
            }
        }
        m.lport = self.port.lport;
        m.network = self.port.network;
        m.flags = flags::IPV4;
        m.ethertype = 0x0800;
        m.l3_off = 14;
        m.l4_off = 34;
        m.ip_proto = proto;
        match self.kind {
            Kind::Switch(out) => m.output(out),
            Kind::Route(key, r) => {
                // IPv4 to a router is always decided there: forwarded, answered or dropped.
                l3_route::packet(t, memo, w, key, r, p, m);
                debug_assert!(!m.pending());
                egress::packet(t, m);
            }
        }
        true
    }
}

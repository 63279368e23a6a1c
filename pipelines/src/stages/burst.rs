//! The burst fast path. A burst comes from one port, and in the common case every packet of it has the
//! same Ethernet header (one VM talking to one peer, or to its router): the decisions that depend only on
//! that header (in-port binding, source MAC, router or L2 lookup, egress port state) are taken once, for
//! the burst's first packet, by the per-packet path; each following packet with the same 14 header bytes
//! then only gets what depends on it alone: its IPv4 header checked, its source address checked against
//! the port's, its security groups where its ports have them, and, to a router, its route; to a port on
//! another node, its tunnel.
//!
//! Anything the fast path does not handle itself (another header, IPv4 options, fragments, DHCP, a
//! source address the port does not own, IPv6, ARP, ...) goes through the per-packet path, so the
//! decisions are exactly the per-packet path's: `tests/burst_equivalence.rs` checks that on random bursts.

use crate::buf::PacketBuf;
use crate::meta::{flags, Action, Meta};
use crate::routing::Router;
use crate::stages::{egress, l3_route, security_groups, BurstMemo, WorkerState};
use crate::tables::{PortEntry, RemotePort, Tables};
use crate::wire::dhcpv4::{CLIENT_PORT, SERVER_PORT};
use crate::wire::{ethernet, ipv4, EtherType, IpProtocol, Ipv4Packet, Mac, UdpPacket};

/// Where the IPv4 header starts: right after an untagged Ethernet header.
const L3: usize = ethernet::HEADER_LEN;
/// Where the L4 header starts: after an IPv4 header without options.
const L4: usize = L3 + ipv4::HEADER_LEN;
/// The bytes the fast path reads: the headers above and a UDP datagram's ports.
const MIN_LEN: usize = L4 + 4;

/// What the first packet's header decided, for the packets that share it.
pub(crate) struct Template<'t> {
    in_port: u16,
    header: [u8; ethernet::HEADER_LEN],
    src: Mac,
    port: &'t PortEntry,
    kind: Kind<'t>,
}

enum Kind<'t> {
    /// Switched out of this port (`true`: its security groups check each packet).
    Switch(u16, bool),
    /// Switched to this port on another node: out of the tunnel stage (or a provider network's uplink),
    /// per packet.
    Remote(RemotePort),
    /// To this router's interface.
    Route(u32, &'t Router),
}

impl<'t> Template<'t> {
    /// The Ethernet header of a packet, taken before the per-packet path decides it (the router
    /// rewrites it).
    #[inline(always)]
    pub(crate) fn header<B: PacketBuf>(p: &B) -> Option<[u8; ethernet::HEADER_LEN]> {
        p.data().get(..ethernet::HEADER_LEN)?.try_into().ok()
    }

    /// The template of a packet the per-packet path has just decided (`header`: its bytes before), if its
    /// kind is one the fast path repeats: untagged IPv4 unicast that passed classification and port
    /// security and was switched to a local port, handed to a router, or switched to a port on another
    /// node.
    pub(crate) fn of(
        t: &'t Tables,
        memo: &mut BurstMemo<'t>,
        header: [u8; ethernet::HEADER_LEN],
        m: &Meta,
    ) -> Option<Template<'t>> {
        if m.flags != flags::IPV4 || m.l3_off as usize != L3 {
            return None;
        }
        let dst = Mac(header[..6].try_into().ok()?);
        let port = memo.port(t, m.in_port)?;
        let passed_port_security = m.action != Action::Drop || m.reason.is_l3_route();
        // The in-port's network: a routed packet's `m.network` is already the egress network.
        let kind = match memo.router(t, port.network, dst) {
            // The router's verdicts are per packet: past classify and port security is enough.
            Some((key, r)) if passed_port_security => Kind::Route(key, r),
            // Switched to a local port; not in a tunnel nor out of an uplink (no port entry), which are per
            // packet.
            None if m.action == Action::Output => match t.port(m.out_port) {
                Some(out) => Kind::Switch(m.out_port, out.sg.is_some()),
                None => return None,
            },
            // Switched to a port on another node: `l2_switch` named it (so it passed port security),
            // whatever the tunnel stage did with it then.
            None => match t.remote_lookup(port.network, dst) {
                Some(r) if r.lport != 0 && m.dst_lport == r.lport && m.chassis == r.chassis => Kind::Remote(r),
                _ => return None,
            },
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
        if m.in_port != self.in_port || d.len() < MIN_LEN || d[..L3] != self.header {
            return false;
        }
        let ip = Ipv4Packet::new_unchecked(&d[L3..]);
        let total = ip.total_len() as usize;
        // No options, no fragment (offset or more-fragments), a length the frame holds.
        if d[L3] != ipv4::VER_IHL_NO_OPTIONS || total < ipv4::HEADER_LEN || total > d.len() - L3 || ip.is_fragment() {
            return false;
        }
        let proto = ip.protocol_number();
        if proto == IpProtocol::Udp.number() {
            // DHCP (server replies are port security's to drop; requests are the punt stage's).
            let udp = UdpPacket::new_unchecked(&d[L4..]);
            let dhcp = |port| matches!(port, SERVER_PORT | CLIENT_PORT);
            if dhcp(udp.src_port()) || dhcp(udp.dst_port()) {
                return false;
            }
        }
        if self.port.security && !self.port.v4_allowed(self.src, ip.src()) {
            return false;
        }
        m.lport = self.port.lport;
        m.network = self.port.network;
        m.flags = flags::IPV4;
        m.ethertype = EtherType::Ipv4.into();
        m.l3_off = L3 as u16;
        m.l4_off = L4 as u16;
        m.ip_proto = proto;
        if self.port.sg.is_some() {
            security_groups::sent_by(self.port, w, p, m);
            if !m.pending() {
                return true;
            }
        }
        match self.kind {
            Kind::Switch(out, sg) => {
                m.output(out);
                if sg {
                    security_groups::to_port(t, w, p, m);
                }
            }
            Kind::Remote(r) => {
                m.action = Action::Remote;
                m.dst_lport = r.lport;
                m.chassis = r.chassis;
                egress::packet(t, w, p, m);
            }
            Kind::Route(key, r) => {
                // IPv4 to a router is always decided there: forwarded, answered or dropped.
                l3_route::route(t, memo, w, key, r, p, m);
                debug_assert!(!m.pending(), "see fate::Decided");
                egress::packet(t, w, p, m);
            }
        }
        true
    }
}

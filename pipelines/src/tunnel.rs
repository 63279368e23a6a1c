//! Tunnels between nodes: what the tables know of them (this node's [`Underlay`], the other nodes'
//! [`Chassis`], each network's [`Segment`]) and the outer headers, written by [`encap`] and read by
//! [`outer`] for both tunnel stages (`stages/tunnel_encap.rs`, `stages/tunnel_decap.rs`) and for the
//! dataplane's head-end replication of floods (each copy encapsulated for its chassis).
//!
//! | encapsulation | outer headers after the outer Ethernet | segment ID in | overhead |
//! |---|---|---|---|
//! | VXLAN (RFC 7348) | IPv4, UDP to 4789, VXLAN (I flag) | the VNI, 24 bits | 50 bytes |
//! | Geneve (RFC 8926) | IPv4, UDP to 6081, Geneve without options, protocol 0x6558 | the VNI, 24 bits | 50 bytes |
//! | GRE with key (RFC 2890) | IPv4 protocol 47, GRE with the K flag, protocol 0x6558 | the key, 32 bits | 42 bytes |
//!
//! The outer UDP source port is a hash of the inner flow (addresses and ports; MACs for non-IP frames),
//! in 49152–65535 as RFC 7348 recommends, so that the underlay's ECMP and a receiver's RSS spread flows
//! and keep each one in order. The UDP checksum is zero, as RFC 7348 says a sender should over IPv4 and
//! as Linux and OVS send by default (RFC 8926 allows it over IPv4); the outer IPv4 checksum is computed.
//! The outer IPv4 header has DF set or not as configured ([`Underlay::dont_fragment`]); with DF its
//! identification is 0 (RFC 6864), without it a per-flow value.
//!
//! The outer headers are IPv4: an IPv6 underlay is not offered yet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use crate::buf::PacketBuf;
use crate::wire::checksum;
use crate::wire::{
    ethernet, geneve, gre, ipv4, vxlan, ArpOperation, ArpPacket, ArpRepr, EtherType, IpProtocol, Ipv4Addr, Mac,
};

/// An encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encap {
    Vxlan,
    Geneve,
    Gre,
}

/// The outer Ethernet and IPv4 headers.
const OUTER_L3: usize = ethernet::HEADER_LEN;
const OUTER_L4: usize = OUTER_L3 + ipv4::HEADER_LEN;
/// UDP's header.
const UDP_LEN: usize = 8;
/// GRE's header with a key (flags and protocol, key).
const GRE_KEY_LEN: usize = 8;

impl Encap {
    /// The bytes the outer headers add in front of the inner Ethernet frame.
    pub const fn overhead(self) -> usize {
        OUTER_L4
            + match self {
                Encap::Vxlan => UDP_LEN + vxlan::HEADER_LEN,
                Encap::Geneve => UDP_LEN + geneve::HEADER_LEN,
                Encap::Gre => GRE_KEY_LEN,
            }
    }

    /// Its bit in [`Chassis::encaps`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// Every encapsulation's bit.
    pub const ALL: u8 = 0b111;

    /// The largest segment ID it carries.
    pub const fn max_id(self) -> u32 {
        match self {
            Encap::Vxlan | Encap::Geneve => (1 << 24) - 1,
            Encap::Gre => u32::MAX,
        }
    }
}

/// A network's segment on the wire: its encapsulation and ID (VNI or GRE key), the cloud's, the same on
/// every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    pub encap: Encap,
    pub id: u32,
}

impl Segment {
    /// The key of the decapsulation map: one `u64` for the encapsulation and the ID.
    #[inline(always)]
    pub(crate) fn key(self) -> u64 {
        (self.encap as u64) << 32 | u64::from(self.id)
    }
}

/// This node's side of the tunnels: the dataplane port they leave and arrive by, its MAC and the tunnel
/// endpoint address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Underlay {
    /// Dataplane port index of the underlay port.
    pub port: u16,
    pub mac: Mac,
    /// The tunnel endpoint address (the chassis' `ip` in the DB).
    pub ip: Ipv4Addr,
    /// Set DF on the outer header (no fragmentation on the underlay: the networks' MTU leaves room for
    /// the headers).
    pub dont_fragment: bool,
    /// The outer header's TTL.
    pub ttl: u8,
}

/// Another node, as a tunnel reaches it: its tunnel endpoint, its next hop on the underlay (the node
/// itself on the same link, or the underlay's gateway), an index into the tables' [`NextHops`], and the
/// encapsulations it takes ([`Encap::bit`]s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chassis {
    pub ip: Ipv4Addr,
    pub hop: u16,
    pub encaps: u8,
}

/// The underlay's next hops (the other nodes on its link, its gateway) and their MACs, resolved by ARP in
/// the dataplane itself, as a router's neighbour table (the switch owns the underlay port; no kernel
/// sees it). The control thread fixes the addresses; the workers fill in the MACs: the workers ask, each
/// next hop at most once a second, for those that are unresolved or due for a refresh ([`NextHops::due`]), a packet
/// for a next hop whose MAC is unknown becomes an ARP request for it (at most one a second per next hop:
/// [`NextHops::ask`]), and the ARP between a next hop and this node teaches its MAC
/// ([`NextHops::learn`]: ARP addressed to this node only, so a gratuitous ARP teaches nothing and a next
/// hop whose MAC changed is found again by the refresh within 30 s); a MAC not confirmed for a minute is
/// forgotten. Shared by every worker and every tables version that has the same addresses
/// (relaxed atomics: a MAC is one word, and a worker that reads a stale one sends one packet to the old
/// MAC); a new set of addresses starts from the MACs the old one had (a MAC learned into the old set
/// after that is asked for again).
#[derive(Debug, Default)]
pub struct NextHops {
    hops: Box<[Hop]>,
}

#[derive(Debug)]
struct Hop {
    ip: Ipv4Addr,
    /// The MAC (48 bits) with [`KNOWN`] set, or 0.
    mac: AtomicU64,
    /// When the last ARP request for it left, in milliseconds of [`now_ms`] (0: never).
    asked: AtomicU64,
    /// When its MAC was last learned or confirmed by its ARP.
    confirmed: AtomicU64,
    /// A MAC given with the address (configured, as OVS's `tnl/arp/set`): never refreshed nor forgotten.
    fixed: bool,
}

impl Hop {
    fn new(ip: Ipv4Addr, mac: u64, asked: u64, confirmed: u64, fixed: bool) -> Hop {
        let a = AtomicU64::new;
        Hop { ip, mac: a(mac), asked: a(asked), confirmed: a(confirmed), fixed }
    }

    /// Its address, if nobody asked for it in the last second (the first caller in a second gets it).
    fn try_ask(&self, now: u64) -> Option<Ipv4Addr> {
        let last = self.asked.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < ASK_EVERY_MS {
            return None;
        }
        self.asked.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).ok().map(|_| self.ip)
    }
}

const KNOWN: u64 = 1 << 63;
/// How long a next hop's address is not asked for again while no answer came.
const ASK_EVERY_MS: u64 = 1000;
/// A MAC not confirmed for this long is asked for again (once a second), and used meanwhile.
pub const REFRESH_MS: u64 = 30_000;
/// A MAC not confirmed for this long is forgotten: the next hop is unresolved again (a node gone, a MAC
/// that moved), as a host's neighbour entry fails.
pub const EXPIRE_MS: u64 = 60_000;

/// Milliseconds since the first call (+1, so that 0 means never): the next hops' clock.
pub fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

impl NextHops {
    /// Next hops at `ips` (index = position), with their MACs where given (fixed: never refreshed nor
    /// forgotten).
    pub fn new(ips: impl IntoIterator<Item = (Ipv4Addr, Option<Mac>)>) -> NextHops {
        let now = now_ms();
        let hops = ips
            .into_iter()
            .map(|(ip, mac)| Hop::new(ip, mac.map_or(0, |m| m.to_u64() | KNOWN), 0, now, mac.is_some()))
            .collect();
        NextHops { hops }
    }

    /// Next hops at `ips`, with what `old` knew of the same addresses (MACs learned and when, fixed ones).
    pub fn carried_over(ips: &[Ipv4Addr], old: &NextHops) -> NextHops {
        let hops = ips
            .iter()
            .map(|&ip| match old.hops.iter().find(|h| h.ip == ip) {
                Some(h) => {
                    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
                    Hop::new(ip, load(&h.mac), load(&h.asked), load(&h.confirmed), h.fixed)
                }
                None => Hop::new(ip, 0, 0, 0, false),
            })
            .collect();
        NextHops { hops }
    }

    /// The addresses, in index order.
    pub fn ips(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.hops.iter().map(|h| h.ip)
    }

    pub fn position(&self, ip: Ipv4Addr) -> Option<u16> {
        self.hops.iter().position(|h| h.ip == ip).and_then(|i| u16::try_from(i).ok())
    }

    /// Next hop `i`'s MAC, if known.
    #[inline]
    pub fn mac(&self, i: u16) -> Option<Mac> {
        let w = self.hops.get(usize::from(i))?.mac.load(Ordering::Relaxed);
        (w & KNOWN != 0).then(|| Mac::from_u64(w))
    }

    /// ARP from `ip` said its MAC is `mac`: true if `ip` is a next hop and `mac` a unicast MAC (it is set,
    /// written only if it changed: the workers read these words on every tunnelled packet).
    pub fn learn(&self, ip: Ipv4Addr, mac: Mac) -> bool {
        self.learn_at(ip, mac, now_ms())
    }

    /// [`NextHops::learn`] at time `now` (of [`now_ms`]).
    pub fn learn_at(&self, ip: Ipv4Addr, mac: Mac, now: u64) -> bool {
        let Some(h) = self.hops.iter().find(|h| h.ip == ip && !h.fixed) else { return false };
        if !mac.is_unicast() {
            return false;
        }
        let w = mac.to_u64() | KNOWN;
        if h.mac.load(Ordering::Relaxed) != w {
            h.mac.store(w, Ordering::Relaxed);
        }
        h.confirmed.store(now, Ordering::Relaxed);
        true
    }

    /// The next hops to ask for now, at time `now` (of [`now_ms`]): those unresolved, and those whose MAC
    /// was not confirmed for [`REFRESH_MS`] (their MAC still used), each at most once a second over every
    /// caller; a MAC not confirmed for [`EXPIRE_MS`] is forgotten first. Each worker calls it every 250 ms
    /// and sends an ARP request for each ([`arp_request`]): resolution and refresh without a packet
    /// to wait for, and without losing one.
    pub fn due(&self, now: u64) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.hops.iter().filter(|h| !h.fixed).filter_map(move |h| {
            let age = now.saturating_sub(h.confirmed.load(Ordering::Relaxed));
            let word = h.mac.load(Ordering::Relaxed);
            let known = word & KNOWN != 0;
            if known && age >= EXPIRE_MS {
                // (Unless an answer just came: then the MAC stays.)
                let _ = h.mac.compare_exchange(word, 0, Ordering::Relaxed, Ordering::Relaxed);
            } else if known && age < REFRESH_MS {
                return None;
            }
            h.try_ask(now)
        })
    }

    /// The address to ask for now if next hop `i` is to be asked for (none asked in the last second):
    /// the first caller in a second gets it.
    #[cold]
    pub fn ask(&self, i: u16) -> Option<Ipv4Addr> {
        self.hops.get(usize::from(i))?.try_ask(now_ms())
    }
}

/// The same addresses in the same order (the MACs are the workers' and not part of what the control
/// thread compiles).
impl PartialEq for NextHops {
    fn eq(&self, o: &NextHops) -> bool {
        self.ips().eq(o.ips())
    }
}

/// Turns `p` into an ARP request from underlay `u` for `ip` (a 60-byte broadcast frame, Ethernet's
/// minimum): false, and `p` unchanged, if the buffer cannot be made that long.
pub fn arp_request<B: PacketBuf>(u: &Underlay, ip: Ipv4Addr, p: &mut B) -> bool {
    arp_request_from(u.mac, u.ip, ip, p)
}

/// Turns `p` into an ARP request from `(mac, sender)` for `ip`, as [`arp_request`].
pub fn arp_request_from<B: PacketBuf>(mac: Mac, sender: Ipv4Addr, ip: Ipv4Addr, p: &mut B) -> bool {
    const LEN: usize = 60;
    let len = p.len();
    if len < LEN && p.append(LEN - len).is_none() {
        return false;
    }
    if len > LEN && !p.trim(len - LEN) {
        return false;
    }
    let d = p.data_mut();
    d[0..6].copy_from_slice(&Mac::BROADCAST.0);
    d[6..12].copy_from_slice(&mac.0);
    d[12..14].copy_from_slice(&u16::from(EtherType::Arp).to_be_bytes());
    let request = ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: mac,
        sender_ip: sender,
        target_mac: Mac::ZERO,
        target_ip: ip,
    };
    request.emit(&mut ArpPacket::new_unchecked(&mut d[ethernet::HEADER_LEN..]));
    d[ethernet::HEADER_LEN + request.buffer_len()..].fill(0);
    true
}

/// A hash of the inner frame's flow: its IPv4 or IPv6 addresses and, for TCP, UDP and SCTP of a first
/// fragment or none, its ports; its MACs and EtherType otherwise. The same for every unfragmented packet
/// of a flow, whatever the other headers say (a datagram's later fragments, which carry no ports, hash
/// apart from its first).
pub fn flow_hash(frame: &[u8]) -> u32 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let word = |h: u64, b: &[u8]| -> u64 {
        let mut x = [0u8; 8];
        x[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        (h.rotate_left(5) ^ u64::from_le_bytes(x)).wrapping_mul(K)
    };
    let Some(et) = frame.get(12..14) else { return 0 };
    let mut h = word(0, et);
    let l4 = match u16::from_be_bytes([et[0], et[1]]) {
        0x0800 if frame.len() >= OUTER_L3 + ipv4::HEADER_LEN => {
            let ip = &frame[OUTER_L3..];
            h = word(h, &ip[12..20]);
            let later_fragment = u16::from_be_bytes([ip[6], ip[7]]) & ipv4::FRAG_OFFSET != 0;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            (!later_fragment).then_some((ip[9], OUTER_L3 + ihl))
        }
        0x86dd if frame.len() >= OUTER_L3 + 40 => {
            let ip = &frame[OUTER_L3..];
            h = word(word(word(word(h, &ip[8..16]), &ip[16..24]), &ip[24..32]), &ip[32..40]);
            Some((ip[6], OUTER_L3 + 40))
        }
        _ => {
            h = word(word(h, &frame[0..6]), &frame[6..12]);
            None
        }
    };
    if let Some((proto, off)) = l4 {
        h = word(h, &[proto]);
        if matches!(proto, 6 | 17 | 132) {
            if let Some(ports) = frame.get(off..off + 4) {
                h = word(h, ports);
            }
        }
    }
    (h >> 32) as u32 ^ h as u32
}

/// Puts the Ethernet frame in `p` in a tunnel of segment `seg` from `u` to `to` (whose next hop is
/// `next_hop`): the outer headers, written in front of it. False, and `p` unchanged, if the buffer has no
/// headroom for them.
pub fn encap<B: PacketBuf>(u: &Underlay, to: Ipv4Addr, next_hop: Mac, seg: Segment, p: &mut B) -> bool {
    let inner_len = p.len();
    let hash = flow_hash(p.data());
    let n = seg.encap.overhead();
    let Some(h) = p.prepend(n) else { return false };
    // Outer Ethernet.
    h[0..6].copy_from_slice(&next_hop.0);
    h[6..12].copy_from_slice(&u.mac.0);
    h[12..14].copy_from_slice(&u16::from(EtherType::Ipv4).to_be_bytes());
    // Outer IPv4.
    let total = (n - OUTER_L3 + inner_len) as u16;
    let (proto, ident, frag) = match (seg.encap, u.dont_fragment) {
        (Encap::Gre, df) => {
            (IpProtocol::Gre, if df { 0 } else { hash as u16 }, if df { ipv4::FLAG_DONT_FRAG } else { 0 })
        }
        (_, true) => (IpProtocol::Udp, 0, ipv4::FLAG_DONT_FRAG),
        (_, false) => (IpProtocol::Udp, hash as u16, 0),
    };
    {
        let ip = &mut h[OUTER_L3..OUTER_L4];
        ip[0] = ipv4::VER_IHL_NO_OPTIONS;
        ip[1] = 0;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&ident.to_be_bytes());
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[8] = u.ttl;
        ip[9] = proto.into();
        ip[10..12].fill(0);
        ip[12..16].copy_from_slice(&u.ip.0);
        ip[16..20].copy_from_slice(&to.0);
        let c = checksum::checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    // The encapsulation.
    let t = &mut h[OUTER_L4..];
    let vni = seg.id << 8;
    match seg.encap {
        Encap::Vxlan | Encap::Geneve => {
            let dst = if seg.encap == Encap::Vxlan { vxlan::UDP_PORT } else { geneve::UDP_PORT };
            let src = 0xc000 | (hash as u16 & 0x3fff);
            t[0..2].copy_from_slice(&src.to_be_bytes());
            t[2..4].copy_from_slice(&dst.to_be_bytes());
            t[4..6].copy_from_slice(&(total - ipv4::HEADER_LEN as u16).to_be_bytes());
            t[6..8].fill(0);
            let e = &mut t[UDP_LEN..];
            if seg.encap == Encap::Vxlan {
                e[0..4].copy_from_slice(&[vxlan::FLAG_VNI, 0, 0, 0]);
            } else {
                // Version 0, no options, neither O nor C; the protocol of the payload.
                e[0..2].fill(0);
                e[2..4].copy_from_slice(&u16::from(EtherType::TransparentEthernet).to_be_bytes());
            }
            e[4..8].copy_from_slice(&vni.to_be_bytes());
        }
        Encap::Gre => {
            t[0..2].copy_from_slice(&gre::FLAG_KEY.to_be_bytes());
            t[2..4].copy_from_slice(&u16::from(EtherType::TransparentEthernet).to_be_bytes());
            t[4..8].copy_from_slice(&seg.id.to_be_bytes());
        }
    }
    true
}

/// What an underlay frame carries, as far as the tunnel stage cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outer {
    /// A tunnel packet to this node: its segment, the sender's tunnel endpoint, and where the inner
    /// Ethernet frame starts and ends (the outer IPv4 length: what follows is the outer frame's padding).
    Tunnel { seg: Segment, src: Ipv4Addr, inner: usize, end: usize },
    /// ARP (for the underlay's own address resolution).
    Arp,
    /// Not for this node: another destination MAC or IPv4 address.
    NotOurs,
    /// For this node, but not a tunnel it takes (another protocol or port, an IPv4 fragment, a Geneve
    /// packet with options or of another protocol, GRE without a key or with other flags).
    NotTunnel,
    /// A header cut short or invalid (IPv4 checksum, lengths, version).
    Malformed,
}

/// Reads the outer headers of a frame that came in on the underlay `u`.
pub fn outer(u: &Underlay, d: &[u8]) -> Outer {
    if d.len() < ethernet::HEADER_LEN {
        return Outer::Malformed;
    }
    let dst = Mac(d[0..6].try_into().expect("length checked"));
    let et = u16::from_be_bytes([d[12], d[13]]);
    if et == u16::from(EtherType::Arp) {
        return Outer::Arp;
    }
    if dst != u.mac {
        return Outer::NotOurs;
    }
    if et != u16::from(EtherType::Ipv4) {
        return Outer::NotTunnel;
    }
    let Some(ip) = d.get(OUTER_L3..OUTER_L4) else { return Outer::Malformed };
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[0] >> 4 != 4 || ihl < ipv4::HEADER_LEN || total < ihl || d.len() < OUTER_L3 + total {
        return Outer::Malformed;
    }
    if checksum::checksum(&d[OUTER_L3..OUTER_L3 + ihl]) != 0 {
        return Outer::Malformed;
    }
    if ip[16..20] != u.ip.0 {
        return Outer::NotOurs;
    }
    let src = Ipv4Addr(ip[12..16].try_into().expect("four bytes"));
    let flags = u16::from_be_bytes([ip[6], ip[7]]);
    if flags & (ipv4::FLAG_MORE_FRAGS | ipv4::FRAG_OFFSET) != 0 {
        return Outer::NotTunnel;
    }
    let l4 = OUTER_L3 + ihl;
    let end = OUTER_L3 + total;
    let t = &d[l4..end];
    match ip[9] {
        17 => {
            if t.len() < UDP_LEN + 8 {
                return Outer::Malformed;
            }
            let dport = u16::from_be_bytes([t[2], t[3]]);
            let e = &t[UDP_LEN..];
            let id = u32::from_be_bytes([e[4], e[5], e[6], e[7]]) >> 8;
            let inner = l4 + UDP_LEN + 8;
            match dport {
                vxlan::UDP_PORT if e[0] & vxlan::FLAG_VNI != 0 => {
                    Outer::Tunnel { seg: Segment { encap: Encap::Vxlan, id }, src, inner, end }
                }
                // Version 0 and no options (this switch sends none and reads none), not OAM (RFC 8926: its
                // payload is not forwarded), an Ethernet payload.
                geneve::UDP_PORT
                    if e[0] == 0
                        && e[1] & geneve::FLAG_OAM == 0
                        && e[2..4] == u16::from(EtherType::TransparentEthernet).to_be_bytes() =>
                {
                    Outer::Tunnel { seg: Segment { encap: Encap::Geneve, id }, src, inner, end }
                }
                _ => Outer::NotTunnel,
            }
        }
        47 => {
            if t.len() < GRE_KEY_LEN {
                return Outer::Malformed;
            }
            // Exactly the K flag, version 0 (no checksum, no sequence number), an Ethernet payload.
            if t[0..4] != [0x20, 0x00, 0x65, 0x58] {
                return Outer::NotTunnel;
            }
            let id = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
            Outer::Tunnel { seg: Segment { encap: Encap::Gre, id }, src, inner: l4 + GRE_KEY_LEN, end }
        }
        _ => Outer::NotTunnel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hops_are_asked_for_refreshed_and_forgotten_on_their_own_clock() {
        let (a, b) = (Ipv4Addr::new(192, 168, 100, 2), Ipv4Addr::new(192, 168, 100, 3));
        let hops = NextHops::new([(a, None), (b, Some(Mac([2, 0, 0, 0, 0, 3])))]);
        let t0 = now_ms();
        assert_eq!(hops.due(t0).collect::<Vec<_>>(), [a], "the unresolved one; a fixed MAC is never asked for");
        assert_eq!(hops.due(t0 + 500).count(), 0, "once a second");
        let mac = Mac([2, 0, 0, 0, 0, 2]);
        assert!(hops.learn_at(a, mac, t0 + 600));
        assert!(!hops.learn_at(b, mac, t0 + 600), "a fixed MAC is not learned over");
        assert_eq!(hops.due(t0 + 600 + REFRESH_MS - 1).count(), 0, "fresh");
        assert_eq!(hops.due(t0 + 600 + REFRESH_MS).collect::<Vec<_>>(), [a], "due for a refresh");
        assert_eq!(hops.mac(0), Some(mac), "and used meanwhile");
        assert!(hops.learn_at(a, mac, t0 + 600 + REFRESH_MS + 10), "the answer");
        let later = t0 + 600 + REFRESH_MS + 10 + EXPIRE_MS;
        assert_eq!(hops.due(later).collect::<Vec<_>>(), [a], "no answer for a minute");
        assert_eq!(hops.mac(0), None, "forgotten");
        assert_eq!(hops.mac(1), Some(Mac([2, 0, 0, 0, 0, 3])), "the fixed one stays");
        let over = NextHops::carried_over(&[b, a], &hops);
        assert_eq!((over.mac(0), over.mac(1)), (Some(Mac([2, 0, 0, 0, 0, 3])), None));
    }
    use crate::buf::HeapBuf;
    use crate::fixtures::{udp4, IP1, IP2, PEER_CHASSIS, UNDERLAY, VM1, VM2};
    use crate::wire::{EthernetFrame, Ipv4Packet, UdpPacket};

    const PEER: Ipv4Addr = PEER_CHASSIS.ip;
    const PEER_MAC: Mac = PEER_CHASSIS.mac;

    /// The peer's view: what it receives is addressed to it.
    fn peer() -> Underlay {
        PEER_CHASSIS
    }

    #[test]
    fn each_encapsulation_round_trips_with_valid_outer_headers() {
        let inner = udp4(VM1, VM2, IP1, IP2);
        for (kind, id) in [(Encap::Vxlan, 100), (Encap::Geneve, 0xff_ffff), (Encap::Gre, 0xdead_beef)] {
            let seg = Segment { encap: kind, id };
            let mut p = HeapBuf::new(&inner);
            assert!(encap(&UNDERLAY, PEER, PEER_MAC, seg, &mut p));
            let d = p.data();
            assert_eq!(d.len(), inner.len() + kind.overhead());
            assert_eq!(&d[kind.overhead()..], &inner[..], "{kind:?}: the inner frame as it was");
            let eth = EthernetFrame::new_checked(d).unwrap();
            assert_eq!((eth.dst(), eth.src(), eth.ethertype()), (PEER_MAC, UNDERLAY.mac, EtherType::Ipv4));
            let ip = Ipv4Packet::new_checked(&d[OUTER_L3..]).unwrap();
            assert!(ip.verify_checksum(), "{kind:?}");
            assert_eq!((ip.src(), ip.dst(), ip.ttl(), ip.dont_frag()), (UNDERLAY.ip, PEER, 64, true));
            assert_eq!(usize::from(ip.total_len()), d.len() - OUTER_L3);
            if kind != Encap::Gre {
                let udp = UdpPacket::new_checked(ip.payload()).unwrap();
                assert_eq!(usize::from(udp.len()), ip.payload().len());
                assert!(udp.src_port() >= 49152, "{}", udp.src_port());
                assert_eq!(udp.checksum(), 0);
            }
            let expected = Outer::Tunnel { seg, src: UNDERLAY.ip, inner: kind.overhead(), end: d.len() };
            assert_eq!(outer(&peer(), d), expected, "{kind:?}");
            assert_eq!(outer(&UNDERLAY, d), Outer::NotOurs, "{kind:?}: another node's");
        }
    }

    #[test]
    fn no_headroom_leaves_the_packet_as_it_was() {
        let inner = udp4(VM1, VM2, IP1, IP2);
        let mut p = HeapBuf::with_room(&inner, 20, 0);
        assert!(!encap(&UNDERLAY, PEER, PEER_MAC, Segment { encap: Encap::Vxlan, id: 1 }, &mut p));
        assert_eq!(p.data(), &inner[..]);
    }

    #[test]
    fn the_source_port_follows_the_flow() {
        let port = |f: &[u8]| {
            let mut p = HeapBuf::new(f);
            encap(&UNDERLAY, PEER, PEER_MAC, Segment { encap: Encap::Vxlan, id: 1 }, &mut p);
            u16::from_be_bytes([p.data()[OUTER_L4], p.data()[OUTER_L4 + 1]])
        };
        let a = udp4(VM1, VM2, IP1, IP2);
        let mut b = a.clone();
        b[OUTER_L3 + 8] = 1; // another TTL: the same flow
        assert_eq!(port(&a), port(&b));
        let ports: std::collections::HashSet<u16> =
            (0..64u8).map(|i| port(&udp4(VM1, VM2, IP1, Ipv4Addr::new(10, 0, 1, i)))).collect();
        assert!(ports.len() > 32, "64 flows over {} ports", ports.len());
    }

    #[test]
    fn frames_that_are_not_tunnels_to_this_node_are_told_apart() {
        let u = peer();
        let mut p = HeapBuf::new(&udp4(VM1, VM2, IP1, IP2));
        encap(&UNDERLAY, PEER, PEER_MAC, Segment { encap: Encap::Vxlan, id: 7 }, &mut p);
        let good = p.into_vec();
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut d = good.clone();
            f(&mut d);
            outer(&u, &d)
        };
        assert!(matches!(with(&|_| {}), Outer::Tunnel { .. }));
        assert_eq!(with(&|d| d[OUTER_L3 + 10] ^= 1), Outer::Malformed, "IPv4 checksum");
        assert_eq!(with(&|d| d.truncate(40)), Outer::Malformed, "cut short");
        assert_eq!(with(&|d| d[0] = 9), Outer::NotOurs, "another MAC");
        let refill = |d: &mut Vec<u8>| {
            d[OUTER_L3 + 10..OUTER_L3 + 12].fill(0);
            let c = checksum::checksum(&d[OUTER_L3..OUTER_L4]);
            d[OUTER_L3 + 10..OUTER_L3 + 12].copy_from_slice(&c.to_be_bytes());
        };
        assert_eq!(
            with(&|d| {
                d[OUTER_L3 + 19] = 9;
                refill(d)
            }),
            Outer::NotOurs,
            "another address"
        );
        assert_eq!(
            with(&|d| {
                d[OUTER_L3 + 6] = 0x20;
                refill(d)
            }),
            Outer::NotTunnel,
            "a fragment"
        );
        assert_eq!(with(&|d| d[OUTER_L4 + 3] = 1), Outer::NotTunnel, "another UDP port");
        assert_eq!(with(&|d| d[OUTER_L4 + UDP_LEN] = 0), Outer::NotTunnel, "VXLAN without the I flag");
        let mut g = HeapBuf::new(&udp4(VM1, VM2, IP1, IP2));
        encap(&UNDERLAY, PEER, PEER_MAC, Segment { encap: Encap::Geneve, id: 7 }, &mut g);
        let mut g = g.into_vec();
        assert!(matches!(outer(&u, &g), Outer::Tunnel { .. }));
        g[OUTER_L4 + UDP_LEN + 1] |= geneve::FLAG_OAM;
        assert_eq!(outer(&u, &g), Outer::NotTunnel, "a Geneve OAM packet is not forwarded");
        let mut arp = good.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(outer(&u, &arp), Outer::Arp);
    }
}

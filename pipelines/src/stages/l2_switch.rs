//! L2 lookup: destination MAC in the packet's network → a local port, else a port on another node (for
//! the tunnel stage to encapsulate). Broadcast, multicast and unknown unicast are flooded to the
//! network's other local ports that are up and, by head-end replication, to the other nodes with a port
//! on the network (or out of a provider network's uplink); never across networks. A packet from a tunnel
//! or an uplink (`flags::FROM_TUNNEL`) goes to local ports only: a node never sends what it received from
//! outside back out, and unicast from outside for no port here is dropped, not flooded.
//! Drops: `l2_switch.no_destination` (back to its own port, nobody to flood to, unicast from outside for
//! no port here).

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::{flags, Action, Meta};
use crate::stages::BurstMemo;
use crate::tables::{Tables, Uplink};
use crate::wire::Mac;

pub fn run<B: PacketBuf>(t: &Tables, pkts: &mut [B], meta: &mut [Meta]) {
    let mut memo = BurstMemo::default();
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        packet(t, &mut memo, p, m);
    }
}

/// One packet, if it is still pending: known unicast out of its port, else flooded (or dropped with
/// nobody to flood to). Every packet that reaches this stage pending leaves it decided.
#[inline(always)]
pub fn packet<B: PacketBuf>(t: &Tables, memo: &mut BurstMemo<'_>, p: &mut B, m: &mut Meta) {
    if !m.pending() {
        return;
    }
    if !m.has(flags::MULTICAST_DST) {
        let dst = Mac(p.data()[0..6].try_into().expect("classify checked the length"));
        if let Some(out) = memo.l2(t, m.network, dst) {
            if out == m.in_port {
                m.drop(Reason::L2NoDestination);
            } else {
                m.output(out);
            }
            return;
        }
        if m.has(flags::FROM_TUNNEL) {
            // Unicast from another node or a physical network for no port here: not ours to spread (as
            // OVN's ports with fixed addresses get no unknown unicast).
            return m.drop(Reason::L2NoDestination);
        }
        if let Some(r) = t.remote_lookup(m.network, dst) {
            m.action = Action::Remote;
            m.dst_lport = r.lport;
            m.chassis = r.chassis;
            return;
        }
    }
    let mut flood = flood_ports(t, m.network, m.in_port, m.flags, 0);
    if !flood.chassis().is_empty() || flood.uplink().is_some() || flood.next().is_some() {
        m.action = Action::Flood;
    } else {
        m.drop(Reason::L2NoDestination);
    }
}

/// Where a flooded packet from `in_port` in `network` goes (`meta_flags`: its `Meta::flags`): the
/// network's other local ports that are up, and, unless it came from a tunnel or an uplink, the other
/// nodes with a port on it (a tunnelled network) or its uplink (a provider network).
#[inline]
pub fn flood_ports(t: &Tables, network: u32, in_port: u16, meta_flags: u8, skip: u64) -> FloodPorts<'_> {
    let ports = t.networks.get(&network).map_or(&[][..], |n| &n.local_ports[..]);
    let (chassis, uplink) = if meta_flags & flags::FROM_TUNNEL == 0 {
        let uplink = t.uplinks.get(&network).filter(|u| t.uplink_in.owns(u.key(), network)).copied();
        (t.flood_chassis(network), uplink)
    } else {
        (&[][..], None)
    };
    FloodPorts { t, ports: ports.iter(), in_port, skip, network, chassis, uplink }
}

/// The local ports of a flood (see [`flood_ports`]), read from the tables as it goes (no allocation),
/// and the nodes it is replicated to.
#[derive(Clone)]
pub struct FloodPorts<'t> {
    t: &'t Tables,
    ports: core::slice::Iter<'t, u16>,
    in_port: u16,
    /// Ports left out (bit `p`: port `p`): their security groups refuse the copy.
    skip: u64,
    network: u32,
    chassis: &'t [u32],
    uplink: Option<Uplink>,
}

impl<'t> FloodPorts<'t> {
    /// The other nodes (chassis keys) a copy goes to, each in a tunnel of [`FloodPorts::network`]'s
    /// segment (`Tables::tunnel_to`).
    pub fn chassis(&self) -> &'t [u32] {
        self.chassis
    }

    /// The provider network's uplink a copy goes out of, tagged (`provider::push`).
    pub fn uplink(&self) -> Option<Uplink> {
        self.uplink
    }

    /// The network flooded.
    pub fn network(&self) -> u32 {
        self.network
    }
}

/// The ports still to come, not the tables.
impl core::fmt::Debug for FloodPorts<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl Iterator for FloodPorts<'_> {
    type Item = u16;

    #[inline]
    fn next(&mut self) -> Option<u16> {
        let (t, in_port, skip) = (self.t, self.in_port, self.skip);
        let skipped = |p: u16| p < 64 && skip & 1 << p != 0;
        self.ports.by_ref().copied().find(|&p| p != in_port && !skipped(p) && t.port(p).is_some_and(|e| e.up))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::drop::DropCounters;
    use crate::fixtures::*;
    use crate::stages;
    use crate::tables::TablesBuilder;
    use crate::wire::Ipv4Addr;

    #[test]
    fn known_unknown_broadcast_and_hairpin() {
        let mut b = TablesBuilder::new();
        b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), true));
        b.local_port(1, vm_port(102, 1, VM2, IP2, ip6(2), true));
        let vm3 = Mac([0xfa, 0x16, 0x3e, 0, 0, 3]);
        b.local_port(2, vm_port(103, 1, vm3, Ipv4Addr::new(10, 0, 0, 3), ip6(3), true));
        // Another network on the same node: never flooded into.
        let other = Mac([0xfa, 0x16, 0x3e, 0, 1, 1]);
        b.local_port(3, vm_port(201, 2, other, Ipv4Addr::new(10, 0, 0, 9), ip6(9), true));
        let t = b.build();
        let frames = [
            udp4(VM1, VM2, IP1, IP2),
            udp4(VM1, Mac([0xfa, 0x16, 0x3e, 9, 9, 9]), IP1, IP2),
            udp4(VM1, Mac::BROADCAST, IP1, Ipv4Addr::BROADCAST),
            udp4(VM1, VM1, IP1, IP1),
            udp4(VM1, other, IP1, Ipv4Addr::new(10, 0, 0, 9)),
        ];
        let mut pkts: Vec<HeapBuf> = frames.iter().map(|f| HeapBuf::new(f)).collect();
        let mut meta = vec![Meta::new(0); frames.len()];
        let mut drops = DropCounters::default();
        stages::run(&t, &mut stages::WorkerState::new(1), &mut pkts, &mut meta, &mut drops);
        let actions: Vec<(Action, u16)> = meta.iter().map(|m| (m.action, m.out_port)).collect();
        assert_eq!(
            actions,
            vec![(Action::Output, 1), (Action::Flood, 0), (Action::Flood, 0), (Action::Drop, 0), (Action::Flood, 0)]
        );
        assert_eq!(flood_ports(&t, 1, 0, 0, 0).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(drops.get(Reason::L2NoDestination), 1);
    }

    #[test]
    fn alone_in_its_network_nothing_to_flood() {
        let mut b = TablesBuilder::new();
        b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), true));
        let t = b.build();
        let mut pkts = vec![HeapBuf::new(&udp4(VM1, Mac::BROADCAST, IP1, Ipv4Addr::BROADCAST))];
        let mut meta = vec![Meta::new(0)];
        run(&t, &mut pkts, &mut meta);
        assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, Reason::L2NoDestination));
    }
}

//! The fate of a decided packet: where it goes, all the dataplane needs to carry the decision out. The
//! pipeline decides it whole, flood set included; the dataplane (or a test over heap buffers) only moves
//! buffers to the ports a [`Fate`] names and counts.
//!
//! Between stages a packet's state is `Meta::action`, which has two states no packet leaves the pipeline
//! in: `Continue` (no stage has decided yet) and `Remote` (for a port on another node: the tunnel stage's
//! hook, which `egress` turns into a drop while there is no tunnel stage). A [`Fate`] has neither: it is
//! read only from a [`Decided`] burst, which only `stages::decide` (and its variants) return, once every
//! packet has been through `egress`; see [`Decided`] for why neither state is left then.

use crate::drop::Reason;
use crate::meta::{Action, Meta};
use crate::stages::l2_switch::{flood_ports, FloodPorts};
use crate::tables::Tables;

/// What becomes of a decided packet.
#[derive(Debug, Clone)]
pub enum Fate<'t> {
    /// Out of this port.
    Output(u16),
    /// Rewritten into a reply in place (ARP and ND answers, the router's echo replies and ICMP errors):
    /// back out of this port, the one it came in by.
    Reply(u16),
    /// Out of each of these ports, the network's other local ports that are up (one copy per port), in a
    /// tunnel to each of [`FloodPorts::chassis`] (one copy per node, `tunnel_encap::to_node`), and out
    /// of [`FloodPorts::uplink`], tagged (`provider::push`). Never nobody: `l2_switch` drops a packet with
    /// nobody to flood to.
    Flood(FloodPorts<'t>),
    /// For the slow path (`services::SlowPath::handle`), with the port it came in by.
    Punt(u16),
    /// Dropped, and counted under this reason.
    Drop(Reason),
}

/// A burst the pipeline has decided: every packet's `Meta::action` is `Output`, `Reply`, `Flood`,
/// `Punt` or `Drop`, never `Continue` nor `Remote`. Only `stages::decide`, `stages::decide_per_packet` and
/// `stages::run` make one, after every packet of the burst, fresh from `Meta::new` (they assert it in
/// debug builds), went through the stages:
///
/// - not `Continue`: a packet `classify` leaves pending goes on through every stage to `l2_switch`, and
///   `l2_switch::packet` decides every packet it finds pending (each of its paths ends in `Output`,
///   `Remote`, `Flood` or a drop); a packet of the burst fast path is switched (`Output`), goes to
///   `l3_route::route`, which decides every IPv4 packet (a debug assertion checks it), or to `egress`
///   as `Remote`;
/// - not `Remote`: every packet that is not a `classify` drop ends with `egress::packet`, which hands a
///   `Remote` one to `provider::egress` (its network has an uplink: tagged out of it) or to
///   `tunnel_encap::packet`, which decides it (encapsulated out of the underlay port, or a `tunnel.*`
///   drop).
///
/// `tests/burst_equivalence.rs` and the `pipeline` fuzz target read the fates of random bursts.
#[derive(Debug, Clone, Copy)]
pub struct Decided<'m> {
    meta: &'m [Meta],
}

impl<'m> Decided<'m> {
    /// Marks `meta` decided: only for `stages`, at the end of a pass over the whole burst.
    #[inline(always)]
    pub(crate) fn new(meta: &'m [Meta]) -> Decided<'m> {
        Decided { meta }
    }

    /// The burst's metadata.
    #[inline(always)]
    pub fn meta(&self) -> &'m [Meta] {
        self.meta
    }

    /// The port every packet of the burst leaves by, if they all leave by one (`Output` to one port: the
    /// common case, where the dataplane sends the burst as it came).
    #[inline(always)]
    pub fn one_port(&self) -> Option<u16> {
        let first = self.meta.first()?;
        let one = first.action == Action::Output
            && self.meta.iter().all(|m| m.action == Action::Output && m.out_port == first.out_port);
        one.then_some(first.out_port)
    }

    /// The fate of each packet, in order.
    #[inline(always)]
    pub fn fates<'t>(&self, t: &'t Tables) -> impl Iterator<Item = Fate<'t>> + 'm
    where
        't: 'm,
    {
        self.meta.iter().map(move |m| fate(t, m))
    }
}

/// The fate of one packet of a [`Decided`] burst.
#[inline(always)]
fn fate<'t>(t: &'t Tables, m: &Meta) -> Fate<'t> {
    match m.action {
        Action::Output => Fate::Output(m.out_port),
        Action::Reply => Fate::Reply(m.out_port),
        Action::Flood => Fate::Flood(flood_ports(t, m.network, m.in_port, m.flags, m.flood_skip)),
        Action::Drop => Fate::Drop(m.reason),
        Action::Punt => Fate::Punt(m.in_port),
        // See `Decided`: the stages leave neither in a decided burst (debug builds, the tests and the
        // fuzzer check it). Were that ever broken, a release build counts the packet under the reason the
        // stage that should have decided it would have used, rather than abort the whole switch.
        Action::Continue => {
            debug_assert!(false, "a decided packet left Continue");
            Fate::Drop(Reason::L2NoDestination)
        }
        Action::Remote => {
            debug_assert!(false, "a decided packet left Remote");
            Fate::Drop(Reason::EgressNoTunnel)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::fixtures::*;
    use crate::stages::{self, WorkerState};
    use crate::tables::{RemotePort, TablesBuilder};
    use crate::wire::{IpNet, Ipv4Addr, Mac};

    fn tables() -> Tables {
        let mut b = TablesBuilder::new();
        b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), true));
        b.local_port(1, vm_port(102, 1, VM2, IP2, ip6(2), true));
        b.local_port(2, vm_port(103, 1, Mac([0xfa, 0x16, 0x3e, 0, 0, 3]), Ipv4Addr::new(10, 0, 0, 3), ip6(3), true));
        let mut down = vm_port(104, 1, Mac([0xfa, 0x16, 0x3e, 0, 0, 4]), Ipv4Addr::new(10, 0, 0, 4), ip6(4), true);
        down.up = false;
        b.local_port(3, down);
        let remote = Mac([0xfa, 0x16, 0x3e, 0, 0, 9]);
        b.remote_port(1, remote, &[IpNet::host_v4(Ipv4Addr::new(10, 0, 0, 9))], RemotePort { lport: 109, chassis: 7 });
        b.build()
    }

    #[test]
    fn every_action_has_its_fate_and_floods_name_their_ports() {
        let t = tables();
        let frames = [
            udp4(VM1, VM2, IP1, IP2),
            arp_request(VM1, IP1, IP2),
            udp4(VM1, Mac::BROADCAST, IP1, Ipv4Addr::BROADCAST),
            udp4(VM1, Mac([0xfa, 0x16, 0x3e, 0, 0, 9]), IP1, Ipv4Addr::new(10, 0, 0, 9)),
            udp4(VM2, VM2, IP1, IP2),
        ];
        let mut pkts: Vec<HeapBuf> = frames.iter().map(|f| HeapBuf::new(f)).collect();
        let mut meta = vec![Meta::new(0); frames.len()];
        let decided = stages::decide(&t, &mut WorkerState::new(1), &mut pkts, &mut meta);
        let fates: Vec<String> = decided.fates(&t).map(|f| format!("{f:?}")).collect();
        assert_eq!(
            fates,
            [
                "Output(1)",
                "Reply(0)",
                "Flood([1, 2])", // not back to port 0, not to port 3 (down)
                "Drop(TunnelNoUnderlay)",
                "Drop(PortSecurityMac)"
            ]
        );
        let Some(Fate::Flood(ports)) = decided.fates(&t).nth(2) else { panic!("a flood") };
        assert_eq!(ports.collect::<Vec<_>>(), [1, 2]);
        assert_eq!(decided.one_port(), None);
        meta[0] = Meta::new(0);
        let decided = stages::decide(&t, &mut WorkerState::new(1), &mut pkts[..1], &mut meta[..1]);
        assert_eq!(decided.one_port(), Some(1));
    }
}

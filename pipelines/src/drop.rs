//! Every reason a packet is dropped, named `<stage>.<reason>` and counted: the pipeline's stages' (a stage
//! sets one in `Meta::reason` with `Meta::drop`) and the dataplane's own, met while it carries out what
//! the pipeline decided (`tx`, `flood`, and the patch mode's `patch`), which no stage ever sets. One list,
//! in stage order; one counter per reason per port (`DropCounters` here, the dataplane's per-port
//! atomics there); one name per reason in the stats JSON and the log.

/// Declares [`Reason`] from one list of `Variant => "name"`: the enum, `ALL` in declaration order (the
/// counters' order), `COUNT` and `name()` cannot disagree.
macro_rules! reasons {
    ($($(#[$attr:meta])* $variant:ident => $name:literal,)*) => {
        /// Why a packet was dropped.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
        #[repr(u8)]
        pub enum Reason {
            $($(#[$attr])* $variant,)*
        }

        impl Reason {
            /// How many reasons there are (`None` included): the length of a counter array.
            pub const COUNT: usize = [$($name),*].len();

            /// Every reason, in the order of their counters (`r as usize` is `r`'s index).
            pub const ALL: [Reason; Reason::COUNT] = [$(Reason::$variant),*];

            /// `<stage>.<reason>`: the counter's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Reason::$variant => $name,)*
                }
            }
        }
    };
}

reasons! {
    /// No drop (the default of a fresh `Meta`); never counted.
    #[default]
    None => "none",

    // classify
    /// Shorter than an Ethernet header, or a header that does not parse.
    ClassifyMalformed => "classify.malformed",
    /// The in-port is bound to no logical port.
    ClassifyUnknownPort => "classify.unknown_port",
    /// The logical port is administratively down.
    ClassifyPortDown => "classify.port_down",
    /// An 802.1Q or 802.1ad tag on a frame from a VM port (no port is a trunk; OVN drops `vlan.present`).
    ClassifyVlanTagged => "classify.vlan_tagged",

    // tunnel_decap (frames from the underlay port)
    /// Not for this node: another destination MAC or tunnel endpoint.
    TunnelNotOurs => "tunnel.not_ours",
    /// Outer headers cut short or invalid (IPv4 version, lengths, checksum), or an inner frame that does not parse.
    TunnelMalformed => "tunnel.malformed",
    /// For this node but not a tunnel it takes (another protocol or port, an outer fragment, Geneve
    /// options, GRE flags other than the key).
    TunnelNotTunnel => "tunnel.not_tunnel",
    /// From a tunnel endpoint that is no chassis this node shares a network with.
    TunnelUnknownChassis => "tunnel.unknown_chassis",
    /// A segment (VNI or key) of no network on this node.
    TunnelUnknownSegment => "tunnel.unknown_segment",
    /// ARP on the underlay that is not a request for this node's tunnel endpoint and not from one of its
    /// next hops.
    TunnelArp => "tunnel.arp",
    /// ARP from a next hop of the underlay (another node, the gateway) to this node that needs no answer
    /// (a reply to this node's request): its MAC learned (`tunnel::NextHops`), the frame consumed here.
    /// Not an error: counted with the drops because nothing leaves for it.
    TunnelArpLearned => "tunnel.arp_learned",

    // provider (frames from an uplink port, and to one)
    /// From an uplink, with a VLAN (or untagged) that no provider network on that port has.
    ProviderUnknownVlan => "provider.unknown_vlan",
    /// From an uplink, cut short, or tagged twice.
    ProviderMalformed => "provider.malformed",
    /// No headroom in the buffer for the VLAN tag.
    ProviderNoHeadroom => "provider.no_headroom",
    /// To the uplink, in a VLAN that another network on that uplink claims too (DB contents gone wrong).
    ProviderVlanConflict => "provider.vlan_conflict",

    // port_security
    /// Source MAC not the port's (nor an allowed address pair's).
    PortSecurityMac => "port_security.mac_spoof",
    /// Source IP (v4 or v6) not the port's, nor an allowed pair's.
    PortSecurityIp => "port_security.ip_spoof",
    /// ARP whose sender MAC or IP is not the port's.
    PortSecurityArp => "port_security.arp_spoof",
    /// A neighbour solicitation or advertisement whose link-layer address option or advertised target is
    /// not the port's (or whose options do not parse).
    PortSecurityNd => "port_security.nd_spoof",
    /// A router advertisement or DHCP server reply from a VM port (Neutron drops these).
    PortSecurityRogueServer => "port_security.rogue_server",
    /// Neither IPv4, IPv6 nor ARP, from a port with port security.
    PortSecurityEthertype => "port_security.ethertype",

    // punt (requests the slow path answers: DHCP, router solicitations)
    /// Over its port's punt rate (`PuntLimiter`): a flood of requests from one port.
    PuntRateLimited => "punt.rate_limited",

    // security_groups (and the connection tracking it keeps)
    /// Sent by a port whose security groups' egress rules allow it not (nor a connection it belongs to).
    SgEgressDenied => "security_groups.egress_denied",
    /// For a port whose security groups' ingress rules allow it not (nor a connection it belongs to).
    SgIngressDenied => "security_groups.ingress_denied",
    /// Belongs to no connection and opens none (a TCP segment without SYN, an unasked echo reply), breaks
    /// its connection's TCP state, or its L4 header is cut short.
    SgInvalid => "security_groups.invalid",
    /// Of a connection the port's rules allowed and no longer allow (a rule or a remote group member
    /// removed): the connection is closed.
    SgRevoked => "security_groups.revoked",
    /// A fragment after the first, whose first fragment did not pass (or came too long before).
    SgFragment => "security_groups.fragment",
    /// Would open a connection, but the worker's connection table is full.
    ConntrackFull => "conntrack.full",

    // l2_switch
    /// Unicast to an unknown MAC in a network with no other port to flood to, or an own-port loop.
    L2NoDestination => "l2_switch.no_destination",

    // l3_route
    /// No route to the destination.
    L3NoRoute => "l3_route.no_route",
    /// TTL/hop limit exhausted (an ICMP time exceeded is sent when the packet allows it).
    L3TtlExceeded => "l3_route.ttl_exceeded",
    /// To a router address, but neither ARP/ND nor ping.
    L3ToRouter => "l3_route.to_router",
    /// The next hop's MAC is not known yet.
    L3NoNeighbor => "l3_route.no_neighbor",
    /// TTL/hop limit exhausted, and the ICMP error about it over the per-sender or the worker's limit.
    L3IcmpRateLimit => "l3_route.icmp_ratelimit",

    // nat (a router's gateway on its external network)
    /// Routed out to the external network, its next hop's MAC not known yet: an ARP request for it left
    /// less than a second ago (the packet that found it unknown became that request).
    NatUnresolved => "nat.unresolved",
    /// To be translated (SNAT), but neither TCP, UDP nor an ICMP echo request, or a later fragment.
    NatUnsupported => "nat.unsupported",
    /// To be translated (SNAT), but the worker's translation table is full or no port was free.
    NatFull => "nat.full",
    /// An ARP reply to a router's gateway MAC: its sender's MAC learned, the frame consumed.
    NatArpLearned => "nat.arp_learned",

    // tunnel_encap (packets for ports on other nodes)
    /// This node has no underlay port.
    TunnelNoUnderlay => "tunnel.no_underlay",
    /// The network has no tunnelled segment (or one that another network claims too).
    TunnelNoSegment => "tunnel.no_segment",
    /// The destination's node is not a known chassis.
    TunnelNoChassis => "tunnel.no_chassis",
    /// The destination's node does not take the network's encapsulation (its chassis' `tunnel_types`).
    TunnelUnsupported => "tunnel.unsupported",
    /// The next hop toward the destination's node has no known MAC yet.
    TunnelUnresolved => "tunnel.unresolved",
    /// No headroom in the buffer for the outer headers.
    TunnelNoHeadroom => "tunnel.no_headroom",

    // egress
    /// The output port is administratively down (or no longer bound).
    EgressPortDown => "egress.port_down",
    /// For another node, and left undecided (never: `egress` hands every such packet to `tunnel_encap`,
    /// which decides it; kept as the counter of a broken invariant, `fate.rs`).
    EgressNoTunnel => "egress.no_tunnel",

    // The dataplane, carrying the decision out (never set by a stage).
    /// A flooded packet could not be copied for one of its ports: the pool was empty.
    FloodNoMbuf => "flood.no_mbuf",
    /// The packet's destination port has no tx queue on this worker: the port is being unplugged (the
    /// tables still named it), or a flood found none of its ports plugged.
    TxNoQueue => "tx.no_queue",
    /// The tx queue stayed full after the configured retries: the unsent tail was freed.
    TxFull => "tx.full",
    /// Patch mode: the port has no peer to send to.
    PatchNoPeer => "patch.no_peer",
    /// For the slow path, but the worker's punt ring was full (the slow path is behind).
    PuntRingFull => "punt.ring_full",
    /// For another worker (the owner of its connection, `steer`), but that worker's hand-off queue was
    /// full (it is behind).
    HandoffRingFull => "handoff.ring_full",
}

impl Reason {
    /// A verdict of the L3 router (which is per packet, past classification and port security).
    pub fn is_l3_route(self) -> bool {
        matches!(
            self,
            Reason::L3NoRoute
                | Reason::L3TtlExceeded
                | Reason::L3ToRouter
                | Reason::L3NoNeighbor
                | Reason::L3IcmpRateLimit
        )
    }
}

/// Drops counted by reason (one per worker; plain integers, the worker is the only writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropCounters(pub [u64; Reason::COUNT]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters([0; Reason::COUNT])
    }
}

impl DropCounters {
    #[inline(always)]
    pub fn count(&mut self, r: Reason) {
        self.0[r as usize] += 1;
    }

    pub fn get(&self, r: Reason) -> u64 {
        self.0[r as usize]
    }

    /// `(name, count)` of every reason that counted something.
    pub fn nonzero(&self) -> Vec<(&'static str, u64)> {
        Reason::ALL.iter().filter(|r| self.get(**r) > 0).map(|r| (r.name(), self.get(*r))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_once_in_order() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = Reason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Reason::COUNT);
    }

    #[test]
    fn names_are_stage_dot_reason() {
        for r in &Reason::ALL[1..] {
            let (stage, reason) = r.name().split_once('.').expect("<stage>.<reason>");
            assert!(!stage.is_empty() && !reason.is_empty() && !reason.contains('.'), "{}", r.name());
        }
    }
}

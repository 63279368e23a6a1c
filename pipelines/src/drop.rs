//! Every reason the pipeline drops a packet, named `<stage>.<reason>` and counted.

/// Why the pipeline dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[repr(u8)]
pub enum Reason {
    /// No drop (the default of a fresh `Meta`).
    #[default]
    None,
    /// Shorter than an Ethernet header, or a header that does not parse.
    ClassifyMalformed,
    /// The in-port is bound to no logical port.
    ClassifyUnknownPort,
    /// The logical port is administratively down.
    ClassifyPortDown,
    /// An 802.1Q or 802.1ad tag on a frame from a VM port (no port is a trunk; OVN drops `vlan.present`).
    ClassifyVlanTagged,
    /// Source MAC not the port's (nor an allowed address pair's).
    PortSecurityMac,
    /// Source IP (v4 or v6) not the port's, nor an allowed pair's.
    PortSecurityIp,
    /// ARP whose sender MAC or IP is not the port's.
    PortSecurityArp,
    /// A neighbour solicitation or advertisement whose link-layer address option or advertised target is
    /// not the port's (or whose options do not parse).
    PortSecurityNd,
    /// A router advertisement or DHCP server reply from a VM port (Neutron drops these).
    PortSecurityRogueServer,
    /// Neither IPv4, IPv6 nor ARP, from a port with port security.
    PortSecurityEthertype,
    /// Unicast to an unknown MAC in a network with no other port to flood to, or an own-port loop.
    L2NoDestination,
    /// No route to the destination.
    L3NoRoute,
    /// TTL/hop limit exhausted (an ICMP time exceeded is sent when the packet allows it).
    L3TtlExceeded,
    /// To a router address, but neither ARP/ND nor ping.
    L3ToRouter,
    /// The next hop's MAC is not known yet.
    L3NoNeighbor,
    /// TTL/hop limit exhausted, and the ICMP error about it over the per-sender or the worker's limit.
    L3IcmpRateLimit,
    /// The output port is administratively down (or no longer bound).
    EgressPortDown,
    /// Destination is on another node and no tunnel stage is configured to carry it.
    EgressNoTunnel,
}

impl Reason {
    pub const ALL: [Reason; 19] = [
        Reason::None,
        Reason::ClassifyMalformed,
        Reason::ClassifyUnknownPort,
        Reason::ClassifyPortDown,
        Reason::ClassifyVlanTagged,
        Reason::PortSecurityMac,
        Reason::PortSecurityIp,
        Reason::PortSecurityArp,
        Reason::PortSecurityNd,
        Reason::PortSecurityRogueServer,
        Reason::PortSecurityEthertype,
        Reason::L2NoDestination,
        Reason::L3NoRoute,
        Reason::L3TtlExceeded,
        Reason::L3ToRouter,
        Reason::L3NoNeighbor,
        Reason::L3IcmpRateLimit,
        Reason::EgressPortDown,
        Reason::EgressNoTunnel,
    ];
    pub const COUNT: usize = Self::ALL.len();

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

    pub fn name(self) -> &'static str {
        match self {
            Reason::None => "none",
            Reason::ClassifyMalformed => "classify.malformed",
            Reason::ClassifyUnknownPort => "classify.unknown_port",
            Reason::ClassifyPortDown => "classify.port_down",
            Reason::ClassifyVlanTagged => "classify.vlan_tagged",
            Reason::PortSecurityMac => "port_security.mac_spoof",
            Reason::PortSecurityIp => "port_security.ip_spoof",
            Reason::PortSecurityArp => "port_security.arp_spoof",
            Reason::PortSecurityNd => "port_security.nd_spoof",
            Reason::PortSecurityRogueServer => "port_security.rogue_server",
            Reason::PortSecurityEthertype => "port_security.ethertype",
            Reason::L2NoDestination => "l2_switch.no_destination",
            Reason::L3NoRoute => "l3_route.no_route",
            Reason::L3TtlExceeded => "l3_route.ttl_exceeded",
            Reason::L3ToRouter => "l3_route.to_router",
            Reason::L3NoNeighbor => "l3_route.no_neighbor",
            Reason::L3IcmpRateLimit => "l3_route.icmp_ratelimit",
            Reason::EgressPortDown => "egress.port_down",
            Reason::EgressNoTunnel => "egress.no_tunnel",
        }
    }
}

/// Drops counted by reason (one per worker; plain integers, the worker is the only writer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounters(pub [u64; Reason::COUNT]);

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
        names.dedup();
        assert_eq!(names.len(), Reason::COUNT);
    }
}

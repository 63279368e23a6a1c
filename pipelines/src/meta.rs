//! The per-packet metadata record: filled once by `classify` (which parses the headers), then read and
//! updated by every later stage, so no stage parses again. One cache line at most (asserted below).

use crate::drop::Reason;

/// Where a packet stands between stages. Two of these are for the stages alone, and no packet leaves
/// the pipeline in them (`fate::Decided` says why): `Continue` and `Remote`. The dataplane reads a
/// decided packet as a `fate::Fate`, which has neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Action {
    /// Still being decided (the next stage looks at it).
    #[default]
    Continue,
    /// Out of the port `Meta::out_port`.
    Output,
    /// To every local port of the network but the one it came from.
    Flood,
    /// Rewritten into a reply in place: back out of the port it came in on.
    Reply,
    /// To logical port `Meta::dst_lport` on node `Meta::chassis`: for the tunnel stage to encapsulate
    /// (`egress` drops it while there is none).
    Remote,
    /// For the slow path (`services`): handed to the control side with its in-port, which answers it.
    Punt,
    /// Dropped, counted under `Meta::reason`.
    Drop,
}

/// Header flags set by `classify`.
pub mod flags {
    pub const VLAN: u8 = 1;
    pub const IPV4: u8 = 2;
    pub const IPV6: u8 = 4;
    pub const ARP: u8 = 8;
    /// Destination MAC is broadcast or multicast.
    pub const MULTICAST_DST: u8 = 16;
    /// IPv4 fragment other than the first, or IPv6 fragment without its upper layer.
    pub const LATER_FRAGMENT: u8 = 32;
    /// Decapsulated from a tunnel (`tunnel_decap`) or in from an uplink (`provider`): decided outside this
    /// node; only switched to local ports.
    pub const FROM_TUNNEL: u8 = 64;
}

/// Per-packet state between stages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Meta {
    /// Dataplane port index the packet came in on.
    pub in_port: u16,
    /// Dataplane port index it leaves by (with `Action::Output`).
    pub out_port: u16,
    /// Logical port key of the in-port (Neutron port), from `classify`.
    pub lport: u32,
    /// Network key of the in-port.
    pub network: u32,
    /// Router key, once the L3 stage routes it.
    pub router: u32,
    /// With `Action::Remote`: the destination's logical port key and the node (chassis) it is on.
    pub dst_lport: u32,
    pub chassis: u32,
    /// Offset of the L3 header (after Ethernet and any VLAN tag).
    pub l3_off: u16,
    /// Offset of the L4 header (after IPv6 extension headers), 0 if none.
    pub l4_off: u16,
    /// EtherType after any VLAN tag.
    pub ethertype: u16,
    /// IP protocol of the L4 header (0 if none).
    pub ip_proto: u8,
    /// `flags::*`.
    pub flags: u8,
    pub action: Action,
    pub reason: Reason,
    /// With `Action::Flood`: the local ports (bit `p`: port `p`, below 64) whose security groups refuse
    /// their copy (`security_groups::flood`).
    pub flood_skip: u64,
}

const _: () = assert!(core::mem::size_of::<Meta>() <= 64, "Meta must fit one cache line");

impl Meta {
    #[inline(always)]
    pub fn new(in_port: u16) -> Meta {
        Meta { in_port, ..Meta::default() }
    }

    #[inline(always)]
    pub fn drop(&mut self, reason: Reason) {
        self.action = Action::Drop;
        self.reason = reason;
    }

    #[inline(always)]
    pub fn output(&mut self, port: u16) {
        self.action = Action::Output;
        self.out_port = port;
    }

    /// Rewritten into a reply: back out of the port it came in on.
    #[inline(always)]
    pub fn reply(&mut self) {
        self.action = Action::Reply;
        self.out_port = self.in_port;
    }

    #[inline(always)]
    pub fn pending(&self) -> bool {
        self.action == Action::Continue
    }

    #[inline(always)]
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

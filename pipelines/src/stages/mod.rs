//! The stages, in Dragonflow's order; each is one file with its drop reasons and its loop over a burst.
//! A stage looks only at packets whose `Meta::action` is still `Continue`. Stages still to come (DHCP,
//! security groups, NAT, tunnels, the L3 router) slot in by adding a file and a line in [`run`].

pub mod arp_responder;
pub mod classify;
pub mod l2_switch;
pub mod nd_responder;
pub mod port_security;

use crate::buf::PacketBuf;
use crate::drop::DropCounters;
use crate::meta::{Action, Meta};
use crate::tables::Tables;

/// Runs the whole pipeline over a burst: `pkts[i]` came in on `meta[i].in_port`; on return every
/// `meta[i].action` is decided (never `Continue`). The caller counts the drops (`Meta::reason`).
#[inline]
pub fn decide<B: PacketBuf>(t: &Tables, pkts: &mut [B], meta: &mut [Meta]) {
    debug_assert_eq!(pkts.len(), meta.len());
    classify::run(t, pkts, meta);
    port_security::run(t, pkts, meta);
    arp_responder::run(t, pkts, meta);
    nd_responder::run(t, pkts, meta);
    l2_switch::run(t, pkts, meta);
}

/// [`decide`], counting the drops in `drops`.
pub fn run<B: PacketBuf>(t: &Tables, pkts: &mut [B], meta: &mut [Meta], drops: &mut DropCounters) {
    decide(t, pkts, meta);
    for m in meta.iter() {
        if m.action == Action::Drop {
            drops.count(m.reason);
        }
    }
}

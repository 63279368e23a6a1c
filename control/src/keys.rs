//! The keys the dataplane's tables know things by: a network ([`NetworkKey`]), a logical port
//! ([`LportKey`]), a node ([`ChassisKey`]) and a router ([`RouterKey`]), each its own type so that one
//! is never passed for another.
//!
//! Today every node makes its own: [`Keys`] gives each id a small integer the first time the node
//! compiles it (1, 2, … per kind), stable for the life of the controller (never reclaimed), so that two
//! compilations agree and the dataplane's per-key state survives a publish. Keys that cross the wire
//! (tunnels) must be the cloud's instead, the same on every node: each type's documentation says where
//! its values will come from then.
//!
//! The pipelines' tables take plain `u32`s for now (`pipelines::tables`): the compiler converts them
//! (`u32::from`) in one place, where a fragment is put into the tables or read back from them (the tables'
//! side of `compile::fragment`). The tables will take these types too.
//!
//! ```
//! use control::keys::Keys;
//!
//! let mut keys = Keys::default();
//! let net1 = keys.network("net1");
//! assert_eq!(keys.network("net2"), keys.network("net2"), "one id, one key");
//! assert_ne!(keys.network("net2"), net1);
//! assert_eq!(u32::from(keys.router("r1")), 1, "each kind counts on its own");
//! ```

use std::collections::HashMap;

macro_rules! key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl From<$name> for u32 {
            /// The tables' integer (until the tables take the key itself).
            fn from(k: $name) -> u32 {
                k.0
            }
        }
    };
}

key! {
    /// A network's key: its broadcast domain in the tables (L2 lookups, ARP/ND, the flood lists, router
    /// interfaces).
    ///
    /// Today: given by [`Keys::network`] on this node, from the network's id. With tunnels: the
    /// network's segmentation ID (`provider:segmentation_id`, [`crate::model::Network::segmentation_id`]),
    /// allocated by the API and stored in the DB, the VNI every node puts on the wire for it.
    NetworkKey
}

key! {
    /// A logical port's key: a local port's in its entry, a remote port's where the tunnel stage is to
    /// deliver (`Meta::dst_lport`).
    ///
    /// Today: given by [`Keys::lport`] on this node, from the port's id. With tunnels, where it crosses the
    /// wire: a key every node agrees on, allocated once when the port is created and stored with it in
    /// the DB (as Dragonflow's `unique_key`).
    LportKey
}

key! {
    /// A node's key: the chassis a remote port is bound to, which the tunnel stage encapsulates for
    /// (`Meta::chassis`).
    ///
    /// Today: given by [`Keys::chassis`] on this node, from the port's `binding:host_id`. With tunnels:
    /// from the chassis' record in the DB ([`crate::model::Chassis`], which each node's controller
    /// registers), the same on every node.
    ChassisKey
}

key! {
    /// A router's key: which router a frame to a router interface MAC goes to.
    ///
    /// Today: given by [`Keys::router`] on this node, from the router's id; it does not leave the node.
    /// Should one ever cross the wire (a routed packet tunnelled to the router's node), from the DB as a
    /// port's.
    RouterKey
}

/// Keys given on this node, per kind: id → key, from 1, never reclaimed.
#[derive(Debug, Default)]
pub struct Keys {
    networks: Kind,
    lports: Kind,
    chassis: Kind,
    routers: Kind,
}

/// One kind's keys: id → key, and the last key given.
#[derive(Debug, Default)]
struct Kind(HashMap<String, u32>, u32);

impl Kind {
    fn key(&mut self, id: &str) -> u32 {
        if let Some(k) = self.0.get(id) {
            return *k;
        }
        self.1 += 1;
        self.0.insert(id.to_owned(), self.1);
        self.1
    }
}

impl Keys {
    /// Network `id`'s key.
    pub fn network(&mut self, id: &str) -> NetworkKey {
        NetworkKey(self.networks.key(id))
    }

    /// Port `id`'s key.
    pub fn lport(&mut self, id: &str) -> LportKey {
        LportKey(self.lports.key(id))
    }

    /// The key of the node named `host` (a port's `binding:host_id`).
    pub fn chassis(&mut self, host: &str) -> ChassisKey {
        ChassisKey(self.chassis.key(host))
    }

    /// Router `id`'s key.
    pub fn router(&mut self, id: &str) -> RouterKey {
        RouterKey(self.routers.key(id))
    }
}

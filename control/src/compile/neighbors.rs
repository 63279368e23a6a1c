//! The ARP/ND entries the tables answer for, and which claim on one wins. Several fragments may claim one
//! address (a VIP in several ports' allowed address pairs, a pair naming another port's address): every
//! claim is kept, and the entry goes to the last claim of the last owner, in the order ports by id, then
//! routers by id ([`Owner`]'s order). Taking a fragment out of the tables removes its entries even where
//! another fragment claims them too, and putting one in overwrites them: after the fragments are rebuilt,
//! each entry touched is set to its winner again (or removed if no claim is left).

use std::collections::{HashMap, HashSet};

use pipelines::tables::{IpNet, TablesBuilder};
use pipelines::wire::Mac;

use super::fragment::{set_neighbor, Claim};
use crate::keys::NetworkKey;

/// Who claims an ARP/ND entry; the greater one wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Owner {
    Port(String),
    Router(String),
}

/// Every claim on every ARP/ND entry in the tables, and the entries touched since they were last settled.
#[derive(Debug, Default)]
pub(crate) struct Neighbors {
    claims: HashMap<(NetworkKey, IpNet), Vec<(Owner, Mac)>>,
    touched: HashSet<(NetworkKey, IpNet)>,
}

impl Neighbors {
    pub(crate) fn add(&mut self, owner: &Owner, claims: &[Claim]) {
        for (key, mac) in claims {
            self.claims.entry(*key).or_default().push((owner.clone(), *mac));
            self.touched.insert(*key);
        }
    }

    pub(crate) fn remove(&mut self, owner: &Owner, claims: &[Claim]) {
        for (key, _) in claims {
            if let Some(v) = self.claims.get_mut(key) {
                v.retain(|(o, _)| o != owner);
                if v.is_empty() {
                    self.claims.remove(key);
                }
            }
            self.touched.insert(*key);
        }
    }

    /// Sets every entry touched since the last call to its winner (the last claim of the last owner).
    pub(crate) fn settle(&mut self, b: &mut TablesBuilder) {
        for key in self.touched.drain() {
            let winner = self.claims.get(&key).and_then(|v| v.iter().max_by(|x, y| x.0.cmp(&y.0)));
            set_neighbor(b, key, winner.map(|(_, mac)| *mac));
        }
    }
}

#[cfg(test)]
mod tests {
    use pipelines::tables::Tables;
    use pipelines::wire::Ipv4Addr;

    use super::*;
    use crate::keys::Keys;

    #[test]
    fn the_last_claim_of_the_last_owner_wins_and_a_removed_one_gives_way() {
        let net = Keys::default().network("n");
        let key = (net, IpNet::host_v4(Ipv4Addr::new(10, 0, 0, 9)));
        let mac = |i: u8| Mac([0xfa, 0x16, 0x3e, 0, 0, i]);
        let (r1, p1, p2) = (Owner::Router("r1".into()), Owner::Port("p1".into()), Owner::Port("p2".into()));
        let mut n = Neighbors::default();
        n.add(&r1, &[(key, mac(1))]);
        n.add(&p2, &[(key, mac(2)), (key, mac(3))]);
        n.add(&p1, &[(key, mac(4))]);
        // Each settle patches the tables the last one left.
        let mut t = Tables::default();
        let mut settled = |n: &mut Neighbors| {
            let mut b = TablesBuilder::from_tables(std::mem::take(&mut t));
            n.settle(&mut b);
            t = b.build();
            t.arp_lookup(net.into(), Ipv4Addr::new(10, 0, 0, 9))
        };
        assert_eq!(settled(&mut n), Some(mac(1)), "routers come after ports");
        n.remove(&r1, &[(key, mac(1))]);
        assert_eq!(settled(&mut n), Some(mac(3)), "p2 after p1, and its last claim");
        n.remove(&p2, &[(key, mac(2)), (key, mac(3))]);
        assert_eq!(settled(&mut n), Some(mac(4)));
        n.remove(&p1, &[(key, mac(4))]);
        assert_eq!(settled(&mut n), None, "no claim left: removed");
    }
}

//! Cross-connect ("patch") forwarding: every packet received on a port leaves by its peer port, untouched,
//! as testpmd's `io` mode does. Pairs are symmetric (A → B and B → A); a port in no pair drops what it
//! receives, counted as `patch.no_peer`.
//!
//! ```
//! use pipelines::patch::PatchMap;
//! let names = ["net_tap0", "net_tap1"];
//! let map = PatchMap::from_pairs(&names, &[("net_tap0", "net_tap1")]).unwrap();
//! assert_eq!(map.peer(0), Some(1));
//! assert_eq!(map.peer(1), Some(0));
//! ```

/// Index of a port in the dataplane's port list.
pub type PortIndex = usize;

/// Why a set of pairs is not a valid patch map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("patch names port {0:?}, which is not among the configured ports")]
    UnknownPort(String),
    #[error("port {0:?} is patched to itself")]
    SelfPatch(String),
    #[error("port {0:?} appears in more than one patch pair")]
    PatchedTwice(String),
}

/// For each port, the port its packets leave by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchMap {
    peer: Vec<Option<PortIndex>>,
}

impl PatchMap {
    /// Pairs ports in order: 0 ↔ 1, 2 ↔ 3, …; an odd last port stays unpaired.
    pub fn adjacent(ports: usize) -> PatchMap {
        let peer = (0..ports).map(|i| if i ^ 1 < ports { Some(i ^ 1) } else { None }).collect();
        PatchMap { peer }
    }

    /// Pairs given by name (`names` are the ports in index order); a name may also be the port's index.
    pub fn from_pairs<S: AsRef<str>>(names: &[S], pairs: &[(S, S)]) -> Result<PatchMap, PatchError> {
        let index = |n: &str| -> Result<PortIndex, PatchError> {
            names
                .iter()
                .position(|x| x.as_ref() == n)
                .or_else(|| n.parse::<usize>().ok().filter(|&i| i < names.len()))
                .ok_or_else(|| PatchError::UnknownPort(n.to_owned()))
        };
        let mut peer = vec![None; names.len()];
        for (a, b) in pairs {
            let (ia, ib) = (index(a.as_ref())?, index(b.as_ref())?);
            if ia == ib {
                return Err(PatchError::SelfPatch(a.as_ref().to_owned()));
            }
            for (i, n) in [(ia, a), (ib, b)] {
                if peer[i].is_some() {
                    return Err(PatchError::PatchedTwice(n.as_ref().to_owned()));
                }
            }
            peer[ia] = Some(ib);
            peer[ib] = Some(ia);
        }
        Ok(PatchMap { peer })
    }

    /// The port that packets from `port` leave by.
    #[inline]
    pub fn peer(&self, port: PortIndex) -> Option<PortIndex> {
        self.peer.get(port).copied().flatten()
    }

    pub fn ports(&self) -> usize {
        self.peer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_pairs_and_odd_port() {
        let m = PatchMap::adjacent(3);
        assert_eq!((m.peer(0), m.peer(1), m.peer(2), m.peer(3)), (Some(1), Some(0), None, None));
    }

    #[test]
    fn pairs_by_name_or_index() {
        let names = ["a", "b", "c", "d"];
        let m = PatchMap::from_pairs(&names, &[("a", "d"), ("1", "c")]).unwrap();
        assert_eq!((m.peer(0), m.peer(3), m.peer(1), m.peer(2)), (Some(3), Some(0), Some(2), Some(1)));
    }

    #[test]
    fn bad_pairs_are_refused() {
        let names = ["a", "b", "c"];
        assert_eq!(PatchMap::from_pairs(&names, &[("a", "x")]), Err(PatchError::UnknownPort("x".into())));
        assert_eq!(PatchMap::from_pairs(&names, &[("b", "1")]), Err(PatchError::SelfPatch("b".into())));
        assert_eq!(PatchMap::from_pairs(&names, &[("a", "b"), ("c", "a")]), Err(PatchError::PatchedTwice("a".into())));
    }
}

//! Segments: how a network crosses between nodes, Neutron's ML2 type drivers in one place. A network's
//! `provider:network_type`, `provider:physical_network` and `provider:segmentation_id` are checked when
//! the request gives them (a provider network, as an admin makes one) or allocated when it does not (a
//! tenant network), stored with the network, shown as Neutron shows them, and given back when the network
//! is deleted. Its MTU follows from the underlay's and the encapsulation's overhead, as Neutron computes
//! it.
//!
//! | type | physical network | segmentation ID | a tenant's ID from | MTU on a 1500 underlay |
//! |---|---|---|---|---|
//! | `vxlan` | none | VNI 1 to 2^24 − 1 | `--vni-ranges` | 1450 (outer IPv4 20, UDP 8, VXLAN 8, Ethernet 14) |
//! | `geneve` | none | VNI 1 to 2^24 − 1 | `--geneve-vni-ranges` | 1450 (Neutron's 30 + IPv4: no options sent) |
//! | `gre` | none | key 1 to 2^32 − 1 | `--gre-id-ranges` | 1458 (IPv4 20, GRE with key 8, Ethernet 14) |
//! | `vlan` | one of `--network-vlan-ranges` | VLAN 1 to 4094 | that physnet's ranges | 1500 |
//! | `flat` | one of `--flat-networks` (`*`: any) | none | — (one network per physnet) | 1500 |
//! | `local` | none | none | — (never leaves its node) | 1500 |
//!
//! An ID is the cloud's: unique per type (per physical network for VLANs), even between API servers,
//! because it is taken by creating the DB entry `segment.<type>/<id>` (`segment.vlan.<physnet>/<id>`,
//! `segment.flat/<physnet>`), which fails if it exists, as addresses are taken (`ipam`). A tenant network
//! gets the first of `--tenant-network-types` with a free ID, the lowest free one of its ranges. A provider
//! network may take an ID outside the ranges, as in Neutron: the ranges are what tenants get, the type's
//! limits bind everyone. Each type keeps its own IDs (VNI 100 over VXLAN and over Geneve are two networks),
//! as Neutron's allocation tables do; a node tells them apart by the encapsulation.
//!
//! Errors are Neutron's: `InvalidInput` (400) for a bad type, physical network, ID or MTU;
//! `TunnelIdInUse`, `VlanIdInUse`, `FlatNetworkInUse` (409) for a taken one; `NoNetworkAvailable` (503)
//! when no tenant type has a free ID.

use std::fmt;
use std::str::FromStr;

use axum::http::StatusCode;

use super::error::{ApiError, ApiResult};
use super::ipam::{give_back, take_first_free};
use crate::db::{Db, DbError};
use crate::model::{Network, NetworkType};

/// An inclusive range of IDs.
pub type IdRange = (u32, u32);

/// What the API allocates segments from, and the MTUs it computes: Neutron's `[ml2]`, `[ml2_type_*]`
/// and `global_physnet_mtu` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments {
    /// The types a network created without provider attributes may get, tried in order
    /// (`--tenant-network-types`, Neutron's `tenant_network_types`).
    pub tenant_types: Vec<NetworkType>,
    /// VXLAN VNIs for tenant networks (`vni_ranges` of `[ml2_type_vxlan]`).
    pub vxlan: Vec<IdRange>,
    /// Geneve VNIs for tenant networks.
    pub geneve: Vec<IdRange>,
    /// GRE keys for tenant networks (`tunnel_id_ranges`).
    pub gre: Vec<IdRange>,
    /// The physical networks VLAN networks may use, each with the VLANs tenants get there (none: provider
    /// networks only), `network_vlan_ranges`.
    pub vlan: Vec<(String, Vec<IdRange>)>,
    /// The physical networks flat networks may use; `*` allows any (`flat_networks`).
    pub flat: Vec<String>,
    /// The underlay's MTU (`global_physnet_mtu`).
    pub physnet_mtu: u32,
    /// The tunnels' outer IP version, 4 or 6 (`overlay_ip_version`): 20 or 40 bytes of overhead.
    pub overlay_ip_version: u8,
}

impl Default for Segments {
    /// VXLAN tenant networks with VNIs 1 to 65535, Geneve and GRE IDs in the same range for provider
    /// networks asking for them, no physical network (VLAN and flat networks need one configured), a 1500
    /// underlay over IPv4.
    fn default() -> Segments {
        Segments {
            tenant_types: vec![NetworkType::Vxlan],
            vxlan: vec![(1, 65535)],
            geneve: vec![(1, 65535)],
            gre: vec![(1, 65535)],
            vlan: Vec::new(),
            flat: Vec::new(),
            physnet_mtu: 1500,
            overlay_ip_version: 4,
        }
    }
}

/// The name of a type, as the API spells it.
pub fn type_name(t: NetworkType) -> &'static str {
    match t {
        NetworkType::Vxlan => "vxlan",
        NetworkType::Geneve => "geneve",
        NetworkType::Gre => "gre",
        NetworkType::Vlan => "vlan",
        NetworkType::Flat => "flat",
        NetworkType::Local => "local",
    }
}

impl FromStr for NetworkType {
    type Err = String;

    fn from_str(s: &str) -> Result<NetworkType, String> {
        [
            NetworkType::Vxlan,
            NetworkType::Geneve,
            NetworkType::Gre,
            NetworkType::Vlan,
            NetworkType::Flat,
            NetworkType::Local,
        ]
        .into_iter()
        .find(|&t| type_name(t) == s)
        .ok_or_else(|| format!("network_type value '{s}' not supported"))
    }
}

impl fmt::Display for NetworkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(type_name(*self))
    }
}

/// The IDs a type's segments may have at all, whoever asks; `None`: the type has none.
fn id_limits(t: NetworkType) -> Option<IdRange> {
    match t {
        NetworkType::Vxlan | NetworkType::Geneve => Some((1, (1 << 24) - 1)),
        NetworkType::Gre => Some((1, u32::MAX)),
        NetworkType::Vlan => Some((1, 4094)),
        NetworkType::Flat | NetworkType::Local => None,
    }
}

/// Parses ID ranges as Neutron's configuration writes them: `MIN:MAX[,MIN:MAX…]` (or one ID), each
/// within `limits` and not upside down.
pub fn parse_ranges(s: &str, limits: IdRange) -> Result<Vec<IdRange>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let (a, b) = r.split_once(':').unwrap_or((r, r));
            let id = |x: &str| x.trim().parse::<u32>().map_err(|_| format!("{r}: {x:?} is not an ID"));
            let (a, b) = (id(a)?, id(b)?);
            if a > b || a < limits.0 || b > limits.1 {
                return Err(format!("{r}: not a range within {}:{}", limits.0, limits.1));
            }
            Ok((a, b))
        })
        .collect()
}

/// Parses `--network-vlan-ranges`: `PHYSNET[:MIN:MAX][,…]`; a physical network named twice has the union
/// of its ranges.
pub fn parse_vlan_ranges(s: &str) -> Result<Vec<(String, Vec<IdRange>)>, String> {
    let mut out: Vec<(String, Vec<IdRange>)> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let (net, range) = match item.split_once(':') {
            Some((net, range)) => (net, parse_ranges(range, (1, 4094))?),
            None => (item, Vec::new()),
        };
        if net.is_empty() || net.contains(['/', ' ']) {
            return Err(format!("{item}: {net:?} is not a physical network name"));
        }
        match out.iter_mut().find(|(n, _)| n == net) {
            Some((_, r)) => r.extend(range),
            None => out.push((net.to_owned(), range)),
        }
    }
    Ok(out)
}

fn invalid(message: impl fmt::Display) -> ApiError {
    ApiError::invalid_input(message)
}

/// The DB entry that holds a segment: (table, key).
fn entry(t: NetworkType, physnet: Option<&str>, id: Option<u32>) -> (String, String) {
    match (t, physnet, id) {
        (NetworkType::Vlan, Some(p), Some(id)) => (format!("segment.vlan.{p}"), id.to_string()),
        (NetworkType::Flat, Some(p), _) => ("segment.flat".into(), p.to_owned()),
        (t, _, id) => (format!("segment.{t}"), id.unwrap_or_default().to_string()),
    }
}

impl Segments {
    /// The ranges tenants get for a type (for VLAN, on `physnet`).
    fn tenant_ranges(&self, t: NetworkType, physnet: Option<&str>) -> &[IdRange] {
        match t {
            NetworkType::Vxlan => &self.vxlan,
            NetworkType::Geneve => &self.geneve,
            NetworkType::Gre => &self.gre,
            NetworkType::Vlan => {
                self.vlan.iter().find(|(n, _)| Some(n.as_str()) == physnet).map_or(&[], |(_, r)| r.as_slice())
            }
            NetworkType::Flat | NetworkType::Local => &[],
        }
    }

    /// The largest MTU a network of type `t` may have (Neutron's `get_mtu` of its type driver).
    pub fn max_mtu(&self, t: NetworkType) -> u32 {
        let ip = if self.overlay_ip_version == 6 { 40 } else { 20 };
        let overhead = match t {
            NetworkType::Vxlan | NetworkType::Geneve => 30 + ip,
            NetworkType::Gre => 22 + ip,
            NetworkType::Vlan | NetworkType::Flat | NetworkType::Local => 0,
        };
        self.physnet_mtu.saturating_sub(overhead)
    }

    /// Checks a network's MTU against its type's largest (400 `InvalidInput` above it, or below IPv4's
    /// 68).
    pub fn check_mtu(&self, n: &Network) -> ApiResult<()> {
        let max = n.network_type.map_or(self.physnet_mtu, |t| self.max_mtu(t));
        if n.mtu > max {
            return Err(invalid(format_args!("Requested MTU is too big, maximum is {max}")));
        }
        // (No least MTU here: a network below an IP version's takes no subnet of it, `subnets.rs`.)
        Ok(())
    }

    /// Checks a request's provider attributes (no DB): the type known, the physical network allowed for
    /// it, the ID within its type's limits, nothing given that the type does not have. Neutron's
    /// messages. A request without a type must give neither of the others.
    pub fn check_provider(&self, n: &Network) -> ApiResult<()> {
        let Some(t) = n.network_type else {
            if n.physical_network.is_some() || n.segmentation_id.is_some() {
                return Err(invalid("provider:network_type required"));
            }
            return Ok(());
        };
        let physnet = n.physical_network.as_deref();
        match t {
            NetworkType::Vxlan | NetworkType::Geneve | NetworkType::Gre | NetworkType::Local => {
                if physnet.is_some() {
                    return Err(invalid(format_args!(
                        "provider:physical_network specified for {} network",
                        t.to_string().to_uppercase()
                    )));
                }
            }
            NetworkType::Vlan => match physnet {
                Some(p) if !self.vlan.iter().any(|(n, _)| n == p) => {
                    return Err(invalid(format_args!("physical_network '{p}' unknown for VLAN provider network")))
                }
                None if n.segmentation_id.is_some() => {
                    return Err(invalid("segmentation_id requires physical_network for VLAN provider network"))
                }
                _ => {}
            },
            NetworkType::Flat => match physnet {
                None => return Err(invalid("physical_network required for flat provider network")),
                Some(p) if !self.flat.iter().any(|f| f == "*" || f == p) => {
                    return Err(invalid(format_args!("physical_network '{p}' unknown for flat provider network")))
                }
                _ => {}
            },
        }
        match (id_limits(t), n.segmentation_id) {
            (None, Some(_)) => Err(invalid(format_args!("segmentation_id specified for {t} network"))),
            (Some((a, b)), Some(id)) if !(a..=b).contains(&id) => {
                Err(invalid(format_args!("segmentation_id out of range ({a} through {b})")))
            }
            _ => Ok(()),
        }
    }

    /// Takes the segment `n` asks for, or a tenant one if it asks for none, for network `n.id`: sets its
    /// type, physical network and ID. `n` passed [`Segments::check_provider`].
    pub fn take(&self, db: &dyn Db, n: &mut Network) -> ApiResult<()> {
        let Some(t) = n.network_type else { return self.take_tenant(db, n) };
        let physnet = n.physical_network.clone();
        let owner = n.id.as_bytes();
        match (t, physnet.as_deref(), n.segmentation_id) {
            (NetworkType::Local, _, _) => Ok(()),
            (NetworkType::Vlan, None, _) => {
                // Neutron: a VLAN provider network without a physical network takes a tenant VLAN of any.
                for (p, _) in &self.vlan {
                    if self.take_from(db, n, NetworkType::Vlan, Some(p))? {
                        return Ok(());
                    }
                }
                Err(no_network())
            }
            (t, p, None) if id_limits(t).is_some() => {
                if self.take_from(db, n, t, p)? {
                    Ok(())
                } else {
                    Err(no_network())
                }
            }
            (t, p, id) => {
                let (table, key) = entry(t, p, id);
                match db.create(&table, &key, owner) {
                    Ok(_) => Ok(()),
                    Err(DbError::AlreadyExists) => Err(in_use(t, p, id)),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// The first tenant type with a free ID.
    fn take_tenant(&self, db: &dyn Db, n: &mut Network) -> ApiResult<()> {
        for &t in &self.tenant_types {
            let taken = match t {
                NetworkType::Local => true,
                NetworkType::Flat => false,
                NetworkType::Vlan => {
                    let mut taken = false;
                    for (p, _) in &self.vlan {
                        if self.take_from(db, n, t, Some(p))? {
                            taken = true;
                            break;
                        }
                    }
                    taken
                }
                t => self.take_from(db, n, t, None)?,
            };
            if taken {
                n.network_type = Some(t);
                return Ok(());
            }
        }
        Err(no_network())
    }

    /// Takes the lowest free tenant ID of type `t` (on `physnet`) for `n`; false if none is free.
    fn take_from(&self, db: &dyn Db, n: &mut Network, t: NetworkType, physnet: Option<&str>) -> ApiResult<bool> {
        let ranges: Vec<(u128, u128)> =
            self.tenant_ranges(t, physnet).iter().map(|&(a, b)| (u128::from(a), u128::from(b))).collect();
        let (table, _) = entry(t, physnet, Some(0));
        let Some(id) = take_first_free(db, &table, &ranges, |x| x.to_string(), &n.id)? else { return Ok(false) };
        n.network_type = Some(t);
        n.physical_network = physnet.map(str::to_owned);
        n.segmentation_id = Some(id as u32);
        Ok(true)
    }

    /// Gives back the segment of a deleted network (or of one whose creation failed after [`take`]).
    ///
    /// [`take`]: Segments::take
    pub fn give_back(&self, db: &dyn Db, n: &Network) {
        let Some(t) = n.network_type.filter(|&t| t != NetworkType::Local) else { return };
        let (table, key) = entry(t, n.physical_network.as_deref(), n.segmentation_id);
        // Only the network's own entry: a network stored before segments were allocated has none.
        if db.get(&table, &key).ok().flatten().is_some_and(|e| e.value == n.id.as_bytes()) {
            give_back(db, &table, &key, u128::from(n.segmentation_id.unwrap_or_default()));
        }
    }
}

fn no_network() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "NoNetworkAvailable",
        "Unable to create the network. No tenant network is available for allocation.",
    )
}

fn in_use(t: NetworkType, physnet: Option<&str>, id: Option<u32>) -> ApiError {
    let id = id.unwrap_or_default();
    let p = physnet.unwrap_or_default();
    match t {
        NetworkType::Vlan => ApiError::conflict(
            "VlanIdInUse",
            format!("Unable to create the network. The VLAN {id} on physical network {p} is in use."),
        ),
        NetworkType::Flat => ApiError::conflict(
            "FlatNetworkInUse",
            format!("Unable to create the flat network. Physical network {p} is in use."),
        ),
        _ => {
            ApiError::conflict("TunnelIdInUse", format!("Unable to create the network. The tunnel ID {id} is in use."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(id: &str, t: Option<&str>, physnet: Option<&str>, seg: Option<u32>) -> Network {
        serde_json::from_value(serde_json::json!({"id": id, "provider:network_type": t,
            "provider:physical_network": physnet, "provider:segmentation_id": seg}))
        .unwrap()
    }

    fn config() -> Segments {
        Segments {
            tenant_types: vec![NetworkType::Vxlan, NetworkType::Vlan],
            // Not the default range: other tests of this process allocate from that one (`ipam`'s hints are
            // per table, process-wide).
            vxlan: vec![(70_000, 70_001)],
            vlan: vec![("phys1".into(), vec![(100, 100)]), ("phys2".into(), Vec::new())],
            flat: vec!["ext".into()],
            ..Segments::default()
        }
    }

    #[test]
    fn ranges_parse_as_neutron_writes_them() {
        assert_eq!(parse_ranges("1:1000, 2000:2000,7", (1, 4094)), Ok(vec![(1, 1000), (2000, 2000), (7, 7)]));
        assert!(parse_ranges("5:1", (1, 4094)).is_err());
        assert!(parse_ranges("0:10", (1, 4094)).is_err());
        assert!(parse_ranges("1:x", (1, 4094)).is_err());
        assert_eq!(
            parse_vlan_ranges("phys1:100:199,phys2,phys1:300:300"),
            Ok(vec![("phys1".into(), vec![(100, 199), (300, 300)]), ("phys2".into(), vec![])])
        );
        assert!(parse_vlan_ranges("phys1:1:5000").is_err());
        assert_eq!("geneve".parse::<NetworkType>(), Ok(NetworkType::Geneve));
        assert!("vxlan6".parse::<NetworkType>().is_err());
    }

    #[test]
    fn provider_attributes_are_checked_as_neutron_checks_them() {
        let c = config();
        let ok = |t, p, s| c.check_provider(&net("n", t, p, s)).is_ok();
        assert!(ok(None, None, None));
        assert!(!ok(None, None, Some(5)), "an ID without a type");
        assert!(ok(Some("vxlan"), None, Some(16_777_215)));
        assert!(!ok(Some("vxlan"), None, Some(16_777_216)));
        assert!(!ok(Some("vxlan"), Some("phys1"), None), "a tunnel has no physical network");
        assert!(ok(Some("gre"), None, Some(u32::MAX)));
        assert!(ok(Some("vlan"), Some("phys2"), Some(4094)));
        assert!(!ok(Some("vlan"), Some("phys2"), Some(4095)));
        assert!(!ok(Some("vlan"), Some("nowhere"), Some(5)), "unknown physnet");
        assert!(!ok(Some("vlan"), None, Some(5)), "an ID needs its physnet");
        assert!(ok(Some("flat"), Some("ext"), None));
        assert!(!ok(Some("flat"), Some("ext"), Some(1)), "flat has no ID");
        assert!(!ok(Some("flat"), None, None));
        assert!(!ok(Some("flat"), Some("phys1"), None), "not a flat physnet");
    }

    #[test]
    fn mtus_follow_the_underlay_minus_the_encapsulation() {
        let mut c = Segments::default();
        let mtus = |c: &Segments| {
            [NetworkType::Vxlan, NetworkType::Geneve, NetworkType::Gre, NetworkType::Vlan].map(|t| c.max_mtu(t))
        };
        assert_eq!(mtus(&c), [1450, 1450, 1458, 1500]);
        c.physnet_mtu = 9000;
        c.overlay_ip_version = 6;
        assert_eq!(mtus(&c), [8930, 8930, 8938, 9000]);
        let mut n = net("n", Some("vxlan"), None, Some(1));
        n.mtu = 8931;
        assert!(c.check_mtu(&n).is_err());
        n.mtu = 8930;
        assert!(c.check_mtu(&n).is_ok());
    }

    #[test]
    fn ids_are_taken_once_and_given_back() {
        let dir = std::env::temp_dir().join(format!("df-segments-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = crate::db::embedded::EmbeddedDb::open(&dir).unwrap();
        let c = config();
        let take = |id: &str, t, p, s| {
            let mut n = net(id, t, p, s);
            c.take(&db, &mut n).map(|()| n)
        };
        let seg = |n: &Network| (n.network_type, n.physical_network.clone(), n.segmentation_id);
        // Tenant networks: VXLAN 70000 and 70001, then the VLAN range of phys1, then none.
        let a = take("a", None, None, None).unwrap();
        assert_eq!(seg(&a), (Some(NetworkType::Vxlan), None, Some(70_000)));
        assert_eq!(seg(&take("b", None, None, None).unwrap()), (Some(NetworkType::Vxlan), None, Some(70_001)));
        assert_eq!(
            seg(&take("c", None, None, None).unwrap()),
            (Some(NetworkType::Vlan), Some("phys1".into()), Some(100))
        );
        let e = take("d", None, None, None).unwrap_err();
        assert!(format!("{e:?}").contains("NoNetworkAvailable"), "{e:?}");
        // Provider networks: an ID outside the ranges is fine, a taken one is not.
        assert!(take("e", Some("vxlan"), None, Some(5000)).is_ok());
        let e = take("f", Some("vxlan"), None, Some(70_001)).unwrap_err();
        assert!(format!("{e:?}").contains("TunnelIdInUse"), "{e:?}");
        assert!(take("g", Some("geneve"), None, Some(70_001)).is_ok(), "each type has its own IDs");
        let e = take("h", Some("vlan"), Some("phys1"), Some(100)).unwrap_err();
        assert!(format!("{e:?}").contains("VlanIdInUse"), "{e:?}");
        assert!(take("i", Some("vlan"), Some("phys2"), Some(100)).is_ok(), "each physnet has its own VLANs");
        assert!(take("j", Some("flat"), Some("ext"), None).is_ok());
        let e = take("k", Some("flat"), Some("ext"), None).unwrap_err();
        assert!(format!("{e:?}").contains("FlatNetworkInUse"), "{e:?}");
        // Given back, an ID is taken again, by the next tenant network.
        c.give_back(&db, &a);
        assert_eq!(seg(&take("l", None, None, None).unwrap()), (Some(NetworkType::Vxlan), None, Some(70_000)));
        // Another network's entry is not given back by a network claiming the same segment.
        c.give_back(&db, &net("intruder", Some("vxlan"), None, Some(70_001)));
        assert!(take("m", Some("vxlan"), None, Some(70_001)).is_err());
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

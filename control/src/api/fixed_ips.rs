//! A port's fixed IPs, as Neutron's IPAM gives them (`ipam_pluggable_backend._allocate_ips_for_port`,
//! `_test_fixed_ips_for_port`, `_update_ips_for_port`; `ipam_backend_mixin._get_changed_ips_for_port`):
//!
//! - asked for nothing: one address from the first IPv4 subnet and one from the first IPv6 subnet that
//!   is not auto-address ([`slaac`]);
//! - asked for a list: each entry names a subnet, an address, or both; an entry with an address is that
//!   address (409 if somebody has it), one with only a subnet any free address of its pools;
//! - every port but a router's (`ROUTER_INTERFACE_OWNERS_SNAT`) also has its EUI-64 address on every
//!   auto-address subnet of its network, asked or not, kept across updates, computed again when its MAC
//!   changes; naming such a subnet asks for nothing more, naming another address there is a 400
//!   (`AllocationOnAutoAddressSubnet`) but for a router interface (`ROUTER_INTERFACE_OWNERS`), which
//!   takes the address it names, or one of the pools.
//!
//! On an update the port keeps the addresses it already has and the request names (by address first,
//! then one per subnet named alone); the rest are taken. Every address is taken in IPAM
//! (`ipam.<subnet>/<address>`), so that none is ever given twice; on an error what was taken is given back.

use std::net::IpAddr;

use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::ipam;
use super::slaac::{self, is_auto_address};
use super::subnets::stored_cidr;
use crate::cidr::Cidr;
use crate::db::Db;
use crate::model::{FixedIp, Network, Port, Store, Subnet, ROUTER_INTERFACE};

/// Neutron's `ROUTER_INTERFACE_OWNERS`: ports that may take any address of an auto-address subnet.
pub(super) const ROUTER_INTERFACE_OWNERS: &[&str] =
    &[ROUTER_INTERFACE, "network:ha_router_replicated_interface", "network:router_interface_distributed"];
/// Neutron's `ROUTER_INTERFACE_OWNERS_SNAT`: ports that get no automatic address.
pub(super) const ROUTER_INTERFACE_OWNERS_SNAT: &[&str] = &[
    ROUTER_INTERFACE,
    "network:ha_router_replicated_interface",
    "network:router_interface_distributed",
    "network:router_centralized_snat",
];

/// The fixed IPs a request asks for.
pub(super) enum Requested {
    /// None named: Neutron's default.
    Default,
    /// `fixed_ips` as the request gave them.
    Given(Vec<Value>),
    /// The port's own, on a new MAC: its automatic addresses follow the MAC, the others stay.
    Kept,
}

/// One address to give: on `subnet`, `ip` or any of its pools.
struct Ask<'s> {
    subnet: &'s Subnet,
    ip: Option<IpAddr>,
    /// Asked for by Neutron's default (the error names the network).
    default: bool,
}

/// The fixed IPs port `p` (its network, MAC and owner as they will be) gets for `requested`, keeping
/// those of `cur` (its addresses now, on an update) that the request names. On an error, what was
/// taken is given back.
pub(super) fn take_fixed_ips(db: &dyn Db, p: &Port, requested: Requested, cur: &[FixedIp]) -> ApiResult<Vec<FixedIp>> {
    let subnets = network_subnets(db, &p.network_id)?;
    let asks = asks(p, &subnets, requested, cur)?;
    take(db, p, &asks, cur)
}

/// The subnets of network `id`.
pub(super) fn network_subnets(db: &dyn Db, id: &str) -> ApiResult<Vec<Subnet>> {
    let s = Store::new(db);
    let net: Network = s.get(id)?.ok_or_else(|| ApiError::not_found("network", id))?;
    Ok(net.subnets.iter().filter_map(|id| s.get::<Subnet>(id).ok().flatten()).collect())
}

/// What `requested` asks of `subnets` for port `p`, checked, in order.
fn asks<'s>(p: &Port, subnets: &'s [Subnet], requested: Requested, cur: &[FixedIp]) -> ApiResult<Vec<Ask<'s>>> {
    let owner = p.device_owner.as_str();
    let automatic = !ROUTER_INTERFACE_OWNERS_SNAT.contains(&owner);
    let mut asks = Vec::new();
    match requested {
        Requested::Default => {
            for v in [4u8, 6] {
                if let Some(subnet) = subnets.iter().find(|s| s.ip_version == v && !is_auto_address(s)) {
                    asks.push(Ask { subnet, ip: None, default: true });
                }
            }
        }
        Requested::Given(list) => {
            for f in list {
                let (subnet, ip) = named(p, subnets, &f)?;
                if is_auto_address(subnet) {
                    if let Some(ip) = ip.filter(|_| !ROUTER_INTERFACE_OWNERS.contains(&owner)) {
                        if ip != slaac::address_on(subnet, &p.mac_address)? {
                            return Err(slaac::refused(ip, subnet));
                        }
                    }
                    if automatic {
                        continue; // its automatic address, below
                    }
                }
                asks.push(Ask { subnet, ip, default: false });
            }
        }
        Requested::Kept => {
            for f in cur {
                let Some(subnet) = subnets.iter().find(|s| s.id == f.subnet_id) else { continue };
                if !(automatic && is_auto_address(subnet)) {
                    asks.push(Ask { subnet, ip: f.ip_address.parse().ok(), default: false });
                }
            }
        }
    }
    if automatic {
        for subnet in subnets.iter().filter(|s| is_auto_address(s)) {
            asks.push(Ask { subnet, ip: Some(slaac::address_on(subnet, &p.mac_address)?), default: false });
        }
    }
    Ok(asks)
}

/// The subnet and address a `fixed_ips` entry names (the subnet of its address when it names none).
fn named<'s>(p: &Port, subnets: &'s [Subnet], f: &Value) -> ApiResult<(&'s Subnet, Option<IpAddr>)> {
    let ip = match f.get("ip_address").and_then(Value::as_str) {
        Some(ip) => {
            Some(ip.parse::<IpAddr>().map_err(|_| ApiError::bad(format!("Invalid input for ip_address: '{ip}'")))?)
        }
        None => None,
    };
    match (f.get("subnet_id").and_then(Value::as_str), ip) {
        (Some(id), _) => {
            let sub = subnets.iter().find(|x| x.id == id).ok_or_else(|| {
                ApiError::bad(format!("Invalid input: subnet {id} is not on network {}", p.network_id))
            })?;
            if let Some(a) = ip {
                if !stored_cidr(sub)?.contains(a) {
                    return Err(ApiError::bad(format!("IP address {a} is not a valid IP for the specified subnet.")));
                }
            }
            Ok((sub, ip))
        }
        (None, Some(a)) => {
            let sub = subnets.iter().find(|x| Cidr::parse_network(&x.cidr).is_some_and(|c| c.contains(a)));
            let sub = sub.ok_or_else(|| {
                ApiError::bad(format!("IP address {a} is not a valid IP for any subnet of network {}", p.network_id))
            })?;
            Ok((sub, ip))
        }
        (None, None) => Err(ApiError::bad("a fixed IP needs subnet_id or ip_address")),
    }
}

/// The addresses for `asks`: those of `cur` they name kept (by address first, then one per subnet
/// named alone), the others taken; kept ones first, each part in the order asked.
fn take(db: &dyn Db, p: &Port, asks: &[Ask], cur: &[FixedIp]) -> ApiResult<Vec<FixedIp>> {
    let mut got: Vec<Option<(FixedIp, bool)>> = vec![None; asks.len()];
    let mut kept: Vec<&FixedIp> = Vec::new();
    for by_address in [true, false] {
        for (i, a) in asks.iter().enumerate().filter(|(_, a)| a.ip.is_some() == by_address) {
            let mine = cur.iter().find(|k| {
                k.subnet_id == a.subnet.id
                    && !kept.contains(k)
                    && a.ip.is_none_or(|ip| k.ip_address.parse::<IpAddr>().ok() == Some(ip))
            });
            if let Some(k) = mine {
                kept.push(k);
                got[i] = Some((k.clone(), true));
            }
        }
    }
    let mut taken: Vec<FixedIp> = Vec::new();
    for (i, a) in asks.iter().enumerate() {
        if got[i].is_some() {
            continue;
        }
        match take_one(db, p, a) {
            Ok(f) => {
                taken.push(f.clone());
                got[i] = Some((f, false));
            }
            Err(e) => {
                release_ips(db, &taken);
                return Err(e);
            }
        }
    }
    let (mut mine, new): (Vec<_>, Vec<_>) = got.into_iter().flatten().partition(|(_, kept)| *kept);
    mine.extend(new);
    Ok(mine.into_iter().map(|(f, _)| f).collect())
}

/// Takes the address `a` asks for, for port `p`.
fn take_one(db: &dyn Db, p: &Port, a: &Ask) -> ApiResult<FixedIp> {
    let sub = a.subnet;
    let ip = match a.ip {
        Some(ip) => {
            let ip = ip.to_string();
            if sub.gateway_ip.as_deref() == Some(ip.as_str()) || !ipam::take(db, &sub.id, &ip, &p.id)? {
                return Err(ApiError::conflict(
                    "IpAddressAlreadyAllocated",
                    format!("IP address {ip} already allocated in subnet {}", sub.id),
                ));
            }
            ip
        }
        None => ipam::allocate(db, sub, &p.id)?.ok_or_else(|| {
            let message = match a.default {
                true => format!("No more IP addresses available on network {}.", p.network_id),
                false => format!("No more IP addresses available on subnet {}.", sub.id),
            };
            ApiError::conflict("IpAddressGenerationFailure", message)
        })?,
    };
    Ok(FixedIp { subnet_id: sub.id.clone(), ip_address: ip })
}

/// One address on `sub` for port `p`, as a port that names the subnet alone gets it: its EUI-64 address
/// on an auto-address subnet, else one of the pools (`None` when they are full or empty).
pub(super) fn take_on(db: &dyn Db, p: &Port, sub: &Subnet) -> ApiResult<Option<FixedIp>> {
    if is_auto_address(sub) {
        let ip = slaac::address_on(sub, &p.mac_address)?;
        return take_one(db, p, &Ask { subnet: sub, ip: Some(ip), default: false }).map(Some);
    }
    Ok(ipam::allocate(db, sub, &p.id)?.map(|ip| FixedIp { subnet_id: sub.id.clone(), ip_address: ip }))
}

/// Gives back addresses.
pub(super) fn release_ips<'a>(db: &dyn Db, ips: impl IntoIterator<Item = &'a FixedIp>) {
    for f in ips {
        ipam::release(db, &f.subnet_id, &f.ip_address);
    }
}

//! Subnets: `/v2.0/subnets`. The CIDR is a network (no host bits: [`Cidr::parse_network`]) of the
//! `ip_version` asked for and overlaps no other subnet of its network; the gateway is given (inside the
//! CIDR), null (none), or the first address; the pools are given (inside the CIDR, without the gateway)
//! or Neutron's defaults ([`ipam::default_pools`]); IPv6 modes follow Neutron's rules (`slaac.rs`: an
//! auto-address subnet is a /64). A new auto-address subnet gives its address to the ports already on its
//! network. A subnet with addresses allocated is not deleted (`SubnetInUse`), but for those of the ports
//! Neutron takes them from (`network:dhcp` and the other auto-deleted owners; every port but a router's on
//! an auto-address subnet), which lose them. After every change the network's DHCP port follows
//! (`dhcp_port.rs`).

use serde_json::Value;

use super::crud::{merge, new_id, to_json, visible, Attrs, Resource, Settings};
use super::dhcp_port;
use super::error::{ApiError, ApiResult};
use super::fixed_ips::{release_ips, ROUTER_INTERFACE_OWNERS};
use super::ipam;
use super::networks::auto_deleted;
use super::policy::{access_to_network, by_owner, forbidden, network_access, networks, Access, Caller};
use super::ports::edit_port;
use super::query::convert_ip_version;
use super::slaac::{self, is_auto_address};
use super::subnetpools;
use crate::cidr::{ip_from_bits, Cidr};
use crate::db::{Db, DbError};
use crate::model::{FixedIp, Network, Port, Standard, Store, Subnet, SubnetPool};

/// A stored subnet's CIDR: the API only stores valid ones, but the DB may hold anything (another writer,
/// damage): an error for this request, never a panic of the process.
pub(super) fn stored_cidr(s: &Subnet) -> ApiResult<Cidr> {
    Cidr::parse_network(&s.cidr)
        .ok_or_else(|| ApiError::internal(format!("stored subnet {} has an invalid cidr {:?}", s.id, s.cidr)))
}

/// The least MTU of an IP version's links: 68 for IPv4 (RFC 791), 1280 for IPv6 (RFC 8200).
pub(super) fn min_mtu(ip_version: u8) -> u32 {
    if ip_version == 6 {
        1280
    } else {
        68
    }
}

/// 409 if a network of MTU `mtu` cannot carry a subnet of `ip_version` (Neutron refuses such a subnet,
/// and such an MTU on a network with one).
pub(super) fn mtu_fits(mtu: u32, ip_version: u8, network: &str) -> ApiResult<()> {
    let min = min_mtu(ip_version);
    if mtu < min {
        return Err(ApiError::conflict(
            "NetworkMTUTooSmall",
            format!("The MTU {mtu} of network {network} is below IPv{ip_version}'s minimum of {min}."),
        ));
    }
    Ok(())
}

/// A subnet checked without the DB, and its CIDR.
pub(super) struct SubnetDraft {
    subnet: Subnet,
    cidr: Cidr,
}

impl Resource for Subnet {
    const ONE: &'static str = "subnet";
    const MANY: &'static str = "subnets";
    const CREATE: &'static [&'static str] = &[
        "name",
        "description",
        "project_id",
        "tenant_id",
        "network_id",
        "ip_version",
        "cidr",
        "gateway_ip",
        "allocation_pools",
        "dns_nameservers",
        "host_routes",
        "enable_dhcp",
        "ipv6_ra_mode",
        "ipv6_address_mode",
        "subnetpool_id",
        "use_default_subnetpool",
        "prefixlen",
        "segment_id",
    ];
    const CREATE_IGNORED: &'static [&'static str] = &["segment_id"];
    const UPDATE: &'static [&'static str] =
        &["name", "description", "dns_nameservers", "host_routes", "enable_dhcp", "gateway_ip"];

    const SHOWN: &'static [&'static str] = &["shared"];

    type Draft = SubnetDraft;

    /// With `shared`, its network's (Neutron filters subnets by it).
    fn views(db: &dyn Db, subnets: Vec<Subnet>) -> ApiResult<Vec<Value>> {
        let nets = networks(db)?;
        Ok(subnets
            .iter()
            .map(|s| {
                let mut v = to_json(s);
                v["shared"] = nets.get(&s.network_id).is_some_and(|n| n.shared).into();
                v
            })
            .collect())
    }

    /// The network's owner may change its subnets; those of a network others may see (shared or
    /// external) they may see.
    fn access(db: &dyn Db, caller: &Caller, views: &[Value]) -> ApiResult<Vec<Access>> {
        let nets = networks(db)?;
        Ok(views
            .iter()
            .map(|v| {
                let net = v["network_id"].as_str().and_then(|n| nets.get(n));
                by_owner(caller, v).max(net.map_or(Access::None, |n| network_access(caller, n)))
            })
            .collect())
    }

    /// A CIDR from the subnet pool named (`subnetpools.rs`).
    fn resolve(db: &dyn Db, attrs: &mut Attrs) -> ApiResult<()> {
        subnetpools::resolve(db, attrs)
    }

    /// On the caller's own network (`create_subnet`: admin or the network's owner), from a pool the
    /// caller may see.
    fn authorize_create(db: &dyn Db, caller: &Caller, attrs: &Attrs) -> ApiResult<()> {
        if let Some(pool) = attrs.get("subnetpool_id").and_then(Value::as_str) {
            visible::<SubnetPool>(db, caller, pool)?;
        }
        let net = attrs.get("network_id").and_then(Value::as_str).unwrap_or_default();
        match access_to_network(db, caller, net)? {
            Access::Write => Ok(()),
            Access::Read => Err(forbidden("create_subnet")),
            Access::None => Err(ApiError::not_found("network", net)),
        }
    }

    fn draft(mut attrs: Attrs, _: &Settings) -> ApiResult<SubnetDraft> {
        let cidr_s =
            attrs.get("cidr").and_then(Value::as_str).ok_or_else(|| ApiError::bad("cidr is required"))?.to_owned();
        let cidr = Cidr::parse_network(&cidr_s)
            .ok_or_else(|| ApiError::bad(format!("Invalid input for cidr: '{cidr_s}' is not a valid IP subnet")))?;
        // Neutron converts it to an integer (`convert_to_int`: the plugin's clients send "4").
        let version = match attrs.remove("ip_version") {
            None | Some(Value::Null) => u64::from(cidr.ip_version()),
            Some(v) => u64::from(convert_ip_version(&v)?),
        };
        if version != u64::from(cidr.ip_version()) {
            return Err(ApiError::bad(format!("Invalid input: cidr {cidr_s} is not an IPv{version} subnet")));
        }
        let network_id = attrs
            .get("network_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad("network_id is required"))?
            .to_owned();
        // Gateway: given (must be in the CIDR), null (none), or the first address.
        let gateway = match attrs.get("gateway_ip") {
            Some(Value::Null) => None,
            Some(Value::String(g)) => {
                let ip: std::net::IpAddr =
                    g.parse().map_err(|_| ApiError::bad(format!("Invalid input for gateway_ip: '{g}'")))?;
                if !cidr.contains(ip) {
                    return Err(ApiError::bad(format!(
                        "Gateway ip {g} conflicts with allocation pool or is outside {cidr_s}"
                    )));
                }
                Some(g.clone())
            }
            Some(_) => return Err(ApiError::bad("gateway_ip must be a string or null")),
            // (None if the CIDR holds no address after its first: a /32, a /128 at the top of the space.)
            None => cidr
                .base()
                .checked_add(1)
                .map(|b| ip_from_bits(cidr.is_v6(), b))
                .filter(|ip| cidr.contains(*ip))
                .map(|ip| ip.to_string()),
        };
        let gw_bits = gateway.as_deref().and_then(ipam::parse_ip).map(|(_, b)| b);
        let base = Subnet {
            standard: Standard::default(),
            id: new_id(),
            name: String::new(),
            project_id: String::new(),
            network_id,
            ip_version: version as u8,
            cidr: cidr_s.clone(),
            gateway_ip: gateway,
            allocation_pools: ipam::default_pools(&cidr, gw_bits),
            dns_nameservers: Vec::new(),
            host_routes: Vec::new(),
            enable_dhcp: true,
            ipv6_ra_mode: None,
            ipv6_address_mode: None,
            subnetpool_id: None,
            revision_number: 0,
        };
        attrs.remove("gateway_ip");
        let mut sub = merge(&base, attrs)?;
        sub.ip_version = version as u8;
        slaac::check_modes(&sub, &cidr)?;
        for p in &sub.allocation_pools {
            let ok = |s: &str| s.parse().is_ok_and(|ip| cidr.contains(ip));
            if !ok(&p.start) || !ok(&p.end) || ipam::parse_ip(&p.start) > ipam::parse_ip(&p.end) {
                return Err(ApiError::bad(format!(
                    "The allocation pool {}-{} spans beyond the subnet cidr {cidr_s}.",
                    p.start, p.end
                )));
            }
            if gw_bits.is_some_and(|g| ipam::in_pools(&Subnet { allocation_pools: vec![p.clone()], ..sub.clone() }, g))
            {
                return Err(ApiError::conflict(
                    "GatewayConflictWithAllocationPools",
                    format!(
                        "Gateway ip {} conflicts with allocation pool {}-{}",
                        sub.gateway_ip.as_deref().unwrap_or(""),
                        p.start,
                        p.end
                    ),
                ));
            }
        }
        Ok(SubnetDraft { subnet: sub, cidr })
    }

    /// Stores the subnet if its network exists and no subnet of it overlaps, and attaches it to the
    /// network; then an auto-address subnet gives its addresses to the network's ports, and the network's
    /// DHCP port follows.
    fn insert(db: &dyn Db, draft: SubnetDraft) -> ApiResult<Subnet> {
        let SubnetDraft { subnet: sub, cidr } = draft;
        let (network_id, cidr_s) = (sub.network_id.clone(), sub.cidr.clone());
        let s = Store::new(db);
        let mut net: Network = s.get(&network_id)?.ok_or_else(|| ApiError::not_found("network", &network_id))?;
        mtu_fits(net.mtu, sub.ip_version, &network_id)?;
        let (all, _) = s.list::<Subnet>()?;
        if let Some(o) = all
            .iter()
            .filter(|o| o.network_id == network_id)
            .find(|o| Cidr::parse_network(&o.cidr).is_some_and(|c| c.overlaps(&cidr)))
        {
            return Err(ApiError::bad(format!("Invalid input for operation: Requested subnet with cidr: {cidr_s} for network: {network_id} overlaps with another subnet ({}).", o.cidr)));
        }
        let sub = s.create(sub)?;
        // Attach it to the network, retrying if the network moved meanwhile.
        loop {
            net.subnets.push(sub.id.clone());
            match s.update(net) {
                Ok(_) => break,
                Err(DbError::Conflict { .. }) => {
                    net = s.get(&network_id)?.ok_or_else(|| ApiError::not_found("network", &network_id))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if is_auto_address(&sub) {
            slaac::add_to_network_ports(db, &sub)?;
        }
        dhcp_port::sync_logged(db, &network_id);
        Ok(sub)
    }

    /// A new gateway follows the rules of a creation: inside the CIDR, outside the pools, not taken by
    /// a port. DHCP stays on with IPv6 modes.
    fn change(db: &dyn Db, _: &Settings, cur: &Subnet, attrs: Attrs) -> ApiResult<Subnet> {
        let next = merge(cur, attrs)?;
        slaac::check_dhcp_change(cur, &next)?;
        if next.gateway_ip != cur.gateway_ip {
            // A router's interface holds the gateway it has (Neutron's `GatewayIpInUse`).
            if let Some(old) = &cur.gateway_ip {
                let holder =
                    db.get(&ipam::ipam_table(&cur.id), old)?.map(|e| String::from_utf8_lossy(&e.value).into_owned());
                if let Some(p) = holder.map(|id| Store::new(db).get::<Port>(&id)).transpose()?.flatten() {
                    if ROUTER_INTERFACE_OWNERS.contains(&p.device_owner.as_str()) {
                        return Err(ApiError::conflict(
                            "GatewayIpInUse",
                            format!("Current gateway ip {old} already in use by port {}. Unable to update.", p.id),
                        ));
                    }
                }
            }
            if let Some(g) = &next.gateway_ip {
                let cidr = stored_cidr(cur)?;
                let ip = g.parse().ok().filter(|ip| cidr.contains(*ip));
                let Some(ip) = ip else {
                    return Err(ApiError::bad(format!("Invalid input for gateway_ip: '{g}' is not in {}", cur.cidr)));
                };
                let bits = ipam::parse_ip(g).map(|(_, b)| b).unwrap_or_default();
                if ipam::in_pools(cur, bits) || db.get(&ipam::ipam_table(&cur.id), &ip.to_string())?.is_some() {
                    return Err(ApiError::conflict(
                        "GatewayConflictWithAllocationPools",
                        format!("Gateway ip {g} conflicts with an allocation pool or a port"),
                    ));
                }
            }
        }
        Ok(next)
    }

    /// `enable_dhcp` turned on or off: the DHCP port follows.
    fn after_update(db: &dyn Db, _cur: &Subnet, written: &Subnet) {
        dhcp_port::sync_logged(db, &written.network_id);
    }

    /// Refused while a port that keeps its address (a router's; any but the auto-deleted ones on a
    /// subnet that is not auto-address) or a floating IP has an address on it, as Neutron's
    /// `_remove_subnet_ip_allocations_from_ports`.
    fn before_delete(db: &dyn Db, sub: &Subnet) -> ApiResult<()> {
        let id = &sub.id;
        let s = Store::new(db);
        for e in db.list(&ipam::ipam_table(id))?.0 {
            let owner = String::from_utf8_lossy(&e.value);
            if !s.get::<Port>(&owner)?.is_some_and(|p| loses_address(&p, sub)) {
                return Err(ApiError::conflict("SubnetInUse", format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet.")));
            }
        }
        Ok(())
    }

    /// The network forgets it, the ports lose their addresses on it, the DHCP port follows.
    fn after_delete(db: &dyn Db, _: &Settings, sub: &Subnet) -> ApiResult<()> {
        let s = Store::new(db);
        while let Some(mut net) = s.get::<Network>(&sub.network_id)? {
            net.subnets.retain(|x| *x != sub.id);
            match s.update(net) {
                Err(DbError::Conflict { .. }) => continue,
                r => {
                    r?;
                    break;
                }
            }
        }
        remove_addresses(db, sub)?;
        dhcp_port::sync_logged(db, &sub.network_id);
        Ok(())
    }
}

/// True if port `p` loses its address on `sub` when `sub` is deleted (instead of keeping it in use).
fn loses_address(p: &Port, sub: &Subnet) -> bool {
    !ROUTER_INTERFACE_OWNERS.contains(&p.device_owner.as_str()) && (auto_deleted(p) || is_auto_address(sub))
}

/// Takes the deleted subnet's addresses from the ports of its network, and releases them.
fn remove_addresses(db: &dyn Db, sub: &Subnet) -> ApiResult<()> {
    let (ports, _) = Store::new(db).list::<Port>()?;
    let on = |f: &FixedIp| f.subnet_id == sub.id;
    for p in ports.iter().filter(|p| p.network_id == sub.network_id && p.fixed_ips.iter().any(on)) {
        let mut removed = Vec::new();
        edit_port(db, &p.id, |q| {
            removed = q.fixed_ips.iter().filter(|f| on(f)).cloned().collect();
            q.fixed_ips.retain(|f| !on(f));
            !removed.is_empty()
        })?;
        release_ips(db, &removed);
    }
    Ok(())
}

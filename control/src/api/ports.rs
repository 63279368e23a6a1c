//! Ports: `/v2.0/ports`. A new port takes its MAC (given, or Neutron's `fa:16:3e:…`) and fixed IPs
//! (given, or one from the first subnet of each IP version) in the DB, so that no two ports ever get
//! the same one ([`ipam`]); without `security_groups` it gets its project's default group. An update
//! may change the fixed IPs: the new ones are taken before the write, the old ones released after it.
//! A router's interface port is deleted through the router (`PortInUse`); deleting a port
//! disassociates its floating IPs.

use serde_json::Value;

use super::crud::{merge, new_id, rand_u64, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::floating_ips::associate;
use super::ipam;
use super::security_groups::default_group;
use super::subnets::stored_cidr;
use crate::cidr::Cidr;
use crate::db::{Db, DbError};
use crate::model::{FixedIp, FloatingIp, Network, Port, SecurityGroup, Store, Subnet, ROUTER_INTERFACE};

/// A MAC as Neutron makes them: `fa:16:3e` and three random bytes.
fn neutron_mac() -> String {
    let r = rand_u64();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", r & 0xff, (r >> 8) & 0xff, (r >> 16) & 0xff)
}

/// A new MAC, unused in the network, taken for `port_id`.
pub(super) fn take_new_mac(db: &dyn Db, network_id: &str, port_id: &str) -> ApiResult<String> {
    loop {
        let mac = neutron_mac();
        match db.create(&ipam::mac_table(network_id), &mac, port_id.as_bytes()) {
            Ok(_) => return Ok(mac),
            Err(DbError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Gives back a port's fixed IPs and MAC.
pub(super) fn release_port(db: &dyn Db, p: &Port) {
    for f in &p.fixed_ips {
        ipam::release(db, &f.subnet_id, &f.ip_address);
    }
    let _ = db.delete(&ipam::mac_table(&p.network_id), &p.mac_address, None);
}

/// Takes the port's MAC and fixed IPs in the DB (releasing what it took if one fails).
fn allocate_port(db: &dyn Db, p: &mut Port, requested: Option<Vec<Value>>, mac_given: bool) -> ApiResult<()> {
    if mac_given {
        if pipelines::wire::Mac::parse(&p.mac_address.to_lowercase()).is_none_or(|m| !m.is_unicast()) {
            return Err(ApiError::bad(format!(
                "Invalid input for mac_address: '{}' is not a valid MAC address",
                p.mac_address
            )));
        }
        p.mac_address = p.mac_address.to_lowercase();
        if db.create(&ipam::mac_table(&p.network_id), &p.mac_address, p.id.as_bytes()).is_err() {
            return Err(ApiError::conflict(
                "MacAddressInUse",
                format!(
                    "Unable to complete operation for network {}. The mac address {} is in use.",
                    p.network_id, p.mac_address
                ),
            ));
        }
    } else {
        p.mac_address = take_new_mac(db, &p.network_id, &p.id)?;
    }
    match take_fixed_ips(db, p, requested, &[]) {
        Ok(ips) => {
            p.fixed_ips = ips;
            Ok(())
        }
        Err(e) => {
            let _ = db.delete(&ipam::mac_table(&p.network_id), &p.mac_address, None);
            Err(e)
        }
    }
}

/// Takes the fixed IPs `requested` for port `p` (`None`: one from the first subnet of each IP version),
/// releasing what it took if one fails. Addresses in `keep` (the port's own, on an update) are kept
/// without being taken again.
fn take_fixed_ips(db: &dyn Db, p: &Port, requested: Option<Vec<Value>>, keep: &[FixedIp]) -> ApiResult<Vec<FixedIp>> {
    let s = Store::new(db);
    let net: Network = s.get(&p.network_id)?.ok_or_else(|| ApiError::not_found("network", &p.network_id))?;
    let subnets: Vec<Subnet> = net.subnets.iter().filter_map(|id| s.get::<Subnet>(id).ok().flatten()).collect();
    let mut taken: Vec<FixedIp> = Vec::new();
    let mut kept: Vec<FixedIp> = Vec::new();
    let result = (|| -> ApiResult<()> {
        let Some(list) = requested else {
            // One address from the first subnet of each IP version, as Neutron does.
            for v in [4u8, 6] {
                if let Some(sub) = subnets.iter().find(|x| x.ip_version == v) {
                    let ip = ipam::allocate(db, sub, &p.id)?.ok_or_else(|| {
                        ApiError::conflict(
                            "IpAddressGenerationFailure",
                            format!("No more IP addresses available on network {}.", p.network_id),
                        )
                    })?;
                    taken.push(FixedIp { subnet_id: sub.id.clone(), ip_address: ip });
                }
            }
            return Ok(());
        };
        for f in list {
            let sid = f.get("subnet_id").and_then(Value::as_str);
            let ip = f.get("ip_address").and_then(Value::as_str);
            let sub = match (sid, ip) {
                (Some(id), _) => subnets.iter().find(|x| x.id == id).ok_or_else(|| {
                    ApiError::bad(format!("Invalid input: subnet {id} is not on network {}", p.network_id))
                })?,
                (None, Some(ip)) => {
                    let a: std::net::IpAddr =
                        ip.parse().map_err(|_| ApiError::bad(format!("Invalid input for ip_address: '{ip}'")))?;
                    subnets.iter().find(|x| Cidr::parse_network(&x.cidr).is_some_and(|c| c.contains(a))).ok_or_else(
                        || {
                            ApiError::bad(format!(
                                "IP address {ip} is not a valid IP for any subnet of network {}",
                                p.network_id
                            ))
                        },
                    )?
                }
                (None, None) => return Err(ApiError::bad("a fixed IP needs subnet_id or ip_address")),
            };
            // The port's own address (named, or any on the subnet when only the subnet is named).
            let mine = keep.iter().find(|k| {
                k.subnet_id == sub.id
                    && match ip {
                        Some(ip) => ip.parse::<std::net::IpAddr>().ok() == k.ip_address.parse().ok(),
                        None => !kept.contains(k),
                    }
            });
            if let Some(k) = mine {
                kept.push(k.clone());
                continue;
            }
            let got = match ip {
                Some(ip) => {
                    let a: std::net::IpAddr =
                        ip.parse().map_err(|_| ApiError::bad(format!("Invalid input for ip_address: '{ip}'")))?;
                    let c = stored_cidr(sub)?;
                    if !c.contains(a) {
                        return Err(ApiError::bad(format!(
                            "IP address {ip} is not a valid IP for the specified subnet."
                        )));
                    }
                    let ip = a.to_string();
                    if sub.gateway_ip.as_deref() == Some(ip.as_str()) || !ipam::take(db, &sub.id, &ip, &p.id)? {
                        return Err(ApiError::conflict(
                            "IpAddressAlreadyAllocated",
                            format!("IP address {ip} already allocated in subnet {}", sub.id),
                        ));
                    }
                    ip
                }
                None => ipam::allocate(db, sub, &p.id)?.ok_or_else(|| {
                    ApiError::conflict(
                        "IpAddressGenerationFailure",
                        format!("No more IP addresses available on subnet {}.", sub.id),
                    )
                })?,
            };
            taken.push(FixedIp { subnet_id: sub.id.clone(), ip_address: got });
        }
        Ok(())
    })();
    if let Err(e) = result {
        release_ips(db, &taken);
        return Err(e);
    }
    Ok(kept.into_iter().chain(taken).collect())
}

fn release_ips<'a>(db: &dyn Db, ips: impl IntoIterator<Item = &'a FixedIp>) {
    for f in ips {
        ipam::release(db, &f.subnet_id, &f.ip_address);
    }
}

/// A port checked without the DB, and what its creation must take.
pub(super) struct PortDraft {
    port: Port,
    /// `fixed_ips` as asked for (`None`: Neutron's default).
    requested: Option<Vec<Value>>,
    mac_given: bool,
    groups_given: bool,
}

/// `fixed_ips` in a request: a list, or not there.
fn requested_ips(attrs: &mut Attrs) -> ApiResult<Option<Vec<Value>>> {
    match attrs.remove("fixed_ips") {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(ApiError::bad("fixed_ips must be a list")),
    }
}

impl Resource for Port {
    const ONE: &'static str = "port";
    const MANY: &'static str = "ports";
    const CREATE: &'static [&'static str] = &[
        "name",
        "description",
        "project_id",
        "tenant_id",
        "network_id",
        "mac_address",
        "fixed_ips",
        "device_owner",
        "device_id",
        "security_groups",
        "allowed_address_pairs",
        "port_security_enabled",
        "admin_state_up",
        "binding:host_id",
        "binding:profile",
        "binding:vnic_type",
    ];
    const CREATE_IGNORED: &'static [&'static str] = &["description"];
    const UPDATE: &'static [&'static str] = &[
        "name",
        "description",
        "device_owner",
        "device_id",
        "security_groups",
        "allowed_address_pairs",
        "port_security_enabled",
        "admin_state_up",
        "binding:host_id",
        "binding:profile",
        "binding:vnic_type",
        "fixed_ips",
    ];
    const UPDATE_IGNORED: &'static [&'static str] = &["description"];

    type Draft = PortDraft;

    fn draft(mut attrs: Attrs, _: &Settings) -> ApiResult<PortDraft> {
        let network_id = attrs
            .get("network_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad("network_id is required"))?
            .to_owned();
        let requested = requested_ips(&mut attrs)?;
        let mac_given = attrs.contains_key("mac_address");
        let groups_given = attrs.contains_key("security_groups");
        let port = merge(&Port::new(new_id(), network_id), attrs)?;
        Ok(PortDraft { port, requested, mac_given, groups_given })
    }

    fn insert(db: &dyn Db, draft: PortDraft) -> ApiResult<Port> {
        let PortDraft { port: mut p, requested, mac_given, groups_given } = draft;
        let s = Store::new(db);
        for g in &p.security_groups {
            s.get::<SecurityGroup>(g)?.ok_or_else(|| ApiError::not_found("security_group", g))?;
        }
        if !groups_given && p.port_security_enabled != Some(false) {
            p.security_groups = vec![default_group(db, &p.project_id)?];
        }
        allocate_port(db, &mut p, requested, mac_given)?;
        Ok(s.create(p)?)
    }

    /// New fixed IPs are taken here, before the write (compare-and-swap); [`Resource::settle`] releases
    /// the old ones once it is done, or the new ones if it failed.
    fn change(db: &dyn Db, _: &Settings, cur: &Port, mut attrs: Attrs) -> ApiResult<Port> {
        let requested = requested_ips(&mut attrs)?;
        let mut next = merge(cur, attrs)?;
        if let Some(requested) = requested {
            next.fixed_ips = take_fixed_ips(db, cur, Some(requested), &cur.fixed_ips)?;
        }
        Ok(next)
    }

    fn settle(db: &dyn Db, cur: &Port, next: &Port, written: bool) {
        // Written: the addresses the port no longer has. Not written: those it did not get.
        let (had, has) = if written { (cur, next) } else { (next, cur) };
        release_ips(db, had.fixed_ips.iter().filter(|f| !has.fixed_ips.contains(f)));
    }

    fn before_delete(db: &dyn Db, p: &Port) -> ApiResult<()> {
        let id = &p.id;
        if p.device_owner == ROUTER_INTERFACE {
            return Err(ApiError::conflict(
                "PortInUse",
                format!(
                    "Port {id} has owner {ROUTER_INTERFACE} and therefore cannot be deleted directly via the port API."
                ),
            ));
        }
        // Its floating IPs are disassociated, as Neutron does.
        let s = Store::new(db);
        for mut f in s.list::<FloatingIp>()?.0.into_iter().filter(|f| f.port_id.as_deref() == Some(id.as_str())) {
            associate(db, &mut f, None, None)?;
            s.update(f)?;
        }
        Ok(())
    }

    fn after_delete(db: &dyn Db, _: &Settings, p: &Port) -> ApiResult<()> {
        release_port(db, p);
        Ok(())
    }
}

//! Ports: `/v2.0/ports`. A new port takes its MAC (given, or Neutron's `fa:16:3e:…`) and fixed IPs
//! (Neutron's rules, IPv6 auto addresses included: `fixed_ips.rs`) in the DB, so that no two ports ever
//! get the same one ([`ipam`]); its `extra_dhcp_opts` are checked and merged as Neutron's
//! (`extra_dhcp_opts.rs`); its security groups follow Neutron's portsecurity rules (`groups` here: the
//! default group, none without port security). An update may change the fixed IPs and the MAC (not of a
//! `network:` port, nor of one a node has plugged): the new ones are taken before the write, the old ones
//! released after it. A router's interface port is deleted through the router (`PortInUse`); deleting a
//! port disassociates its floating IPs. A network's DHCP port (`dhcp_port.rs`) is a port like any other
//! here: shown, updated, deleted.

use serde_json::Value;

use super::crud::{merge, new_id, rand_u64, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::extra_dhcp_opts;
use super::fixed_ips::{release_ips, take_fixed_ips, Requested};
use super::floating_ips::{associate, FLOATINGIP_OWNER};
use super::ipam;
use super::policy::{access_to_network, by_owner, forbidden, network_access, networks, Access, Caller};
use super::security_group_rules::group_not_found;
use super::security_groups::{default_group, mixed_statefulness};
use crate::db::{Db, DbError};
use crate::model::{FloatingIp, Network, Port, SecurityGroup, Store, ROUTER_GATEWAY, ROUTER_INTERFACE};

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

/// A MAC a request gives: a unicast one, in lower case.
fn valid_mac(mac: &Value) -> ApiResult<String> {
    let m = mac.as_str().map(str::to_lowercase).unwrap_or_default();
    if pipelines::wire::Mac::parse(&m).is_none_or(|m| !m.is_unicast()) {
        let shown = mac.as_str().map_or_else(|| mac.to_string(), str::to_owned);
        return Err(ApiError::bad(format!("Invalid input for mac_address: '{shown}' is not a valid MAC address")));
    }
    Ok(m)
}

/// Takes the given `mac` on the network for `port_id` (409 `MacAddressInUse` if a port has it).
fn take_mac(db: &dyn Db, network_id: &str, mac: &str, port_id: &str) -> ApiResult<()> {
    match db.create(&ipam::mac_table(network_id), mac, port_id.as_bytes()) {
        Ok(_) => Ok(()),
        Err(DbError::AlreadyExists) => Err(ApiError::conflict(
            "MacAddressInUse",
            format!("Unable to complete operation for network {network_id}. The mac address {mac} is in use."),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Gives back a MAC on the network.
fn release_mac(db: &dyn Db, network_id: &str, mac: &str) {
    let _ = db.delete(&ipam::mac_table(network_id), mac, None);
}

/// Gives back a port's fixed IPs and MAC.
pub(super) fn release_port(db: &dyn Db, p: &Port) {
    release_ips(db, &p.fixed_ips);
    release_mac(db, &p.network_id, &p.mac_address);
}

/// Takes the port's MAC and fixed IPs in the DB (releasing what it took if one fails).
fn allocate_port(db: &dyn Db, p: &mut Port, requested: Option<Vec<Value>>, mac_given: bool) -> ApiResult<()> {
    if mac_given {
        p.mac_address = valid_mac(&Value::String(p.mac_address.clone()))?;
        take_mac(db, &p.network_id, &p.mac_address, &p.id)?;
    } else {
        p.mac_address = take_new_mac(db, &p.network_id, &p.id)?;
    }
    let requested = requested.map_or(Requested::Default, Requested::Given);
    match take_fixed_ips(db, p, requested, &[]) {
        Ok(ips) => {
            p.fixed_ips = ips;
            Ok(())
        }
        Err(e) => {
            release_mac(db, &p.network_id, &p.mac_address);
            Err(e)
        }
    }
}

/// A new port the API makes for a service (a router's gateway, …): on `network_id`, owned by `owner`
/// (`device_owner`, `device_id`), with the fixed IPs `requested` (Neutron's default if `None`), its MAC
/// and addresses taken.
pub(super) fn new_service_port(
    db: &dyn Db,
    network_id: &str,
    owner: (&str, &str),
    requested: Option<Vec<Value>>,
) -> ApiResult<Port> {
    new_service_port_on(db, network_id, owner, requested, "")
}

/// As [`new_service_port`], bound to node `host` (`""`: none).
pub(super) fn new_service_port_on(
    db: &dyn Db,
    network_id: &str,
    (owner, device_id): (&str, &str),
    requested: Option<Vec<Value>>,
    host: &str,
) -> ApiResult<Port> {
    let mut p = Port::new(new_id(), network_id.to_owned());
    (p.device_owner, p.device_id) = (owner.into(), device_id.into());
    p.host_id = host.to_owned();
    (p.port_security_enabled, p.status) = (Some(false), "ACTIVE".into());
    allocate_port(db, &mut p, requested, false)?;
    Store::new(db).create(p.clone()).map_err(|e| {
        release_port(db, &p);
        e.into()
    })
}

/// Deletes a port the API made and gives back what it held (already gone: nothing to do).
pub(super) fn delete_service_port(db: &dyn Db, p: &Port) -> ApiResult<()> {
    match Store::new(db).delete::<Port>(&p.id, None) {
        Ok(_) => release_port(db, p),
        Err(DbError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// A new MAC for `next` (the update of `cur`), taken on the network: the one asked for, or a generated
/// one for `null` (`port-mac-address-regenerate`); `Ok(false)` if it is the one it has. Neutron refuses
/// it for a `network:` port (`UnsupportedPortDeviceOwner`) and for one a node has plugged (`PortBound`).
fn change_mac(db: &dyn Db, cur: &Port, next: &mut Port, mac: &Value) -> ApiResult<bool> {
    let asked = match mac {
        Value::Null => None,
        m => Some(valid_mac(m)?),
    };
    if asked.as_deref() == Some(cur.mac_address.as_str()) {
        return Ok(false);
    }
    let id = &cur.id;
    if next.device_owner.starts_with("network:") {
        return Err(ApiError::conflict(
            "UnsupportedPortDeviceOwner",
            format!(
                "Operation mac address update is not supported for device_owner {} on port {id}.",
                next.device_owner
            ),
        ));
    }
    if !matches!(cur.vif_type.as_str(), "" | "unbound" | "binding_failed") {
        return Err(ApiError::conflict(
            "PortBound",
            format!(
                "Unable to complete operation on port {id}, port is already bound, port type: {}, old_mac {}, new_mac {}.",
                cur.vif_type,
                cur.mac_address,
                asked.as_deref().unwrap_or("None")
            ),
        ));
    }
    next.mac_address = match asked {
        Some(mac) => {
            take_mac(db, &cur.network_id, &mac, id)?;
            mac
        }
        None => take_new_mac(db, &cur.network_id, id)?,
    };
    Ok(true)
}

/// Writes of [`edit_port`] before it gives up on a busy port.
const EDIT_TRIES: usize = 8;

/// Changes port `id` with `f` and writes it, again on the fresh port when another writer came first;
/// `Ok(false)` if the port is gone or `f` changed nothing (returned false).
pub(super) fn edit_port(db: &dyn Db, id: &str, mut f: impl FnMut(&mut Port) -> bool) -> ApiResult<bool> {
    let s = Store::new(db);
    for _ in 0..EDIT_TRIES {
        let Some(mut p) = s.get::<Port>(id)? else { return Ok(false) };
        if !f(&mut p) {
            return Ok(false);
        }
        match s.update(p) {
            Ok(_) => return Ok(true),
            Err(DbError::Conflict { .. } | DbError::NotFound) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::revision_conflict())
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

/// `extra_dhcp_opts` in a request, checked (`None`: not there).
fn requested_opts(attrs: &mut Attrs) -> ApiResult<Option<Vec<extra_dhcp_opts::Asked>>> {
    attrs.remove("extra_dhcp_opts").map(|v| extra_dhcp_opts::parse(&v)).transpose()
}

/// Whether port `p` has port security: its own setting, else its network's (Neutron's default: on).
fn secured(db: &dyn Db, p: &Port) -> ApiResult<bool> {
    Ok(match p.port_security_enabled {
        Some(on) => on,
        None => Store::new(db).get::<Network>(&p.network_id)?.is_none_or(|n| n.port_security_enabled),
    })
}

/// A port Neutron trusts (`net.is_port_trusted`): its `device_owner` starts with `network:` (a DHCP
/// port, a router's): no port security, no security group.
fn trusted(p: &Port) -> bool {
    p.device_owner.starts_with("network:")
}

/// `security_groups` in a request: null is none (Neutron's `convert_none_to_empty_list`); `true` if the
/// request has them.
fn requested_groups(attrs: &mut Attrs) -> bool {
    match attrs.get("security_groups") {
        Some(Value::Null) => {
            attrs.insert("security_groups".into(), Value::Array(Vec::new()));
            true
        }
        Some(_) => true,
        None => false,
    }
}

/// Neutron's portsecurity and security group rules for a port's groups (`neutron/plugins/ml2/plugin.py`
/// `_portsec_ext_port_create_processing` / `_update_processing`, `neutron/db/securitygroups_db.py`
/// `_get_security_groups_on_port`, `_validate_sgs_for_port`): each group once, each existing (404
/// `SecurityGroupNotFound`), all stateful or all stateless (409 `SecurityGroupConflict`). A port needs
/// port security for groups (400 `PortSecurityAndIPRequiredForSecurityGroups`), not an address: the
/// message's "and IP" is from a check ML2 no longer makes.
fn groups(db: &dyn Db, ids: &mut [String]) -> ApiResult<()> {
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = ids.iter().find(|g| !seen.insert(*g)) {
        return Err(ApiError::invalid_input(format_args!("Duplicate items in the list: '{dup}'")));
    }
    let s = Store::new(db);
    let mut stateful = Vec::new();
    for g in ids.iter() {
        stateful.push(s.get::<SecurityGroup>(g)?.ok_or_else(|| group_not_found(g))?.stateful);
    }
    if stateful.contains(&true) && stateful.contains(&false) {
        return Err(mixed_statefulness());
    }
    Ok(())
}

/// Neutron's `max_allowed_address_pair`.
const MAX_ADDRESS_PAIRS: usize = 10;

/// A port's allowed address pairs, as Neutron's extension checks them: each an IP address or CIDR with
/// an optional unicast MAC, no pair twice, at most [`MAX_ADDRESS_PAIRS`], and only on a port with port
/// security (`secured`; 409 `AddressPairAndPortSecurityRequired`).
fn address_pairs(p: &Port, secured: bool) -> ApiResult<()> {
    let pairs = &p.allowed_address_pairs;
    if pairs.is_empty() {
        return Ok(());
    }
    if !secured {
        return Err(ApiError::conflict(
            "AddressPairAndPortSecurityRequired",
            "Port Security must be enabled in order to have allowed address pairs on a port.",
        ));
    }
    if pairs.len() > MAX_ADDRESS_PAIRS {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "AllowedAddressPairExhausted",
            format!("The number of allowed address pair exceeds the maximum {MAX_ADDRESS_PAIRS}."),
        ));
    }
    for (i, pair) in pairs.iter().enumerate() {
        if crate::cidr::Cidr::parse(&pair.ip_address).is_none() {
            return Err(ApiError::invalid_input(format_args!(
                "'{}' is not a valid IP address or CIDR",
                pair.ip_address
            )));
        }
        if let Some(m) = &pair.mac_address {
            valid_mac(&Value::String(m.clone()))?;
        }
        if pairs[..i].iter().any(|q| q.ip_address == pair.ip_address && q.mac_address == pair.mac_address) {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "DuplicateAddressPairInRequest",
                format!(
                    "Request contains duplicate address pair: mac_address {:?} ip_address {}.",
                    pair.mac_address, pair.ip_address
                ),
            ));
        }
    }
    Ok(())
}

/// What only the network's owner (or an admin) chooses for a port on it (`create_port:mac_address`, …):
/// 403 for another project's port on a shared network.
fn network_owners_choices(attrs: &Attrs, action: &str) -> ApiResult<()> {
    let owner = attrs.get("device_owner").and_then(Value::as_str).unwrap_or_default();
    let address = attrs
        .get("fixed_ips")
        .and_then(Value::as_array)
        .is_some_and(|ips| ips.iter().any(|ip| ip.get("ip_address").is_some()));
    let pairs = attrs.get("allowed_address_pairs").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let rule = if owner.starts_with("network:") {
        "device_owner"
    } else if pairs {
        "allowed_address_pairs"
    } else if attrs.contains_key("mac_address") {
        "mac_address"
    } else if address {
        "fixed_ips:ip_address"
    } else if attrs.contains_key("port_security_enabled") {
        "port_security_enabled"
    } else {
        return Ok(());
    };
    Err(forbidden(&format!("{action}_port:{rule}")))
}

/// The security groups a request names are the caller's (another project's is not found to it).
fn callers_groups(db: &dyn Db, caller: &Caller, attrs: &Attrs) -> ApiResult<()> {
    let Some(Value::Array(ids)) = attrs.get("security_groups") else { return Ok(()) };
    let s = Store::new(db);
    for id in ids.iter().filter_map(Value::as_str) {
        if let Some(g) = s.get::<SecurityGroup>(id)? {
            if !caller.owns(&g.project_id) {
                return Err(group_not_found(id));
            }
        }
    }
    Ok(())
}

/// 400 `PortSecurityAndIPRequiredForSecurityGroups`, Neutron's words.
fn groups_need_port_security() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "PortSecurityAndIPRequiredForSecurityGroups",
        "Port security must be enabled and port must have an IP address in order to use security groups.",
    )
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
        "extra_dhcp_opts",
    ];
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
        "mac_address",
        "extra_dhcp_opts",
    ];
    const ADMIN_ONLY: &'static [&'static str] = &["binding:host_id", "binding:profile"];
    const ADMIN_ONLY_SHOWN: &'static [&'static str] =
        &["binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details"];

    const SHOWN: &'static [&'static str] = &["binding:vif_type", "binding:vif_details"];
    type Draft = PortDraft;

    /// The network's owner may see, change and delete the ports on it.
    fn access(db: &dyn Db, caller: &Caller, views: &[Value]) -> ApiResult<Vec<Access>> {
        let nets = networks(db)?;
        Ok(views
            .iter()
            .map(|v| {
                let net = v["network_id"].as_str().and_then(|n| nets.get(n));
                let owner = net.is_some_and(|n| network_access(caller, n) == Access::Write);
                if owner {
                    Access::Write
                } else {
                    by_owner(caller, v)
                }
            })
            .collect())
    }

    /// On a network the caller may see; on another project's (shared) network, without the choices
    /// Neutron leaves to the network's owner.
    fn authorize_create(db: &dyn Db, caller: &Caller, attrs: &Attrs) -> ApiResult<()> {
        let net = attrs.get("network_id").and_then(Value::as_str).unwrap_or_default();
        match access_to_network(db, caller, net)? {
            Access::None => return Err(ApiError::not_found("network", net)),
            Access::Read => network_owners_choices(attrs, "create")?,
            Access::Write => {}
        }
        callers_groups(db, caller, attrs)
    }

    /// A new MAC is the admin's; the network's owner's choices as on a create.
    fn authorize_update(db: &dyn Db, caller: &Caller, cur: &Port, attrs: &Attrs) -> ApiResult<()> {
        if attrs.contains_key("mac_address") {
            caller.must_be_admin("update_port:mac_address")?;
        }
        if access_to_network(db, caller, &cur.network_id)? != Access::Write {
            network_owners_choices(attrs, "update")?;
        }
        callers_groups(db, caller, attrs)
    }

    fn draft(mut attrs: Attrs, _: &Settings) -> ApiResult<PortDraft> {
        let network_id = attrs
            .get("network_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad("network_id is required"))?
            .to_owned();
        let requested = requested_ips(&mut attrs)?;
        let opts = requested_opts(&mut attrs)?.unwrap_or_default();
        let mac_given = attrs.contains_key("mac_address");
        let groups_given = requested_groups(&mut attrs);
        let mut port = merge(&Port::new(new_id(), network_id), attrs)?;
        port.extra_dhcp_opts = extra_dhcp_opts::on_create(&port.id, opts)?;
        Ok(PortDraft { port, requested, mac_given, groups_given })
    }

    fn insert(db: &dyn Db, draft: PortDraft) -> ApiResult<Port> {
        let PortDraft { port: mut p, requested, mac_given, groups_given } = draft;
        let s = Store::new(db);
        groups(db, &mut p.security_groups)?;
        // Neutron's portsecurity rules: a port takes its own setting, else its network's, and keeps it; a
        // trusted port has none. A port without port security takes no group, neither the default one nor
        // one asked for.
        p.port_security_enabled = Some(!trusted(&p) && secured(db, &p)?);
        address_pairs(&p, p.port_security_enabled == Some(true))?;
        if p.port_security_enabled == Some(false) {
            if !p.security_groups.is_empty() {
                return Err(groups_need_port_security());
            }
        } else if !groups_given {
            p.security_groups = vec![default_group(db, &p.project_id)?];
        }
        allocate_port(db, &mut p, requested, mac_given)?;
        s.create(p.clone()).map_err(|e| {
            release_port(db, &p);
            e.into()
        })
    }

    /// New fixed IPs and a new MAC are taken here, before the write (compare-and-swap);
    /// [`Resource::settle`] releases the old ones once it is done, or the new ones if it failed. A new MAC
    /// moves the port's automatic (EUI-64) addresses with it.
    fn change(db: &dyn Db, _: &Settings, cur: &Port, mut attrs: Attrs) -> ApiResult<Port> {
        let requested = requested_ips(&mut attrs)?;
        let opts = requested_opts(&mut attrs)?;
        let mac = attrs.remove("mac_address");
        let groups_given = requested_groups(&mut attrs);
        let mut next = merge(cur, attrs)?;
        if !next.security_groups.is_empty() && !secured(db, &next)? {
            // Neutron: groups asked for on an unsecured port are a bad request; port security turned off
            // under the groups the port has, a conflict until they are removed.
            return Err(if groups_given {
                groups_need_port_security()
            } else {
                ApiError::conflict(
                    "PortSecurityPortHasSecurityGroup",
                    "Port has security group associated. Cannot disable port security or ip address until security group is removed",
                )
            });
        }
        if groups_given {
            groups(db, &mut next.security_groups)?;
        }
        if next.allowed_address_pairs != cur.allowed_address_pairs
            || next.port_security_enabled != cur.port_security_enabled
        {
            address_pairs(&next, secured(db, &next)?)?;
        }
        if let Some(opts) = opts {
            next.extra_dhcp_opts = extra_dhcp_opts::on_update(&cur.id, &cur.extra_dhcp_opts, opts)?;
        }
        let mac_changed = match &mac {
            Some(m) => change_mac(db, cur, &mut next, m)?,
            None => false,
        };
        let requested = match (requested, mac_changed) {
            (Some(list), _) => Requested::Given(list),
            (None, true) => Requested::Kept,
            (None, false) => return Ok(next),
        };
        match take_fixed_ips(db, &next, requested, &cur.fixed_ips) {
            Ok(ips) => next.fixed_ips = ips,
            Err(e) => {
                if mac_changed {
                    release_mac(db, &next.network_id, &next.mac_address);
                }
                return Err(e);
            }
        }
        Ok(next)
    }

    fn settle(db: &dyn Db, cur: &Port, next: &Port, written: bool) {
        // Written: the addresses the port no longer has. Not written: those it did not get.
        let (had, has) = if written { (cur, next) } else { (next, cur) };
        release_ips(db, had.fixed_ips.iter().filter(|f| !has.fixed_ips.contains(f)));
        if had.mac_address != has.mac_address {
            release_mac(db, &had.network_id, &had.mac_address);
        }
    }

    fn before_delete(db: &dyn Db, p: &Port) -> ApiResult<()> {
        let id = &p.id;
        if [ROUTER_INTERFACE, ROUTER_GATEWAY, FLOATINGIP_OWNER].contains(&p.device_owner.as_str()) {
            return Err(ApiError::conflict(
                "PortInUse",
                format!(
                    "Port {id} has owner {} and therefore cannot be deleted directly via the port API.",
                    p.device_owner
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

    /// A port a failed bulk made goes whatever its owner (a delete request refuses a router's).
    fn undo(db: &dyn Db, _: &Settings, p: &Port) -> ApiResult<()> {
        delete_service_port(db, p)
    }
}

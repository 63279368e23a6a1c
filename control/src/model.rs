//! The model: Neutron's objects as Dragonflow stores them, with Neutron's attribute names (so the API
//! serialises them as they are) and the chassis (compute nodes). Every object carries `revision_number`:
//! the DB revision of its last write, set from the entry on every read ([`Store::get`]), so it is the
//! same on every node and a write based on an older read is refused ([`Store::update`]).
//!
//! Stored as JSON; unknown fields in the DB are ignored (a newer writer may add some), missing optional
//! ones take Neutron's defaults.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::db::{Db, DbError, Revision};

/// An object of the model: its table and its id.
pub trait Object: Serialize + DeserializeOwned + Clone {
    const TABLE: &'static str;
    fn id(&self) -> &str;
    fn revision(&self) -> Revision;
    fn set_revision(&mut self, r: Revision);
    /// Its standard attributes (Neutron's resources have them; the chassis does not).
    fn standard(&mut self) -> Option<&mut Standard> {
        None
    }
}

macro_rules! object {
    ($t:ty, $table:literal) => {
        object!($t, $table, fn standard(&mut self) -> Option<&mut Standard> { None });
    };
    ($t:ty, $table:literal, standard) => {
        object!($t, $table, fn standard(&mut self) -> Option<&mut Standard> { Some(&mut self.standard) });
    };
    ($t:ty, $table:literal, $standard:item) => {
        impl Object for $t {
            const TABLE: &'static str = $table;
            fn id(&self) -> &str {
                &self.id
            }
            fn revision(&self) -> Revision {
                self.revision_number
            }
            fn set_revision(&mut self, r: Revision) {
                self.revision_number = r;
            }
            $standard
        }
    };
}

/// Neutron's standard attributes, on every resource but the chassis: `description`, `tags`,
/// `created_at`, `updated_at` (set by [`Store::create`] and [`Store::update`], UTC, to the second).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standard {
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
}

/// Now, as Neutron writes times: `2026-12-02T19:12:37Z`.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Seconds since the epoch of a UTC time as Neutron and Keystone write them
/// (`2026-12-02T20:51:10.000000Z`; the fraction and zone letter are not read).
pub fn parse_utc(s: &str) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !matches!(s.as_bytes().get(10), Some(b'T' | b' ')) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's civil-from-days).
pub fn utc(secs: u64) -> String {
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

fn yes() -> bool {
    true
}

fn default_mtu() -> u32 {
    1500
}

/// `provider:network_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkType {
    Vxlan,
    Geneve,
    Gre,
    Vlan,
    Flat,
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project_id: String,
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    #[serde(default = "yes")]
    pub port_security_enabled: bool,
    #[serde(default)]
    pub shared: bool,
    #[serde(rename = "router:external", default)]
    pub external: bool,
    #[serde(rename = "provider:network_type", default)]
    pub network_type: Option<NetworkType>,
    #[serde(rename = "provider:segmentation_id", default)]
    pub segmentation_id: Option<u32>,
    #[serde(rename = "provider:physical_network", default)]
    pub physical_network: Option<String>,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(flatten)]
    pub standard: Standard,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(Network, "network", standard);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPool {
    pub start: String,
    pub end: String,
}

/// A subnet's host route or a router's extra route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub destination: String,
    pub nexthop: String,
}

/// `ipv6_ra_mode` / `ipv6_address_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ipv6Mode {
    Slaac,
    Dhcpv6Stateful,
    Dhcpv6Stateless,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project_id: String,
    pub network_id: String,
    pub ip_version: u8,
    pub cidr: String,
    #[serde(default)]
    pub gateway_ip: Option<String>,
    #[serde(default)]
    pub allocation_pools: Vec<AllocationPool>,
    #[serde(default)]
    pub dns_nameservers: Vec<String>,
    #[serde(default)]
    pub host_routes: Vec<Route>,
    #[serde(default = "yes")]
    pub enable_dhcp: bool,
    #[serde(default)]
    pub ipv6_ra_mode: Option<Ipv6Mode>,
    #[serde(flatten)]
    pub standard: Standard,
    #[serde(default)]
    pub ipv6_address_mode: Option<Ipv6Mode>,
    /// The subnet pool its CIDR was allocated from (`subnet_allocation`).
    #[serde(default)]
    pub subnetpool_id: Option<String>,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(Subnet, "subnet", standard);

/// A subnet pool (`subnet_allocation`): prefixes subnets take their CIDRs from, with the prefix
/// lengths they may have and a project's quota of addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetPool {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project_id: String,
    /// Networks (no host bits), none inside another.
    pub prefixes: Vec<String>,
    pub ip_version: u8,
    pub min_prefixlen: u8,
    pub max_prefixlen: u8,
    pub default_prefixlen: u8,
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub is_default: bool,
    /// Addresses a project may take from the pool (IPv6: /64 networks); none: no limit.
    #[serde(default)]
    pub default_quota: Option<u64>,
    /// The address scope it is in (`address-scope`), if any.
    #[serde(default)]
    pub address_scope_id: Option<String>,
    #[serde(flatten)]
    pub standard: Standard,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(SubnetPool, "subnetpool", standard);

/// An address scope (`address-scope`): subnet pools of one IP version whose prefixes do not overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressScope {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project_id: String,
    pub ip_version: u8,
    #[serde(default)]
    pub shared: bool,
    #[serde(flatten)]
    pub standard: Standard,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(AddressScope, "addressscope", standard);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPair {
    pub ip_address: String,
    #[serde(default)]
    pub mac_address: Option<String>,
}

/// One of a port's `extra_dhcp_opts` (Neutron's `extra_dhcp_opt` extension): a DHCP option by name
/// (`mtu`, `router`, `dns-server`, …) or number, and its value, for DHCPv4 (`ip_version` 4) or DHCPv6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraDhcpOpt {
    pub opt_name: String,
    pub opt_value: String,
    #[serde(default = "four")]
    pub ip_version: u8,
}

fn four() -> u8 {
    4
}

/// The `device_owner` of a network's DHCP port: the per-subnet addresses the DHCP replies come from.
pub const DHCP_OWNER: &str = "network:dhcp";

/// The `device_id` of the DHCP port the API keeps for network `network_id` (`api::dhcp_port`); the switch
/// answers from that one where a network has several `network:dhcp` ports.
pub fn dhcp_device_id(network_id: &str) -> String {
    format!("dhcp-{network_id}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project_id: String,
    pub network_id: String,
    pub mac_address: String,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    #[serde(default)]
    pub device_owner: String,
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub allowed_address_pairs: Vec<AddressPair>,
    /// `None`: the network's setting.
    #[serde(default)]
    pub port_security_enabled: Option<bool>,
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    #[serde(rename = "binding:host_id", default)]
    pub host_id: String,
    #[serde(rename = "binding:profile", default)]
    pub profile: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "binding:vif_type", default)]
    pub vif_type: String,
    #[serde(rename = "binding:vif_details", default)]
    pub vif_details: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "binding:vnic_type", default)]
    pub vnic_type: String,
    #[serde(default)]
    pub extra_dhcp_opts: Vec<ExtraDhcpOpt>,
    /// `ACTIVE` once a node plumbed it, `DOWN` otherwise.
    #[serde(flatten)]
    pub standard: Standard,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(Port, "port", standard);

impl Port {
    /// A port with Neutron's defaults: no address yet, unbound, `DOWN`, the network's port security.
    pub fn new(id: String, network_id: String) -> Port {
        Port {
            standard: Standard::default(),
            id,
            name: String::new(),
            project_id: String::new(),
            network_id,
            mac_address: String::new(),
            fixed_ips: Vec::new(),
            device_owner: String::new(),
            device_id: String::new(),
            security_groups: Vec::new(),
            allowed_address_pairs: Vec::new(),
            port_security_enabled: None,
            admin_state_up: true,
            host_id: String::new(),
            profile: serde_json::Map::new(),
            vif_type: "unbound".into(),
            vif_details: serde_json::Map::new(),
            vnic_type: "normal".into(),
            extra_dhcp_opts: Vec::new(),
            status: "DOWN".into(),
            revision_number: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalGateway {
    pub network_id: String,
    #[serde(default = "yes")]
    pub enable_snat: bool,
    #[serde(default)]
    pub external_fixed_ips: Vec<FixedIp>,
}

/// A router's `external_gateway_info`: `{}` is no gateway, as Neutron takes it (clients clear a gateway
/// with it, and Tempest creates routers with it).
fn gateway_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ExternalGateway>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Object(m)) if m.is_empty() => Ok(None),
        None => Ok(None),
        Some(v) => serde_json::from_value(v).map(Some).map_err(serde::de::Error::custom),
    }
}

/// A list where `null` is the empty list, as Neutron takes a router's `routes: null` (Tempest clears
/// extra routes so).
fn null_is_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The `device_owner` of a router's interface ports.
pub const ROUTER_INTERFACE: &str = "network:router_interface";
/// The `device_owner` of a router's gateway port (on its external network).
pub const ROUTER_GATEWAY: &str = "network:router_gateway";

/// A router; its interfaces are ports with `device_owner` [`ROUTER_INTERFACE`] and `device_id` the
/// router's id, as in Neutron.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Router {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project_id: String,
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    #[serde(default, deserialize_with = "gateway_or_none")]
    pub external_gateway_info: Option<ExternalGateway>,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub routes: Vec<Route>,
    #[serde(flatten)]
    pub standard: Standard,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(Router, "router", standard);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingIp {
    pub id: String,
    #[serde(default)]
    pub project_id: String,
    pub floating_network_id: String,
    pub floating_ip_address: String,
    #[serde(default)]
    pub port_id: Option<String>,
    #[serde(default)]
    pub fixed_ip_address: Option<String>,
    #[serde(default)]
    pub router_id: Option<String>,
    #[serde(flatten)]
    pub standard: Standard,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(FloatingIp, "floatingip", standard);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project_id: String,
    /// Neutron's `stateful-security-group`: connections are tracked (replies to what a rule allowed
    /// pass); `false`: every packet needs a rule of its own. Groups stored before it are stateful.
    #[serde(default = "yes")]
    pub stateful: bool,
    #[serde(flatten)]
    pub standard: Standard,
    #[serde(default)]
    pub security_group_rules: Vec<SecurityGroupRule>,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(SecurityGroup, "securitygroup", standard);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EtherType {
    IPv4,
    IPv6,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    pub id: String,
    pub security_group_id: String,
    pub direction: Direction,
    pub ethertype: EtherType,
    /// `tcp`, `udp`, `icmp`, a number, or any.
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port_range_min: Option<u16>,
    #[serde(default)]
    pub port_range_max: Option<u16>,
    #[serde(default)]
    pub remote_ip_prefix: Option<String>,
    #[serde(flatten)]
    pub standard: Standard,
    #[serde(default)]
    pub remote_group_id: Option<String>,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(SecurityGroupRule, "securitygrouprule", standard);

impl SecurityGroupRule {
    /// The IP protocol number the rule matches; `None`: any protocol. The API stores a protocol as a
    /// lower-case name of [`IP_PROTOCOLS`] or a number 0-255 (IPv6 ICMP as `ipv6-icmp` or `58`).
    pub fn protocol_number(&self) -> Option<u8> {
        self.protocol.as_deref().and_then(ip_protocol_number)
    }
}

/// Neutron's `IP_PROTOCOL_MAP` (neutron-lib `constants.py`): the protocol names a rule may give, and
/// their numbers. `icmpv6` is Neutron's legacy name of `ipv6-icmp`.
pub const IP_PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// A stored protocol's number: a name of [`IP_PROTOCOLS`] or a number; `None` for anything else.
pub fn ip_protocol_number(p: &str) -> Option<u8> {
    IP_PROTOCOLS.iter().find(|(n, _)| *n == p).map(|(_, v)| *v).or_else(|| p.parse().ok())
}

/// A compute node, registered by its local controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chassis {
    /// The node's host name: ports name it in `binding:host_id`.
    pub id: String,
    /// The tunnel endpoint address.
    pub ip: String,
    #[serde(default)]
    pub tunnel_types: Vec<NetworkType>,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(Chassis, "chassis");

/// A node's local controller as Neutron's `agent` extension shows it: its tunnel endpoint and its
/// heartbeat, written by the node every [`AGENT_REPORT_INTERVAL`] (in a table of its own, which no
/// controller compiles); an admin may disable it or describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The chassis name (the node's host).
    pub id: String,
    #[serde(default)]
    pub tunnel_ip: String,
    #[serde(default)]
    pub tunnel_types: Vec<NetworkType>,
    #[serde(default)]
    pub created_at: String,
    /// When the node started reporting.
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub heartbeat_timestamp: String,
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(Agent, "agent");

/// A project's quota limits where they differ from the defaults (Neutron's `quotas` extension), keyed
/// by the project's id: each resource's limit, -1 for none. Read by the API only (no controller
/// compiles this table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// The project's id.
    pub id: String,
    #[serde(default)]
    pub limits: std::collections::BTreeMap<String, i64>,
    #[serde(default)]
    pub revision_number: Revision,
}
object!(Quota, "quota");

/// How often a node reports (Neutron's `report_interval`).
pub const AGENT_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// An agent whose last report is older is dead (Neutron's `agent_down_time`).
pub const AGENT_DOWN_TIME: std::time::Duration = std::time::Duration::from_secs(75);

/// Typed access to a [`Db`]: objects in, objects out, revisions kept.
pub struct Store<'d, D: Db + ?Sized> {
    pub db: &'d D,
}

fn codec(e: serde_json::Error) -> DbError {
    DbError::Storage(format!("stored object does not decode: {e}"))
}

impl<'d, D: Db + ?Sized> Store<'d, D> {
    pub fn new(db: &'d D) -> Self {
        Store { db }
    }

    pub fn get<T: Object>(&self, id: &str) -> Result<Option<T>, DbError> {
        let Some(e) = self.db.get(T::TABLE, id)? else { return Ok(None) };
        let mut o: T = serde_json::from_slice(&e.value).map_err(codec)?;
        o.set_revision(e.revision);
        Ok(Some(o))
    }

    /// Every object of the table, and the revision the list is consistent at.
    ///
    /// An entry that does not decode (written by something else, or damaged) is logged and left out: one
    /// bad row does not break the list; a [`Store::get`] of it is an error.
    pub fn list<T: Object>(&self) -> Result<(Vec<T>, Revision), DbError> {
        let (entries, rev) = self.db.list(T::TABLE)?;
        let objects = entries
            .into_iter()
            .filter_map(|e| match serde_json::from_slice::<T>(&e.value) {
                Ok(mut o) => {
                    o.set_revision(e.revision);
                    Some(o)
                }
                Err(err) => {
                    tracing::error!(table = T::TABLE, key = %e.key, "skipping an undecodable entry: {err}");
                    None
                }
            })
            .collect();
        Ok((objects, rev))
    }

    /// Stores a new object; returns it with its revision.
    pub fn create<T: Object>(&self, mut o: T) -> Result<T, DbError> {
        o.set_revision(0);
        if let Some(st) = o.standard() {
            st.created_at = now_utc();
            st.updated_at = st.created_at.clone();
        }
        let bytes = serde_json::to_vec(&o).map_err(codec)?;
        o.set_revision(self.db.create(T::TABLE, o.id(), &bytes)?);
        Ok(o)
    }

    /// Replaces the object if nobody wrote it since `o.revision()` (read with [`Store::get`]); a stale
    /// object is refused with `Conflict`.
    pub fn update<T: Object>(&self, mut o: T) -> Result<T, DbError> {
        let expected = o.revision();
        o.set_revision(0);
        if let Some(st) = o.standard() {
            st.updated_at = now_utc();
        }
        let bytes = serde_json::to_vec(&o).map_err(codec)?;
        o.set_revision(self.db.update(T::TABLE, o.id(), &bytes, expected)?);
        Ok(o)
    }

    pub fn delete<T: Object>(&self, id: &str, expected: Option<Revision>) -> Result<Revision, DbError> {
        self.db.delete(T::TABLE, id, expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port as Neutron's API shows it (the fields OVN and Dragonflow read), with extra fields.
    const NEUTRON_PORT: &str = r#"{
        "id": "5f1f1bd9-1b44-4a8c-9d3d-0c1a5f3b6d11", "name": "vm1", "network_id": "net-1",
        "mac_address": "fa:16:3e:12:34:56",
        "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "10.0.0.5"}],
        "device_owner": "compute:nova", "device_id": "vm-uuid", "security_groups": ["sg-1"],
        "allowed_address_pairs": [{"ip_address": "10.0.0.100/32"}],
        "port_security_enabled": true, "admin_state_up": true,
        "binding:host_id": "compute-1", "binding:profile": {}, "binding:vif_type": "unbound",
        "binding:vif_details": {}, "binding:vnic_type": "normal", "status": "DOWN",
        "revision_number": 3, "tags": [], "created_at": "2026-11-25T00:00:00Z"
    }"#;

    #[test]
    fn times_are_written_as_neutron_writes_them() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_868_800), "2000-03-01T00:00:00Z");
        assert_eq!(utc(1_796_244_670), "2026-12-02T20:51:10Z");
        assert_eq!(utc(1_709_164_799), "2024-02-28T23:59:59Z");
        assert_eq!(utc(1_709_251_199), "2024-02-29T23:59:59Z", "a leap day");
        for t in [0, 951_868_800, 1_709_251_199, 1_796_244_670] {
            assert_eq!(parse_utc(&utc(t)), Some(t));
        }
        assert_eq!(parse_utc("2026-12-02T20:51:10.000000Z"), Some(1_796_244_670));
        assert_eq!(parse_utc("2026-13-02T20:51:10Z"), None);
        assert_eq!(parse_utc("soon"), None);
    }

    #[test]
    fn neutron_json_round_trips() {
        let p: Port = serde_json::from_str(NEUTRON_PORT).unwrap();
        assert_eq!((p.host_id.as_str(), p.revision_number), ("compute-1", 3));
        assert_eq!(p.fixed_ips[0].ip_address, "10.0.0.5");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["binding:vif_type"], "unbound");
        let n: Network = serde_json::from_str(
            r#"{"id": "n", "provider:network_type": "vxlan", "provider:segmentation_id": 100, "router:external": true}"#,
        )
        .unwrap();
        assert_eq!(
            (n.network_type, n.segmentation_id, n.external, n.mtu),
            (Some(NetworkType::Vxlan), Some(100), true, 1500)
        );
        let s: Subnet = serde_json::from_str(
            r#"{"id": "s", "network_id": "n", "ip_version": 6, "cidr": "2001:db8::/64", "ipv6_ra_mode": "dhcpv6-stateless"}"#,
        )
        .unwrap();
        assert_eq!((s.ipv6_ra_mode, s.enable_dhcp), (Some(Ipv6Mode::Dhcpv6Stateless), true));
    }

    #[test]
    fn the_store_keeps_revisions_and_refuses_stale_writes() {
        let dir = std::env::temp_dir().join(format!("df-model-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = crate::db::embedded::EmbeddedDb::open(&dir).unwrap();
        let store = Store::new(&db);
        let p: Port = serde_json::from_str(NEUTRON_PORT).unwrap();
        let created = store.create(p).unwrap();
        let mut a: Port = store.get(created.id()).unwrap().unwrap();
        assert_eq!(a.revision_number, created.revision_number);
        let mut b = a.clone();
        a.status = "ACTIVE".into();
        let a = store.update(a).unwrap();
        b.name = "renamed".into();
        assert!(matches!(store.update(b), Err(DbError::Conflict { .. })), "b was read before a's write");
        let (all, _) = store.list::<Port>().unwrap();
        assert_eq!((all.len(), all[0].status.as_str(), all[0].revision_number), (1, "ACTIVE", a.revision_number));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Security group rules: `/v2.0/security-group-rules`, checked as Neutron checks them
//! (`neutron/extensions/securitygroup.py`'s converters, then `SecurityGroupDbMixin`'s
//! `_validate_base_security_group_rule_attributes` in `neutron/db/securitygroups_db.py`), in its order:
//!
//! 1. the attributes converted: `ethertype` in any case (`ipv4` is `IPv4`); `protocol` a name of
//!    Neutron's `IP_PROTOCOL_MAP` (any case, stored in lower case), a number 0-255, or `any`/none (any
//!    protocol); ports 0-65535; `remote_ip_prefix` an address with or without a length, stored as
//!    `address/length` with its host bits (`10.0.0.5` is `10.0.0.5/32`), shown with its network as
//!    `normalized_cidr` (`security-groups-normalized-cidr`);
//! 2. on an IPv6 rule, ICMP by its IPv4 names or number (`icmp`, `icmpv6`, `1`) becomes `ipv6-icmp` (`58`);
//! 3. the whole range 1-65535 is no range;
//! 4. ports only with a protocol; for TCP, UDP, SCTP, DCCP and UDP-Lite both ends, `min <= max`, not 0;
//!    for ICMP `port_range_min` is the type and `port_range_max` the code, 0-255, a code only with a type;
//!    no ports for another protocol;
//! 5. a `remote_ip_prefix` of the rule's ethertype; no IPv6-only protocol (`ipv6-icmp`, …) on IPv4;
//! 6. one remote at most (`remote_ip_prefix` or `remote_group_id`; address groups are not offered);
//! 7. the remote group, then the rule's group, exist (404 `SecurityGroupNotFound`); the group itself as
//!    its own remote is fine;
//! 8. no rule twice (409 `SecurityGroupRuleExists`): the same protocol by name or number, no prefix the
//!    same as `0.0.0.0/0` or `::/0`.
//!
//! Rules are never updated; a rule goes with its group, and with a group it names as `remote_group_id`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::crud::{blocking, new_id, to_json, touch, Api, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::policy::Caller;
use super::security_groups::is_default;
use crate::cidr::{ip_from_bits, Cidr};
use crate::db::{Db, DbError};
use crate::model::{
    ip_protocol_number, Direction, EtherType, SecurityGroup, SecurityGroupRule, Standard, Store, IP_PROTOCOLS,
};

/// Neutron's refusals of a rule, by its exception names (`neutron/extensions/securitygroup.py`); all
/// are 400s but [`RuleError::Exists`] (409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum RuleError {
    /// A required attribute is missing (`HTTPBadRequest`).
    #[error("Failed to parse request. Required attribute '{0}' not specified")]
    Missing(&'static str),
    /// An attribute of the wrong JSON type (`HTTPBadRequest`).
    #[error("Invalid input for {0}. Reason: '{1}' is not a valid string.")]
    NotAString(&'static str, String),
    /// `direction` is neither `ingress` nor `egress` (`HTTPBadRequest`).
    #[error("Invalid input for direction. Reason: '{0}' is not in ['ingress', 'egress'].")]
    Direction(String),
    #[error("Security group rule for ethertype '{0}' not supported. Allowed values are ['IPv4', 'IPv6'].")]
    InvalidEtherType(String),
    #[error(
        "Security group rule protocol {0} not supported. Only protocol values {values} and integer representations [0 to 255] are supported.",
        values = supported_protocols()
    )]
    InvalidProtocol(String),
    #[error("Invalid value for port {0}")]
    InvalidPortValue(String),
    #[error("Invalid CIDR {0} given as IP prefix.")]
    InvalidCidr(String),
    #[error("Must also specify protocol if port range is given.")]
    ProtocolRequiredWithPorts,
    #[error("For TCP/UDP protocols, port_range_min must be <= port_range_max")]
    InvalidPortRange,
    /// (`type` or `code`, the attribute, its value.)
    #[error("Invalid value for ICMP {0} ({1}) {2}. It must be 0 to 255.")]
    InvalidIcmpValue(&'static str, &'static str, u16),
    #[error("ICMP code (port-range-max) {0} is provided but ICMP type (port-range-min) is missing.")]
    MissingIcmpType(u16),
    /// (The protocol's number.)
    #[error("Ports cannot be specified for protocol {0}. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.")]
    InvalidProtocolForPort(u8),
    /// (The ethertype, the prefix.)
    #[error("Conflicting value ethertype {0} for CIDR {1}")]
    ParameterConflict(&'static str, String),
    /// (The ethertype, the protocol.)
    #[error("Invalid ethertype {0} for protocol {1}.")]
    EthertypeConflictWithProtocol(&'static str, String),
    #[error("Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.")]
    MultipleRemoteEntites,
    /// (The id of the rule there is.)
    #[error("Security group rule already exists. Rule id is {0}.")]
    Exists(String),
}

impl RuleError {
    /// Neutron's exception name: the error body's `type`.
    fn kind(&self) -> &'static str {
        match self {
            RuleError::Missing(_) | RuleError::NotAString(..) | RuleError::Direction(_) => "HTTPBadRequest",
            RuleError::InvalidEtherType(_) => "SecurityGroupRuleInvalidEtherType",
            RuleError::InvalidProtocol(_) => "SecurityGroupRuleInvalidProtocol",
            RuleError::InvalidPortValue(_) => "SecurityGroupInvalidPortValue",
            RuleError::InvalidCidr(_) => "InvalidCIDR",
            RuleError::ProtocolRequiredWithPorts => "SecurityGroupProtocolRequiredWithPorts",
            RuleError::InvalidPortRange => "SecurityGroupInvalidPortRange",
            RuleError::InvalidIcmpValue(..) => "SecurityGroupInvalidIcmpValue",
            RuleError::MissingIcmpType(_) => "SecurityGroupMissingIcmpType",
            RuleError::InvalidProtocolForPort(_) => "SecurityGroupInvalidProtocolForPort",
            RuleError::ParameterConflict(..) => "SecurityGroupRuleParameterConflict",
            RuleError::EthertypeConflictWithProtocol(..) => "SecurityGroupEthertypeConflictWithProtocol",
            RuleError::MultipleRemoteEntites => "SecurityGroupMultipleRemoteEntites",
            RuleError::Exists(_) => "SecurityGroupRuleExists",
        }
    }
}

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> ApiError {
        let status = if matches!(e, RuleError::Exists(_)) { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
        ApiError::new(status, e.kind(), e.to_string())
    }
}

/// Neutron's `sg_supported_protocols` as its message prints them.
fn supported_protocols() -> String {
    let names: Vec<String> = IP_PROTOCOLS.iter().map(|(n, _)| format!("'{n}'")).collect();
    format!("(None, 'any', {})", names.join(", "))
}

/// TCP, UDP, DCCP, SCTP, UDP-Lite: the protocols with ports (Neutron's `SG_PORT_PROTO_NUMS`).
const PORT_PROTOCOLS: [u8; 5] = [33, 132, 6, 17, 136];
/// ICMP and ICMPv6: type and code in the port range.
const ICMP_PROTOCOLS: [u8; 2] = [1, 58];
/// The protocols only IPv6 has, by name and number (Neutron's `_validate_ethertype_and_protocol`).
const IPV6_ONLY: [&str; 13] = [
    "ipv6-encap",
    "ipv6-frag",
    "ipv6-icmp",
    "icmpv6",
    "ipv6-nonxt",
    "ipv6-opts",
    "ipv6-route",
    "41",
    "44",
    "58",
    "59",
    "60",
    "43",
];

fn ethertype_name(e: EtherType) -> &'static str {
    match e {
        EtherType::IPv4 => "IPv4",
        EtherType::IPv6 => "IPv6",
    }
}

/// A string attribute, `None` if absent or null.
fn string(attrs: &Attrs, key: &'static str) -> Result<Option<String>, RuleError> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(RuleError::NotAString(key, v.to_string())),
    }
}

/// Neutron's `convert_protocol`: `None` for any protocol; a number as its decimal; a name in lower case.
fn protocol(v: Option<&Value>) -> Result<Option<String>, RuleError> {
    let s = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(v) => return Err(RuleError::InvalidProtocol(v.to_string())),
    };
    if s.eq_ignore_ascii_case("any") {
        return Ok(None);
    }
    if let Ok(n) = s.parse::<i64>() {
        return u8::try_from(n).map(|n| Some(n.to_string())).map_err(|_| RuleError::InvalidProtocol(s));
    }
    let lower = s.to_ascii_lowercase();
    match IP_PROTOCOLS.iter().any(|(n, _)| *n == lower) {
        true => Ok(Some(lower)),
        false => Err(RuleError::InvalidProtocol(s)),
    }
}

/// Neutron's `convert_validate_port_value`: a number (or a string of one) 0-65535.
fn port(v: Option<&Value>) -> Result<Option<u16>, RuleError> {
    let shown = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    shown.trim().parse::<u16>().map(Some).map_err(|_| RuleError::InvalidPortValue(shown))
}

/// A rule from a create request's attributes, converted and checked as Neutron does (steps 1 to 6 of
/// the module's list), without the DB.
pub(super) fn checked(attrs: &Attrs) -> Result<SecurityGroupRule, RuleError> {
    let security_group_id = string(attrs, "security_group_id")?.ok_or(RuleError::Missing("security_group_id"))?;
    let direction = match string(attrs, "direction")?.ok_or(RuleError::Missing("direction"))?.as_str() {
        "ingress" => Direction::Ingress,
        "egress" => Direction::Egress,
        other => return Err(RuleError::Direction(other.into())),
    };
    let ethertype = match attrs.get("ethertype") {
        None | Some(Value::Null) => EtherType::IPv4,
        Some(Value::String(e)) if e.eq_ignore_ascii_case("ipv4") => EtherType::IPv4,
        Some(Value::String(e)) if e.eq_ignore_ascii_case("ipv6") => EtherType::IPv6,
        Some(Value::String(e)) => return Err(RuleError::InvalidEtherType(e.clone())),
        Some(v) => return Err(RuleError::InvalidEtherType(v.to_string())),
    };
    let mut protocol = protocol(attrs.get("protocol"))?;
    let (mut min, mut max) = (port(attrs.get("port_range_min"))?, port(attrs.get("port_range_max"))?);
    let remote_ip_prefix = match string(attrs, "remote_ip_prefix")?.filter(|p| !p.is_empty()) {
        Some(p) => Some(Cidr::parse(&p).ok_or(RuleError::InvalidCidr(p))?),
        None => None,
    };
    let remote_group_id = string(attrs, "remote_group_id")?.filter(|g| !g.is_empty());

    // ICMP on IPv6 by its IPv4 names or number.
    if ethertype == EtherType::IPv6 {
        match protocol.as_deref() {
            Some("icmp" | "icmpv6") => protocol = Some("ipv6-icmp".into()),
            Some("1") => protocol = Some("58".into()),
            _ => {}
        }
    }
    if (min, max) == (Some(1), Some(65535)) {
        (min, max) = (None, None);
    }
    if min.is_some() || max.is_some() {
        let Some(p) = protocol.as_deref() else { return Err(RuleError::ProtocolRequiredWithPorts) };
        let number = ip_protocol_number(p).unwrap_or_default();
        if PORT_PROTOCOLS.contains(&number) {
            if min == Some(0) || max == Some(0) {
                return Err(RuleError::InvalidPortValue("0".into()));
            }
            if !matches!((min, max), (Some(a), Some(b)) if a <= b) {
                return Err(RuleError::InvalidPortRange);
            }
        } else if ICMP_PROTOCOLS.contains(&number) {
            for (v, field, attr) in [(min, "type", "port_range_min"), (max, "code", "port_range_max")] {
                if let Some(v) = v.filter(|v| *v > 255) {
                    return Err(RuleError::InvalidIcmpValue(field, attr, v));
                }
            }
            if let (None, Some(code)) = (min, max) {
                return Err(RuleError::MissingIcmpType(code));
            }
        } else {
            return Err(RuleError::InvalidProtocolForPort(number));
        }
    }
    if let Some(c) = &remote_ip_prefix {
        if c.is_v6() != (ethertype == EtherType::IPv6) {
            return Err(RuleError::ParameterConflict(ethertype_name(ethertype), c.to_string()));
        }
    }
    if let Some(p) = protocol.as_deref().filter(|p| ethertype == EtherType::IPv4 && IPV6_ONLY.contains(p)) {
        return Err(RuleError::EthertypeConflictWithProtocol("IPv4", p.into()));
    }
    if remote_ip_prefix.is_some() && remote_group_id.is_some() {
        return Err(RuleError::MultipleRemoteEntites);
    }
    Ok(SecurityGroupRule {
        standard: Standard { description: string(attrs, "description")?.unwrap_or_default(), ..Standard::default() },
        id: new_id(),
        security_group_id,
        direction,
        ethertype,
        protocol,
        port_range_min: min,
        port_range_max: max,
        remote_ip_prefix: remote_ip_prefix.map(|c| c.to_string()),
        remote_group_id,
        revision_number: 0,
    })
}

/// A prefix's network: `10.0.0.5/24` is `10.0.0.0/24` (Neutron's `normalized_cidr`).
fn normalized(prefix: &str) -> Option<String> {
    let c = Cidr::parse(prefix)?;
    Some(Cidr::host(ip_from_bits(c.is_v6(), c.base())).with_prefix_len(c.prefix_len())?.to_string())
}

/// What makes two rules the same to Neutron (`_rule_to_key`): the protocol by its number, a prefix
/// matching every address the same as none.
fn same_rule(a: &SecurityGroupRule, b: &SecurityGroupRule) -> bool {
    let prefix = |r: &SecurityGroupRule| r.remote_ip_prefix.clone().filter(|p| p != "0.0.0.0/0" && p != "::/0");
    let protocol = |r: &SecurityGroupRule| r.protocol.as_deref().map(|p| ip_protocol_number(p).ok_or(p.to_owned()));
    (&a.security_group_id, a.direction, a.ethertype, a.port_range_min, a.port_range_max, &a.remote_group_id)
        == (&b.security_group_id, b.direction, b.ethertype, b.port_range_min, b.port_range_max, &b.remote_group_id)
        && prefix(a) == prefix(b)
        && protocol(a) == protocol(b)
}

/// A rule as Neutron shows it: with its project (its group's), `normalized_cidr` and
/// `belongs_to_default_sg`.
pub(super) fn rule_json(r: &SecurityGroupRule, groups: &[SecurityGroup]) -> Value {
    let group = groups.iter().find(|g| g.id == r.security_group_id);
    let mut v = to_json(r);
    let project = group.map_or("", |g| g.project_id.as_str());
    v["project_id"] = project.into();
    v["tenant_id"] = project.into();
    v["normalized_cidr"] = r.remote_ip_prefix.as_deref().and_then(normalized).into();
    v["belongs_to_default_sg"] = group.is_some_and(is_default).into();
    v
}

impl Resource for SecurityGroupRule {
    const ONE: &'static str = "security_group_rule";
    const MANY: &'static str = "security_group_rules";
    const CREATE: &'static [&'static str] = &[
        "security_group_id",
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
        "description",
        "project_id",
        "tenant_id",
    ];
    const CREATE_IGNORED: &'static [&'static str] = &["project_id", "tenant_id"];

    const SHOWN: &'static [&'static str] = &["normalized_cidr", "belongs_to_default_sg"];
    type Draft = SecurityGroupRule;

    fn draft(attrs: Attrs, _: &Settings) -> ApiResult<SecurityGroupRule> {
        Ok(checked(&attrs)?)
    }

    /// A rule counts against its group's project, as it shows.
    fn quota_project(db: &dyn Db, attrs: &Attrs) -> ApiResult<Option<String>> {
        let Some(id) = attrs.get("security_group_id").and_then(Value::as_str) else { return Ok(None) };
        Ok(Store::new(db).get::<SecurityGroup>(id)?.map(|g| g.project_id))
    }

    /// In a group of the caller's, naming a remote group the caller may see (another project's is not
    /// found to it).
    fn authorize_create(db: &dyn Db, caller: &Caller, attrs: &Attrs) -> ApiResult<()> {
        let s = Store::new(db);
        for k in ["security_group_id", "remote_group_id"] {
            if let Some(id) = attrs.get(k).and_then(Value::as_str) {
                if s.get::<SecurityGroup>(id)?.is_some_and(|g| !caller.owns(&g.project_id)) {
                    return Err(group_not_found(id));
                }
            }
        }
        Ok(())
    }

    fn insert(db: &dyn Db, r: SecurityGroupRule) -> ApiResult<SecurityGroupRule> {
        let s = Store::new(db);
        if let Some(g) = &r.remote_group_id {
            s.get::<SecurityGroup>(g)?.ok_or_else(|| group_not_found(g))?;
        }
        s.get::<SecurityGroup>(&r.security_group_id)?.ok_or_else(|| group_not_found(&r.security_group_id))?;
        if let Some(o) = s.list::<SecurityGroupRule>()?.0.iter().find(|o| same_rule(o, &r)) {
            return Err(RuleError::Exists(o.id.clone()).into());
        }
        let r = s.create(r)?;
        touch::<SecurityGroup>(db, &r.security_group_id);
        Ok(r)
    }

    fn views(db: &dyn Db, rules: Vec<SecurityGroupRule>) -> ApiResult<Vec<Value>> {
        let (groups, _) = Store::new(db).list::<SecurityGroup>()?;
        Ok(rules.iter().map(|r| rule_json(r, &groups)).collect())
    }
}

/// 404 `SecurityGroupNotFound`, Neutron's words.
pub(super) fn group_not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "SecurityGroupNotFound", format!("Security group {id} does not exist"))
}

/// 404 `SecurityGroupRuleNotFound`, Neutron's words.
fn rule_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "SecurityGroupRuleNotFound",
        format!("Security group rule {id} does not exist"),
    )
}

/// `DELETE /v2.0/security-group-rules/{id}`: without reading the rule first (unlike the generic
/// delete), so a rule that no longer decodes can still be deleted.
pub(super) async fn delete_rule(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        let s = Store::new(db);
        let group = s.get::<SecurityGroupRule>(&id).ok().flatten().map(|r| r.security_group_id);
        if !caller.admin {
            // The rule's project is its group's: one the caller may not change is not found to it.
            let mine = group
                .as_ref()
                .and_then(|g| s.get::<SecurityGroup>(g).ok().flatten())
                .is_some_and(|g| caller.owns(&g.project_id));
            if !mine {
                return Err(rule_not_found(&id));
            }
        }
        s.delete::<SecurityGroupRule>(&id, None).map_err(|e| match e {
            DbError::NotFound => rule_not_found(&id),
            e => e.into(),
        })?;
        if let Some(g) = group {
            touch::<SecurityGroup>(db, &g);
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Result<SecurityGroupRule, RuleError> {
        let mut a = v.as_object().unwrap().clone();
        a.insert("security_group_id".into(), json!("g"));
        a.entry("direction").or_insert(json!("ingress"));
        checked(&a)
    }

    #[test]
    fn protocols_by_name_number_or_any() {
        let p = |v: Value| rule(json!({ "protocol": v })).map(|r| r.protocol);
        assert_eq!(p(json!("TCP")), Ok(Some("tcp".into())));
        assert_eq!(p(json!(6)), Ok(Some("6".into())));
        assert_eq!(p(json!("132")), Ok(Some("132".into())));
        assert_eq!(p(json!("vrrp")), Ok(Some("vrrp".into())));
        assert_eq!(p(json!("any")), Ok(None));
        assert_eq!(p(Value::Null), Ok(None));
        assert_eq!(p(json!(256)), Err(RuleError::InvalidProtocol("256".into())));
        assert_eq!(p(json!("carrier-pigeon")), Err(RuleError::InvalidProtocol("carrier-pigeon".into())));
        assert_eq!(p(json!(true)), Err(RuleError::InvalidProtocol("true".into())));
        assert_eq!(
            rule(json!({ "protocol": "icmp", "ethertype": "ipv6" })).unwrap().protocol.as_deref(),
            Some("ipv6-icmp")
        );
        assert_eq!(rule(json!({ "protocol": 1, "ethertype": "IPv6" })).unwrap().protocol.as_deref(), Some("58"));
        assert_eq!(
            rule(json!({ "protocol": "ipv6-icmp" })),
            Err(RuleError::EthertypeConflictWithProtocol("IPv4", "ipv6-icmp".into()))
        );
        assert_eq!(rule(json!({ "ethertype": "IPv5" })), Err(RuleError::InvalidEtherType("IPv5".into())));
    }

    #[test]
    fn port_ranges_as_neutron_checks_them() {
        let r = |p: &str, min: Value, max: Value| {
            rule(json!({ "protocol": p, "port_range_min": min, "port_range_max": max }))
                .map(|r| (r.port_range_min, r.port_range_max))
        };
        assert_eq!(r("tcp", json!(80), json!("8080")), Ok((Some(80), Some(8080))));
        assert_eq!(r("tcp", json!(1), json!(65535)), Ok((None, None)), "the whole range is no range");
        assert_eq!(r("tcp", json!(90), json!(80)), Err(RuleError::InvalidPortRange));
        assert_eq!(r("udp", json!(80), Value::Null), Err(RuleError::InvalidPortRange));
        assert_eq!(r("tcp", json!(0), json!(80)), Err(RuleError::InvalidPortValue("0".into())));
        assert_eq!(r("tcp", json!(80), json!(65536)), Err(RuleError::InvalidPortValue("65536".into())));
        assert_eq!(r("icmp", json!(8), json!(0)), Ok((Some(8), Some(0))), "type 8 code 0");
        assert_eq!(r("icmp", json!(8), Value::Null), Ok((Some(8), None)));
        assert_eq!(r("icmp", json!(256), Value::Null), Err(RuleError::InvalidIcmpValue("type", "port_range_min", 256)));
        assert_eq!(r("icmp", json!(8), json!(300)), Err(RuleError::InvalidIcmpValue("code", "port_range_max", 300)));
        assert_eq!(r("icmp", Value::Null, json!(0)), Err(RuleError::MissingIcmpType(0)));
        assert_eq!(r("gre", json!(1), json!(2)), Err(RuleError::InvalidProtocolForPort(47)));
        assert_eq!(r("any", json!(80), json!(80)), Err(RuleError::ProtocolRequiredWithPorts));
    }

    #[test]
    fn prefixes_keep_their_host_bits_and_match_the_ethertype() {
        let p = |e: &str, prefix: &str| rule(json!({ "ethertype": e, "remote_ip_prefix": prefix }));
        assert_eq!(p("IPv4", "10.0.0.5").unwrap().remote_ip_prefix.as_deref(), Some("10.0.0.5/32"));
        assert_eq!(p("IPv4", "10.0.0.5/24").unwrap().remote_ip_prefix.as_deref(), Some("10.0.0.5/24"));
        assert_eq!(normalized("10.0.0.5/24").as_deref(), Some("10.0.0.0/24"));
        assert_eq!(normalized("2001:db8::1/64").as_deref(), Some("2001:db8::/64"));
        assert_eq!(p("IPv6", "10.0.0.0/8"), Err(RuleError::ParameterConflict("IPv6", "10.0.0.0/8".into())));
        assert_eq!(p("IPv4", "10.0.0.0/33"), Err(RuleError::InvalidCidr("10.0.0.0/33".into())));
        let both = rule(json!({ "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "g" }));
        assert_eq!(both, Err(RuleError::MultipleRemoteEntites));
    }

    #[test]
    fn the_same_rule_by_number_or_name_and_any_prefix() {
        let a = rule(json!({ "protocol": "tcp", "port_range_min": 22, "port_range_max": 22 })).unwrap();
        let b = rule(json!({ "protocol": 6, "port_range_min": 22, "port_range_max": 22 })).unwrap();
        assert!(same_rule(&a, &b));
        let c = rule(json!({ "protocol": "udp", "port_range_min": 22, "port_range_max": 22 })).unwrap();
        assert!(!same_rule(&a, &c));
        let any = rule(json!({})).unwrap();
        let all = rule(json!({ "remote_ip_prefix": "0.0.0.0/0" })).unwrap();
        assert!(same_rule(&any, &all));
    }
}

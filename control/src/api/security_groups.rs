//! Security groups and their rules: `/v2.0/security-groups`, `/v2.0/security-group-rules`. A group is
//! shown with its rules; a new group allows egress anywhere (IPv4 and IPv6), as Neutron's; a project's
//! `default` group (ingress from its members, egress anywhere) is made on first use by a port. A rule is
//! checked (protocol, port range, a `remote_ip_prefix` network of the rule's ethertype, or a remote
//! group) and never stored twice (`SecurityGroupRuleExists`). A group in use by a port is not deleted
//! (`SecurityGroupInUse`); its rules go with it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::crud::{blocking, new_id, new_object, to_json, Api, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use crate::cidr::Cidr;
use crate::db::{Db, DbError};
use crate::model::{Direction, EtherType, Port, SecurityGroup, SecurityGroupRule, Store};

/// The project's `default` security group (ingress from its own members, egress anywhere, as
/// Neutron's), made on first use. Its id is derived from the project, so concurrent first uses agree.
pub(super) fn default_group(db: &dyn Db, project: &str) -> ApiResult<String> {
    let id = format!("default-{}", if project.is_empty() { "none" } else { project });
    let s = Store::new(db);
    if s.get::<SecurityGroup>(&id)?.is_some() {
        return Ok(id);
    }
    let g = SecurityGroup {
        id: id.clone(),
        name: "default".into(),
        description: "Default security group".into(),
        project_id: project.into(),
        security_group_rules: Vec::new(),
        revision_number: 0,
    };
    match s.create(g) {
        Ok(_) | Err(DbError::AlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }
    for (direction, ethertype, remote) in [
        (Direction::Ingress, EtherType::IPv4, Some(id.clone())),
        (Direction::Ingress, EtherType::IPv6, Some(id.clone())),
        (Direction::Egress, EtherType::IPv4, None),
        (Direction::Egress, EtherType::IPv6, None),
    ] {
        let r = rule(&id, direction, ethertype, remote);
        let rid = format!("{id}-{}-{}", direction_name(direction), ethertype_name(ethertype));
        let _ = s.create(SecurityGroupRule { id: rid, ..r });
    }
    Ok(id)
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

fn ethertype_name(e: EtherType) -> &'static str {
    match e {
        EtherType::IPv4 => "IPv4",
        EtherType::IPv6 => "IPv6",
    }
}

fn rule(group: &str, direction: Direction, ethertype: EtherType, remote_group: Option<String>) -> SecurityGroupRule {
    SecurityGroupRule {
        id: new_id(),
        security_group_id: group.into(),
        direction,
        ethertype,
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: remote_group,
        revision_number: 0,
    }
}

/// A group as Neutron shows it: with its rules.
fn group_json(g: &SecurityGroup, rules: &[SecurityGroupRule]) -> Value {
    let mut v = to_json(g);
    v["security_group_rules"] = to_json(&rules.iter().filter(|r| r.security_group_id == g.id).collect::<Vec<_>>());
    v["tenant_id"] = v["project_id"].clone();
    v
}

impl Resource for SecurityGroup {
    const ONE: &'static str = "security_group";
    const MANY: &'static str = "security_groups";
    const CREATE: &'static [&'static str] = &["name", "description", "project_id", "tenant_id", "stateful"];
    const CREATE_IGNORED: &'static [&'static str] = &["stateful"];
    const UPDATE: &'static [&'static str] = &["name", "description"];

    type Draft = SecurityGroup;

    fn draft(attrs: Attrs, _: &Settings) -> ApiResult<SecurityGroup> {
        new_object(attrs, None)
    }

    /// Neutron gives a new group egress to anywhere, IPv4 and IPv6.
    fn insert(db: &dyn Db, g: SecurityGroup) -> ApiResult<SecurityGroup> {
        let s = Store::new(db);
        let g = s.create(g)?;
        for e in [EtherType::IPv4, EtherType::IPv6] {
            s.create(rule(&g.id, Direction::Egress, e, None))?;
        }
        Ok(g)
    }

    fn before_delete(db: &dyn Db, g: &SecurityGroup) -> ApiResult<()> {
        let (s, id) = (Store::new(db), &g.id);
        if s.list::<Port>()?.0.iter().any(|p| p.security_groups.contains(id)) {
            return Err(ApiError::conflict("SecurityGroupInUse", format!("Security Group {id} in use.")));
        }
        for r in s.list::<SecurityGroupRule>()?.0.iter().filter(|r| r.security_group_id == *id) {
            let _ = s.delete::<SecurityGroupRule>(&r.id, None);
        }
        Ok(())
    }

    fn views(db: &dyn Db, groups: Vec<SecurityGroup>) -> ApiResult<Vec<Value>> {
        let (rules, _) = Store::new(db).list::<SecurityGroupRule>()?;
        Ok(groups.iter().map(|g| group_json(g, &rules)).collect())
    }
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
    const CREATE_IGNORED: &'static [&'static str] = &["description", "project_id", "tenant_id"];

    type Draft = SecurityGroupRule;

    fn draft(mut attrs: Attrs, _: &Settings) -> ApiResult<SecurityGroupRule> {
        attrs.entry("ethertype").or_insert(json!("IPv4"));
        if let Some(Value::Number(n)) = attrs.get("protocol") {
            let n = n.to_string();
            attrs.insert("protocol".into(), json!(n));
        }
        let mut r: SecurityGroupRule = {
            let mut v = Value::Object(attrs);
            v["id"] = json!(new_id());
            serde_json::from_value(v).map_err(|e| ApiError::bad(format!("invalid security group rule: {e}")))?
        };
        if let Some(p) = &r.protocol {
            let p = p.to_lowercase();
            let ok = matches!(p.as_str(), "tcp" | "udp" | "icmp" | "ipv6-icmp" | "icmpv6" | "any")
                || p.parse::<u8>().is_ok();
            if !ok {
                return Err(ApiError::bad(format!("Security group rule protocol {p} not supported.")));
            }
            r.protocol = Some(p);
        }
        if let (Some(a), Some(b)) = (r.port_range_min, r.port_range_max) {
            if a > b {
                return Err(ApiError::bad("For TCP/UDP protocols, port_range_min must be <= port_range_max"));
            }
        }
        if (r.port_range_min.is_some() || r.port_range_max.is_some()) && r.protocol.is_none() {
            return Err(ApiError::bad("Must also specify protocol if port range is given."));
        }
        if let Some(prefix) = &r.remote_ip_prefix {
            let c = Cidr::parse_network(prefix)
                .ok_or_else(|| ApiError::bad(format!("Invalid remote_ip_prefix {prefix}")))?;
            if c.is_v6() != (r.ethertype == EtherType::IPv6) {
                return Err(ApiError::bad(format!(
                    "Conflicting value ethertype {} for CIDR {prefix}",
                    ethertype_name(r.ethertype)
                )));
            }
            if r.remote_group_id.is_some() {
                return Err(ApiError::bad("Only remote_ip_prefix or remote_group_id may be provided."));
            }
        }
        Ok(r)
    }

    fn insert(db: &dyn Db, r: SecurityGroupRule) -> ApiResult<SecurityGroupRule> {
        let s = Store::new(db);
        s.get::<SecurityGroup>(&r.security_group_id)?
            .ok_or_else(|| ApiError::not_found("security_group", &r.security_group_id))?;
        if let Some(g) = &r.remote_group_id {
            s.get::<SecurityGroup>(g)?.ok_or_else(|| ApiError::not_found("security_group", g))?;
        }
        let same = |o: &SecurityGroupRule| SecurityGroupRule { id: String::new(), revision_number: 0, ..o.clone() };
        if s.list::<SecurityGroupRule>()?.0.iter().any(|o| same(o) == same(&r)) {
            return Err(ApiError::conflict("SecurityGroupRuleExists", "Security group rule already exists."));
        }
        Ok(s.create(r)?)
    }
}

/// `DELETE /v2.0/security-group-rules/{id}`: without reading the rule first (unlike the generic
/// delete), so a rule that no longer decodes can still be deleted.
pub(super) async fn delete_rule(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        Store::new(db).delete::<SecurityGroupRule>(&id, None).map_err(|e| match e {
            DbError::NotFound => ApiError::not_found("security_group_rule", &id),
            e => e.into(),
        })?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

//! Security groups: `/v2.0/security-groups`, shown with their rules (`security_group_rules.rs`). As
//! Neutron's (`neutron/db/securitygroups_db.py`, `neutron/extensions/securitygroup.py`):
//! - a new group allows egress anywhere (IPv4 and IPv6); a project's `default` group (ingress from its
//!   members, egress anywhere) is made on first use: a port of the project, or the project's first group;
//! - no other group may be named `default` (409 `SecurityGroupDefaultAlreadyExists`), nor the default
//!   group renamed (409 `SecurityGroupCannotUpdateDefault`);
//! - `stateful` (`stateful-security-group`, default true): a group in use by a port keeps it (409
//!   `SecurityGroupInUse`); a port does not mix stateful and stateless groups (`ports.rs`);
//! - a group in use by a port is not deleted (409 `SecurityGroupInUse`); its rules go with it, and so do
//!   the rules of other groups that name it as `remote_group_id`.

use axum::http::StatusCode;
use serde_json::Value;

use super::crud::{merge, new_id, new_object, to_json, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::policy::Caller;
use super::query::booleans_in;
use super::security_group_rules::rule_json;
use crate::db::{Db, DbError};
use crate::model::{Direction, EtherType, Port, SecurityGroup, SecurityGroupRule, Standard, Store};

/// The id of `project`'s default group: derived from the project, so concurrent first uses agree.
fn default_id(project: &str) -> String {
    format!("default-{}", if project.is_empty() { "none" } else { project })
}

/// Whether `g` is its project's default group.
pub(super) fn is_default(g: &SecurityGroup) -> bool {
    g.id == default_id(&g.project_id)
}

/// The project's `default` security group (ingress from its own members, egress anywhere, as
/// Neutron's), made on first use.
pub(super) fn default_group(db: &dyn Db, project: &str) -> ApiResult<String> {
    let id = default_id(project);
    let s = Store::new(db);
    if s.get::<SecurityGroup>(&id)?.is_some() {
        return Ok(id);
    }
    let g = SecurityGroup {
        id: id.clone(),
        name: "default".into(),
        standard: Standard { description: "Default security group".into(), ..Standard::default() },
        project_id: project.into(),
        stateful: true,
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
        standard: Standard::default(),
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
fn group_json(g: &SecurityGroup, groups: &[SecurityGroup], rules: &[SecurityGroupRule]) -> Value {
    let mut v = to_json(g);
    let mine = rules.iter().filter(|r| r.security_group_id == g.id).map(|r| rule_json(r, groups)).collect();
    v["security_group_rules"] = Value::Array(mine);
    v["tenant_id"] = v["project_id"].clone();
    v
}

/// Neutron's `name_not_default` validator: only the project's own default group is `default`.
fn name_not_default(attrs: &Attrs) -> ApiResult<()> {
    if attrs.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case("default")) {
        return Err(ApiError::conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists."));
    }
    Ok(())
}

/// Whether a port uses group `id`.
fn in_use(db: &dyn Db, id: &str) -> ApiResult<bool> {
    Ok(Store::new(db).list::<Port>()?.0.iter().any(|p| p.security_groups.iter().any(|g| g == id)))
}

fn group_in_use(id: &str) -> ApiError {
    ApiError::conflict("SecurityGroupInUse", format!("Security Group {id} in use."))
}

/// The rules a new group (not a default group) gets: all egress, each IP version.
const NEW_GROUP_EGRESS: [EtherType; 2] = [EtherType::IPv4, EtherType::IPv6];

impl Resource for SecurityGroup {
    const ONE: &'static str = "security_group";
    const MANY: &'static str = "security_groups";
    const CREATE: &'static [&'static str] = &["name", "description", "project_id", "tenant_id", "stateful"];
    const UPDATE: &'static [&'static str] = &["name", "description", "stateful"];
    /// Its egress rules count against the project's rule quota (Neutron checks them before the group).
    const QUOTA_ALSO: &'static [(&'static str, usize)] = &[("security_group_rule", NEW_GROUP_EGRESS.len())];

    const SHOWN: &'static [&'static str] = &["security_group_rules"];
    type Draft = SecurityGroup;

    /// A project's first look at its groups finds its default group (Neutron makes it then).
    fn before_list(db: &dyn Db, caller: &Caller) -> ApiResult<()> {
        if let Some(p) = &caller.project {
            default_group(db, p)?;
        }
        Ok(())
    }

    fn draft(mut attrs: Attrs, _: &Settings) -> ApiResult<SecurityGroup> {
        name_not_default(&attrs)?;
        booleans_in(&mut attrs, &["stateful"])?;
        new_object(attrs, None)
    }

    /// Neutron makes the project's default group first, and gives a new group egress to anywhere,
    /// IPv4 and IPv6.
    fn insert(db: &dyn Db, g: SecurityGroup) -> ApiResult<SecurityGroup> {
        default_group(db, &g.project_id)?;
        let s = Store::new(db);
        let g = s.create(g)?;
        let mut made = Vec::with_capacity(NEW_GROUP_EGRESS.len());
        for e in NEW_GROUP_EGRESS {
            match s.create(rule(&g.id, Direction::Egress, e, None)) {
                Ok(r) => made.push(r.id),
                Err(err) => {
                    // Not half a group: what was made goes.
                    let rules = made.iter().map(|id| s.delete::<SecurityGroupRule>(id, None));
                    for u in rules.chain([s.delete::<SecurityGroup>(&g.id, None)]).filter_map(Result::err) {
                        tracing::warn!(group = g.id, "a security group's create not undone: {u}");
                    }
                    return Err(err.into());
                }
            }
        }
        Ok(g)
    }

    fn change(db: &dyn Db, _: &Settings, cur: &SecurityGroup, mut attrs: Attrs) -> ApiResult<SecurityGroup> {
        name_not_default(&attrs)?;
        booleans_in(&mut attrs, &["stateful"])?;
        let next = merge(cur, attrs.clone())?;
        if next.stateful != cur.stateful && in_use(db, &cur.id)? {
            return Err(group_in_use(&cur.id));
        }
        if cur.name == "default" && attrs.contains_key("name") {
            return Err(ApiError::conflict(
                "SecurityGroupCannotUpdateDefault",
                "Updating default security group not allowed.",
            ));
        }
        Ok(next)
    }

    fn before_delete(db: &dyn Db, g: &SecurityGroup) -> ApiResult<()> {
        let (s, id) = (Store::new(db), &g.id);
        if in_use(db, id)? {
            return Err(group_in_use(id));
        }
        // Its rules, and the rules that name it as their remote group (Neutron's foreign keys cascade).
        let (rules, _) = s.list::<SecurityGroupRule>()?;
        for r in rules.iter().filter(|r| r.security_group_id == *id || r.remote_group_id.as_ref() == Some(id)) {
            match s.delete::<SecurityGroupRule>(&r.id, None) {
                Ok(_) | Err(DbError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn views(db: &dyn Db, groups: Vec<SecurityGroup>) -> ApiResult<Vec<Value>> {
        let s = Store::new(db);
        let (rules, _) = s.list::<SecurityGroupRule>()?;
        let (all, _) = s.list::<SecurityGroup>()?;
        Ok(groups.iter().map(|g| group_json(g, &all, &rules)).collect())
    }
}

/// 409 `SecurityGroupConflict` for a port given stateful and stateless groups (Neutron's
/// `_validate_sgs_for_port`).
pub(super) fn mixed_statefulness() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "SecurityGroupConflict",
        "Error Cannot apply both stateful and stateless security groups on the same port at the same time while attempting the operation.",
    )
}

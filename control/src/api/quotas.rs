//! Quotas (Neutron's `quotas`, `quota_details`, `quota-check-limit` and `quota-check-limit-default`):
//! how many networks, subnets, ports, routers, floating IPs, security groups, rules and subnet pools
//! each project may have.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v2.0/quotas` | admin: the projects with limits of their own, each with all its limits |
//! | `GET /v2.0/quotas/{project}` | the project's limits (its own where set, the defaults elsewhere) |
//! | `GET /v2.0/quotas/{project}/default` | the defaults |
//! | `GET /v2.0/quotas/{project}/details` | each resource's `limit`, `used` and `reserved` (0: no reservations) |
//! | `GET /v2.0/quotas/tenant`, `GET /v2.0/quotas/project` | the caller's project |
//! | `PUT /v2.0/quotas/{project}` `{"quota": {...}}` | admin: the limits set (-1: none); one below what the project has is refused (400) unless `force` |
//! | `DELETE /v2.0/quotas/{project}` | admin: back to the defaults (404 `TenantQuotaNotFound` if it had none of its own) |
//!
//! A project sees its own quotas, an admin every project's. A create that would take a project past a
//! limit is refused, 409 `OverQuota` (a bulk whole: what it made before is undone). What the API makes
//! for a project by itself (its default security group and its rules, a network's DHCP port, a router's
//! interface ports) is not refused, as in Neutron, but counts; gateway and floating IP ports belong to
//! no project. Objects of no project (the operator's, with authentication off) are not counted; an
//! unlimited resource (-1) is not counted at all. Usage is counted at each create, with no reservation:
//! two requests creating for one project at the same moment may both take its last unit.

use std::collections::{BTreeMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::crud::{blocking, Api, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::extra_dhcp_opts::int;
use super::policy::{forbidden, Caller};
use super::query::convert_to_boolean;
use crate::db::{Db, DbError};
use crate::model::{
    FloatingIp, Network, Object, Port, Quota, Router, SecurityGroup, SecurityGroupRule, Store, Subnet, SubnetPool,
};

/// Neutron's default limits (`[quotas] quota_<resource>`).
const NEUTRON_DEFAULTS: &[(&str, i64)] = &[
    ("floatingip", 50),
    ("network", 100),
    ("port", 500),
    ("router", 10),
    ("security_group", 10),
    ("security_group_rule", 100),
    ("subnet", 100),
    ("subnetpool", -1),
];

/// The largest limit (Neutron's `DB_INTEGER_MAX_VALUE`).
const MAX_LIMIT: i64 = i32::MAX as i64;

/// The limits of a project without its own, by resource: Neutron's, or the operator's
/// (`--default-quotas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDefaults(BTreeMap<String, i64>);

impl Default for QuotaDefaults {
    fn default() -> Self {
        QuotaDefaults(NEUTRON_DEFAULTS.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect())
    }
}

impl QuotaDefaults {
    /// Neutron's defaults with `spec`'s over them: `network=10,port=-1` (empty: Neutron's).
    pub fn parse(spec: &str) -> Result<QuotaDefaults, String> {
        let mut d = QuotaDefaults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (r, n) = item.split_once('=').ok_or_else(|| format!("{item}: not RESOURCE=LIMIT"))?;
            let n: i64 = n.trim().parse().map_err(|_| format!("{item}: the limit is not an integer"))?;
            let slot = d.0.get_mut(r.trim()).ok_or_else(|| {
                let names: Vec<&str> = NEUTRON_DEFAULTS.iter().map(|(r, _)| *r).collect();
                format!("{item}: no such resource (one of {})", names.join(", "))
            })?;
            if !(-1..=MAX_LIMIT).contains(&n) {
                return Err(format!("{item}: a limit is -1 (none) to {MAX_LIMIT}"));
            }
            *slot = n;
        }
        Ok(d)
    }

    /// The limit of `resource`, if it has quotas.
    fn get(&self, resource: &str) -> Option<i64> {
        self.0.get(resource).copied()
    }
}

/// 409 `OverQuota`, Neutron's wording.
fn over_quota(resource: &str) -> ApiError {
    ApiError::conflict("OverQuota", format!("Quota exceeded for resources: ['{resource}']."))
}

/// Every limit of `project`: its own where set, the defaults elsewhere.
fn limits(settings: &Settings, own: Option<&Quota>) -> BTreeMap<String, i64> {
    let mut l = settings.quotas.0.clone();
    for (r, n) in own.iter().flat_map(|q| &q.limits) {
        if let Some(slot) = l.get_mut(r) {
            *slot = *n;
        }
    }
    l
}

/// The objects of table `T` whose stored `project_id` is `project`, read without decoding the rest.
fn owned<T: Object>(db: &dyn Db, project: &str) -> ApiResult<usize> {
    #[derive(Deserialize)]
    struct Owner {
        #[serde(default)]
        project_id: String,
    }
    let (entries, _) = db.list(T::TABLE)?;
    Ok(entries
        .iter()
        .filter(|e| serde_json::from_slice::<Owner>(&e.value).is_ok_and(|o| o.project_id == project))
        .count())
}

/// The rules of `project`'s security groups (a rule is its group's project's, as the API shows it).
fn rules_owned(db: &dyn Db, project: &str) -> ApiResult<usize> {
    #[derive(Deserialize)]
    struct Group {
        id: String,
        #[serde(default)]
        project_id: String,
    }
    #[derive(Deserialize)]
    struct Rule {
        security_group_id: String,
    }
    let groups: HashSet<String> = db
        .list(SecurityGroup::TABLE)?
        .0
        .iter()
        .filter_map(|e| serde_json::from_slice::<Group>(&e.value).ok())
        .filter(|g| g.project_id == project)
        .map(|g| g.id)
        .collect();
    let (rules, _) = db.list(SecurityGroupRule::TABLE)?;
    Ok(rules
        .iter()
        .filter(|e| serde_json::from_slice::<Rule>(&e.value).is_ok_and(|r| groups.contains(&r.security_group_id)))
        .count())
}

/// How many of `resource` `project` has, as a list filtered by `project_id` shows them.
fn usage(db: &dyn Db, resource: &str, project: &str) -> ApiResult<usize> {
    match resource {
        "network" => owned::<Network>(db, project),
        "subnet" => owned::<Subnet>(db, project),
        "subnetpool" => owned::<SubnetPool>(db, project),
        "port" => owned::<Port>(db, project),
        "router" => owned::<Router>(db, project),
        "floatingip" => owned::<FloatingIp>(db, project),
        "security_group" => owned::<SecurityGroup>(db, project),
        "security_group_rule" => rules_owned(db, project),
        _ => Ok(0),
    }
}

/// 409 `OverQuota` if creating `requests` (checked create requests of `T`) would take a project past its
/// limit of `T`, or of what each takes besides ([`Resource::QUOTA_ALSO`]).
pub(super) fn check<'a, T: Resource>(
    db: &dyn Db,
    settings: &Settings,
    requests: impl Iterator<Item = &'a Attrs>,
) -> ApiResult<()> {
    let takes: Vec<(&str, usize)> = [(T::ONE, 1)].into_iter().chain(T::QUOTA_ALSO.iter().copied()).collect();
    if takes.iter().all(|(r, _)| settings.quotas.get(r).is_none()) {
        return Ok(());
    }
    let mut asked: BTreeMap<String, usize> = BTreeMap::new();
    for attrs in requests {
        if let Some(p) = T::quota_project(db, attrs)?.filter(|p| !p.is_empty()) {
            *asked.entry(p).or_default() += 1;
        }
    }
    for (project, n) in asked {
        let own = Store::new(db).get::<Quota>(&project)?;
        let limits = limits(settings, own.as_ref());
        for (resource, each) in &takes {
            let Some(limit) = limits.get(*resource).and_then(|l| usize::try_from(*l).ok()) else { continue };
            if usage(db, resource, &project)?.saturating_add(n.saturating_mul(*each)) > limit {
                return Err(over_quota(resource));
            }
        }
    }
    Ok(())
}

/// 403 unless the caller may read `project`'s quotas (Neutron's `get_quota`: admin or the project).
fn may_read(caller: &Caller, project: &str) -> ApiResult<()> {
    if caller.owns(project) {
        Ok(())
    } else {
        Err(forbidden("get_quota"))
    }
}

/// `GET /v2.0/quotas`: the projects with limits of their own (admin).
pub(super) async fn list(State(api): State<Api>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.must_be_admin("get_quota")?;
    let settings = api.settings.clone();
    let quotas = blocking(&api, move |db| {
        let (own, _) = Store::new(db).list::<Quota>()?;
        Ok(own
            .iter()
            .map(|q| {
                let mut m: Map<String, Value> =
                    limits(&settings, Some(q)).into_iter().map(|(r, n)| (r, n.into())).collect();
                m.insert("project_id".into(), q.id.clone().into());
                m.insert("tenant_id".into(), q.id.clone().into());
                Value::Object(m)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "quotas": quotas })))
}

/// `GET /v2.0/quotas/{project}`; `…/tenant` and `…/project` name the caller's project.
pub(super) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    let mine = caller.project.clone().unwrap_or_default();
    match project.as_str() {
        "tenant" => return Ok(Json(json!({"tenant": {"tenant_id": mine}}))),
        "project" => return Ok(Json(json!({"project": {"project_id": mine}}))),
        _ => {}
    }
    may_read(&caller, &project)?;
    let settings = api.settings.clone();
    let l = blocking(&api, move |db| Ok(limits(&settings, Store::new(db).get::<Quota>(&project)?.as_ref()))).await?;
    Ok(Json(json!({ "quota": l })))
}

/// `GET /v2.0/quotas/{project}/default`.
pub(super) async fn defaults(
    State(api): State<Api>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    may_read(&caller, &project)?;
    Ok(Json(json!({ "quota": api.settings.quotas.0 })))
}

/// `GET /v2.0/quotas/{project}/details`: each resource's limit, use and reservations (none).
pub(super) async fn details(
    State(api): State<Api>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    may_read(&caller, &project)?;
    let settings = api.settings.clone();
    let d = blocking(&api, move |db| {
        let own = Store::new(db).get::<Quota>(&project)?;
        limits(&settings, own.as_ref())
            .into_iter()
            .map(|(r, limit)| {
                let used = usage(db, &r, &project)?;
                Ok((r, json!({"limit": limit, "used": used, "reserved": 0})))
            })
            .collect::<ApiResult<Map<String, Value>>>()
    })
    .await?;
    Ok(Json(json!({ "quota": d })))
}

/// Writes of one quota change before it gives up on a busy project.
const TRIES: usize = 8;

/// `PUT /v2.0/quotas/{project}` `{"quota": {"network": 10, …}}` (admin): 200 and every limit. A limit
/// below what the project has is refused (400) unless `force` is true or `check_limit` false.
pub(super) async fn update(
    State(api): State<Api>,
    caller: Caller,
    Path(project): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    caller.must_be_admin("update_quota")?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let Some(Value::Object(m)) = v.get("quota") else {
        return Err(ApiError::bad("the body must be {\"quota\": {...}}"));
    };
    let (mut force, mut check_limit) = (false, None);
    let mut asked = BTreeMap::new();
    for (k, x) in m {
        match k.as_str() {
            "force" => force = convert_to_boolean(x)?,
            "check_limit" => check_limit = Some(convert_to_boolean(x)?),
            r if api.settings.quotas.get(r).is_some() => {
                let n = int(x)?;
                if !(-1..=MAX_LIMIT).contains(&n) {
                    return Err(ApiError::bad(format!(
                        "Invalid input for {r}. Reason: '{n}' is not in range -1 through {MAX_LIMIT}."
                    )));
                }
                asked.insert(r.to_owned(), n);
            }
            _ => return Err(ApiError::bad(format!("Unrecognized attribute(s) '{k}'"))),
        }
    }
    let check = check_limit.unwrap_or(!force);
    let settings = api.settings.clone();
    let l = blocking(&api, move |db| {
        if check {
            for (r, n) in asked.iter().filter(|(_, n)| **n >= 0) {
                let used = usage(db, r, &project)?;
                if usize::try_from(*n).is_ok_and(|n| used > n) {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "InvalidQuotaValue",
                        format!("Quota limit {n} for {r} must be greater than or equal to already used and reserved {used}."),
                    ));
                }
            }
        }
        let s = Store::new(db);
        if asked.is_empty() {
            return Ok(limits(&settings, s.get::<Quota>(&project)?.as_ref()));
        }
        for _ in 0..TRIES {
            let written = match s.get::<Quota>(&project)? {
                None => s.create(Quota { id: project.clone(), limits: asked.clone(), revision_number: 0 }),
                Some(mut q) => {
                    q.limits.extend(asked.clone());
                    s.update(q)
                }
            };
            match written {
                Ok(q) => return Ok(limits(&settings, Some(&q))),
                // Another writer came first (or reset it meanwhile): again, on what is there now.
                Err(DbError::Conflict { .. } | DbError::AlreadyExists | DbError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::revision_conflict())
    })
    .await?;
    Ok(Json(json!({ "quota": l })))
}

/// `DELETE /v2.0/quotas/{project}` (admin): its limits back to the defaults.
pub(super) async fn reset(
    State(api): State<Api>,
    caller: Caller,
    Path(project): Path<String>,
) -> ApiResult<StatusCode> {
    caller.must_be_admin("delete_quota")?;
    blocking(&api, move |db| match Store::new(db).delete::<Quota>(&project, None) {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(DbError::NotFound) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "TenantQuotaNotFound",
            format!("Quota for tenant {project} could not be found."),
        )),
        Err(e) => Err(e.into()),
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_neutrons_with_the_operators_over_them() {
        let d = QuotaDefaults::parse("").unwrap();
        assert_eq!(d.get("network"), Some(100));
        assert_eq!(d.get("subnetpool"), Some(-1));
        let d = QuotaDefaults::parse("network=5, port=-1").unwrap();
        assert_eq!((d.get("network"), d.get("port"), d.get("router")), (Some(5), Some(-1), Some(10)));
        assert!(QuotaDefaults::parse("networks=5").unwrap_err().contains("no such resource"));
        assert!(QuotaDefaults::parse("network=-2").is_err());
        assert!(QuotaDefaults::parse("network").is_err());
        assert!(QuotaDefaults::parse("network=x").is_err());
    }
}

//! Subnet pools (`subnet_allocation`): `/v2.0/subnetpools`, and subnets that take their CIDR from one,
//! as Neutron's (`neutron/db/db_base_plugin_v2.py`, `neutron/ipam/subnet_alloc.py`):
//! - a pool has prefixes of one IP version (none inside another: a prefix inside another is dropped),
//!   and the prefix lengths its subnets may have (`min_prefixlen` ≤ `default_prefixlen` ≤
//!   `max_prefixlen`; by default 8 and 32 for IPv4, 64 and 128 for IPv6, the default length the least);
//!   Neutron shows the lengths as strings, and so does this API;
//! - a subnet with `subnetpool_id` asks for a `cidr` inside the pool, or a `prefixlen` (by default
//!   `default_prefixlen`): the first free block of that length, in prefix order, not overlapping
//!   another subnet of the pool; the subnets of one network and IP version are all from one pool or
//!   none (400);
//! - `default_quota`: the addresses a project may take from the pool (IPv6: /64 networks), 409
//!   `SubnetPoolQuotaExceeded` past it;
//! - an update may grow the prefixes, never drop an address (400 `IllegalSubnetPoolPrefixUpdate`);
//!   `shared` is set at creation by an admin and never changed; a pool subnets use is not deleted
//!   (409 `SubnetPoolInUse`); a shared pool is seen by all;
//! - an admin may make a pool the default of its IP version (`is_default`, one per version, 400 for a
//!   second); a subnet with `use_default_subnetpool` takes its CIDR from it (`default-subnetpools`);
//! - a pool may be in an address scope (`address_scope_id`: `address_scopes.rs` has the rules).
//!
//! Two subnets allocated at the same moment from one pool may be given one CIDR on different
//! networks (the choice is not a reservation in the DB, unlike addresses): left as it is.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::address_scopes::{asked_scope, check_membership, Membership};
use super::crud::{blocking, merge, new_id, to_json, writable, Api, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::policy::{owner_or_shared, Access, Caller};
use super::query::{booleans_in, convert_to_boolean};
use crate::cidr::{ip_from_bits, Cidr};
use crate::db::Db;
use crate::model::{Store, Subnet, SubnetPool};

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "SubnetPoolNotFound", format!("Subnet pool {id} could not be found."))
}

fn illegal(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "IllegalSubnetPoolPrefixBounds", format!("Illegal prefix bounds: {why}."))
}

/// A prefix length as a request gives it: a number or a string of one (Neutron's `convert_to_int`).
fn prefixlen(v: &Value, what: &str) -> ApiResult<Option<u8>> {
    let n = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.and_then(|n| u8::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid_input(format_args!("'{v}' is not an integer ({what})")))
}

/// The prefixes a request gives, checked (CIDRs of one version: host bits dropped, as Neutron's
/// `IPNetwork(p).cidr`), without one inside another.
fn prefixes(v: &Value) -> ApiResult<(Vec<Cidr>, u8)> {
    let Some(items) = v.as_array().filter(|a| !a.is_empty()) else {
        return Err(ApiError::invalid_input("prefixes must be a non-empty list of CIDRs"));
    };
    let mut cidrs = Vec::new();
    for p in items {
        let c = p
            .as_str()
            .filter(|s| s.contains('/'))
            .and_then(Cidr::parse)
            .ok_or_else(|| ApiError::invalid_input(format_args!("'{p}' is not a valid network CIDR")))?;
        cidrs.push(c.to_network());
    }
    let version = cidrs[0].ip_version();
    if cidrs.iter().any(|c| c.ip_version() != version) {
        return Err(ApiError::invalid_input("Cannot mix IPv4 and IPv6 prefixes in a subnet pool."));
    }
    // A prefix inside another adds nothing (Neutron merges them).
    let mut kept: Vec<Cidr> = Vec::new();
    for c in &cidrs {
        if !cidrs.iter().any(|o| o.prefix_len() < c.prefix_len() && o.overlaps(c))
            && !kept.iter().any(|k| k.overlaps(c))
        {
            kept.push(*c);
        }
    }
    Ok((kept, version))
}

/// The pool `p` with `attrs`' prefix lengths over its own, checked.
fn bounds(p: &mut SubnetPool, attrs: &Attrs, creating: bool) -> ApiResult<()> {
    let width = if p.ip_version == 6 { 128 } else { 32 };
    let given = |k: &str| attrs.get(k).map_or(Ok(None), |v| prefixlen(v, k));
    if let Some(n) = given("min_prefixlen")? {
        p.min_prefixlen = n;
    }
    if let Some(n) = given("max_prefixlen")? {
        p.max_prefixlen = n;
    }
    match given("default_prefixlen")? {
        Some(n) => p.default_prefixlen = n,
        // A new pool's default is its least length; an old one's follows a least length moved past it.
        None if creating || p.default_prefixlen < p.min_prefixlen => p.default_prefixlen = p.min_prefixlen,
        None => {}
    }
    if p.max_prefixlen > width {
        return Err(illegal(format_args!("max_prefixlen {} is longer than {width}", p.max_prefixlen)));
    }
    if !(p.min_prefixlen <= p.default_prefixlen && p.default_prefixlen <= p.max_prefixlen) {
        return Err(illegal(format_args!(
            "min_prefixlen {} <= default_prefixlen {} <= max_prefixlen {} does not hold",
            p.min_prefixlen, p.default_prefixlen, p.max_prefixlen
        )));
    }
    Ok(())
}

impl Resource for SubnetPool {
    const ONE: &'static str = "subnetpool";
    const MANY: &'static str = "subnetpools";
    const CREATE: &'static [&'static str] = &[
        "name",
        "description",
        "project_id",
        "tenant_id",
        "prefixes",
        "min_prefixlen",
        "max_prefixlen",
        "default_prefixlen",
        "shared",
        "is_default",
        "default_quota",
        "address_scope_id",
    ];
    const UPDATE: &'static [&'static str] = &[
        "name",
        "description",
        "prefixes",
        "min_prefixlen",
        "max_prefixlen",
        "default_prefixlen",
        "is_default",
        "default_quota",
        "address_scope_id",
    ];
    const ADMIN_ONLY: &'static [&'static str] = &["shared", "is_default"];
    const SHOWN: &'static [&'static str] = &["ip_version"];

    type Draft = SubnetPool;

    fn draft(mut attrs: Attrs, _: &Settings) -> ApiResult<SubnetPool> {
        asked_scope(&attrs)?;
        booleans_in(&mut attrs, &["shared", "is_default"])?;
        let (cidrs, version) = prefixes(attrs.get("prefixes").unwrap_or(&Value::Null))?;
        let mut p = SubnetPool {
            id: new_id(),
            name: String::new(),
            project_id: String::new(),
            prefixes: cidrs.iter().map(Cidr::to_string).collect(),
            ip_version: version,
            min_prefixlen: if version == 6 { 64 } else { 8 },
            max_prefixlen: if version == 6 { 128 } else { 32 },
            default_prefixlen: 0,
            shared: false,
            is_default: false,
            default_quota: None,
            address_scope_id: None,
            standard: Default::default(),
            revision_number: 0,
        };
        bounds(&mut p, &attrs, true)?;
        for k in ["prefixes", "min_prefixlen", "max_prefixlen", "default_prefixlen"] {
            attrs.remove(k);
        }
        let mut v = to_json(&p);
        for (k, x) in attrs {
            v[k] = x;
        }
        serde_json::from_value(v).map_err(|e| ApiError::bad(format!("invalid attribute value: {e}")))
    }

    /// A scope it joins: the caller's, of its IP version, its prefixes apart from the scope's other pools'.
    /// And one default pool per IP version.
    fn authorize_create(db: &dyn Db, caller: &Caller, attrs: &Attrs) -> ApiResult<()> {
        let (cidrs, version) = prefixes(attrs.get("prefixes").unwrap_or(&Value::Null))?;
        one_default(db, attrs, version, None)?;
        if let Some(Some(scope)) = asked_scope(attrs)? {
            check_membership(db, caller, &scope, None, version, &cidrs, Membership::Join)?;
        }
        Ok(())
    }

    /// A scope it joins, or new prefixes in the scope it is in: as at creation.
    fn authorize_update(db: &dyn Db, caller: &Caller, cur: &SubnetPool, attrs: &Attrs) -> ApiResult<()> {
        one_default(db, attrs, cur.ip_version, Some(&cur.id))?;
        let new_prefixes = attrs.get("prefixes").map(prefixes).transpose()?.map(|(c, _)| c);
        let (scope, asked) = match asked_scope(attrs)? {
            Some(Some(scope)) => (scope, Membership::Join),
            Some(None) => return Ok(()),
            None => match (&cur.address_scope_id, &new_prefixes) {
                (Some(scope), Some(_)) => (scope.clone(), Membership::Prefixes),
                _ => return Ok(()),
            },
        };
        let cidrs =
            new_prefixes.unwrap_or_else(|| cur.prefixes.iter().filter_map(|c| Cidr::parse_network(c)).collect());
        check_membership(db, caller, &scope, Some(&cur.id), cur.ip_version, &cidrs, asked)
    }

    fn insert(db: &dyn Db, p: SubnetPool) -> ApiResult<SubnetPool> {
        Ok(Store::new(db).create(p)?)
    }

    /// Others see a shared pool.
    fn access(_: &dyn Db, caller: &Caller, views: &[Value]) -> ApiResult<Vec<Access>> {
        Ok(views.iter().map(|v| owner_or_shared(caller, v)).collect())
    }

    /// Prefixes only grow; the bounds hold, and the pool's subnets stay inside them.
    fn change(db: &dyn Db, _: &Settings, cur: &SubnetPool, mut attrs: Attrs) -> ApiResult<SubnetPool> {
        booleans_in(&mut attrs, &["shared", "is_default"])?;
        let mut next = cur.clone();
        if let Some(v) = attrs.remove("prefixes") {
            let (new, version) = prefixes(&v)?;
            if version != cur.ip_version {
                return Err(ApiError::invalid_input("the prefixes of a pool keep its IP version"));
            }
            for old in cur.prefixes.iter().filter_map(|p| Cidr::parse_network(p)) {
                if !new.iter().any(|n| n.prefix_len() <= old.prefix_len() && n.overlaps(&old)) {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "IllegalSubnetPoolPrefixUpdate",
                        format!("Illegal update to prefixes: {old} is not covered by the new prefixes."),
                    ));
                }
            }
            next.prefixes = new.iter().map(Cidr::to_string).collect();
        }
        bounds(&mut next, &attrs, false)?;
        for k in ["min_prefixlen", "max_prefixlen", "default_prefixlen"] {
            attrs.remove(k);
        }
        let next = merge(&next, attrs)?;
        for s in pool_subnets(db, &cur.id)? {
            let len = Cidr::parse_network(&s.cidr).map_or(0, |c| c.prefix_len());
            if len < next.min_prefixlen || len > next.max_prefixlen {
                return Err(illegal(format_args!("subnet {} of the pool is a /{len}", s.id)));
            }
        }
        Ok(next)
    }

    fn before_delete(db: &dyn Db, p: &SubnetPool) -> ApiResult<()> {
        if !pool_subnets(db, &p.id)?.is_empty() {
            return Err(ApiError::conflict(
                "SubnetPoolInUse",
                format!("Unable to complete operation on subnet pool {}. Subnets are allocated from it.", p.id),
            ));
        }
        Ok(())
    }

    /// As Neutron shows a pool: prefix lengths as strings.
    fn views(_: &dyn Db, pools: Vec<SubnetPool>) -> ApiResult<Vec<Value>> {
        Ok(pools
            .iter()
            .map(|p| {
                let mut v = to_json(p);
                for k in ["min_prefixlen", "max_prefixlen", "default_prefixlen"] {
                    v[k] = v[k].to_string().into();
                }
                v
            })
            .collect())
    }
}

/// `PUT /v2.0/subnetpools/{id}/add_prefixes` `{"prefixes": [...]}` (`subnetpool-prefix-ops`): the
/// prefixes join the pool's; `{"prefixes": [...]}` of the pool answered.
pub(super) async fn add_prefixes(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    prefix_op(api, caller, id, &raw, true).await
}

/// `PUT …/remove_prefixes`: the prefixes leave the pool, unless a subnet of the pool is in one (409
/// `IllegalSubnetPoolUpdate`).
pub(super) async fn remove_prefixes(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    prefix_op(api, caller, id, &raw, false).await
}

async fn prefix_op(api: Api, caller: Caller, id: String, raw: &[u8], add: bool) -> ApiResult<Json<Value>> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let (asked, version) = prefixes(&v["prefixes"])?;
    let rule = if add { "add_prefixes" } else { "remove_prefixes" };
    blocking(&api, move |db| {
        let s = Store::new(db);
        for _ in 0..8 {
            let mut p: SubnetPool = writable(db, &caller, &id, rule)?;
            if version != p.ip_version {
                return Err(ApiError::invalid_input("the prefixes of a pool keep its IP version"));
            }
            let mut cur: Vec<Cidr> = p.prefixes.iter().filter_map(|c| Cidr::parse_network(c)).collect();
            if add {
                cur.extend(asked.iter().copied());
            } else {
                if let Some(sub) = pool_subnets(db, &p.id)?
                    .iter()
                    .find(|sub| Cidr::parse_network(&sub.cidr).is_some_and(|c| asked.iter().any(|a| a.overlaps(&c))))
                {
                    return Err(ApiError::conflict(
                        "IllegalSubnetPoolUpdate",
                        format!(
                            "Illegal update to subnet pool: subnet {} ({}) is in a prefix to remove.",
                            sub.id, sub.cidr
                        ),
                    ));
                }
                cur.retain(|c| !asked.contains(c));
                if cur.is_empty() {
                    return Err(ApiError::bad("Illegal update to subnet pool: it would have no prefixes left."));
                }
            }
            let list: Vec<Value> = cur.iter().map(|c| c.to_string().into()).collect();
            let (merged, _) = prefixes(&Value::Array(list))?;
            if let Some(scope) = &p.address_scope_id {
                check_membership(db, &caller, scope, Some(&p.id), p.ip_version, &merged, Membership::Prefixes)?;
            }
            p.prefixes = merged.iter().map(Cidr::to_string).collect();
            match s.update(p) {
                Ok(w) => return Ok(Json(json!({ "prefixes": w.prefixes }))),
                Err(crate::db::DbError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::revision_conflict())
    })
    .await
}

fn pool_subnets(db: &dyn Db, pool: &str) -> ApiResult<Vec<Subnet>> {
    Ok(Store::new(db).list::<Subnet>()?.0.into_iter().filter(|s| s.subnetpool_id.as_deref() == Some(pool)).collect())
}

/// The default pool of IP version `version` (`default-subnetpools`) other than `but`, if there is one.
fn default_pool(db: &dyn Db, version: u8, but: Option<&str>) -> ApiResult<Option<String>> {
    let (pools, _) = Store::new(db).list::<SubnetPool>()?;
    Ok(pools.into_iter().find(|p| p.is_default && p.ip_version == version && Some(p.id.as_str()) != but).map(|p| p.id))
}

/// 400 if pool `id` (of IP version `version`) is to be the default and another is already.
fn one_default(db: &dyn Db, attrs: &Attrs, version: u8, id: Option<&str>) -> ApiResult<()> {
    let asked = attrs.get("is_default").map(convert_to_boolean).transpose()?;
    if asked == Some(true) && default_pool(db, version, id)?.is_some() {
        return Err(ApiError::invalid_input(
            "A default subnetpool for this IP family has already been set. Only one default may exist per IP family",
        ));
    }
    Ok(())
}

/// A subnet request naming a pool, completed before its checks: the pool's IP version, and the CIDR it
/// asks for checked, or one allocated for its `prefixlen`. A `prefixlen` without a pool is a 400.
pub(super) fn resolve(db: &dyn Db, attrs: &mut Attrs) -> ApiResult<()> {
    let asked_len = attrs.remove("prefixlen");
    let network = attrs.get("network_id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let s = Store::new(db);
    if attrs.remove("use_default_subnetpool").map(|v| convert_to_boolean(&v)).transpose()? == Some(true) {
        if attrs.get("subnetpool_id").is_some_and(|p| !p.is_null()) {
            return Err(ApiError::bad("subnetpool_id and use_default_subnetpool cannot both be specified"));
        }
        let version = attrs.get("ip_version").map(|v| prefixlen(v, "ip_version")).transpose()?.flatten().unwrap_or(4);
        let pool = default_pool(db, version, None)?
            .ok_or_else(|| ApiError::bad(format!("No default subnetpool found for IPv{version}")))?;
        attrs.insert("subnetpool_id".into(), pool.into());
    }
    let (all, _) = s.list::<Subnet>()?;
    let Some(pool_id) = attrs.get("subnetpool_id").and_then(Value::as_str).map(str::to_owned) else {
        if asked_len.is_some_and(|v| !v.is_null()) {
            return Err(ApiError::bad("prefixlen needs a subnetpool_id"));
        }
        let version = attrs.get("ip_version").map(|v| prefixlen(v, "ip_version")).transpose()?.flatten().unwrap_or(4);
        return one_pool(&all, &network, version, None);
    };
    let pool: SubnetPool = s.get(&pool_id)?.ok_or_else(|| not_found(&pool_id))?;
    match attrs.get("ip_version").map(|v| prefixlen(v, "ip_version")).transpose()?.flatten() {
        Some(v) if v != pool.ip_version => {
            return Err(ApiError::bad(format!("Bad request: the subnet pool {pool_id} is IPv{}", pool.ip_version)));
        }
        _ => {
            attrs.insert("ip_version".into(), pool.ip_version.into());
        }
    }
    one_pool(&all, &network, pool.ip_version, Some(&pool_id))?;
    let used: Vec<Cidr> = all
        .iter()
        .filter(|o| o.subnetpool_id.as_deref() == Some(pool_id.as_str()))
        .filter_map(|o| Cidr::parse_network(&o.cidr))
        .collect();
    let prefixes: Vec<Cidr> = pool.prefixes.iter().filter_map(|p| Cidr::parse_network(p)).collect();
    let cidr = match attrs.get("cidr").and_then(Value::as_str) {
        Some(c) => {
            let c = Cidr::parse_network(c)
                .ok_or_else(|| ApiError::invalid_input(format_args!("'{c}' is not a valid network CIDR")))?;
            if !prefixes.iter().any(|p| p.prefix_len() <= c.prefix_len() && p.overlaps(&c)) {
                return Err(ApiError::bad(format!("Bad request: {c} is not in subnet pool {pool_id}")));
            }
            in_bounds(&pool, c.prefix_len())?;
            if let Some(u) = used.iter().find(|u| u.overlaps(&c)) {
                return Err(ApiError::conflict(
                    "SubnetAllocationError",
                    format!("Failed to allocate subnet: {c} overlaps {u} of the pool."),
                ));
            }
            c
        }
        None => {
            let len = asked_len
                .as_ref()
                .map(|v| prefixlen(v, "prefixlen"))
                .transpose()?
                .flatten()
                .unwrap_or(pool.default_prefixlen);
            in_bounds(&pool, len)?;
            first_free(&prefixes, &used, len).ok_or_else(|| {
                ApiError::conflict(
                    "SubnetAllocationError",
                    format!("Failed to allocate subnet: no /{len} left in subnet pool {pool_id}."),
                )
            })?
        }
    };
    if let Some(quota) = pool.default_quota {
        let project = attrs.get("project_id").and_then(Value::as_str).unwrap_or_default();
        let size = |c: &Cidr| -> u128 {
            1u128 << (if pool.ip_version == 6 { 64u8.saturating_sub(c.prefix_len()) } else { 32 - c.prefix_len() })
        };
        let taken: u128 = all
            .iter()
            .filter(|o| o.subnetpool_id.as_deref() == Some(pool_id.as_str()) && o.project_id == project)
            .filter_map(|o| Cidr::parse_network(&o.cidr))
            .map(|c| size(&c))
            .sum();
        if taken + size(&cidr) > u128::from(quota) {
            return Err(ApiError::conflict(
                "SubnetPoolQuotaExceeded",
                format!("Per-tenant subnet pool prefix quota exceeded: {quota} for subnet pool {pool_id}."),
            ));
        }
    }
    attrs.insert("cidr".into(), cidr.to_string().into());
    Ok(())
}

/// The subnets of one network and IP version are all from one pool (`pool`), or all from none.
fn one_pool(all: &[Subnet], network: &str, version: u8, pool: Option<&str>) -> ApiResult<()> {
    if all.iter().any(|o| o.network_id == network && o.ip_version == version && o.subnetpool_id.as_deref() != pool) {
        return Err(ApiError::bad("Subnets hosted on the same network must be allocated from the same subnet pool."));
    }
    Ok(())
}

fn in_bounds(pool: &SubnetPool, len: u8) -> ApiResult<()> {
    if len < pool.min_prefixlen || len > pool.max_prefixlen {
        return Err(ApiError::bad(format!(
            "Bad request: prefix length {len} is outside the pool's {} to {}",
            pool.min_prefixlen, pool.max_prefixlen
        )));
    }
    Ok(())
}

/// The first /`len` block inside `prefixes` (in order) that overlaps none of `used`.
fn first_free(prefixes: &[Cidr], used: &[Cidr], len: u8) -> Option<Cidr> {
    for p in prefixes.iter().filter(|p| p.prefix_len() <= len) {
        let width = if p.is_v6() { 128u32 } else { 32 };
        let size = 1u128.checked_shl(width - u32::from(len)).unwrap_or(0);
        let mut at = p.base();
        loop {
            let block = Cidr::parse_network(&format!("{}/{len}", ip_from_bits(p.is_v6(), at)))?;
            match used.iter().filter(|u| u.overlaps(&block)).map(Cidr::last).max() {
                None => return Some(block),
                // Past the used network, at the next block boundary.
                Some(last) => {
                    let next = last.checked_add(1).and_then(|n| n.div_ceil(size.max(1)).checked_mul(size.max(1)));
                    match next {
                        Some(n) if n <= p.last() && n > at => at = n,
                        _ => break,
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse_network(s).unwrap()
    }

    #[test]
    fn the_first_free_block_of_a_length() {
        let p = [c("10.0.0.0/24"), c("10.1.0.0/24")];
        assert_eq!(first_free(&p, &[], 26), Some(c("10.0.0.0/26")));
        assert_eq!(first_free(&p, &[c("10.0.0.0/26")], 26), Some(c("10.0.0.64/26")));
        assert_eq!(
            first_free(&p, &[c("10.0.0.0/28")], 26),
            Some(c("10.0.0.64/26")),
            "a smaller one used takes its block"
        );
        assert_eq!(first_free(&p, &[c("10.0.0.0/25"), c("10.0.0.128/26")], 26), Some(c("10.0.0.192/26")));
        assert_eq!(first_free(&p, &[c("10.0.0.0/24")], 26), Some(c("10.1.0.0/26")), "the next prefix");
        assert_eq!(first_free(&p, &[c("10.0.0.0/24"), c("10.1.0.0/24")], 26), None);
        assert_eq!(first_free(&p, &[], 23), None, "longer than the prefixes");
        let v6 = [c("2001:db8:3::/48")];
        assert_eq!(first_free(&v6, &[c("2001:db8:3::/64")], 64), Some(c("2001:db8:3:1::/64")));
        assert_eq!(first_free(&[c("0.0.0.0/0")], &[], 0), Some(c("0.0.0.0/0")));
        assert_eq!(
            first_free(&[c("ffff::/16")], &[c("ffff::/17"), c("ffff:8000::/17")], 17),
            None,
            "the top of the space, full"
        );
        assert_eq!(first_free(&[c("::/0")], &[c("::/1")], 0), None);
    }

    #[test]
    fn prefixes_are_one_version_and_none_inside_another() {
        let (p, v) = prefixes(&serde_json::json!(["10.11.12.0/24", "10.11.0.0/16", "10.12.0.0/24"])).unwrap();
        assert_eq!(
            (p.iter().map(Cidr::to_string).collect::<Vec<_>>(), v),
            (vec!["10.11.0.0/16".into(), "10.12.0.0/24".into()], 4)
        );
        assert!(prefixes(&serde_json::json!(["10.0.0.0/24", "2001:db8::/64"])).is_err());
        let (p, _) = prefixes(&serde_json::json!(["10.11.12.13/24"])).unwrap();
        assert_eq!(p[0].to_string(), "10.11.12.0/24", "host bits dropped, as Neutron does");
        assert!(prefixes(&serde_json::json!(["10.0.0.1"])).is_err(), "a length is needed");
        assert!(prefixes(&serde_json::json!(["10.0.0.0/33"])).is_err());
        assert!(prefixes(&serde_json::json!([])).is_err());
    }
}

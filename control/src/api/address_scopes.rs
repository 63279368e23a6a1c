//! Address scopes (`address-scope`): `/v2.0/address-scopes`, as Neutron's
//! (`neutron/db/address_scope_db.py`, `_validate_address_scope_id` in `db_base_plugin_v2.py`):
//! - a scope has an IP version (4 or 6, required) and is `shared` or not; only an admin shares one, and
//!   a shared scope is never unshared (400); a shared scope is seen by every project;
//! - a subnet pool joins a scope (`address_scope_id`, at creation or by an update, `null` to leave) of
//!   its IP version (400), one the caller sees (404) and owns unless admin (400), and with prefixes
//!   that overlap no other pool's in the scope (409 `AddressScopePrefixConflict`); a pool in a scope the
//!   caller does not own keeps its prefixes unless an admin changes them (400);
//! - a scope with pools is not deleted (409 `AddressScopeInUse`);
//! - networks show the scope of their subnets' pools, per IP version (`ipv4_address_scope`,
//!   `ipv6_address_scope`).
//!
//! Scopes are API state: the distributed router routes between all its subnets whatever their scopes
//! (Neutron's L3 agent keeps scopes apart; that is not done here).

use serde_json::Value;

use super::crud::{merge, new_object, visible, Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::policy::{owner_or_shared, Access, Caller};
use super::query::{booleans_in, convert_ip_version};
use crate::cidr::Cidr;
use crate::db::Db;
use crate::model::{AddressScope, Network, Store, Subnet, SubnetPool};
use axum::http::StatusCode;

impl Resource for AddressScope {
    const ONE: &'static str = "address_scope";
    const MANY: &'static str = "address_scopes";
    const CREATE: &'static [&'static str] = &["name", "description", "project_id", "tenant_id", "ip_version", "shared"];
    const UPDATE: &'static [&'static str] = &["name", "description", "shared"];
    const ADMIN_ONLY: &'static [&'static str] = &["shared"];

    type Draft = AddressScope;

    fn draft(mut attrs: Attrs, _: &Settings) -> ApiResult<AddressScope> {
        let version = match attrs.get("ip_version") {
            None | Some(Value::Null) => return Err(ApiError::bad("ip_version is required")),
            Some(v) => convert_ip_version(v)?,
        };
        attrs.insert("ip_version".into(), version.into());
        booleans_in(&mut attrs, &["shared"])?;
        new_object(attrs, None)
    }

    fn insert(db: &dyn Db, a: AddressScope) -> ApiResult<AddressScope> {
        Ok(Store::new(db).create(a)?)
    }

    /// Others see a shared scope.
    fn access(_: &dyn Db, caller: &Caller, views: &[Value]) -> ApiResult<Vec<Access>> {
        Ok(views.iter().map(|v| owner_or_shared(caller, v)).collect())
    }

    fn change(_: &dyn Db, _: &Settings, cur: &AddressScope, mut attrs: Attrs) -> ApiResult<AddressScope> {
        booleans_in(&mut attrs, &["shared"])?;
        if cur.shared && attrs.get("shared") == Some(&Value::Bool(false)) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "AddressScopeUpdateError",
                format!("Unable to update address scope {}: Shared address scope can't be unshared.", cur.id),
            ));
        }
        merge(cur, attrs)
    }

    fn before_delete(db: &dyn Db, a: &AddressScope) -> ApiResult<()> {
        let (pools, _) = Store::new(db).list::<SubnetPool>()?;
        if pools.iter().any(|p| p.address_scope_id.as_deref() == Some(a.id.as_str())) {
            return Err(ApiError::conflict(
                "AddressScopeInUse",
                format!(
                    "Unable to complete operation on address scope {}. There are one or more subnet pools in use on the address scope.",
                    a.id
                ),
            ));
        }
        Ok(())
    }
}

/// `address_scope_id` in a request: `Some(None)` to leave a scope, `Some(Some(id))` to join one; a
/// value that is not a UUID is a 400.
pub(super) fn asked_scope(attrs: &Attrs) -> ApiResult<Option<Option<String>>> {
    match attrs.get("address_scope_id") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(id)) if super::crud::uuid_like(id) => Ok(Some(Some(id.clone()))),
        Some(v) => {
            Err(ApiError::bad(format!("Invalid input for address_scope_id. Reason: '{v}' is not a valid UUID.")))
        }
    }
}

/// What a pool asks of its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Membership {
    /// To join it.
    Join,
    /// New prefixes, in the scope it is in.
    Prefixes,
}

/// Whether pool `pool` (of `ip_version`, with `prefixes`) may be in scope `scope` for `caller`: Neutron's
/// `_validate_address_scope_id`.
pub(super) fn check_membership(
    db: &dyn Db,
    caller: &Caller,
    scope: &str,
    pool: Option<&str>,
    ip_version: u8,
    prefixes: &[Cidr],
    asked: Membership,
) -> ApiResult<()> {
    let (_, a): (Value, AddressScope) = visible(db, caller, scope)?;
    if !caller.owns(&a.project_id) {
        return Err(match asked {
            Membership::Join => ApiError::new(
                StatusCode::BAD_REQUEST,
                "IllegalSubnetPoolAssociationToAddressScope",
                format!("Illegal subnetpool association: subnetpool cannot be associated with address scope {scope}."),
            ),
            Membership::Prefixes => ApiError::new(
                StatusCode::BAD_REQUEST,
                "IllegalSubnetPoolPrefixUpdate",
                format!("Illegal update to prefixes: the subnet pool's address scope {scope} is another project's."),
            ),
        });
    }
    if a.ip_version != ip_version {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "IllegalSubnetPoolIpVersionAssociationToAddressScope",
            format!(
                "Illegal subnetpool association: subnetpool of IP version {ip_version} cannot be associated with address scope {scope} of IP version {}.",
                a.ip_version
            ),
        ));
    }
    let (pools, _) = Store::new(db).list::<SubnetPool>()?;
    let others = pools.iter().filter(|p| p.address_scope_id.as_deref() == Some(scope) && Some(p.id.as_str()) != pool);
    for other in others.flat_map(|p| p.prefixes.iter().filter_map(|c| Cidr::parse_network(c))) {
        if let Some(mine) = prefixes.iter().find(|m| m.overlaps(&other)) {
            return Err(ApiError::conflict(
                "AddressScopePrefixConflict",
                format!("Failed to associate address scope: subnetpools within an address scope must have unique prefixes ({mine} overlaps {other})."),
            ));
        }
    }
    Ok(())
}

/// The scopes of each network's subnets' pools: (`ipv4_address_scope`, `ipv6_address_scope`).
pub(super) fn network_scopes(db: &dyn Db, networks: &[Network]) -> ApiResult<Vec<(Option<String>, Option<String>)>> {
    let s = Store::new(db);
    let (pools, _) = s.list::<SubnetPool>()?;
    if pools.iter().all(|p| p.address_scope_id.is_none()) {
        return Ok(vec![(None, None); networks.len()]);
    }
    let (subnets, _) = s.list::<Subnet>()?;
    let scope_of = |n: &Network, version: u8| {
        subnets
            .iter()
            .filter(|sub| sub.network_id == n.id && sub.ip_version == version)
            .filter_map(|sub| pools.iter().find(|p| Some(&p.id) == sub.subnetpool_id.as_ref()))
            .find_map(|p| p.address_scope_id.clone())
    };
    Ok(networks.iter().map(|n| (scope_of(n, 4), scope_of(n, 6))).collect())
}

//! Who may see and change what: Neutron's default policy (`neutron/conf/policies/`), for the
//! [`Caller`] a validated Keystone token names (`keystone.rs`).
//!
//! - A project sees and changes its own resources; an admin (the `admin` role) sees and changes all.
//! - Others may see some resources they do not own: a `shared` or `router:external` network, the subnets
//!   of a shared network, the ports on a network the caller owns (which it may also delete or change).
//! - One the caller may not see is not found (404); one it sees and may not change is 403
//!   `PolicyNotAuthorized`.
//! - A request naming another project (`project_id`/`tenant_id`) needs admin (400, Neutron's wording);
//!   a create without one is the caller's project's.
//! - Some attributes are the admin's to set or to see (`provider:*`, `shared`, `binding:host_id`, …):
//!   each resource lists them ([`Resource::ADMIN_ONLY`](super::crud::Resource::ADMIN_ONLY),
//!   [`Resource::ADMIN_ONLY_SHOWN`](super::crud::Resource::ADMIN_ONLY_SHOWN)).
//!
//! With authentication off, or the static token, every request is the operator's: an admin of no
//! project, as before Keystone.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde_json::Value;

use std::collections::HashMap;

use super::error::{ApiError, ApiResult};
use crate::db::Db;
use crate::model::{Network, Store};

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's project; `None` for the operator (and a token scoped to no project).
    pub project: Option<String>,
    /// Holds the `admin` role (Neutron's `context_is_admin`).
    pub admin: bool,
}

impl Caller {
    /// The operator: authentication off or the static token.
    pub fn operator() -> Caller {
        Caller { project: None, admin: true }
    }

    /// A member of `project`, not admin.
    pub fn member(project: &str) -> Caller {
        Caller { project: Some(project.to_owned()), admin: false }
    }

    /// Whether the caller owns what `project` owns (or is admin).
    pub fn owns(&self, project: &str) -> bool {
        self.admin || self.project.as_deref() == Some(project)
    }

    /// 403 unless admin: `what` names the rule, as Neutron's message does (`create_network:shared`).
    pub(super) fn must_be_admin(&self, what: &str) -> ApiResult<()> {
        if self.admin {
            Ok(())
        } else {
            Err(forbidden(what))
        }
    }
}

/// The caller the authentication layer put in the request, or the operator when there is none.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned().unwrap_or_else(Caller::operator))
    }
}

/// 403 `PolicyNotAuthorized`: the rule `what` refuses the caller.
pub(super) fn forbidden(what: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "PolicyNotAuthorized", format!("rule:{what} is disallowed by policy"))
}

/// What a caller may do with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Access {
    /// Not even see it: it is not found.
    None,
    /// See it, not change it.
    Read,
    /// See, change and delete it.
    Write,
}

/// The access of `caller` to an object shown as `view`, by its `project_id`: its own (or an admin's)
/// is [`Access::Write`], another project's [`Access::None`].
pub(super) fn by_owner(caller: &Caller, view: &Value) -> Access {
    if caller.owns(view["project_id"].as_str().unwrap_or("")) {
        Access::Write
    } else {
        Access::None
    }
}

/// [`by_owner`], and others may see one shown `shared` (a subnet pool, an address scope).
pub(super) fn owner_or_shared(caller: &Caller, view: &Value) -> Access {
    match by_owner(caller, view) {
        Access::None if view["shared"] == true => Access::Read,
        a => a,
    }
}

/// A caller's access to network `n`: its owner's (or an admin's) is [`Access::Write`]; a `shared` or
/// `router:external` one everybody may see.
pub(super) fn network_access(caller: &Caller, n: &Network) -> Access {
    if caller.owns(&n.project_id) {
        Access::Write
    } else if n.shared || n.external {
        Access::Read
    } else {
        Access::None
    }
}

/// The networks by id, for the access of many objects on them.
pub(super) fn networks(db: &dyn Db) -> ApiResult<HashMap<String, Network>> {
    Ok(Store::new(db).list::<Network>()?.0.into_iter().map(|n| (n.id.clone(), n)).collect())
}

/// The caller's access to network `id` (none if there is no such network).
pub(super) fn access_to_network(db: &dyn Db, caller: &Caller, id: &str) -> ApiResult<Access> {
    Ok(Store::new(db).get::<Network>(id)?.map_or(Access::None, |n| network_access(caller, &n)))
}

/// Neutron's check of a request's project: a create without one is the caller's project's; one naming
/// another project needs admin (400, Neutron's wording).
pub(super) fn project_of_request(caller: &Caller, attrs: &mut super::crud::Attrs) -> ApiResult<()> {
    match (attrs.get("project_id").and_then(Value::as_str), &caller.project) {
        (Some(p), Some(mine)) if p != mine && !caller.admin => Err(ApiError::bad(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        )),
        (None, Some(mine)) => {
            attrs.insert("project_id".into(), mine.clone().into());
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_for_another_project_needs_admin_and_one_for_none_is_the_callers() {
        let attrs = |v: Value| v.as_object().unwrap().clone();
        let mut a = attrs(json!({"name": "x"}));
        project_of_request(&Caller::member("p1"), &mut a).unwrap();
        assert_eq!(a["project_id"], "p1");
        let mut a = attrs(json!({"project_id": "p2"}));
        assert!(project_of_request(&Caller::member("p1"), &mut a).is_err());
        let admin = Caller { project: Some("p1".into()), admin: true };
        project_of_request(&admin, &mut a).unwrap();
        assert_eq!(a["project_id"], "p2");
        let mut a = attrs(json!({}));
        project_of_request(&Caller::operator(), &mut a).unwrap();
        assert!(!a.contains_key("project_id"), "the operator's creates keep today's default");
    }

    #[test]
    fn owners_write_others_see_nothing_admins_everything() {
        let v = json!({"project_id": "p1"});
        assert_eq!(by_owner(&Caller::member("p1"), &v), Access::Write);
        assert_eq!(by_owner(&Caller::member("p2"), &v), Access::None);
        assert_eq!(by_owner(&Caller::operator(), &v), Access::Write);
    }
}

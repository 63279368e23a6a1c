//! The shape every Neutron resource shares, written once: list (with filters and `fields`), show,
//! create, update (merge, then compare-and-swap, retried when another writer came first) and delete.
//! A resource implements [`Resource`]: its JSON names, the attributes a request may set, and hooks
//! where it differs from plain storage (checks, allocations, cascades); the handlers here do the rest
//! the same way for all of them.
//!
//! | request | handler | the resource's part |
//! |---|---|---|
//! | `GET /v2.0/<many>` | [`list`] | [`Resource::views`] |
//! | `GET /v2.0/<many>/{id}` | [`show`] | [`Resource::views`] |
//! | `POST /v2.0/<many>` | [`create`] | [`Resource::CREATE`], [`Resource::draft`] (no DB), [`Resource::insert`] (DB) |
//! | `PUT /v2.0/<many>/{id}` | [`update`] | [`Resource::UPDATE`], [`Resource::change`], [`Resource::settle`], [`Resource::after_update`] |
//! | `DELETE /v2.0/<many>/{id}` | [`delete`] | [`Resource::before_delete`], [`Resource::after_delete`] |
//!
//! Handlers run the (synchronous) DB calls on tokio's blocking pool ([`blocking`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::policy::{by_owner, forbidden, project_of_request, Access, Caller};
use super::query::{select, ListQuery};
use super::quotas::{self, QuotaDefaults};
use super::segments::Segments;
use crate::db::{Db, DbError};
use crate::model::{Object, Store};

/// What every handler shares.
#[derive(Clone)]
pub struct Api {
    pub db: Arc<dyn Db>,
    pub settings: Settings,
}

/// The API's settings, the same for every request: what Neutron reads from its configuration files.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// What network segments are allocated from, and the MTUs they leave.
    pub segments: Arc<Segments>,
    /// The limits of a project without its own (`quotas.rs`).
    pub quotas: Arc<QuotaDefaults>,
}

/// A request's attributes: the object inside `{"<one>": {...}}`.
pub(super) type Attrs = Map<String, Value>;

/// A Neutron resource as the generic handlers see it.
pub(super) trait Resource: Object + Send + 'static {
    /// `network`: the key of a request's and a response's object; names the 404 (`NetworkNotFound`).
    const ONE: &'static str;
    /// `networks`: the key of a list.
    const MANY: &'static str;
    /// The attributes a create may carry (another is a 400).
    const CREATE: &'static [&'static str];
    /// Those of [`Resource::CREATE`] that Neutron has and this model does not: accepted and dropped.
    const CREATE_IGNORED: &'static [&'static str] = &[];
    /// The attributes an update may carry (another is a 400).
    const UPDATE: &'static [&'static str] = &[];
    /// Those of [`Resource::UPDATE`] accepted and dropped.
    const UPDATE_IGNORED: &'static [&'static str] = &[];

    /// The attributes only an admin may set, on a create or an update (403 for others): Neutron's
    /// `admin_only` rules (`create_network:shared`, …).
    const ADMIN_ONLY: &'static [&'static str] = &[];
    /// The attributes shown that a request does not set (to filter and sort by): `subnets`, …
    const SHOWN: &'static [&'static str] = &[];
    /// The attributes only an admin is shown (`get_network:provider:network_type`, …).
    const ADMIN_ONLY_SHOWN: &'static [&'static str] = &[];

    /// A create request checked and completed without the DB.
    type Draft: Send + 'static;

    /// A create request completed from the DB before [`Resource::draft`] (a subnet's CIDR from its
    /// pool); by default nothing.
    fn resolve(_db: &dyn Db, _attrs: &mut Attrs) -> ApiResult<()> {
        Ok(())
    }

    /// What `caller` may do with each of `views` (objects as [`Resource::views`] shows them): by default
    /// the owner (or an admin) everything, others nothing (`policy.rs`).
    fn access(_db: &dyn Db, caller: &Caller, views: &[Value]) -> ApiResult<Vec<Access>> {
        Ok(views.iter().map(|v| by_owner(caller, v)).collect())
    }

    /// What else each create takes of a project's quotas, by resource: a security group's default rules.
    const QUOTA_ALSO: &'static [(&'static str, usize)] = &[];

    /// The project a create request counts against (quotas): the request's `project_id`.
    fn quota_project(_db: &dyn Db, attrs: &Attrs) -> ApiResult<Option<String>> {
        Ok(attrs.get("project_id").and_then(Value::as_str).map(str::to_owned))
    }

    /// A create's checks that depend on who asks, against the DB (a subnet goes on a network of the
    /// caller's, …); they run after [`Resource::draft`]'s, as Neutron checks policy after validation.
    fn authorize_create(_db: &dyn Db, _caller: &Caller, _attrs: &Attrs) -> ApiResult<()> {
        Ok(())
    }

    /// An update's checks that depend on who asks, beyond access to `cur` and [`Resource::ADMIN_ONLY`].
    fn authorize_update(_db: &dyn Db, _caller: &Caller, _cur: &Self, _attrs: &Attrs) -> ApiResult<()> {
        Ok(())
    }

    /// Before a caller's list: what its first look makes (a project's default security group).
    fn before_list(_db: &dyn Db, _caller: &Caller) -> ApiResult<()> {
        Ok(())
    }

    /// The create request's attributes (`tenant_id` read as `project_id`, the ignored ones dropped),
    /// checked and completed with defaults: everything that needs no DB, so a bad request costs none.
    fn draft(attrs: Attrs, settings: &Settings) -> ApiResult<Self::Draft>;

    /// Stores a draft: the checks against the DB, the allocations, the write. On an error it gives back
    /// what it took.
    fn insert(db: &dyn Db, draft: Self::Draft) -> ApiResult<Self>;

    /// The object an update makes of `cur` (as stored now) and the request's attributes; by default
    /// they are merged over it. It runs again, on the fresh object, when another writer came first.
    fn change(_db: &dyn Db, _settings: &Settings, cur: &Self, attrs: Attrs) -> ApiResult<Self> {
        merge(cur, attrs)
    }

    /// After the write of `next` over `cur`, `written` or not: gives back what [`Resource::change`] took
    /// and is not needed (the old object's, or the refused one's).
    fn settle(_db: &dyn Db, _cur: &Self, _next: &Self, _written: bool) {}

    /// After `cur` was replaced by `written`: what follows a change and cannot undo it (a network's DHCP
    /// port follows its subnets); it logs its failures.
    fn after_update(_db: &dyn Db, _cur: &Self, _written: &Self) {}

    /// Before `cur` is deleted: the refusals (in use: 409) and the cascades.
    fn before_delete(_db: &dyn Db, _cur: &Self) -> ApiResult<()> {
        Ok(())
    }

    /// After `cur` is deleted: what it held is released.
    fn after_delete(_db: &dyn Db, _settings: &Settings, _cur: &Self) -> ApiResult<()> {
        Ok(())
    }

    /// Deletes `made`, just created by a bulk that failed after it; by default as a delete request
    /// does. (A resource whose delete refuses what a create may make undoes it otherwise.)
    fn undo(db: &dyn Db, settings: &Settings, made: &Self) -> ApiResult<()> {
        remove(db, settings, made)
    }

    /// The objects as the API shows them; by default as stored.
    fn views(_db: &dyn Db, objects: Vec<Self>) -> ApiResult<Vec<Value>> {
        Ok(objects.iter().map(to_json).collect())
    }
}

/// An object of the model as JSON (its serialisation cannot fail: strings, numbers, maps).
pub(super) fn to_json<T: serde::Serialize>(o: &T) -> Value {
    serde_json::to_value(o).expect("model serialises")
}

fn view<T: Resource>(db: &dyn Db, o: T) -> ApiResult<Value> {
    Ok(T::views(db, vec![o])?.pop().unwrap_or(Value::Null))
}

/// Runs `f` on the DB in tokio's blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    api: &Api,
    f: impl FnOnce(&dyn Db) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let db = api.db.clone();
    tokio::task::spawn_blocking(move || f(&*db)).await.map_err(|e| ApiError::internal(e.to_string()))?
}

/// `GET /v2.0/<many>`: the objects the caller may see, filtered, sorted and paged (`query.rs`).
pub(super) async fn list<T: Resource>(
    State(api): State<Api>,
    caller: Caller,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let query = ListQuery::parse(&q, known::<T>)?;
    let values = blocking(&api, move |db| {
        T::before_list(db, &caller)?;
        let views = T::views(db, Store::new(db).list::<T>()?.0)?;
        let access = T::access(db, &caller, &views)?;
        let seen = views.into_iter().zip(access).filter(|(_, a)| *a != Access::None);
        Ok(seen.map(|(v, _)| shown::<T>(&caller, v)).collect())
    })
    .await?;
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    Ok(Json(query.respond(values, T::MANY, host, uri.path())?))
}

/// Attributes every resource has (Neutron's standard attributes).
const STANDARD: &[&str] = &[
    "id",
    "project_id",
    "tenant_id",
    "name",
    "description",
    "status",
    "revision_number",
    "created_at",
    "updated_at",
    "tags",
];

/// Whether `k` is an attribute of `T` (to filter or sort by).
fn known<T: Resource>(k: &str) -> bool {
    [STANDARD, T::CREATE, T::UPDATE, T::SHOWN].iter().any(|l| l.contains(&k))
}

/// `GET /v2.0/<many>/{id}`.
pub(super) async fn show<T: Resource>(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let o = blocking(&api, move |db| {
        let (v, _) = visible::<T>(db, &caller, &id)?;
        Ok(shown::<T>(&caller, v))
    })
    .await?;
    Ok(Json(json!({ T::ONE: select(o, &fields(&q)) })))
}

/// Object `id` as the caller sees it: not found (404) if it may not see it.
pub(super) fn visible<T: Resource>(db: &dyn Db, caller: &Caller, id: &str) -> ApiResult<(Value, T)> {
    let o: T = Store::new(db).get(id)?.ok_or_else(|| ApiError::not_found(T::ONE, id))?;
    let v = view(db, o.clone())?;
    match T::access(db, caller, std::slice::from_ref(&v))?.first() {
        Some(Access::Read | Access::Write) => Ok((v, o)),
        _ => Err(ApiError::not_found(T::ONE, id)),
    }
}

/// Object `id` if the caller may change it: 404 if it may not see it, 403 (naming `rule`) if it may
/// only see it.
pub(super) fn writable<T: Resource>(db: &dyn Db, caller: &Caller, id: &str, rule: &str) -> ApiResult<T> {
    let o: T = Store::new(db).get(id)?.ok_or_else(|| ApiError::not_found(T::ONE, id))?;
    let v = view(db, o.clone())?;
    match T::access(db, caller, std::slice::from_ref(&v))?.first() {
        Some(Access::Write) => Ok(o),
        Some(Access::Read) => Err(forbidden(rule)),
        _ => Err(ApiError::not_found(T::ONE, id)),
    }
}

/// Object `o` as the caller is shown it.
pub(super) fn shown_view<T: Resource>(db: &dyn Db, caller: &Caller, o: T) -> ApiResult<Value> {
    Ok(shown::<T>(caller, view(db, o)?))
}

/// A view as the caller is shown it: `tenant_id` beside `project_id` (Neutron shows both), without
/// the attributes only an admin is shown for a caller who is not one.
fn shown<T: Resource>(caller: &Caller, mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        if let Some(p) = m.get("project_id").cloned() {
            m.insert("tenant_id".into(), p);
        }
        if !caller.admin {
            for k in T::ADMIN_ONLY_SHOWN {
                m.remove(*k);
            }
        }
    }
    v
}

/// 403 if the request sets an attribute only an admin may set, and the caller is not one.
fn admin_only<T: Resource>(caller: &Caller, attrs: &Attrs, action: &str) -> ApiResult<()> {
    match T::ADMIN_ONLY.iter().find(|k| attrs.contains_key(**k)) {
        Some(k) => caller.must_be_admin(&format!("{action}_{}:{k}", T::ONE)),
        None => Ok(()),
    }
}

/// `POST /v2.0/<many>`: 201 and the new object; or, in bulk (`{"<many>": [{...}, ...]}`), the new
/// objects, all or none (Neutron's native bulk: one that fails deletes those made before it).
pub(super) async fn create<T: Resource>(State(api): State<Api>, caller: Caller, raw: Bytes) -> ApiResult<Response> {
    // Every resource with standard attributes takes its tags at creation too (Neutron's
    // `tag-ports-during-bulk-creation`, for all).
    let allowed: Vec<&str> = T::CREATE.iter().copied().chain(["tags"]).collect();
    let (requests, bulk) = bodies(&raw, T::ONE, T::MANY, &allowed)?;
    let mut drafts = Vec::with_capacity(requests.len());
    let mut tags = Vec::with_capacity(requests.len());
    for mut attrs in requests {
        tags.push(match attrs.remove("tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(t) => super::tags::valid(&t)?,
        });
        lengths(&attrs)?;
        normalise(&mut attrs);
        project_of_request(&caller, &mut attrs)?;
        admin_only::<T>(&caller, &attrs, "create")?;
        for k in T::CREATE_IGNORED {
            attrs.remove(*k);
        }
        drafts.push(attrs);
    }
    let settings = api.settings.clone();
    let mut made = blocking(&api, move |db| {
        // Every request completed and validated before any is stored; the checks against the DB (policy,
        // quota) run for each as it is made, below.
        let drafts = drafts
            .into_iter()
            .map(|mut attrs| {
                T::resolve(db, &mut attrs)?;
                let asked = attrs.clone();
                Ok((asked, T::draft(attrs, &settings)?))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let mut made: Vec<T> = Vec::with_capacity(drafts.len());
        for ((asked, draft), tags) in drafts.into_iter().zip(tags) {
            // Each checked against the DB as it is now, with the bulk's earlier objects in it.
            let checked = T::authorize_create(db, &caller, &asked)
                .and_then(|()| quotas::check::<T>(db, &settings, std::iter::once(&asked)));
            let tagged = checked.and_then(|()| T::insert(db, draft)).and_then(|o| {
                let id = o.id().to_owned();
                made.push(o);
                if !tags.is_empty() {
                    *made.last_mut().expect("just pushed") = super::tags::set_new::<T>(db, &id, tags)?;
                }
                Ok(())
            });
            if let Err(e) = tagged {
                for o in made.iter().rev() {
                    if let Err(u) = T::undo(db, &settings, o) {
                        tracing::warn!(id = o.id(), "a bulk create's object not undone: {u:?}");
                    }
                }
                return Err(e);
            }
        }
        let views = T::views(db, made)?;
        Ok(views.into_iter().map(|v| shown::<T>(&caller, v)).collect::<Vec<_>>())
    })
    .await?;
    let body = match (bulk, made.pop()) {
        (false, Some(o)) => json!({ T::ONE: o }),
        (_, last) => json!({ T::MANY: made.into_iter().chain(last).collect::<Vec<_>>() }),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Writes of one update before it gives up on a busy object (each lost to another writer).
const UPDATE_TRIES: usize = 8;

/// `PUT /v2.0/<many>/{id}`: read, [`Resource::change`], compare-and-swap; a write that lost to another
/// writer is settled and done again on the fresh object, up to [`UPDATE_TRIES`] times (then 409
/// `RevisionConflict`).
pub(super) async fn update<T: Resource>(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let constraint = revision_constraint(&headers)?;
    let mut attrs = body(&raw, T::ONE, T::UPDATE)?;
    lengths(&attrs)?;
    let asked = attrs.clone();
    for k in T::UPDATE_IGNORED {
        attrs.remove(*k);
    }
    let settings = api.settings.clone();
    let o = blocking(&api, move |db| {
        let s = Store::new(db);
        // Not found before not allowed, as Neutron: the object first, then the attributes' rules.
        let first: T = writable(db, &caller, &id, &format!("update_{}", T::ONE))?;
        admin_only::<T>(&caller, &asked, "update")?;
        T::authorize_update(db, &caller, &first, &attrs)?;
        let mut tries = 0;
        loop {
            let cur: T = s.get(&id)?.ok_or_else(|| ApiError::not_found(T::ONE, &id))?;
            constrained(constraint, &cur)?;
            let next = T::change(db, &settings, &cur, attrs.clone())?;
            match s.update(next.clone()) {
                Ok(written) => {
                    T::settle(db, &cur, &written, true);
                    T::after_update(db, &cur, &written);
                    return Ok(shown::<T>(&caller, view(db, written)?));
                }
                Err(e) => {
                    T::settle(db, &cur, &next, false);
                    tries += 1;
                    if !matches!(e, DbError::Conflict { .. }) || tries == UPDATE_TRIES {
                        return Err(e.into());
                    }
                }
            }
        }
    })
    .await?;
    Ok(Json(json!({ T::ONE: o })))
}

/// `DELETE /v2.0/<many>/{id}`: 204.
pub(super) async fn delete<T: Resource>(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let constraint = revision_constraint(&headers)?;
    let settings = api.settings.clone();
    blocking(&api, move |db| {
        let cur: T = writable(db, &caller, &id, &format!("delete_{}", T::ONE))?;
        constrained(constraint, &cur)?;
        remove(db, &settings, &cur)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `If-Match: revision_number=N` (`standard-attr-revisions`): the revision a change is constrained to.
fn revision_constraint(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(h) = headers.get("if-match") else { return Ok(None) };
    let text = h.to_str().map_err(|_| ApiError::bad("If-Match must be text"))?;
    for part in text.split(',').map(str::trim) {
        if let Some(n) = part.strip_prefix("revision_number=") {
            let n = n
                .trim_matches('"')
                .parse()
                .map_err(|_| ApiError::bad(format!("If-Match: {part}: not a revision number")))?;
            return Ok(Some(n));
        }
    }
    Ok(None)
}

/// 412 `RevisionNumberConstraintFailed` unless `cur` is at the constrained revision.
fn constrained<T: Object>(constraint: Option<u64>, cur: &T) -> ApiResult<()> {
    match constraint {
        Some(n) if n != cur.revision() => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "RevisionNumberConstraintFailed",
            format!("Constrained to {n}, but current revision is {}", cur.revision()),
        )),
        _ => Ok(()),
    }
}

/// Writes object `id` unchanged, so its revision (and `updated_at`) move: Neutron bumps a parent's
/// revision when a child changes (a router's interfaces, a group's rules). Gone: nothing to do.
pub(super) fn touch<T: Object>(db: &dyn Db, id: &str) {
    let s = Store::new(db);
    for _ in 0..UPDATE_TRIES {
        let Ok(Some(o)) = s.get::<T>(id) else { return };
        match s.update(o) {
            Err(DbError::Conflict { .. }) => continue,
            Err(e) => tracing::warn!(table = T::TABLE, id, "bumping the revision: {e}"),
            Ok(_) => {}
        }
        return;
    }
}

/// Deletes `cur` with what goes with it ([`Resource::before_delete`], [`Resource::after_delete`]).
fn remove<T: Resource>(db: &dyn Db, settings: &Settings, cur: &T) -> ApiResult<()> {
    T::before_delete(db, cur)?;
    Store::new(db).delete::<T>(cur.id(), None)?;
    T::after_delete(db, settings, cur)
}

fn fields(query: &[(String, String)]) -> Vec<&str> {
    query.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.as_str()).collect()
}

/// The body `{"<one>": {...}}` as an object, with only the attributes in `allowed`.
pub(super) fn body(raw: &[u8], one: &str, allowed: &[&str]) -> ApiResult<Attrs> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let Some(Value::Object(m)) = v.get(one).cloned() else {
        return Err(ApiError::bad(format!("the body must be {{\"{one}\": {{...}}}}")));
    };
    only(m, allowed)
}

/// A create's body: `{"<one>": {...}}`, or `{"<many>": [{...}, ...]}` (bulk, `true`), each object
/// with only the attributes in `allowed`.
fn bodies(raw: &[u8], one: &str, many: &str, allowed: &[&str]) -> ApiResult<(Vec<Attrs>, bool)> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    match (v.get(one), v.get(many)) {
        (Some(Value::Object(m)), None) => Ok((vec![only(m.clone(), allowed)?], false)),
        (None, Some(Value::Array(items))) if !items.is_empty() => {
            // (An item may come wrapped as `{"<one>": {...}}`, as some clients send them.)
            let each = |o: &Value| match o {
                Value::Object(m) if m.len() == 1 && m.get(one).is_some_and(Value::is_object) => {
                    only(m[one].as_object().cloned().unwrap_or_default(), allowed)
                }
                Value::Object(m) => only(m.clone(), allowed),
                _ => Err(ApiError::bad(format!("each of \"{many}\" must be an object"))),
            };
            Ok((items.iter().map(each).collect::<ApiResult<_>>()?, true))
        }
        _ => Err(ApiError::bad(format!("the body must be {{\"{one}\": {{...}}}} or {{\"{many}\": [{{...}}, ...]}}"))),
    }
}

/// `m` if it has only the attributes in `allowed` (400 naming the first other).
fn only(m: Attrs, allowed: &[&str]) -> ApiResult<Attrs> {
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad(format!("Unrecognized attribute(s) '{k}'")));
    }
    Ok(m)
}

/// Neutron's `NAME_MAX_LEN` and `DESCRIPTION_MAX_LEN`.
const MAX_LEN: usize = 255;

/// 400 for a `name` or `description` longer than Neutron stores.
fn lengths(attrs: &Attrs) -> ApiResult<()> {
    for k in ["name", "description"] {
        if let Some(Value::String(v)) = attrs.get(k) {
            if v.chars().count() > MAX_LEN {
                return Err(ApiError::invalid_input(format_args!("'{k}' exceeds the maximum length of {MAX_LEN}")));
            }
        }
    }
    Ok(())
}

/// Whether `s` has the shape of a UUID (Neutron's `is_uuid_like`: 32 hex digits, dashes anywhere).
pub(super) fn uuid_like(s: &str) -> bool {
    let hex: Vec<char> = s.chars().filter(|c| *c != '-').collect();
    hex.len() == 32 && hex.iter().all(char::is_ascii_hexdigit) && s.len() == 36
}

/// Neutron's older `tenant_id` is `project_id`.
fn normalise(attrs: &mut Attrs) {
    if let Some(t) = attrs.remove("tenant_id") {
        attrs.entry("project_id").or_insert(t);
    }
}

/// A new object from the request's attributes, with a fresh id and `status`; everything the request
/// leaves out takes the model's defaults (Neutron's, in `model.rs`): one place for them.
pub(super) fn new_object<T: Object>(attrs: Attrs, status: Option<&str>) -> ApiResult<T> {
    let mut v = Value::Object(attrs);
    v["id"] = json!(new_id());
    if let Some(st) = status {
        v["status"] = json!(st);
    }
    serde_json::from_value(v).map_err(|e| ApiError::bad(format!("invalid attribute value: {e}")))
}

/// Merges the request's attributes over an object's JSON and decodes it back: type errors are 400s.
pub(super) fn merge<T: Object>(base: &T, attrs: Attrs) -> ApiResult<T> {
    let mut v = to_json(base);
    for (k, x) in attrs {
        v[k] = x;
    }
    serde_json::from_value(v).map_err(|e| ApiError::bad(format!("invalid attribute value: {e}")))
}

/// A fresh id in the shape of a random (version 4) UUID, as Neutron's.
pub(super) fn new_id() -> String {
    let (a, b) = (rand_u64(), rand_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// 64 bits that differ on every call (std's randomly keyed hasher over a counter and the time).
pub(super) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DB where another writer (a node setting a port's status) comes first on the next `races`
    /// updates of a port: the update is done again on the fresh object, keeps the other writer's
    /// change, and gives back the addresses it took in the attempts that lost.
    struct Racing {
        inner: crate::db::embedded::EmbeddedDb,
        races: std::sync::atomic::AtomicUsize,
    }

    impl Db for Racing {
        fn revision(&self) -> crate::db::Result<crate::db::Revision> {
            self.inner.revision()
        }
        fn get(&self, table: &str, key: &str) -> crate::db::Result<Option<crate::db::Entry>> {
            self.inner.get(table, key)
        }
        fn list(&self, table: &str) -> crate::db::Result<(Vec<crate::db::Entry>, crate::db::Revision)> {
            self.inner.list(table)
        }
        fn create(&self, table: &str, key: &str, value: &[u8]) -> crate::db::Result<crate::db::Revision> {
            self.inner.create(table, key, value)
        }
        fn update(&self, table: &str, key: &str, value: &[u8], expected: u64) -> crate::db::Result<u64> {
            use std::sync::atomic::Ordering::Relaxed;
            if table == "port" && self.races.load(Relaxed) > 0 {
                self.races.fetch_sub(1, Relaxed);
                let e = self.inner.get(table, key)?.expect("the port");
                let mut v: Value = serde_json::from_slice(&e.value).unwrap();
                v["status"] = json!("ACTIVE");
                self.inner.update(table, key, &serde_json::to_vec(&v).unwrap(), e.revision)?;
            }
            self.inner.update(table, key, value, expected)
        }
        fn delete(&self, table: &str, key: &str, expected: Option<u64>) -> crate::db::Result<u64> {
            self.inner.delete(table, key, expected)
        }
        fn watch(&self, table: Option<&str>, after: u64) -> crate::db::Result<crate::db::Watch> {
            self.inner.watch(table, after)
        }
    }

    #[test]
    fn an_update_that_loses_a_race_is_done_again_on_the_fresh_object() {
        use crate::model::{Network, Port, Subnet};
        use std::sync::atomic::Ordering::Relaxed;
        let dir = std::env::temp_dir().join(format!("df-api-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let racing =
            Arc::new(Racing { inner: crate::db::embedded::EmbeddedDb::open(&dir).unwrap(), races: Default::default() });
        let db: &dyn Db = &*racing;
        let attrs = |v: Value| v.as_object().unwrap().clone();
        let net =
            Network::insert(db, Network::draft(attrs(json!({"name": "n"})), &Settings::default()).unwrap()).unwrap();
        // (No DHCP: no DHCP port with an address of its own in the IPAM table this test reads.)
        let sub = json!({"network_id": net.id, "cidr": "10.0.0.0/24", "enable_dhcp": false});
        let sub = Subnet::draft(attrs(sub), &Settings::default()).unwrap();
        let sub = Subnet::insert(db, sub).unwrap();
        let port =
            Port::insert(db, Port::draft(attrs(json!({"network_id": net.id})), &Settings::default()).unwrap()).unwrap();
        assert_eq!(port.fixed_ips[0].ip_address, "10.0.0.2");

        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let api = Api { db: racing.clone(), settings: Settings::default() };
        let put = |races: usize, ip: &str| {
            racing.races.store(races, Relaxed);
            let body = json!({"port": {"name": "renamed", "fixed_ips": [{"subnet_id": sub.id, "ip_address": ip}]}});
            let raw = Bytes::from(body.to_string());
            rt.block_on(update::<Port>(
                State(api.clone()),
                Caller::operator(),
                Path(port.id.clone()),
                HeaderMap::new(),
                raw,
            ))
        };
        let taken = || {
            let mut t: Vec<String> =
                db.list(&crate::api::ipam::ipam_table(&sub.id)).unwrap().0.into_iter().map(|e| e.key).collect();
            t.sort();
            t
        };

        let Json(v) = put(2, "10.0.0.50").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((v["port"]["name"].as_str(), v["port"]["status"].as_str()), (Some("renamed"), Some("ACTIVE")));
        assert_eq!(v["port"]["fixed_ips"][0]["ip_address"], "10.0.0.50");
        assert_eq!(taken(), ["10.0.0.50"], "the old address released, the lost attempts' given back");

        let e = put(UPDATE_TRIES, "10.0.0.60").unwrap_err();
        assert!(format!("{e:?}").contains("RevisionConflict"), "{e:?}");
        assert_eq!(taken(), ["10.0.0.50"], "every attempt gave back what it took");
        drop(rt);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ids_look_like_uuids_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{a}");
        assert_eq!(&a[14..15], "4", "version 4: {a}");
    }
}

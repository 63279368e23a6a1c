//! Tags (`standard-attr-tag`): `/v2.0/<many>/{id}/tags` and `…/tags/{tag}` on every resource with
//! Neutron's standard attributes, as Neutron's tagging extension:
//!
//! | request | answer |
//! |---|---|
//! | `GET …/tags` | 200 `{"tags": [...]}` |
//! | `GET …/tags/{tag}` | 204, or 404 `TagNotFound` |
//! | `PUT …/tags` `{"tags": [...]}` | 200, the tags replaced (unique strings of at most 255 characters) |
//! | `PUT …/tags/{tag}` | 201, the tag added (once) |
//! | `DELETE …/tags` | 204, all removed |
//! | `DELETE …/tags/{tag}` | 204, or 404 `TagNotFound` |
//!
//! A create may carry `tags` too (every resource, one object or a bulk: Neutron's
//! `tag-ports-during-bulk-creation`, for all); they are written right after the object.
//!
//! Reading tags needs to see the object; changing them, to be allowed to change it (`policy.rs`). A
//! change is a write of the object (its revision and `updated_at` move), retried when another writer
//! came first. Lists filter by tags with `tags`, `tags-any`, `not-tags`, `not-tags-any` (`query.rs`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::crud::{blocking, visible, writable, Api, Resource};
use super::error::{ApiError, ApiResult};
use super::policy::Caller;
use crate::db::DbError;
use crate::model::Store;

/// Neutron's `MAX_TAG_LEN`.
const MAX_TAG_LEN: usize = 255;

/// Writes of one tag change before it gives up on a busy object.
const TRIES: usize = 8;

fn tag_not_found(tag: &str, id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "TagNotFound", format!("Tag {tag} could not be found for resource {id}."))
}

fn check_tag(tag: &str) -> ApiResult<()> {
    if tag.is_empty() || tag.chars().count() > MAX_TAG_LEN {
        return Err(ApiError::bad(format!(
            "Invalid input for tags: '{tag}' is not a string of 1 to {MAX_TAG_LEN} characters"
        )));
    }
    Ok(())
}

/// `tags` in a request: a list of unique strings of 1 to [`MAX_TAG_LEN`] characters.
pub(super) fn valid(tags: &Value) -> ApiResult<Vec<String>> {
    let Value::Array(items) = tags else {
        return Err(ApiError::bad(format!("Invalid input for tags: {tags} is not a list")));
    };
    let mut new: Vec<String> = Vec::with_capacity(items.len());
    for t in items {
        let t = t.as_str().ok_or_else(|| ApiError::bad(format!("Invalid input for tags: {t} is not a string")))?;
        check_tag(t)?;
        if new.iter().any(|x| x == t) {
            return Err(ApiError::bad(format!("Invalid input for tags: duplicate tag '{t}'")));
        }
        new.push(t.to_owned());
    }
    Ok(new)
}

/// Object `id`, just created, with `tags` written on it (with retries); the object written.
pub(super) fn set_new<T: Resource>(db: &dyn crate::db::Db, id: &str, tags: Vec<String>) -> ApiResult<T> {
    let s = Store::new(db);
    for _ in 0..TRIES {
        let mut o: T = s.get(id)?.ok_or_else(|| ApiError::not_found(T::ONE, id))?;
        let Some(st) = o.standard() else { return Err(ApiError::bad(format!("{} has no tags", T::ONE))) };
        st.tags.clone_from(&tags);
        match s.update(o) {
            Err(DbError::Conflict { .. }) => continue,
            written => return Ok(written?),
        }
    }
    Err(ApiError::revision_conflict())
}

/// The tags of object `id` (one the caller may see).
fn tags_of<T: Resource>(db: &dyn crate::db::Db, caller: &Caller, id: &str) -> ApiResult<Vec<String>> {
    let (_, mut o): (Value, T) = visible(db, caller, id)?;
    Ok(o.standard().map(|s| s.tags.clone()).unwrap_or_default())
}

/// Changes the tags of object `id` (one the caller may change) with `f`, written with retries; the
/// tags written.
fn edit<T: Resource>(
    db: &dyn crate::db::Db,
    caller: &Caller,
    id: &str,
    f: impl Fn(&mut Vec<String>) -> ApiResult<()>,
) -> ApiResult<Vec<String>> {
    let s = Store::new(db);
    let rule = format!("update_{}:tags", T::ONE);
    for _ in 0..TRIES {
        let mut o: T = writable(db, caller, id, &rule)?;
        let Some(st) = o.standard() else { return Err(ApiError::bad(format!("{} has no tags", T::ONE))) };
        f(&mut st.tags)?;
        let tags = st.tags.clone();
        match s.update(o) {
            Ok(_) => return Ok(tags),
            Err(DbError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::revision_conflict())
}

/// `GET …/tags`.
pub(super) async fn list<T: Resource>(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tags = blocking(&api, move |db| tags_of::<T>(db, &caller, &id)).await?;
    Ok(Json(json!({ "tags": tags })))
}

/// `GET …/tags/{tag}`.
pub(super) async fn show<T: Resource>(
    State(api): State<Api>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        let tags = tags_of::<T>(db, &caller, &id)?;
        if tags.contains(&tag) {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(tag_not_found(&tag, &id))
        }
    })
    .await
}

/// `PUT …/tags` with `{"tags": [...]}`.
pub(super) async fn replace<T: Resource>(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let v: Value = serde_json::from_slice(&raw).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let new = valid(v.get("tags").ok_or_else(|| ApiError::bad("the body must be {\"tags\": [...]}"))?)?;
    let tags = blocking(&api, move |db| {
        edit::<T>(db, &caller, &id, |tags| {
            tags.clone_from(&new);
            Ok(())
        })
    })
    .await?;
    Ok(Json(json!({ "tags": tags })))
}

/// `PUT …/tags/{tag}`: 201.
pub(super) async fn add<T: Resource>(
    State(api): State<Api>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<Response> {
    check_tag(&tag)?;
    blocking(&api, move |db| {
        edit::<T>(db, &caller, &id, |tags| {
            if !tags.contains(&tag) {
                tags.push(tag.clone());
            }
            Ok(())
        })
    })
    .await?;
    Ok(StatusCode::CREATED.into_response())
}

/// `DELETE …/tags`.
pub(super) async fn remove_all<T: Resource>(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        edit::<T>(db, &caller, &id, |tags| {
            tags.clear();
            Ok(())
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE …/tags/{tag}`.
pub(super) async fn remove<T: Resource>(
    State(api): State<Api>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    blocking(&api, move |db| {
        let idc = id.clone();
        edit::<T>(db, &caller, &id, |tags| {
            let before = tags.len();
            tags.retain(|t| *t != tag);
            if tags.len() == before {
                return Err(tag_not_found(&tag, &idc));
            }
            Ok(())
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

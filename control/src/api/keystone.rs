//! Keystone tokens, as keystonemiddleware checks them in front of Neutron: every request but the
//! version document carries `X-Auth-Token`; the token is validated by Keystone (`GET /v3/auth/tokens`,
//! the token as both `X-Auth-Token` and `X-Subject-Token`: Keystone's default policy lets a token's
//! own user validate it, so no service account is needed), and the answer names the [`Caller`]: the
//! token's project and whether it holds the `admin` role.
//!
//! - A valid token is remembered until it expires, at most [`CACHE_FOR`] (keystonemiddleware's
//!   `token_cache_time`): a token revoked meanwhile works that long.
//! - No token, or one Keystone does not know (404/401): 401 `HTTPUnauthorized`.
//! - Keystone not answering, or answering something else: 503 (the request is not served unchecked).
//! - Plain HTTP only: this build has no TLS client (say `http://…`; `https://` is refused at start).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;

use super::error::ApiError;
use super::policy::Caller;
use crate::model::parse_utc;

/// How long a validated token is trusted without asking Keystone again.
pub const CACHE_FOR: Duration = Duration::from_secs(300);

/// Tokens remembered at most; past it the expired go, and if that is not enough, all.
const CACHE_MAX: usize = 10_000;

/// How long a validation may take before the request is answered 503.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A Keystone the API validates tokens with.
pub struct Keystone {
    /// `…/v3/auth/tokens`.
    tokens: String,
    agent: ureq::Agent,
    cache: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl Keystone {
    /// Keystone at `url`, its identity endpoint as clients are given it (`http://host:5000/v3`, or
    /// without the `/v3`).
    pub fn new(url: &str) -> Result<Keystone, String> {
        let base = url.trim_end_matches('/');
        if !base.starts_with("http://") {
            return Err(format!("--keystone {url}: an http:// URL (this build validates tokens over plain HTTP)"));
        }
        let tokens =
            if base.ends_with("/v3") { format!("{base}/auth/tokens") } else { format!("{base}/v3/auth/tokens") };
        let agent =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(TIMEOUT)).build().into();
        Ok(Keystone { tokens, agent, cache: Mutex::new(HashMap::new()) })
    }

    /// Who `token` is, from the cache or from Keystone (blocking).
    pub fn caller(&self, token: &str) -> Result<Caller, ApiError> {
        let now = Instant::now();
        if let Some((c, until)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(token) {
            if *until > now {
                return Ok(c.clone());
            }
        }
        let (caller, expires) = self.ask(token)?;
        let left = expires.and_then(|e| e.duration_since(SystemTime::now()).ok()).unwrap_or(CACHE_FOR);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), (caller.clone(), now + left.min(CACHE_FOR)));
        Ok(caller)
    }

    /// Keystone's answer for `token`: the caller and when the token expires.
    fn ask(&self, token: &str) -> Result<(Caller, Option<SystemTime>), ApiError> {
        let unavailable = |why: String| {
            tracing::warn!(keystone = %self.tokens, "token validation failed: {why}");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "the identity service did not answer")
        };
        let mut res = self
            .agent
            .get(&self.tokens)
            .header("X-Auth-Token", token)
            .header("X-Subject-Token", token)
            .call()
            .map_err(|e| unavailable(e.to_string()))?;
        match res.status().as_u16() {
            200 => {}
            401 | 404 => return Err(unauthorized()),
            s => return Err(unavailable(format!("status {s}"))),
        }
        let body: Value = res.body_mut().read_json().map_err(|e| unavailable(e.to_string()))?;
        parse_token(&body["token"]).ok_or_else(|| unavailable("an answer without a token".into()))
    }
}

/// The caller and expiry of a Keystone v3 token body (`{"project": {"id"}, "roles": [{"name"}],
/// "expires_at"}`).
fn parse_token(t: &Value) -> Option<(Caller, Option<SystemTime>)> {
    if !t.is_object() {
        return None;
    }
    let project = t["project"]["id"].as_str().map(str::to_owned);
    let roles = t["roles"].as_array().map(Vec::as_slice).unwrap_or_default();
    let admin = roles.iter().any(|r| r["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("admin")));
    let expires = t["expires_at"].as_str().and_then(parse_utc).map(|s| UNIX_EPOCH + Duration::from_secs(s));
    Some((Caller { project, admin }, expires))
}

fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "HTTPUnauthorized", "a valid X-Auth-Token is required")
}

/// `routes` behind Keystone: each request but the version document (`GET /`) is served as the caller
/// its token names, or refused (401, 503).
pub fn with_keystone(routes: axum::Router, keystone: Arc<Keystone>) -> axum::Router {
    routes.layer(axum::middleware::from_fn(move |mut req: axum::extract::Request, next: axum::middleware::Next| {
        let keystone = keystone.clone();
        async move {
            if req.uri().path() == "/" {
                return next.run(req).await;
            }
            let Some(token) = req.headers().get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::to_owned) else {
                return unauthorized().into_response();
            };
            let checked = tokio::task::spawn_blocking(move || keystone.caller(&token)).await;
            match checked {
                Ok(Ok(caller)) => {
                    req.extensions_mut().insert(caller);
                    next.run(req).await
                }
                Ok(Err(e)) => e.into_response(),
                Err(e) => ApiError::internal(e.to_string()).into_response(),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_token_names_its_project_and_admin_role() {
        let t = json!({"project": {"id": "p1"}, "roles": [{"name": "member"}, {"name": "reader"}],
                       "expires_at": "2026-12-02T20:51:10.000000Z"});
        let (c, exp) = parse_token(&t).unwrap();
        assert_eq!(c, Caller::member("p1"));
        assert_eq!(exp, Some(UNIX_EPOCH + Duration::from_secs(1_796_244_670)));
        let (c, _) = parse_token(&json!({"project": {"id": "p1"}, "roles": [{"name": "admin"}]})).unwrap();
        assert!(c.admin);
        let (c, exp) = parse_token(&json!({"roles": []})).unwrap();
        assert_eq!((c.project, c.admin, exp), (None, false, None), "a token of no project is nobody's");
        assert!(parse_token(&Value::Null).is_none());
    }

    #[test]
    fn the_url_may_name_v3_or_not_and_must_be_http() {
        assert_eq!(Keystone::new("http://k:5000/v3/").unwrap().tokens, "http://k:5000/v3/auth/tokens");
        assert_eq!(Keystone::new("http://k/identity").unwrap().tokens, "http://k/identity/v3/auth/tokens");
        assert!(Keystone::new("https://k:5000/v3").is_err());
    }
}

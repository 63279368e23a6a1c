//! The API's error: a status and Neutron's error body, `{"NeutronError": {"type", "message", "detail"}}`.
//! `type` is Neutron's exception name (`NetworkNotFound`, `IpAddressAlreadyAllocated`, …), which the
//! OpenStack clients show and scripts match on; `message` is Neutron's wording where there is one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::db::DbError;

/// An error in Neutron's shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into() }
    }

    /// 400: the request is malformed or asks for something invalid.
    pub(super) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }

    /// 400 `InvalidInput`, Neutron's wording around `message`: "Invalid input for operation: {message}.".
    pub(super) fn invalid_input(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidInput", format!("Invalid input for operation: {message}."))
    }

    /// 404 for the object `id` of the resource `what` (its singular JSON name, `network`).
    pub(super) fn not_found(what: &str, id: &str) -> ApiError {
        let kind = match what {
            "network" => "NetworkNotFound",
            "subnet" => "SubnetNotFound",
            "port" => "PortNotFound",
            "router" => "RouterNotFound",
            "security_group" => "SecurityGroupNotFound",
            "security_group_rule" => "SecurityGroupRuleNotFound",
            "floatingip" => "FloatingIPNotFound",
            "subnetpool" => "SubnetPoolNotFound",
            "address_scope" => "AddressScopeNotFound",
            "agent" => "AgentNotFound",
            _ => "NotFound",
        };
        ApiError::new(StatusCode::NOT_FOUND, kind, format!("{what} {id} could not be found."))
    }

    /// 409: the request is valid but the cloud's state refuses it (in use, already allocated, …).
    pub(super) fn conflict(kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, kind, message)
    }

    /// 409 `RevisionConflict`: the object moved under every write tried.
    pub(super) fn revision_conflict() -> ApiError {
        ApiError::conflict("RevisionConflict", "the object changed meanwhile; retry")
    }

    /// 500: something this server should not meet (a stored object it cannot read, a lost task).
    pub(super) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        match e {
            DbError::Conflict { .. } => ApiError::revision_conflict(),
            DbError::Invalid(m) => ApiError::bad(m),
            e => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"NeutronError": {"type": self.kind, "message": self.message, "detail": ""}});
        (self.status, Json(body)).into_response()
    }
}

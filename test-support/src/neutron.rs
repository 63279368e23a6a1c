//! A blocking client for the Neutron API, in the shape tests use: every request answers its status and
//! its JSON body (`Null` if there is none or it is not JSON), whatever the status; a request that gets
//! no answer at all (nothing listens, the connection breaks) panics, naming the API.

use std::time::Duration;

use serde_json::{json, Value};
use ureq::http::Request;

/// The Neutron API at one address.
#[derive(Clone)]
pub struct Neutron {
    addr: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// A request that gets no answer within this fails (instead of hanging the test).
const TIMEOUT: Duration = Duration::from_secs(120);

impl Neutron {
    /// The API at `addr` (`127.0.0.1:9696`), without a token.
    pub fn new(addr: &str) -> Neutron {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A connection per request, as a test expects of a server it may restart.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .timeout_global(Some(TIMEOUT))
            .build()
            .into();
        Neutron { addr: addr.to_owned(), token: None, agent }
    }

    /// The same API, every request carrying `X-Auth-Token: token`.
    pub fn with_token(mut self, token: &str) -> Neutron {
        self.token = Some(token.to_owned());
        self
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// One request with a raw body (sent as `application/json`, valid or not); the status and the JSON
    /// body.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut req = Request::builder().method(method).uri(format!("http://{}{path}", self.addr));
        if let Some(t) = &self.token {
            req = req.header("X-Auth-Token", t);
        }
        let sent = match body {
            Some(b) => {
                let req = req.header("Content-Type", "application/json").body(b.to_owned()).unwrap();
                self.agent.run(req)
            }
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut res = sent.unwrap_or_else(|e| panic!("Neutron API {}: {method} {path}: {e}", self.addr));
        let status = res.status().as_u16();
        let bytes = res.body_mut().read_to_vec().unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(&body.to_string()))
    }

    pub fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(&body.to_string()))
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None)
    }

    /// `POST /v2.0/<kind>s` with `{"<kind>": body}`, which must answer 201; the new object.
    pub fn create(&self, kind: &str, body: Value) -> Value {
        let (status, v) = self.post(&format!("/v2.0/{kind}s"), json!({ kind: body }));
        assert_eq!(status, 201, "POST {kind}: {v}");
        v[kind].clone()
    }

    /// `GET /v2.0/<kind>s/{id}`: the object, or `None` if the answer is not 200.
    pub fn show(&self, kind: &str, id: &str) -> Option<Value> {
        let (status, v) = self.get(&format!("/v2.0/{kind}s/{id}"));
        (status == 200).then(|| v[kind].clone())
    }
}

/// The `type` of a Neutron error body (`NetworkNotFound`), or `<no NeutronError body>`.
pub fn error_type(v: &Value) -> &str {
    v["NeutronError"]["type"].as_str().unwrap_or("<no NeutronError body>")
}

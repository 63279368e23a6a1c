//! Agents (`agent`): `/v2.0/agents`, each node's local controller, from the heartbeat the node writes
//! every 30 s (`model::Agent`). As Neutron's default policy, only an admin sees them (others list none,
//! and find none); an admin may change `admin_state_up` and `description`, and delete one (a node that
//! still runs reports again). `alive`: a report within the last 75 s (Neutron's `agent_down_time`).
//!
//! `admin_state_up` is kept and shown; it changes nothing on the node: Neutron uses it to stop scheduling
//! DHCP and L3 agents, and here nothing is scheduled (each node serves DHCP and routing for its own ports).
//! The API does not create agents: only nodes do.

use serde_json::{json, Value};

use super::crud::{Attrs, Resource, Settings};
use super::error::{ApiError, ApiResult};
use super::policy::{Access, Caller};
use crate::db::Db;
use crate::model::{parse_utc, Agent, Port, Store, AGENT_DOWN_TIME, ROUTER_GATEWAY};

/// The `agent_type` of a node's local controller.
pub const AGENT_TYPE: &str = "Dragonflow local controller";

impl Resource for Agent {
    const ONE: &'static str = "agent";
    const MANY: &'static str = "agents";
    const CREATE: &'static [&'static str] = &[];
    const UPDATE: &'static [&'static str] = &["admin_state_up", "description"];
    const ADMIN_ONLY: &'static [&'static str] = &["admin_state_up", "description"];
    const SHOWN: &'static [&'static str] = &[
        "agent_type",
        "binary",
        "host",
        "topic",
        "alive",
        "availability_zone",
        "configurations",
        "started_at",
        "heartbeat_timestamp",
        "admin_state_up",
        "resources_synced",
    ];

    type Draft = ();

    fn draft(_: Attrs, _: &Settings) -> ApiResult<()> {
        Err(ApiError::bad("agents are made by the nodes that run them, not by the API"))
    }

    fn insert(_: &dyn Db, (): ()) -> ApiResult<Agent> {
        Err(ApiError::bad("agents are made by the nodes that run them, not by the API"))
    }

    /// Only an admin sees agents.
    fn access(_: &dyn Db, caller: &Caller, views: &[Value]) -> ApiResult<Vec<Access>> {
        Ok(vec![if caller.admin { Access::Write } else { Access::None }; views.len()])
    }

    fn views(_: &dyn Db, agents: Vec<Agent>) -> ApiResult<Vec<Value>> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(agents.iter().map(|a| view(a, now)).collect())
    }
}

/// Whether agent `a` reported in the last `AGENT_DOWN_TIME`, `now` seconds since the epoch.
fn alive(a: &Agent, now: u64) -> bool {
    parse_utc(&a.heartbeat_timestamp).is_some_and(|t| now.saturating_sub(t) <= AGENT_DOWN_TIME.as_secs())
}

/// The node a new router gateway is bound to (Neutron's L3 agent scheduling, least routers first): of
/// the nodes up and enabled, the one serving the fewest gateways, by name on a tie; `""` (no node
/// serves it until an admin binds it, `binding:host_id`) if there is none.
pub(super) fn gateway_host(db: &dyn Db) -> ApiResult<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (agents, _) = Store::new(db).list::<Agent>()?;
    let (ports, _) = Store::new(db).list::<Port>()?;
    let load = |host: &str| ports.iter().filter(|p| p.device_owner == ROUTER_GATEWAY && p.host_id == host).count();
    let best = agents.iter().filter(|a| a.admin_state_up && alive(a, now)).min_by_key(|a| (load(&a.id), a.id.clone()));
    Ok(best.map(|a| a.id.clone()).unwrap_or_default())
}

/// An agent as Neutron shows one, `now` seconds since the epoch.
fn view(a: &Agent, now: u64) -> Value {
    let alive = alive(a, now);
    let types: Vec<String> = a.tunnel_types.iter().map(|t| format!("{t:?}").to_lowercase()).collect();
    json!({
        "id": a.id, "agent_type": AGENT_TYPE, "binary": "dragonflow", "host": a.id, "topic": "N/A",
        "alive": alive, "admin_state_up": a.admin_state_up, "availability_zone": null,
        "configurations": {"tunnel_ip": a.tunnel_ip, "tunnel_types": types},
        "created_at": a.created_at, "started_at": a.started_at, "heartbeat_timestamp": a.heartbeat_timestamp,
        "description": a.description, "resources_synced": null, "revision_number": a.revision_number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{utc, AGENT_REPORT_INTERVAL};

    #[test]
    fn an_agent_is_alive_while_it_reports() {
        let now = 1_796_244_670;
        let mut a = Agent {
            id: "c1".into(),
            tunnel_ip: "10.0.0.1".into(),
            tunnel_types: vec![crate::model::NetworkType::Vxlan],
            created_at: utc(now - 3600),
            started_at: utc(now - 3600),
            heartbeat_timestamp: utc(now - AGENT_REPORT_INTERVAL.as_secs()),
            admin_state_up: true,
            description: String::new(),
            revision_number: 1,
        };
        let v = view(&a, now);
        assert_eq!((v["alive"].as_bool(), v["host"].as_str()), (Some(true), Some("c1")));
        assert_eq!(v["configurations"]["tunnel_types"], json!(["vxlan"]));
        a.heartbeat_timestamp = utc(now - AGENT_DOWN_TIME.as_secs() - 1);
        assert_eq!(view(&a, now)["alive"], false);
        a.heartbeat_timestamp = String::new();
        assert_eq!(view(&a, now)["alive"], false, "never reported");
    }
}

//! Network IP availability (`network-ip-availability`): `/v2.0/network-ip-availabilities` and
//! `…/{network_id}`, each network's addresses in all (the sizes of its subnets' allocation pools) and in
//! use (its ports' fixed IPs, the DHCP, router and floating IP ports' too), and the same per subnet.
//!
//! As Neutron's default policy, an admin's: others list none and find none. Lists take Neutron's filters
//! (`network_id`, `network_name`, `project_id`, `ip_version`: only the subnets of that version, and only
//! networks with one), `fields`, sorting and pagination (`query.rs`). A count of 2⁶⁴ or more (an IPv6
//! pool of a whole /64 or wider) is shown as 2⁶⁴ − 1.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::Json;
use serde_json::{json, Value};

use super::crud::{blocking, Api};
use super::error::{ApiError, ApiResult};
use super::policy::Caller;
use super::query::{select, ListQuery};
use crate::cidr::{ip_bits, Cidr};
use crate::db::Db;
use crate::model::{Network, Port, Store, Subnet};

const ONE: &str = "network_ip_availability";
const MANY: &str = "network_ip_availabilities";

/// What a list may filter and sort by.
const KNOWN: &[&str] =
    &["network_id", "network_name", "project_id", "tenant_id", "total_ips", "used_ips", "subnet_ip_availability"];

/// The addresses of `s`'s allocation pools; of its CIDR if it has none (as Neutron counts).
fn pool_size(s: &Subnet) -> u128 {
    let bits = |a: &str| a.parse::<IpAddr>().ok().map(|a| ip_bits(a).1);
    let size = |first: u128, last: u128| last.checked_sub(first).map(|d| d.saturating_add(1));
    if s.allocation_pools.is_empty() {
        return Cidr::parse_network(&s.cidr).and_then(|c| size(c.base(), c.last())).unwrap_or(0);
    }
    s.allocation_pools.iter().filter_map(|p| size(bits(&p.start)?, bits(&p.end)?)).fold(0, u128::saturating_add)
}

fn count(n: u128) -> Value {
    u64::try_from(n).unwrap_or(u64::MAX).into()
}

/// The availability of `networks` (of their subnets of `versions`, or of all if empty).
fn availabilities(db: &dyn Db, networks: Vec<Network>, versions: &[u8]) -> ApiResult<Vec<Value>> {
    let s = Store::new(db);
    let (subnets, _) = s.list::<Subnet>()?;
    let (ports, _) = s.list::<Port>()?;
    let mut used: HashMap<&str, u128> = HashMap::new();
    for f in ports.iter().flat_map(|p| &p.fixed_ips) {
        *used.entry(f.subnet_id.as_str()).or_default() += 1;
    }
    let mut out = Vec::with_capacity(networks.len());
    for n in networks {
        let mine: Vec<&Subnet> = subnets
            .iter()
            .filter(|s| s.network_id == n.id && (versions.is_empty() || versions.contains(&s.ip_version)))
            .collect();
        if !versions.is_empty() && mine.is_empty() {
            continue;
        }
        let (mut total, mut in_use) = (0u128, 0u128);
        let per_subnet: Vec<Value> = mine
            .iter()
            .map(|s| {
                let (t, u) = (pool_size(s), used.get(s.id.as_str()).copied().unwrap_or(0));
                total = total.saturating_add(t);
                in_use += u;
                json!({"subnet_id": s.id, "subnet_name": s.name, "cidr": s.cidr, "ip_version": s.ip_version,
                       "total_ips": count(t), "used_ips": count(u)})
            })
            .collect();
        out.push(json!({
            "network_id": n.id, "network_name": n.name, "project_id": n.project_id, "tenant_id": n.project_id,
            "total_ips": count(total), "used_ips": count(in_use), "subnet_ip_availability": per_subnet,
        }));
    }
    Ok(out)
}

/// `GET /v2.0/network-ip-availabilities`.
pub(super) async fn list(
    State(api): State<Api>,
    caller: Caller,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let (versions, rest): (Vec<_>, Vec<_>) = q.into_iter().partition(|(k, _)| k == "ip_version");
    let versions = versions
        .iter()
        .map(|(_, v)| match v.as_str() {
            "4" => Ok(4),
            "6" => Ok(6),
            _ => Err(ApiError::invalid_input(format_args!("'{v}' is not a valid IP version"))),
        })
        .collect::<ApiResult<Vec<u8>>>()?;
    let query = ListQuery::parse(&rest, |k| KNOWN.contains(&k))?;
    let values = if caller.admin {
        blocking(&api, move |db| availabilities(db, Store::new(db).list::<Network>()?.0, &versions)).await?
    } else {
        Vec::new()
    };
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    Ok(Json(query.respond(values, MANY, host, uri.path())?))
}

/// `GET /v2.0/network-ip-availabilities/{network_id}`.
pub(super) async fn show(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let not_found = || ApiError::not_found("network", &id);
    if !caller.admin {
        return Err(not_found());
    }
    let id2 = id.clone();
    let found = blocking(&api, move |db| {
        let nets = Store::new(db).get::<Network>(&id2)?.into_iter().collect();
        Ok(availabilities(db, nets, &[])?.pop())
    })
    .await?;
    let fields: Vec<&str> = q.iter().filter(|(k, _)| k == "fields").map(|(_, v)| v.as_str()).collect();
    Ok(Json(json!({ ONE: select(found.ok_or_else(not_found)?, &fields) })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AllocationPool;

    #[test]
    fn a_pool_counts_its_first_and_last_address_and_a_huge_one_is_capped() {
        let mut s: Subnet = serde_json::from_value(
            json!({"id": "s", "network_id": "n", "ip_version": 4, "cidr": "10.0.0.0/28",
                   "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.14"}, {"start": "10.0.0.9", "end": "10.0.0.1"}]}),
        )
        .unwrap();
        assert_eq!(pool_size(&s), 13, "a backwards pool is none");
        s.allocation_pools =
            vec![AllocationPool { start: "2001:db8::2".into(), end: "2001:db8::ffff:ffff:ffff:ffff".into() }];
        assert_eq!(count(pool_size(&s)), json!(u64::MAX - 1), "a /64 less two");
        s.allocation_pools =
            vec![AllocationPool { start: "2001:db8::".into(), end: "2001:db8:0:ff:ffff:ffff:ffff:ffff".into() }];
        assert_eq!(count(pool_size(&s)), json!(u64::MAX));
    }
}

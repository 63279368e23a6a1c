//! IP address management for the API: allocation pools, and allocation that never hands out an
//! address twice, even to concurrent requests on several API servers: an address is taken by creating
//! the DB entry `ipam.<subnet>/<address>` (a create fails if it exists), and a MAC by creating
//! `mac.<network>/<mac>`.

use std::net::IpAddr;

use crate::cidr::{ip_bits, ip_from_bits, Cidr};
use crate::db::{Db, DbError};
use crate::model::{AllocationPool, Subnet};

pub fn parse_ip(s: &str) -> Option<(bool, u128)> {
    s.parse::<IpAddr>().ok().map(ip_bits)
}

/// Neutron's defaults: the gateway is the first address; the pool is everything after it up to the last
/// address (excluded for IPv4: broadcast), minus the gateway.
pub fn default_pools(c: &Cidr, gateway: Option<u128>) -> Vec<AllocationPool> {
    let Some(first) = c.base().checked_add(1) else { return Vec::new() };
    let last = if c.is_v6() { c.last() } else { c.last().saturating_sub(1) };
    if last < first {
        return Vec::new();
    }
    let mut pools = Vec::new();
    let mut push = |a: u128, b: u128| {
        if a <= b {
            pools.push(AllocationPool {
                start: ip_from_bits(c.is_v6(), a).to_string(),
                end: ip_from_bits(c.is_v6(), b).to_string(),
            })
        }
    };
    match gateway.filter(|g| (first..=last).contains(g)) {
        Some(g) => {
            if g > first {
                push(first, g - 1);
            }
            if g < last {
                push(g + 1, last);
            }
        }
        None => push(first, last),
    }
    pools
}

pub fn ipam_table(subnet_id: &str) -> String {
    format!("ipam.{subnet_id}")
}

pub fn mac_table(network_id: &str) -> String {
    format!("mac.{network_id}")
}

/// Takes `ip` in `subnet`; `Ok(false)` if somebody has it.
pub fn take(db: &dyn Db, subnet_id: &str, ip: &str, port_id: &str) -> Result<bool, DbError> {
    match db.create(&ipam_table(subnet_id), ip, port_id.as_bytes()) {
        Ok(_) => Ok(true),
        Err(DbError::AlreadyExists) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn release(db: &dyn Db, subnet_id: &str, ip: &str) {
    if let Some((_, x)) = parse_ip(ip) {
        give_back(db, &ipam_table(subnet_id), ip, x);
    }
}

/// Deletes `key` (the value `x` of a range [`take_first_free`] allocates from) from `table`; the next
/// allocation there starts at it: the lowest free ones are given first.
pub fn give_back(db: &dyn Db, table: &str, key: &str, x: u128) {
    let _ = db.delete(table, key, None);
    if let Ok(mut next) = NEXT.lock() {
        if let Some(h) = next.get_or_insert_with(Default::default).get_mut(table) {
            *h = (*h).min(x);
        }
    }
}

/// Where the next allocation in a table starts looking (this process's last allocation there + 1): an
/// allocation is one DB create in the common case instead of a list of every key taken. Another API
/// server's allocations only cost a failed create each.
static NEXT: std::sync::Mutex<Option<std::collections::HashMap<String, u128>>> = std::sync::Mutex::new(None);

/// Tries of the values after the hint before listing the table's allocations.
const HINT_TRIES: u32 = 32;

/// Takes for `owner` a free value of `ranges` (inclusive, in order) in `table`, where value `x` is the
/// entry `key(x)`, taken by creating it (a create fails if the entry exists, so two API servers never
/// take one value): one of those after the last one this process took there, else the first free one.
/// `None` when every value is taken.
pub fn take_first_free(
    db: &dyn Db,
    table: &str,
    ranges: &[(u128, u128)],
    key: impl Fn(u128) -> String,
    owner: &str,
) -> Result<Option<u128>, DbError> {
    let take = |x: u128| -> Result<bool, DbError> {
        match db.create(table, &key(x), owner.as_bytes()) {
            Ok(_) => {
                NEXT.lock()
                    .expect("poisoned")
                    .get_or_insert_with(Default::default)
                    .insert(table.to_owned(), x.saturating_add(1));
                Ok(true)
            }
            Err(DbError::AlreadyExists) => Ok(false),
            Err(e) => Err(e),
        }
    };
    let hint = NEXT.lock().expect("poisoned").get_or_insert_with(Default::default).get(table).copied();
    if let Some(h) = hint {
        let mut tries = 0;
        for &(a, b) in ranges {
            // Inclusive ranges: one may end at the type's last value (no `x + 1` past it).
            for x in h.max(a)..=b {
                if tries == HINT_TRIES {
                    break;
                }
                if take(x)? {
                    return Ok(Some(x));
                }
                tries += 1;
            }
        }
    }
    let (taken, _) = db.list(table)?;
    let taken: std::collections::HashSet<String> = taken.into_iter().map(|e| e.key).collect();
    for &(a, b) in ranges {
        for x in a..=b {
            if !taken.contains(&key(x)) && take(x)? {
                return Ok(Some(x));
            }
        }
    }
    Ok(None)
}

/// A free address of the subnet's pools, taken for `port_id` ([`take_first_free`]); `None` when the
/// pools are full.
pub fn allocate(db: &dyn Db, s: &Subnet, port_id: &str) -> Result<Option<String>, DbError> {
    let pools: Vec<(bool, u128, u128)> = s
        .allocation_pools
        .iter()
        .filter_map(|p| {
            let ((v6, a), (_, b)) = (parse_ip(&p.start)?, parse_ip(&p.end)?);
            Some((v6, a, b))
        })
        .collect();
    let Some(&(v6, _, _)) = pools.first() else { return Ok(None) };
    let ranges: Vec<(u128, u128)> = pools.iter().filter(|p| p.0 == v6).map(|&(_, a, b)| (a, b)).collect();
    let got = take_first_free(db, &ipam_table(&s.id), &ranges, |x| ip_from_bits(v6, x).to_string(), port_id)?;
    Ok(got.map(|x| ip_from_bits(v6, x).to_string()))
}

/// True if `ip` is in one of the subnet's pools.
pub fn in_pools(s: &Subnet, ip: u128) -> bool {
    s.allocation_pools.iter().any(|p| match (parse_ip(&p.start), parse_ip(&p.end)) {
        (Some((_, a)), Some((_, b))) => (a..=b).contains(&ip),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_default_pools() {
        let c = Cidr::parse_network("10.0.0.0/24").unwrap();
        assert!(c.contains("10.0.0.77".parse().unwrap()) && !c.contains("10.0.1.1".parse().unwrap()));
        assert!(Cidr::parse_network("10.0.0.1/24").is_none(), "host bits set");
        assert!(Cidr::parse_network("10.0.0.0/33").is_none() && Cidr::parse_network("bogus").is_none());
        assert!(c.overlaps(&Cidr::parse_network("10.0.0.128/25").unwrap()));
        assert!(!c.overlaps(&Cidr::parse_network("10.0.1.0/24").unwrap()));
        let p = default_pools(&c, Some(c.base() + 1));
        assert_eq!(p, vec![AllocationPool { start: "10.0.0.2".into(), end: "10.0.0.254".into() }]);
        let v6 = Cidr::parse_network("2001:db8::/64").unwrap();
        assert_eq!(v6.ip_version(), 6);
        assert_eq!(default_pools(&v6, Some(v6.base() + 1))[0].start, "2001:db8::2");
        assert!(Cidr::parse_network("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
    }

    /// A pool that ends at the very last IPv6 address: every address is given once, then `None` (no
    /// overflow past ffff:…:ffff, which used to panic in a debug build and loop forever in a release one).
    #[test]
    fn allocation_at_the_top_of_the_ipv6_space() {
        let dir = std::env::temp_dir().join(format!("df-ipam-top-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = crate::db::embedded::EmbeddedDb::open(&dir).unwrap();
        let c = Cidr::parse_network("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124").unwrap();
        assert_eq!(c.last(), u128::MAX);
        let pools = default_pools(&c, Some(c.last()));
        assert_eq!(pools.len(), 1, "the gateway at the last address leaves one pool before it: {pools:?}");
        let pools = default_pools(&c, Some(c.base() + 1));
        assert_eq!(pools[0].end, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        let mut s: Subnet = serde_json::from_value(serde_json::json!({"id": "top", "network_id": "n",
            "ip_version": 6, "cidr": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"}))
        .unwrap();
        s.allocation_pools = pools;
        let mut got = std::collections::HashSet::new();
        while let Some(ip) = allocate(&db, &s, "p").unwrap() {
            assert!(got.insert(ip.clone()), "{ip} given twice");
            assert!(got.len() <= 14, "more addresses than the pool holds");
        }
        assert_eq!(got.len(), 14, "fff2 to ffff");
        assert!(got.contains("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        // Free the last one: it is given again, and then the pool is full again.
        release(&db, "top", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert_eq!(allocate(&db, &s, "p").unwrap().as_deref(), Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        assert_eq!(allocate(&db, &s, "p").unwrap(), None);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

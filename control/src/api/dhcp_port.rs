//! A network's DHCP port, as Neutron's DHCP agent keeps one: the port the switch answers DHCP from,
//! with one address on each DHCP-enabled subnet of its network.
//!
//! It is a port like any other (shown by `GET /v2.0/ports`, a fresh MAC of the network's, its addresses
//! taken in IPAM: the first free one of each pool, the EUI-64 one on an auto-address subnet), with
//! `device_owner` [`DHCP_OWNER`], `device_id` [`device_id`] (`dhcp-<network id>`), no binding host,
//! status `ACTIVE`, no security group (Neutron trusts `network:` ports). [`sync`] keeps it in step with
//! the subnets; the API calls it after every subnet change (create, update, delete):
//!
//! | the network's DHCP-enabled subnets | the port |
//! |---|---|
//! | a first one | created, with an address on each |
//! | one more (created, or `enable_dhcp` turned on) | an address on it added |
//! | one less (deleted, or `enable_dhcp` turned off) | its address there removed and released |
//! | none left | deleted (its MAC and addresses released) |
//!
//! Deleting the network deletes it (`networks.rs`): `network:dhcp` ports are among Neutron's
//! `AUTO_DELETE_PORT_OWNERS`, which neither `NetworkInUse` nor `SubnetInUse` count.
//!
//! Several API servers may share the DB: the port's id is made from the network's ([`port_id`]), and it
//! is created by a DB create of that key, so two servers never make two; the one that loses gives back
//! what it took and looks again. Its changes are compare-and-swaps, done again on the fresh port when
//! another writer came first.
//!
//! Users may delete it (Neutron allows it): it comes back at the next subnet change. They may also make
//! more `network:dhcp` ports by hand (Neutron allows that too): those are ordinary ports, auto-deleted
//! with their network; the switch serves DHCP from the one whose `device_id` is [`device_id`].

use super::error::{ApiError, ApiResult};
use super::fixed_ips::{network_subnets, release_ips, take_on};
use super::ports::{release_port, take_new_mac};
use crate::db::{Db, DbError};
use crate::model::{FixedIp, Network, Port, Store, Subnet, DHCP_OWNER};

/// Rounds of [`sync`] (each lost to another writer) before it gives up.
const TRIES: usize = 8;

/// The `device_id` of network `network_id`'s DHCP port: `dhcp-<network id>`.
pub fn device_id(network_id: &str) -> String {
    crate::model::dhcp_device_id(network_id)
}

/// The id of network `network_id`'s DHCP port: the same on every API server, in the shape of a UUID
/// (version 8, RFC 9562's custom one, so it never equals a random version 4 port id), from the 128-bit
/// FNV-1a hash of `dhcp:<network id>`.
pub fn port_id(network_id: &str) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let h = format!("dhcp:{network_id}").bytes().fold(OFFSET, |h, b| (h ^ b as u128).wrapping_mul(PRIME));
    let h = (h & !(0xf << 76) & !(0x3 << 62)) | (0x8 << 76) | (0x2 << 62);
    let hex = format!("{h:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Brings network `network_id`'s DHCP port in step with its DHCP-enabled subnets (created, changed or
/// deleted as the table above says). A subnet whose pools have no address left gets none (logged).
pub(super) fn sync(db: &dyn Db, network_id: &str) -> ApiResult<()> {
    let s = Store::new(db);
    let id = port_id(network_id);
    for _ in 0..TRIES {
        let done = match (s.get::<Network>(network_id)?, s.get::<Port>(&id)?) {
            (None, None) => true,
            (None, Some(p)) => delete(db, &p)?,
            (Some(net), cur) => {
                let wanted: Vec<Subnet> =
                    network_subnets(db, network_id)?.into_iter().filter(|s| s.enable_dhcp).collect();
                match cur {
                    None => create(db, &net, &id, &wanted)?,
                    Some(p) => refresh(db, p, &wanted)?,
                }
            }
        };
        if done {
            return Ok(());
        }
    }
    Err(ApiError::revision_conflict())
}

/// [`sync`], its failure logged: what a subnet change does after its write, which the failure cannot
/// undo (the port comes right at the next change, as Neutron's DHCP agent would at its next resync).
pub(super) fn sync_logged(db: &dyn Db, network_id: &str) {
    if let Err(e) = sync(db, network_id) {
        tracing::warn!(network = network_id, "the network's DHCP port is not in step with its subnets: {e:?}");
    }
}

/// Creates the port with an address on each of `wanted`; `Ok(false)` if another server created it
/// first (look again).
fn create(db: &dyn Db, net: &Network, id: &str, wanted: &[Subnet]) -> ApiResult<bool> {
    if wanted.is_empty() {
        return Ok(true);
    }
    let mut p = Port::new(id.to_owned(), net.id.clone());
    p.project_id = net.project_id.clone();
    (p.device_owner, p.device_id, p.status) = (DHCP_OWNER.into(), device_id(&net.id), "ACTIVE".into());
    p.mac_address = take_new_mac(db, &net.id, id)?;
    p.fixed_ips = match take_on_each(db, &p, wanted) {
        Ok(ips) if !ips.is_empty() => ips,
        other => {
            release_port(db, &p);
            return other.map(|_| true);
        }
    };
    match Store::new(db).create(p.clone()) {
        Ok(_) => {}
        Err(DbError::AlreadyExists) => {
            release_port(db, &p);
            return Ok(false);
        }
        Err(e) => {
            release_port(db, &p);
            return Err(e.into());
        }
    }
    // A network deleted meanwhile (its DHCP port gone with it before this one was written) takes this one.
    if Store::new(db).get::<Network>(&net.id)?.is_none() {
        return delete(db, &p);
    }
    Ok(true)
}

/// Makes the port's addresses those of `wanted`: the missing ones taken, the others removed and
/// released; deleted when none is left. `Ok(false)` if another writer came first (look again).
fn refresh(db: &dyn Db, p: Port, wanted: &[Subnet]) -> ApiResult<bool> {
    let on = |f: &FixedIp| wanted.iter().any(|s| s.id == f.subnet_id);
    let (keep, gone): (Vec<FixedIp>, Vec<FixedIp>) = p.fixed_ips.iter().cloned().partition(|f| on(f));
    let missing: Vec<Subnet> = wanted.iter().filter(|s| !keep.iter().any(|f| f.subnet_id == s.id)).cloned().collect();
    let added = take_on_each(db, &p, &missing)?;
    let mut next = p.clone();
    next.fixed_ips = keep.into_iter().chain(added.iter().cloned()).collect();
    if next.fixed_ips.is_empty() {
        return delete(db, &p);
    }
    if added.is_empty() && gone.is_empty() {
        return Ok(true);
    }
    match Store::new(db).update(next) {
        Ok(_) => {
            release_ips(db, &gone);
            Ok(true)
        }
        Err(e) => {
            release_ips(db, &added);
            match e {
                DbError::Conflict { .. } | DbError::NotFound => Ok(false),
                e => Err(e.into()),
            }
        }
    }
}

/// Deletes the port as read (`Ok(false)` if it changed since) and releases its MAC and addresses.
fn delete(db: &dyn Db, p: &Port) -> ApiResult<bool> {
    match Store::new(db).delete::<Port>(&p.id, Some(p.revision_number)) {
        Ok(_) => {
            release_port(db, p);
            Ok(true)
        }
        Err(DbError::Conflict { .. } | DbError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// An address for port `p` on each of `subnets` (none on a subnet whose pools are full or empty); on an
/// error, what it took is given back.
fn take_on_each(db: &dyn Db, p: &Port, subnets: &[Subnet]) -> ApiResult<Vec<FixedIp>> {
    let mut taken = Vec::new();
    for sub in subnets {
        match take_on(db, p, sub) {
            Ok(Some(f)) => taken.push(f),
            Ok(None) => {
                if !sub.allocation_pools.is_empty() {
                    tracing::warn!(subnet = %sub.id, "no address left for the network's DHCP port");
                }
            }
            Err(e) => {
                release_ips(db, &taken);
                return Err(e);
            }
        }
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_id_is_a_uuid_of_its_network_alone() {
        let a = port_id("5f1f1bd9-1b44-4a8c-9d3d-0c1a5f3b6d11");
        // Pinned (computed apart, in Python): servers of two builds must agree on it.
        assert_eq!(a, "804861d6-7881-8238-addb-75fa47341014", "the same on every server");
        assert_ne!(a, port_id("5f1f1bd9-1b44-4a8c-9d3d-0c1a5f3b6d12"));
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{a}");
        assert_eq!(&a[14..15], "8", "version 8: {a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "RFC 4122 variant: {a}");
        assert_eq!(device_id("n1"), "dhcp-n1");
    }
}

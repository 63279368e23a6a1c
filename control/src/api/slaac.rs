//! IPv6 auto-address subnets, as Neutron's IPAM keeps them: a subnet whose `ipv6_address_mode` or
//! `ipv6_ra_mode` is `slaac` or `dhcpv6-stateless` (`ipv6_utils.is_auto_address_subnet`) gives each
//! port the address the port computes itself from the router advertisement: the subnet's /64 prefix and
//! the EUI-64 interface identifier of the port's MAC (`netutils.get_ipv6_addr_by_EUI64`: the MAC with
//! its universal/local bit flipped, `ff:fe` in its middle).
//!
//! | rule | Neutron |
//! |---|---|
//! | only a /64 may be auto-address; the modes need IPv6, DHCP on, and agree when both are set | `db_base_plugin_v2._validate_subnet`, `_validate_ipv6_attributes`, `_validate_eui64_applicable` |
//! | every port but a router's gets its address on every auto-address subnet of its network, asked or not; an explicit other address there is a 400 | `ipam_pluggable_backend._get_auto_address_ips`, `_test_fixed_ips_for_port` (in `fixed_ips.rs`) |
//! | a new auto-address subnet gives its address to the ports already on the network | `add_auto_addrs_on_network_ports` ([`add_to_network_ports`]) |
//! | deleting an auto-address subnet takes its addresses from the ports (no `SubnetInUse`) | `_remove_subnet_ip_allocations_from_ports` (in `subnets.rs`) |
//!
//! The address is taken in IPAM (`ipam.<subnet>/<address>`) like any other, so it is never given twice.
//!
//! ```text
//! 2001:db8::/64 + fa:16:3e:12:34:56 → 2001:db8::f816:3eff:fe12:3456
//! ```

use std::net::{IpAddr, Ipv6Addr};

use super::crud::to_json;
use super::error::{ApiError, ApiResult};
use super::fixed_ips::ROUTER_INTERFACE_OWNERS_SNAT;
use super::ipam;
use super::ports::edit_port;
use super::subnets::stored_cidr;
use crate::cidr::Cidr;
use crate::db::Db;
use crate::model::{FixedIp, Ipv6Mode, Port, Store, Subnet};

/// The address modes that make a subnet auto-address.
const AUTO: [Ipv6Mode; 2] = [Ipv6Mode::Slaac, Ipv6Mode::Dhcpv6Stateless];

/// True if the subnet's ports compute their own addresses (SLAAC, DHCPv6-stateless).
pub(super) fn is_auto_address(s: &Subnet) -> bool {
    [s.ipv6_address_mode, s.ipv6_ra_mode].iter().flatten().any(|m| AUTO.contains(m))
}

/// The EUI-64 address of `mac` on the IPv6 prefix `cidr` (its first 64 bits); `None` for an IPv4
/// prefix or a MAC that does not parse.
pub fn eui64(cidr: &Cidr, mac: &str) -> Option<Ipv6Addr> {
    let m = pipelines::wire::Mac::parse(&mac.to_lowercase())?.0;
    if !cidr.is_v6() {
        return None;
    }
    let iid = u64::from_be_bytes([m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]);
    let prefix = cidr.base() & !(u64::MAX as u128);
    Some(Ipv6Addr::from(prefix | iid as u128))
}

/// The address a port with `mac` has on the auto-address subnet `s`.
pub(super) fn address_on(s: &Subnet, mac: &str) -> ApiResult<IpAddr> {
    let cidr = stored_cidr(s)?;
    eui64(&cidr, mac)
        .map(IpAddr::V6)
        .ok_or_else(|| ApiError::internal(format!("no EUI-64 address of {mac} on subnet {} ({})", s.id, s.cidr)))
}

/// Neutron's refusal of an explicit address on an auto-address subnet (`AllocationOnAutoAddressSubnet`,
/// an `InvalidInput`).
pub(super) fn refused(ip: IpAddr, s: &Subnet) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "AllocationOnAutoAddressSubnet",
        format!(
            "IPv6 address {ip} cannot be directly assigned to a port on subnet {} as the subnet is configured for automatic addresses",
            s.id
        ),
    )
}

/// A mode as the API writes it (`slaac`, `dhcpv6-stateless`, …).
fn mode_name(m: Ipv6Mode) -> String {
    to_json(&m).as_str().unwrap_or_default().to_owned()
}

/// A new subnet's IPv6 modes, checked as Neutron does: none on IPv4; none without DHCP; the same when
/// both are set; a /64 when they make it auto-address (400 `InvalidInput` otherwise).
pub(super) fn check_modes(s: &Subnet, cidr: &Cidr) -> ApiResult<()> {
    let (ra, address) = (s.ipv6_ra_mode, s.ipv6_address_mode);
    if s.ip_version == 4 {
        if ra.is_some() {
            return Err(ApiError::invalid_input("ipv6_ra_mode is not valid when ip_version is 4"));
        }
        if address.is_some() {
            return Err(ApiError::invalid_input("ipv6_address_mode is not valid when ip_version is 4"));
        }
        return Ok(());
    }
    if (ra.is_some() || address.is_some()) && !s.enable_dhcp {
        return Err(ApiError::invalid_input(
            "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False",
        ));
    }
    if let (Some(r), Some(a)) = (ra, address) {
        if r != a {
            return Err(ApiError::invalid_input(format_args!(
                "ipv6_ra_mode set to '{}' with ipv6_address_mode set to '{}' is not valid. If both attributes are set, they must be the same value",
                mode_name(r),
                mode_name(a)
            )));
        }
    }
    if is_auto_address(s) && cidr.prefix_len() != 64 {
        return Err(ApiError::invalid_input(format_args!(
            "Invalid CIDR {} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64",
            s.cidr
        )));
    }
    Ok(())
}

/// An update may not turn DHCP off on a subnet with IPv6 modes (`_validate_ipv6_update_dhcp`).
pub(super) fn check_dhcp_change(cur: &Subnet, next: &Subnet) -> ApiResult<()> {
    if !next.enable_dhcp && (cur.ipv6_ra_mode.is_some() || cur.ipv6_address_mode.is_some()) {
        return Err(ApiError::invalid_input("Cannot disable enable_dhcp with ipv6 attributes set"));
    }
    Ok(())
}

/// A new auto-address subnet's addresses for the ports already on its network (not a router's), as
/// Neutron's `add_auto_addrs_on_network_ports`: each taken in IPAM, then written to its port (again on
/// the fresh port when another writer came first). A port deleted meanwhile, given the address by a
/// concurrent request, or with a MAC that makes none (a bad row), is passed over.
pub(super) fn add_to_network_ports(db: &dyn Db, s: &Subnet) -> ApiResult<()> {
    let (ports, _) = Store::new(db).list::<Port>()?;
    let on_net = ports
        .into_iter()
        .filter(|p| p.network_id == s.network_id && !ROUTER_INTERFACE_OWNERS_SNAT.contains(&p.device_owner.as_str()));
    for p in on_net {
        if p.fixed_ips.iter().any(|f| f.subnet_id == s.id) {
            continue;
        }
        let ip = match address_on(s, &p.mac_address) {
            Ok(ip) => ip.to_string(),
            Err(e) => {
                tracing::warn!(port = %p.id, "no auto address for the port: {e:?}");
                continue;
            }
        };
        if !ipam::take(db, &s.id, &ip, &p.id)? {
            tracing::debug!(port = %p.id, %ip, "the port got its auto address in a concurrent request");
            continue;
        }
        let added = edit_port(db, &p.id, |q| {
            if q.mac_address != p.mac_address || q.fixed_ips.iter().any(|f| f.subnet_id == s.id) {
                return false;
            }
            q.fixed_ips.push(FixedIp { subnet_id: s.id.clone(), ip_address: ip.clone() });
            true
        });
        if !matches!(added, Ok(true)) {
            ipam::release(db, &s.id, &ip);
        }
        added?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64_addresses_are_neutrons() {
        let c = |s: &str| Cidr::parse_network(s).unwrap();
        // A Neutron MAC (fa:16:3e:…); 00:01:02:03:04:05 worked by hand (RFC 4291 appendix A: 0201:02ff:fe03:0405).
        assert_eq!(
            eui64(&c("2001:db8::/64"), "fa:16:3e:12:34:56").unwrap().to_string(),
            "2001:db8::f816:3eff:fe12:3456"
        );
        assert_eq!(eui64(&c("2001:db8::/64"), "00:01:02:03:04:05").unwrap().to_string(), "2001:db8::201:2ff:fe03:405");
        assert_eq!(
            eui64(&c("2001:db8:1:2::/64"), "FA:16:3E:00:00:01").unwrap().to_string(),
            "2001:db8:1:2:f816:3eff:fe00:1"
        );
        assert_eq!(
            eui64(&c("2001:db8::/64"), "02:00:00:00:00:01").unwrap().to_string(),
            "2001:db8::ff:fe00:1",
            "U/L set: cleared"
        );
        assert_eq!(eui64(&c("10.0.0.0/24"), "fa:16:3e:12:34:56"), None);
        assert_eq!(eui64(&c("2001:db8::/64"), "not-a-mac"), None);
    }

    #[test]
    fn auto_address_is_either_mode() {
        let mut s: Subnet = serde_json::from_value(
            serde_json::json!({"id": "s", "network_id": "n", "ip_version": 6, "cidr": "2001:db8::/64"}),
        )
        .unwrap();
        assert!(!is_auto_address(&s));
        s.ipv6_ra_mode = Some(Ipv6Mode::Slaac);
        assert!(is_auto_address(&s));
        s.ipv6_ra_mode = None;
        s.ipv6_address_mode = Some(Ipv6Mode::Dhcpv6Stateless);
        assert!(is_auto_address(&s));
        s.ipv6_address_mode = Some(Ipv6Mode::Dhcpv6Stateful);
        assert!(!is_auto_address(&s));
    }
}

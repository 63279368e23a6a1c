//! A local port's security groups, compiled for the pipeline (`pipelines::tables::PortSg`), by Neutron's
//! rules:
//! - a port with port security off has no groups: nothing is filtered (`None`);
//! - a port with port security on is allowed what its groups' rules allow, a union per direction; with
//!   no group, nothing (but what the pipeline always allows: DHCP, neighbour discovery);
//! - a rule's `remote_group_id` stands for the addresses of the group's members: every port the node
//!   holds with the group among its `security_groups`, its fixed IPs and its allowed address pairs (of
//!   the rule's ethertype). The node holds every port that can send to its own (its networks and one
//!   routed hop: `compile::index`), so a member it does not hold could not reach the port anyway;
//! - `icmp` in an IPv6 rule is ICMPv6, as Neutron's drivers read it; an ICMP rule's port range is its type
//!   (`port_range_min`) and code (`port_range_max`);
//! - the port's groups are stateless only if all are (Neutron refuses a port with both kinds; if the DB
//!   holds one anyway, the stateful reading allows replies rather than break connections);
//! - a trusted port (`device_owner` `network:*`: DHCP, router) has no groups, whatever the DB says.
//!
//! Which ports a change makes dirty ([`ports_of_groups`], [`referring_groups`]) is the controller's
//! (`controller/apply.rs`); what a port's groups compile to is here, once.

use std::collections::HashSet;
use std::sync::Arc;

use pipelines::acl::{has_ports, Acl, Rule, L4};
use pipelines::tables::{IpNet, PortSg};

use super::Model;
use crate::cidr::Cidr;
use crate::model::{ip_protocol_number, Direction, EtherType, Port, SecurityGroupRule};

/// A rule's protocol for one of the given ethertype (`model::ip_protocol_number`: a name of Neutron's
/// `IP_PROTOCOL_MAP` or a number); `Some(None)`: any protocol (none given, `any`, or 0, which Neutron's
/// drivers read as any: `ip`, `hopopt`); `None`: not a protocol. `icmp` (1) in an IPv6 rule is ICMPv6.
pub(crate) fn protocol(name: Option<&str>, v6: bool) -> Option<Option<u8>> {
    let name = match name.map(str::to_ascii_lowercase) {
        None => return Some(None),
        Some(n) if n.is_empty() || n == "any" => return Some(None),
        Some(n) => n,
    };
    Some(match ip_protocol_number(&name)? {
        0 => None,
        1 if v6 => Some(58),
        n => Some(n),
    })
}

/// The addresses of group `g`'s members the node holds (`holds`), of one family.
fn members(m: &Model, holds: &dyn Fn(&Port) -> bool, g: &str, v6: bool) -> Vec<IpNet> {
    let mut ips = Vec::new();
    for p in m.ports.values().filter(|p| p.security_groups.iter().any(|x| x == g) && holds(p)) {
        let fixed = p.fixed_ips.iter().filter_map(|f| Cidr::parse(&f.ip_address));
        let pairs = p.allowed_address_pairs.iter().filter_map(|a| Cidr::parse(&a.ip_address));
        ips.extend(fixed.chain(pairs).filter(|c| c.is_v6() == v6).map(IpNet::from));
    }
    ips
}

/// One Neutron rule for the compiler; `None` for a rule that cannot match (a protocol that is none).
fn rule(m: &Model, holds: &dyn Fn(&Port) -> bool, r: &SecurityGroupRule) -> Option<Rule> {
    let v6 = r.ethertype == EtherType::IPv6;
    let proto = protocol(r.protocol.as_deref(), v6)?;
    let l4 = match (proto, r.port_range_min, r.port_range_max) {
        (Some(1 | 58), Some(ty), code) => L4::Icmp { ty: ty.min(255) as u8, code: code.map(|c| c.min(255) as u8) },
        (Some(p), lo, hi) if has_ports(p) && (lo.is_some() || hi.is_some()) => {
            let lo = lo.unwrap_or(1);
            L4::Ports(lo, hi.unwrap_or(lo).max(lo))
        }
        _ => L4::Any,
    };
    let remote = if let Some(prefix) = &r.remote_ip_prefix {
        // A prefix of the other family matches nothing (the API refuses it).
        // As Neutron stores it (host bits allowed: `10.1.2.3/16` is `10.1.0.0/16`, its `normalized_cidr`).
        Some(Cidr::parse(prefix).filter(|c| c.is_v6() == v6).map(|c| IpNet::from(c).network()).into_iter().collect())
    } else {
        r.remote_group_id.as_ref().map(|g| members(m, holds, g, v6))
    };
    Some(Rule { v6, proto, l4, remote })
}

/// Port `p`'s groups, compiled; `None` when nothing is filtered (`security`: its port security). `holds`
/// says which ports of `m` the node holds (a full compilation's model has every port of the cloud).
pub(crate) fn port_sg(m: &Model, holds: &dyn Fn(&Port) -> bool, p: &Port, security: bool) -> Option<Arc<PortSg>> {
    if !security || p.device_owner.starts_with("network:") {
        return None;
    }
    let groups: HashSet<&str> = p.security_groups.iter().map(String::as_str).collect();
    let (mut ingress, mut egress) = (Vec::new(), Vec::new());
    let mut rules: Vec<&SecurityGroupRule> =
        m.security_group_rules.values().filter(|r| groups.contains(r.security_group_id.as_str())).collect();
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    for r in rules {
        let Some(c) = rule(m, holds, r) else { continue };
        match r.direction {
            Direction::Ingress => ingress.push(c),
            Direction::Egress => egress.push(c),
        }
    }
    let stateful = groups.is_empty() || groups.iter().any(|g| m.security_groups.get(*g).is_none_or(|g| g.stateful));
    Some(Arc::new(PortSg::new(stateful, Acl::compile(&ingress), Acl::compile(&egress))))
}

/// The ports bound to `chassis` with one of `groups`: what a change of those groups' rules makes dirty.
pub(crate) fn ports_of_groups<'m>(
    m: &'m Model,
    chassis: &'m str,
    groups: &'m HashSet<String>,
) -> impl Iterator<Item = &'m String> + 'm {
    m.ports
        .values()
        .filter(move |p| p.host_id == chassis && p.security_groups.iter().any(|g| groups.contains(g)))
        .map(|p| &p.id)
}

/// The groups with a rule whose remote group is one of `groups`: whose members changing (a port joining
/// or leaving, or its addresses) changes those groups' compiled rules.
pub(crate) fn referring_groups(m: &Model, groups: &HashSet<String>) -> HashSet<String> {
    m.security_group_rules
        .values()
        .filter(|r| r.remote_group_id.as_ref().is_some_and(|g| groups.contains(g)))
        .map(|r| r.security_group_id.clone())
        .collect()
}

//! One change from the watch ([`Controller::apply`]): what the node holds of it (a change to what it does
//! not hold is dropped on arrival), which fragments it makes dirty, which bindings the node must hear of,
//! and the network set after it (networks entering it are fetched, those leaving it forgotten).

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use super::sync::decode;
use super::Controller;
use crate::compile::{holds, is_router_port, plugged_here, ports_of_groups, referring_groups};
use crate::db::{Db, DbError, Event};
use crate::model::{
    Chassis, FloatingIp, Network, Object, Port, Router, SecurityGroup, SecurityGroupRule, Subnet, DHCP_OWNER,
    ROUTER_INTERFACE,
};

/// What the node's plumbing depends on: a change of anything else of a bound port is not re-sent.
fn plumbing_changed(old: &Port, new: &Port) -> bool {
    old.profile != new.profile || old.admin_state_up != new.admin_state_up || old.network_id != new.network_id
}

/// True if what a port adds to its groups' member addresses changed: its groups, its fixed IPs, its
/// allowed address pairs.
fn membership_changed(old: &Port, new: &Port) -> bool {
    old.security_groups != new.security_groups
        || old.fixed_ips != new.fixed_ips
        || old.allowed_address_pairs != new.allowed_address_pairs
}

/// True if `old` and `new` differ only in what the nodes write back (`status`, `binding:vif_*`), the
/// revision or the standard attributes (description, tags, times): nothing any node compiles.
fn only_status_changed(old: &Port, new: &Port) -> bool {
    let blank = |p: &Port| Port {
        standard: Default::default(),
        status: String::new(),
        vif_type: String::new(),
        vif_details: Default::default(),
        revision_number: 0,
        ..p.clone()
    };
    blank(old) == blank(new)
}

impl<D: Db + ?Sized> Controller<'_, D> {
    /// Applies one change; true if it may change this node's tables or plumbing.
    pub fn apply(&mut self, ev: &Event) -> bool {
        let (table, key) = match ev {
            Event::Put(e) => (e.table.as_str(), e.key.as_str()),
            Event::Delete { table, key, .. } => (table.as_str(), key.as_str()),
        };
        // Decode first: bad DB contents are logged and the object left as it was; never a crash.
        fn put<T: Object + DeserializeOwned>(ev: &Event) -> Result<Option<T>, DbError> {
            match ev {
                Event::Put(e) => decode(e).map(Some),
                Event::Delete { .. } => Ok(None),
            }
        }
        // An object held at this revision or a newer one (a fetch listed it after this event): stale.
        let held = match table {
            "network" => self.model.networks.get(key).map(Object::revision),
            "subnet" => self.model.subnets.get(key).map(Object::revision),
            "port" => self.model.ports.get(key).map(Object::revision),
            "router" => self.model.routers.get(key).map(Object::revision),
            "chassis" => self.model.chassis.get(key).map(Object::revision),
            "securitygroup" => self.model.security_groups.get(key).map(Object::revision),
            "securitygrouprule" => self.model.security_group_rules.get(key).map(Object::revision),
            "floatingip" => self.model.floating_ips.get(key).map(Object::revision),
            _ => return false,
        };
        if held.is_some_and(|r| r >= ev.revision()) {
            return false;
        }
        // What this node does not hold is dropped on arrival (a held object that leaves the node's view
        // is removed, as if deleted).
        let result = match table {
            "network" => put::<Network>(ev).map(|n| self.network(key, n.filter(|_| self.needed.contains(key)))),
            "subnet" => put::<Subnet>(ev).map(|s| {
                let s = s.filter(|s| self.needed.contains(&s.network_id));
                self.subnet(key, s)
            }),
            "port" => put::<Port>(ev).map(|p| {
                let p = p.filter(|p| self.holds_port(p));
                self.port(key, p)
            }),
            "router" => put::<Router>(ev).map(|r| self.router(key, r.filter(|_| self.holds_router(key)))),
            "chassis" => put::<Chassis>(ev).map(|c| self.chassis(key, c)),
            "securitygroup" => put::<SecurityGroup>(ev).map(|g| self.security_group(key, g)),
            "securitygrouprule" => put::<SecurityGroupRule>(ev).map(|r| self.security_group_rule(key, r)),
            "floatingip" => put::<FloatingIp>(ev).map(|f| self.floating_ip(key, f)),
            _ => return false,
        };
        if let Err(e) = result {
            tracing::error!("ignoring an undecodable {table}/{key}: {e}");
            return false;
        }
        self.revision = self.revision.max(ev.revision());
        self.renew_needed();
        // Only networks this node needs (or had) and routers with an interface on one may change its tables.
        let (needed, fragments, index, ports) = (&self.needed, &self.fragments, &self.index, &self.model.ports);
        self.dirty_nets.retain(|n| needed.contains(n) || fragments.has_network(n));
        self.dirty_ports
            .retain(|p| fragments.has_port(p) || ports.get(p).is_some_and(|p| needed.contains(&p.network_id)));
        self.dirty_routers.retain(|r| fragments.has_router(r) || index.networks_of(r).any(|n| needed.contains(n)));
        !self.dirty_nets.is_empty()
            || !self.dirty_ports.is_empty()
            || !self.dirty_routers.is_empty()
            || !self.bindings.is_empty()
    }

    fn network(&mut self, id: &str, n: Option<Network>) {
        match n {
            Some(n) => self.model.networks.insert(id.to_owned(), n),
            None => self.model.networks.remove(id),
        };
        self.dirty_nets.insert(id.to_owned());
        self.routers_on(id);
    }

    fn subnet(&mut self, id: &str, s: Option<Subnet>) {
        let old = self.model.subnets.remove(id).map(|s| s.network_id);
        let new = s.as_ref().map(|s| s.network_id.clone());
        if let Some(s) = s {
            self.model.subnets.insert(id.to_owned(), s);
        }
        // Subnets shape router interfaces (their prefix: `compile::fragment`'s `iface_ip`), the routers on
        // their own network, and what the slow path serves on its ports (`compile::services`): the
        // network, whose ports are rebuilt.
        for n in [old, new].into_iter().flatten() {
            self.routers_on(&n);
            self.dirty_nets.insert(n);
        }
    }

    pub(super) fn port(&mut self, id: &str, p: Option<Port>) {
        if let (Some(old), Some(new)) = (self.model.ports.get(id), &p) {
            if only_status_changed(old, new) {
                self.model.ports.insert(id.to_owned(), p.expect("checked"));
                return;
            }
        }
        let old = self.model.ports.remove(id);
        let here = |p: &Option<Port>, chassis: &str| p.as_ref().is_some_and(|p| plugged_here(p, chassis));
        let (was, is) = (here(&old, &self.chassis), here(&p, &self.chassis));
        if (is && (!was || old.as_ref().zip(p.as_ref()).is_some_and(|(o, n)| plumbing_changed(o, n)))) || (was && !is) {
            // The first change since the node was told says what the node has.
            self.bindings.entry(id.to_owned()).or_insert(was);
        }
        self.dirty_ports.insert(id.to_owned());
        for v in [&old, &p].into_iter().flatten() {
            if is_router_port(v) {
                self.dirty_routers.insert(v.device_id.clone());
            }
            // The DHCP port and the router interfaces shape what the slow path serves on every port of
            // their network (`compile::services`).
            if v.device_owner == ROUTER_INTERFACE || v.device_owner == DHCP_OWNER {
                self.dirty_nets.insert(v.network_id.clone());
            }
        }
        if let Some(o) = &old {
            self.index.port(o, &self.chassis, false);
        }
        // A member of a group that another's rules name as their remote group: those rules change.
        let groups: HashSet<String> = match (&old, &p) {
            (Some(o), Some(n)) if !membership_changed(o, n) => HashSet::new(),
            _ => [&old, &p].into_iter().flatten().flat_map(|v| v.security_groups.iter().cloned()).collect(),
        };
        if let Some(p) = p {
            self.index.port(&p, &self.chassis, true);
            self.model.ports.insert(id.to_owned(), p);
        }
        if !groups.is_empty() {
            let referring = referring_groups(&self.model, &groups);
            self.groups_changed(&referring);
        }
    }

    fn security_group(&mut self, id: &str, g: Option<SecurityGroup>) {
        match g {
            Some(g) => self.model.security_groups.insert(id.to_owned(), g),
            None => self.model.security_groups.remove(id),
        };
        self.groups_changed(&HashSet::from([id.to_owned()]));
    }

    fn security_group_rule(&mut self, id: &str, r: Option<SecurityGroupRule>) {
        let old = self.model.security_group_rules.remove(id);
        let groups: HashSet<String> = [&old, &r].into_iter().flatten().map(|r| r.security_group_id.clone()).collect();
        if let Some(r) = r {
            self.model.security_group_rules.insert(id.to_owned(), r);
        }
        self.groups_changed(&groups);
    }

    /// The rules of `groups` changed: the ports bound here with one of them are rebuilt (and only those).
    fn groups_changed(&mut self, groups: &HashSet<String>) {
        if groups.is_empty() {
            return;
        }
        let ports: Vec<String> = ports_of_groups(&self.model, &self.chassis, groups).cloned().collect();
        self.dirty_ports.extend(ports);
    }

    fn router(&mut self, id: &str, r: Option<Router>) {
        match r {
            Some(r) => self.model.routers.insert(id.to_owned(), r),
            None => self.model.routers.remove(id),
        };
        self.dirty_routers.insert(id.to_owned());
    }

    /// A floating IP came, changed or went: the routers that carried it and carry it now are rebuilt.
    /// Every floating IP is held: they are few, and one may come to name a router of this node at any
    /// association.
    fn floating_ip(&mut self, id: &str, f: Option<FloatingIp>) {
        let old = self.model.floating_ips.remove(id);
        for r in [&old, &f].into_iter().flatten().filter_map(|f| f.router_id.clone()) {
            self.dirty_routers.insert(r);
        }
        if let Some(f) = f {
            self.model.floating_ips.insert(id.to_owned(), f);
        }
    }

    /// A chassis came, changed or went: the ports bound to it are rebuilt (and with them the tunnels of
    /// their networks). Every chassis is held: there are as many as nodes, and a port bound to one may
    /// come at any time.
    fn chassis(&mut self, id: &str, c: Option<Chassis>) {
        match c {
            Some(c) => self.model.chassis.insert(id.to_owned(), c),
            None => self.model.chassis.remove(id),
        };
        let on: Vec<String> = self.model.ports.values().filter(|p| p.host_id == id).map(|p| p.id.clone()).collect();
        self.dirty_ports.extend(on);
    }

    pub(super) fn routers_on(&mut self, net: &str) {
        let rs: Vec<String> = self.index.routers_on(net).cloned().collect();
        self.dirty_routers.extend(rs);
    }

    /// The network set after a change: networks that enter or leave it are dirty, and their routers; the
    /// ones entering are fetched before the next tables, the ones leaving forgotten now.
    pub(super) fn renew_needed(&mut self) {
        let needed = self.index.needed();
        if needed == self.needed {
            return;
        }
        let changed: Vec<String> = needed.symmetric_difference(&self.needed).cloned().collect();
        for n in &changed {
            self.dirty_nets.insert(n.clone());
            self.routers_on(n);
            if needed.contains(n) {
                self.fetch_nets.insert(n.clone());
            }
        }
        let shrunk = self.needed.iter().any(|n| !needed.contains(n));
        self.needed = needed;
        if shrunk {
            self.forget_unneeded();
        }
    }

    /// Whether this node holds a port: bound here, a router interface, or in a network it needs.
    fn holds_port(&self, p: &Port) -> bool {
        holds(p, &self.chassis, &self.needed)
    }

    pub(super) fn holds_router(&self, id: &str) -> bool {
        self.index.networks_of(id).any(|n| self.needed.contains(n))
    }

    /// Drops what this node does not need from its model (and the ports from the indexes).
    pub(super) fn forget_unneeded(&mut self) {
        let needed = &self.needed;
        self.model.networks.retain(|id, _| needed.contains(id));
        self.model.subnets.retain(|_, s| needed.contains(&s.network_id));
        let gone: Vec<Port> = self.model.ports.values().filter(|p| !holds(p, &self.chassis, needed)).cloned().collect();
        let groups: HashSet<String> = gone.iter().flat_map(|p| p.security_groups.iter().cloned()).collect();
        for p in gone {
            self.index.port(&p, &self.chassis, false);
            self.model.ports.remove(&p.id);
        }
        // They were members of their groups here.
        let referring = referring_groups(&self.model, &groups);
        self.groups_changed(&referring);
        let keep: HashSet<String> = self.model.routers.keys().filter(|r| self.holds_router(r)).cloned().collect();
        self.model.routers.retain(|id, _| keep.contains(id));
    }
}

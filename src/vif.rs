//! VIF types: how a port bound to this node is plugged into the dataplane, named and described to
//! Neutron, as Neutron's agents do it. A TAP device `tap` + the first 11 characters of the port id, or a
//! vhost-user socket `vhu` + the same in the node's vhost directory (the switch is the server, QEMU the
//! client); `binding:vif_type` and `binding:vif_details` are written from here. Pure: no thread, no state.

use std::path::PathBuf;

use control::model::Port;

/// How a port is plugged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vif {
    Tap,
    VhostUser,
}

impl Vif {
    /// Neutron's name: `binding:vif_type`, the `vif_type` of a `binding:profile`, `--vif-type`.
    pub fn name(self) -> &'static str {
        match self {
            Vif::Tap => "tap",
            Vif::VhostUser => "vhostuser",
        }
    }

    pub fn from_name(s: &str) -> Option<Vif> {
        [Vif::Tap, Vif::VhostUser].into_iter().find(|v| v.name() == s)
    }
}

/// The node's VIF settings: the type of a port whose `binding:profile` asks for none, and where
/// vhost-user sockets are made.
#[derive(Debug, Clone)]
pub struct Vifs {
    pub default: Vif,
    pub vhost_dir: PathBuf,
}

impl Vifs {
    /// The VIF `p` asks for in its `binding:profile` (`{"vif_type": "vhostuser"}`), or the node's default.
    pub fn wanted(&self, p: &Port) -> Vif {
        p.profile.get("vif_type").and_then(|v| v.as_str()).and_then(Vif::from_name).unwrap_or(self.default)
    }

    /// The port's device, as DPDK devargs.
    pub fn devargs(&self, p: &Port, vif: Vif, workers: usize) -> String {
        let s = short(&p.id);
        match vif {
            Vif::Tap => format!("net_tap_{s},iface=tap{s}"),
            // A queue pair per worker: every worker sends to the VM on a queue of its own.
            Vif::VhostUser => format!("net_vhost_{s},iface={},queues={workers}", self.socket(p).display()),
        }
    }

    /// The port's vhost-user socket.
    pub fn socket(&self, p: &Port) -> PathBuf {
        self.vhost_dir.join(format!("vhu{}", short(&p.id)))
    }

    /// `binding:vif_details`, as Neutron's agents write them.
    pub fn details(&self, p: &Port, vif: Vif) -> serde_json::Map<String, serde_json::Value> {
        let mut d = serde_json::Map::new();
        d.insert("port_filter".into(), true.into());
        match vif {
            Vif::Tap => d.insert("tap_name".into(), format!("tap{}", short(&p.id)).into()),
            Vif::VhostUser => {
                // Neutron's mode is the VM's: the switch is the server, QEMU connects as the client.
                d.insert("vhostuser_mode".into(), "client".into());
                d.insert("vhostuser_socket".into(), self.socket(p).display().to_string().into())
            }
        };
        d
    }
}

/// A port's device names: the first 11 characters of its id, as Neutron's agents name them.
pub fn short(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(11).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c1e-77d1-4c2b-9d7e-0123456789ab";

    #[test]
    fn device_names_take_eleven_characters_of_the_port_id() {
        assert_eq!(short(ID), "3f2a9c1e-77");
        assert_eq!(format!("tap{}", short("3f2a9c1e-77d1-4c2b")).len(), 14, "fits IFNAMSIZ");
    }

    #[test]
    fn the_profile_chooses_the_vif_else_the_node() {
        let vifs = Vifs { default: Vif::Tap, vhost_dir: "/run/df".into() };
        let mut p = Port::new(ID.into(), "net".into());
        assert_eq!(vifs.wanted(&p), Vif::Tap);
        p.profile.insert("vif_type".into(), "vhostuser".into());
        assert_eq!(vifs.wanted(&p), Vif::VhostUser);
        assert_eq!(vifs.devargs(&p, Vif::VhostUser, 2), "net_vhost_3f2a9c1e-77,iface=/run/df/vhu3f2a9c1e-77,queues=2");
        assert_eq!(vifs.devargs(&p, Vif::Tap, 2), "net_tap_3f2a9c1e-77,iface=tap3f2a9c1e-77");
        let d = vifs.details(&p, Vif::VhostUser);
        assert_eq!((d["vhostuser_mode"].as_str(), d["port_filter"].as_bool()), (Some("client"), Some(true)));
        p.profile.insert("vif_type".into(), "macvtap".into());
        assert_eq!(vifs.wanted(&p), Vif::Tap, "a type this node does not plug: its default");
    }
}

//! Networks: `/v2.0/networks`. A new network is `ACTIVE` at once (there is no agent to wait for); one
//! with ports or floating IPs on it is not deleted (`NetworkInUse`), and its subnets go with it.

use super::crud::{new_object, Attrs, Resource};
use super::error::{ApiError, ApiResult};
use crate::db::Db;
use crate::model::{FloatingIp, Network, Port, Store, Subnet};

impl Resource for Network {
    const ONE: &'static str = "network";
    const MANY: &'static str = "networks";
    const CREATE: &'static [&'static str] = &[
        "name",
        "description",
        "project_id",
        "tenant_id",
        "admin_state_up",
        "mtu",
        "port_security_enabled",
        "shared",
        "router:external",
        "provider:network_type",
        "provider:segmentation_id",
        "provider:physical_network",
        "availability_zone_hints",
        "dns_domain",
        "is_default",
        "qos_policy_id",
    ];
    const CREATE_IGNORED: &'static [&'static str] =
        &["availability_zone_hints", "dns_domain", "is_default", "qos_policy_id"];
    const UPDATE: &'static [&'static str] =
        &["name", "description", "admin_state_up", "mtu", "port_security_enabled", "shared", "router:external"];

    type Draft = Network;

    fn draft(attrs: Attrs) -> ApiResult<Network> {
        new_object(attrs, Some("ACTIVE"))
    }

    fn insert(db: &dyn Db, n: Network) -> ApiResult<Network> {
        Ok(Store::new(db).create(n)?)
    }

    fn before_delete(db: &dyn Db, n: &Network) -> ApiResult<()> {
        let s = Store::new(db);
        let id = &n.id;
        let (ports, _) = s.list::<Port>()?;
        let floating = s.list::<FloatingIp>()?.0.iter().any(|f| f.floating_network_id == *id);
        if floating || ports.iter().any(|p| p.network_id == *id) {
            return Err(ApiError::conflict(
                "NetworkInUse",
                format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network."),
            ));
        }
        for sub in &n.subnets {
            let _ = s.delete::<Subnet>(sub, None);
        }
        Ok(())
    }
}

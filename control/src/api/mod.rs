//! The Neutron API (northbound): `/v2.0/…` with Neutron's JSON bodies, status codes, `fields` and
//! filter query parameters, and its error body `{"NeutronError": {"type", "message", "detail"}}`, over
//! any [`Db`](crate::db::Db). The real OpenStack clients drive it with authentication off; a static
//! token ([`with_token`]) guards it beyond loopback; with Keystone ([`with_keystone`]) each request is a
//! project's, under Neutron's default policy.
//!
//! One file per resource, each holding its rules; the shape they share is written once in `crud`:
//!
//! | file | what |
//! |---|---|
//! | `networks.rs` | networks (`NetworkInUse`; subnets and DHCP ports go with their network) |
//! | `subnets.rs` | subnets: CIDR, gateway and pool checks, no overlap within a network |
//! | `ports.rs` | ports: MACs (`fa:16:3e:…`) and fixed IPs taken in the DB, the default security group |
//! | `fixed_ips.rs` | which addresses a port gets, Neutron's rules (default, asked for, kept on an update) |
//! | `slaac.rs` | IPv6 auto-address subnets (SLAAC, DHCPv6-stateless): EUI-64 addresses, their checks |
//! | `extra_dhcp_opts.rs` | ports' `extra_dhcp_opts`: Neutron's checks, its merge on an update |
//! | `dhcp_port.rs` | each network's DHCP port, kept in step with its DHCP-enabled subnets |
//! | `routers.rs` | routers, `add_router_interface` / `remove_router_interface`, extra routes |
//! | `security_groups.rs` | security groups (shown with their rules), `stateful`, the default group |
//! | `security_group_rules.rs` | security group rules: Neutron's conversions and checks, `normalized_cidr` |
//! | `quotas.rs` | quotas: each project's limits, checked at every create (`OverQuota`) |
//! | `floating_ips.rs` | floating IPs: the address from the external network, the router that NATs it |
//! | `address_scopes.rs` | address scopes: pools of one IP version with prefixes apart |
//! | `subnetpools.rs` | subnet pools (`subnet_allocation`): subnets that take their CIDR from one |
//! | `ip_availability.rs` | each network's addresses in all and in use (`network-ip-availability`) |
//! | `agents.rs` | agents: each node's local controller, from its heartbeat |
//! | `tags.rs` | tags on every resource with standard attributes |
//! | `segments.rs` | network segments (VXLAN, Geneve, GRE, VLAN, flat): checked or allocated cloud-wide, MTUs |
//! | `ipam.rs` | address and MAC allocation that never hands one out twice, even across API servers |
//! | `query.rs` | a list's filters (validated), `fields`, sorting and pagination |
//! | `policy.rs` | who may see and change what: Neutron's default policy |
//! | `keystone.rs` | Keystone token validation, cached |
//! | `crud.rs` | the generic list / show / create / update / delete handlers and the `Resource` trait |
//! | `server.rs` | every route, the version / resources / extensions documents, the token guard, [`serve_until`] |
//! | `error.rs` | [`ApiError`]: a status and Neutron's error body |
//!
//! Handlers run the (synchronous) DB calls on tokio's blocking pool.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use std::sync::Arc;
//!
//! let db = Arc::new(control::db::embedded::EmbeddedDb::open("/var/lib/dragonflow/db")?);
//! let stop = Arc::new(AtomicBool::new(false));
//! // Serves until `stop` is set; `Auth::Token(t)` requires `X-Auth-Token: t` on every request but `GET /`,
// `Auth::Keystone(url)` a Keystone token.
//! control::api::serve_until("127.0.0.1:9696", db, control::api::Settings::default(), control::api::Auth::Off, stop)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! and then, as `openstack network create net1` and `network show nope` ask:
//!
//! ```text
//! POST /v2.0/networks      {"network": {"name": "net1"}}
//!   201 {"network": {"id": "5f1f…", "name": "net1", "status": "ACTIVE", "mtu": 1450, "provider:network_type": "vxlan", "provider:segmentation_id": 1, …}}
//! GET  /v2.0/networks/nope
//!   404 {"NeutronError": {"type": "NetworkNotFound", "message": "network nope could not be found.", "detail": ""}}
//! ```

mod address_scopes;
mod agents;
mod crud;
pub mod dhcp_port;
mod error;
mod extra_dhcp_opts;
mod fixed_ips;
mod floating_ips;
mod ip_availability;
pub mod ipam;
mod keystone;
mod networks;
mod policy;
mod ports;
mod query;
mod quotas;
mod routers;
mod security_group_rules;
mod security_groups;
pub mod segments;
mod server;
pub mod slaac;
mod subnetpools;
mod subnets;
mod tags;

pub use crud::{Api, Settings};
pub use error::ApiError;
pub use keystone::{with_keystone, Keystone};
pub use policy::Caller;
pub use quotas::QuotaDefaults;
pub use server::{router, serve_until, with_token, Auth};

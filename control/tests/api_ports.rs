//! Three Neutron behaviours of ports, over HTTP on the real DB: a port's `extra_dhcp_opts` (checked,
//! shown, merged on an update), the DHCP port each network gets with its first DHCP-enabled subnet (kept
//! in step with the subnets, one per network even with several API servers), and the EUI-64 addresses of
//! IPv6 SLAAC / DHCPv6-stateless subnets (Neutron's values and rules, taken in IPAM).

mod api_server;

use std::sync::Arc;

use api_server::{serve, serve_db, Server};
use control::api::dhcp_port;
use control::api::slaac::eui64;
use control::api::Settings;
use control::cidr::Cidr;
use control::db::embedded::EmbeddedDb;
use control::db::Db;
use serde_json::{json, Value};
use test_support::error_type;

/// Creates a `one` (`network`, `subnet`, `port`) through `s`; its JSON (201 asserted).
fn create(s: &Server, one: &str, body: Value) -> Value {
    let (st, v) = s.post(&format!("/v2.0/{one}s"), json!({ one: body }));
    assert_eq!(st, 201, "{one} {body}: {v}");
    v[one].clone()
}

/// `PUT /v2.0/<one>s/<id>`: the status and the object (or the error).
fn put(s: &Server, one: &str, id: &str, body: Value) -> (u16, Value) {
    let (st, v) = s.put(&format!("/v2.0/{one}s/{id}"), json!({ one: body }));
    (st, if st == 200 { v[one].clone() } else { v })
}

/// An object's id.
fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// The network's `network:dhcp` ports.
fn dhcp_ports(s: &Server, net: &str) -> Vec<Value> {
    let (_, v) = s.get(&format!("/v2.0/ports?network_id={net}&device_owner=network:dhcp"));
    v["ports"].as_array().unwrap().clone()
}

/// The network's one DHCP port's fixed IPs as (subnet, address).
fn dhcp_ips(s: &Server, net: &str) -> Vec<(String, String)> {
    let ports = dhcp_ports(s, net);
    assert_eq!(ports.len(), 1, "one DHCP port: {ports:?}");
    ips(&ports[0])
}

/// A port's fixed IPs as (subnet, address).
fn ips(port: &Value) -> Vec<(String, String)> {
    let f = port["fixed_ips"].as_array().unwrap();
    f.iter().map(|f| (f["subnet_id"].as_str().unwrap().into(), f["ip_address"].as_str().unwrap().into())).collect()
}

/// The keys of a DB table, sorted.
fn keys(db: &EmbeddedDb, table: &str) -> Vec<String> {
    let mut k: Vec<String> = db.list(table).unwrap().0.into_iter().map(|e| e.key).collect();
    k.sort();
    k
}

/// The message of Neutron's error body.
fn message(v: &Value) -> &str {
    v["NeutronError"]["message"].as_str().unwrap_or_default()
}

/// `extra_dhcp_opts`: shown on every port (`[]` by default), checked as Neutron checks them (400
/// `InvalidInput`, its message), merged by (name, IP version) on an update, listed as an extension.
#[test]
fn extra_dhcp_opts_are_checked_shown_and_merged() {
    let s = serve("edo");
    let (_, v) = s.get("/v2.0/extensions");
    assert!(v["extensions"].as_array().unwrap().iter().any(|e| e["alias"] == "extra_dhcp_opt"), "{v}");
    let net = id(&create(&s, "network", json!({"name": "n"})));
    create(&s, "subnet", json!({"network_id": net, "cidr": "10.0.0.0/24"}));
    let plain = create(&s, "port", json!({"network_id": net}));
    assert_eq!(plain["extra_dhcp_opts"], json!([]), "{plain}");

    let opts = json!([
        {"opt_name": "mtu", "opt_value": "1400"},
        {"opt_name": "dns-server", "opt_value": "2001:db8::53", "ip_version": "6"},
        {"opt_name": "tftp-server", "opt_value": null},
        {"opt_name": "router", "opt_value": ""},
    ]);
    let p = create(&s, "port", json!({"network_id": net, "extra_dhcp_opts": opts}));
    let want = json!([
        {"opt_name": "mtu", "opt_value": "1400", "ip_version": 4},
        {"opt_name": "dns-server", "opt_value": "2001:db8::53", "ip_version": 6},
        {"opt_name": "router", "opt_value": "", "ip_version": 4},
    ]);
    assert_eq!(p["extra_dhcp_opts"], want, "a null value stores nothing; a blank router is allowed");
    let pid = id(&p);
    let (_, shown) = s.get(&format!("/v2.0/ports/{pid}"));
    assert_eq!(shown["port"]["extra_dhcp_opts"], want);

    // An update merges: null deletes (name and IP version), a value replaces or adds; the rest stays.
    let (st, p) = put(
        &s,
        "port",
        &pid,
        json!({"extra_dhcp_opts": [
            {"opt_name": "mtu", "opt_value": null},
            {"opt_name": "mtu", "opt_value": "1280", "ip_version": 6},
            {"opt_name": "dns-server", "opt_value": "2001:db8::54", "ip_version": 6},
            {"opt_name": "ntp-server", "opt_value": "10.0.0.9", "ip_version": 4},
        ]}),
    );
    assert_eq!(st, 200, "{p}");
    let want = json!([
        {"opt_name": "dns-server", "opt_value": "2001:db8::54", "ip_version": 6},
        {"opt_name": "router", "opt_value": "", "ip_version": 4},
        {"opt_name": "mtu", "opt_value": "1280", "ip_version": 6},
        {"opt_name": "ntp-server", "opt_value": "10.0.0.9", "ip_version": 4},
    ]);
    assert_eq!(p["extra_dhcp_opts"], want);
    let (_, p) = put(&s, "port", &pid, json!({"name": "renamed"}));
    assert_eq!(p["extra_dhcp_opts"], want, "an update without options keeps them");

    // Neutron's refusals, on a create and on an update.
    let no_spec =
        "Invalid input for operation: No valid key specs matched for: {'opt_name': 'mtu', 'opt_value': 1400}.";
    for (bad, text) in [
        (json!([{"opt_name": "mtu", "opt_value": 1400}]), no_spec),
        (json!([{"opt_name": "mtu", "opt_value": "1400", "ip_version": 5}]), "No valid key specs matched"),
        (json!([{"opt_name": "mtu", "opt_value": "1400", "ip_version": "four"}]), "'four' is not an integer."),
        (json!([{"opt_name": "", "opt_value": "1400"}]), "No valid key specs matched"),
        (json!([{"opt_name": "mtu"}]), "No valid key specs matched"),
        (json!({"opt_name": "mtu", "opt_value": "1400"}), "is not a list"),
    ] {
        let (st, v) = s.post("/v2.0/ports", json!({"port": {"network_id": net, "extra_dhcp_opts": bad}}));
        assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "create {bad}: {v}");
        assert!(message(&v).contains(text), "create {bad}: {v}");
        let (st, v) = put(&s, "port", &pid, json!({"extra_dhcp_opts": bad}));
        assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "update {bad}: {v}");
    }
    let (_, p) = s.get(&format!("/v2.0/ports/{pid}"));
    assert_eq!(p["port"]["extra_dhcp_opts"], want, "the refused updates changed nothing");
    let two = json!([{"opt_name": "mtu", "opt_value": "1400"}, {"opt_name": "mtu", "opt_value": "1500"}]);
    let (st, v) = s.post("/v2.0/ports", json!({"port": {"network_id": net, "extra_dhcp_opts": two}}));
    assert_eq!((st, error_type(&v)), (409, "NeutronDbObjectDuplicateEntry"), "{v}");
}

/// The DHCP port appears with the network's first DHCP-enabled subnet, takes an address on each (the
/// first free one of the pool, released when it goes), follows `enable_dhcp` both ways and subnet
/// deletion, goes when no such subnet is left and comes back with the next; a hand-deleted one comes back
/// at the next subnet change; it counts for neither `SubnetInUse` nor `NetworkInUse`, and goes with its
/// network, releasing its MAC and addresses.
#[test]
fn a_network_has_a_dhcp_port_while_it_has_a_dhcp_subnet() {
    let dir = std::env::temp_dir().join(format!("df-api-dhcp-port-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Arc::new(EmbeddedDb::open(&dir).unwrap());
    let s = serve_db(db.clone(), dir, Settings::default(), |r| r);
    let net = create(&s, "network", json!({"name": "n", "project_id": "p1"}));
    let nid = id(&net);
    assert!(dhcp_ports(&s, &nid).is_empty(), "no subnet, no DHCP port");
    let off = create(&s, "subnet", json!({"network_id": nid, "cidr": "10.1.0.0/24", "enable_dhcp": false}));
    assert!(dhcp_ports(&s, &nid).is_empty(), "no DHCP-enabled subnet, no DHCP port");

    let a = id(&create(&s, "subnet", json!({"network_id": nid, "cidr": "10.0.0.0/24"})));
    let ports = dhcp_ports(&s, &nid);
    assert_eq!(ports.len(), 1, "{ports:?}");
    let d = &ports[0];
    let did = id(d);
    assert_eq!(did, dhcp_port::port_id(&nid), "its id is made from the network's");
    assert_eq!(
        (&d["device_owner"], &d["device_id"], &d["status"], &d["admin_state_up"], &d["binding:host_id"]),
        (&json!("network:dhcp"), &json!(format!("dhcp-{nid}")), &json!("ACTIVE"), &json!(true), &json!("")),
        "{d}"
    );
    assert_eq!((&d["project_id"], &d["security_groups"]), (&json!("p1"), &json!([])), "{d}");
    let mac = d["mac_address"].as_str().unwrap().to_owned();
    assert!(mac.starts_with("fa:16:3e:"), "{d}");
    assert_eq!(ips(d), [(a.clone(), "10.0.0.2".to_owned())], "the first free address of the pool");
    let (_, all) = s.get("/v2.0/ports");
    assert!(all["ports"].as_array().unwrap().iter().any(|p| p["id"] == did), "listed like any port");

    // enable_dhcp on: an address there; off: that address removed and released.
    let oid = id(&off);
    let (st, v) = put(&s, "subnet", &oid, json!({"enable_dhcp": true}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(dhcp_ips(&s, &nid), [(a.clone(), "10.0.0.2".into()), (oid.clone(), "10.1.0.2".into())]);
    assert_eq!(dhcp_ports(&s, &nid)[0]["mac_address"], mac.as_str(), "the same port");
    put(&s, "subnet", &a, json!({"enable_dhcp": false}));
    assert_eq!(dhcp_ips(&s, &nid), [(oid.clone(), "10.1.0.2".into())]);
    assert_eq!(keys(&db, &format!("ipam.{a}")), Vec::<String>::new(), "10.0.0.2 released");
    let vm = create(&s, "port", json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.2"}]}));
    assert_eq!(ips(&vm)[0].1, "10.0.0.2");

    // A subnet with a VM's address is in use; with only the DHCP port's it is not: deleted, it takes the
    // port's address there, and the port with it when that was its last.
    let (st, v) = s.delete(&format!("/v2.0/subnets/{a}"));
    assert_eq!((st, error_type(&v)), (409, "SubnetInUse"));
    let vm2 = create(&s, "port", json!({"network_id": nid, "fixed_ips": [{"subnet_id": oid}]}));
    assert_eq!(ips(&vm2)[0].1, "10.1.0.3", "the DHCP port has .2");
    let (st, v) = s.delete(&format!("/v2.0/subnets/{oid}"));
    assert_eq!((st, error_type(&v)), (409, "SubnetInUse"), "vm2 is on it");
    assert_eq!(s.delete(&format!("/v2.0/ports/{}", id(&vm2))).0, 204);
    assert_eq!(s.delete(&format!("/v2.0/subnets/{oid}")).0, 204);
    assert!(dhcp_ports(&s, &nid).is_empty(), "its last DHCP subnet gone, the DHCP port goes");
    assert_eq!(keys(&db, &format!("mac.{nid}")), [vm["mac_address"].as_str().unwrap()], "its MAC released");

    // DHCP on again: the port comes back; deleted by hand, it comes back at the next subnet change.
    put(&s, "subnet", &a, json!({"enable_dhcp": true}));
    assert_eq!(dhcp_ips(&s, &nid), [(a.clone(), "10.0.0.3".into())], "10.0.0.2 is the VM's now");
    assert_eq!(s.delete(&format!("/v2.0/ports/{did}")).0, 204, "Neutron lets users delete it");
    assert!(dhcp_ports(&s, &nid).is_empty());
    put(&s, "subnet", &a, json!({"name": "renamed"}));
    assert_eq!(dhcp_ips(&s, &nid), [(a.clone(), "10.0.0.3".into())], "back");

    // A second network:dhcp port by hand is allowed (as in Neutron); it is an ordinary port.
    let extra = create(&s, "port", json!({"network_id": nid, "device_owner": "network:dhcp", "device_id": "mine"}));
    assert_ne!(id(&extra), did);
    assert_eq!(dhcp_ports(&s, &nid).len(), 2);

    // The network is in use by the VM, not by the DHCP ports; deleted, it takes them with it.
    let (st, v) = s.delete(&format!("/v2.0/networks/{nid}"));
    assert_eq!((st, error_type(&v)), (409, "NetworkInUse"), "{v}");
    assert_eq!(s.delete(&format!("/v2.0/ports/{}", id(&vm))).0, 204);
    assert_eq!(s.delete(&format!("/v2.0/networks/{nid}")).0, 204);
    let (_, all) = s.get("/v2.0/ports");
    assert_eq!(all["ports"], json!([]), "the DHCP ports went with their network");
    assert!(keys(&db, &format!("ipam.{a}")).is_empty() && keys(&db, &format!("mac.{nid}")).is_empty());
}

/// Two API servers on one DB, subnets made on many networks through both at once: one DHCP port per
/// network, with an address on each subnet, and nothing leaked by the creations that lost.
#[test]
fn two_api_servers_make_one_dhcp_port_per_network() {
    let dir = std::env::temp_dir().join(format!("df-api-dhcp-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Arc::new(EmbeddedDb::open(&dir).unwrap());
    let servers = Arc::new([
        serve_db(db.clone(), dir.clone(), Settings::default(), |r| r),
        serve_db(db.clone(), dir, Settings::default(), |r| r),
    ]);
    let nets: Vec<String> =
        (0..6).map(|i| id(&create(&servers[0], "network", json!({"name": format!("n{i}")})))).collect();
    let threads: Vec<_> = nets
        .iter()
        .flat_map(|n| (0..4).map(move |k| (n.clone(), k)))
        .map(|(n, k)| {
            let servers = servers.clone();
            std::thread::spawn(move || {
                create(&servers[k % 2], "subnet", json!({"network_id": n, "cidr": format!("10.{k}.0.0/24")}))
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for n in &nets {
        let ports = dhcp_ports(&servers[1], n);
        assert_eq!(ports.len(), 1, "network {n}: {ports:?}");
        let got = ips(&ports[0]);
        assert_eq!(got.len(), 4, "an address on each subnet: {got:?}");
        for (sub, ip) in got {
            assert_eq!(keys(&db, &format!("ipam.{sub}")), [ip], "only the DHCP port's address is taken");
        }
        assert_eq!(keys(&db, &format!("mac.{n}")), [ports[0]["mac_address"].as_str().unwrap()], "one MAC taken");
    }
}

/// IPv6 auto-address subnets: Neutron's EUI-64 addresses (prefix 2001:db8::/64 and fa:16:3e:12:34:56 give
/// 2001:db8::f816:3eff:fe12:3456), given to every port but a router's, asked or not, also to the ports
/// already there, taken in IPAM (a conflict is a 409), recomputed with a new MAC, kept on an update,
/// released on deletion; an explicit other address is a 400; the subnet's own rules (a /64, modes).
#[test]
fn slaac_subnets_give_neutrons_eui64_addresses() {
    let dir = std::env::temp_dir().join(format!("df-api-slaac-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Arc::new(EmbeddedDb::open(&dir).unwrap());
    let s = serve_db(db.clone(), dir, Settings::default(), |r| r);
    let nid = id(&create(&s, "network", json!({"name": "n"})));
    let v4 = id(&create(&s, "subnet", json!({"network_id": nid, "cidr": "10.0.0.0/24"})));
    let before = create(&s, "port", json!({"network_id": nid, "mac_address": "fa:16:3e:12:34:56"}));
    let (_, rif) = s.post("/v2.0/routers", json!({"router": {"name": "r"}}));
    let rid = id(&rif["router"]);
    s.put(&format!("/v2.0/routers/{rid}/add_router_interface"), json!({"subnet_id": v4}));

    // The subnet's own rules: a /64 only, the modes agreeing, DHCP on, IPv6 only.
    for (bad, text) in [
        (json!({"cidr": "2001:db8:1::/80", "ip_version": 6, "ipv6_address_mode": "slaac"}), "Invalid input for operation: Invalid CIDR 2001:db8:1::/80 for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64."),
        (json!({"cidr": "2001:db8:1::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}), "ipv6_ra_mode set to 'slaac' with ipv6_address_mode set to 'dhcpv6-stateful' is not valid."),
        (json!({"cidr": "2001:db8:1::/64", "ip_version": 6, "ipv6_address_mode": "slaac", "enable_dhcp": false}), "cannot be set when enable_dhcp is set to False"),
        (json!({"cidr": "10.9.0.0/24", "ipv6_address_mode": "slaac"}), "ipv6_address_mode is not valid when ip_version is 4"),
    ] {
        let mut body = bad.clone();
        body["network_id"] = json!(nid);
        let (st, v) = s.post("/v2.0/subnets", json!({ "subnet": body }));
        assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "{bad}: {v}");
        assert!(message(&v).contains(text), "{bad}: {v}");
    }
    let slaac = create(
        &s,
        "subnet",
        json!({"network_id": nid, "cidr": "2001:db8::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
    );
    let six = id(&slaac);
    let (st, v) = put(&s, "subnet", &six, json!({"enable_dhcp": false}));
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "{v}");
    assert!(message(&v).contains("Cannot disable enable_dhcp with ipv6 attributes set"), "{v}");

    // The ports already there got their address, but the router's; the DHCP port has its own.
    let (_, p) = s.get(&format!("/v2.0/ports/{}", id(&before)));
    assert_eq!(ips(&p["port"])[1], (six.clone(), "2001:db8::f816:3eff:fe12:3456".into()), "Neutron's value");
    let (_, r) = s.get(&format!("/v2.0/ports?device_owner=network:router_interface&network_id={nid}"));
    assert_eq!(ips(&r["ports"][0]).len(), 1, "a router interface gets no automatic address: {r}");
    let d = &dhcp_ports(&s, &nid)[0];
    let d_eui = eui64(&Cidr::parse_network("2001:db8::/64").unwrap(), d["mac_address"].as_str().unwrap()).unwrap();
    assert_eq!(ips(d)[1], (six.clone(), d_eui.to_string()), "{d}");

    // New ports: the automatic address with the default, with other subnets named, with the subnet named.
    let p1 = create(&s, "port", json!({"network_id": nid, "mac_address": "fa:16:3e:00:00:01"}));
    assert_eq!(ips(&p1)[1], (six.clone(), "2001:db8::f816:3eff:fe00:1".into()), "{p1}");
    let named_v4 = create(
        &s,
        "port",
        json!({"network_id": nid, "mac_address": "fa:16:3e:00:00:03", "fixed_ips": [{"subnet_id": v4}]}),
    );
    assert_eq!(ips(&named_v4)[1], (six.clone(), "2001:db8::f816:3eff:fe00:3".into()), "added, as Neutron does");
    let named_v6 = create(
        &s,
        "port",
        json!({"network_id": nid, "mac_address": "fa:16:3e:00:00:04", "fixed_ips": [{"subnet_id": six}]}),
    );
    assert_eq!(ips(&named_v6), [(six.clone(), "2001:db8::f816:3eff:fe00:4".into())]);
    let own = json!([{"subnet_id": six, "ip_address": "2001:db8::f816:3eff:fe00:5"}]);
    let own = create(&s, "port", json!({"network_id": nid, "mac_address": "fa:16:3e:00:00:05", "fixed_ips": own}));
    assert_eq!(ips(&own), [(six.clone(), "2001:db8::f816:3eff:fe00:5".into())], "its own address, named");

    // Another address on the subnet: refused, but for a router interface, which takes it.
    let (st, v) = s.post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "fixed_ips": [{"subnet_id": six, "ip_address": "2001:db8::99"}]}}),
    );
    assert_eq!((st, error_type(&v)), (400, "AllocationOnAutoAddressSubnet"), "{v}");
    assert_eq!(message(&v), format!("IPv6 address 2001:db8::99 cannot be directly assigned to a port on subnet {six} as the subnet is configured for automatic addresses"));
    let taken = json!([{"subnet_id": six, "ip_address": "2001:db8::f816:3eff:fe00:2"}]);
    let rport = create(
        &s,
        "port",
        json!({"network_id": nid, "device_owner": "network:router_interface_distributed", "fixed_ips": taken}),
    );
    assert_eq!(ips(&rport).len(), 1, "a router port asks for what it gets: {rport}");
    // The address is taken in IPAM: the port whose MAC computes it is refused (409), and nothing leaks.
    let (st, v) = s.post("/v2.0/ports", json!({"port": {"network_id": nid, "mac_address": "fa:16:3e:00:00:02"}}));
    assert_eq!((st, error_type(&v)), (409, "IpAddressAlreadyAllocated"), "{v}");
    assert!(!keys(&db, &format!("mac.{nid}")).contains(&"fa:16:3e:00:00:02".to_owned()), "its MAC given back");

    // Updates keep the automatic address; a new MAC moves it (the old one released).
    let p1id = id(&p1);
    let (st, p) = put(&s, "port", &p1id, json!({"fixed_ips": [{"subnet_id": v4}]}));
    assert_eq!((st, ips(&p)[1].1.as_str()), (200, "2001:db8::f816:3eff:fe00:1"), "{p}");
    let (st, p) = put(&s, "port", &p1id, json!({"fixed_ips": [{"subnet_id": six, "ip_address": "2001:db8::98"}]}));
    assert_eq!((st, error_type(&p)), (400, "AllocationOnAutoAddressSubnet"), "{p}");
    let (st, p) = put(&s, "port", &p1id, json!({"mac_address": "fa:16:3e:00:00:11"}));
    assert_eq!(st, 200, "{p}");
    assert_eq!(ips(&p), [ips(&p1)[0].clone(), (six.clone(), "2001:db8::f816:3eff:fe00:11".into())]);
    let again = create(&s, "port", json!({"network_id": nid, "mac_address": "fa:16:3e:00:00:01"}));
    assert_eq!(ips(&again)[1].1, "2001:db8::f816:3eff:fe00:1", "the old MAC and address were released");
    let (st, v) = put(&s, "port", &id(d), json!({"mac_address": "fa:16:3e:00:00:12"}));
    assert_eq!((st, error_type(&v)), (409, "UnsupportedPortDeviceOwner"), "{v}");

    // DHCPv6-stateless is auto-address too.
    let n2 = id(&create(&s, "network", json!({"name": "n2"})));
    create(&s, "subnet", json!({"network_id": n2, "cidr": "2001:db8:2::/64", "ipv6_address_mode": "dhcpv6-stateless"}));
    let q = create(&s, "port", json!({"network_id": n2, "mac_address": "fa:16:3e:12:34:56"}));
    assert_eq!(ips(&q)[0].1, "2001:db8:2:0:f816:3eff:fe12:3456");

    // Deleting the subnet: refused while a router port has an address there; then the ports lose theirs.
    let (st, v) = s.delete(&format!("/v2.0/subnets/{six}"));
    assert_eq!((st, error_type(&v)), (409, "SubnetInUse"), "the router port: {v}");
    assert_eq!(s.delete(&format!("/v2.0/ports/{}", id(&rport))).0, 204);
    assert_eq!(s.delete(&format!("/v2.0/subnets/{six}")).0, 204);
    let (_, p) = s.get(&format!("/v2.0/ports/{p1id}"));
    assert_eq!(ips(&p["port"]), [ips(&p1)[0].clone()], "only its IPv4 address left");
    assert_eq!(dhcp_ips(&s, &nid).len(), 1);
    assert!(keys(&db, &format!("ipam.{six}")).is_empty(), "every address released");
    let (st, v) = s.delete(&format!("/v2.0/subnets/{v4}"));
    assert_eq!((st, error_type(&v)), (409, "SubnetInUse"), "an IPv4 subnet's ports keep it in use: {v}");
}

/// Neutron's portsecurity rules for groups: a port without port security (its own setting or its
/// network's) gets no default group and may not be given one; turning port security off under a port's
/// groups is refused until they go.
#[test]
fn security_groups_need_port_security() {
    let s = serve("portsec");
    let net = id(&create(&s, "network", json!({ "name": "n" })));
    create(&s, "subnet", json!({ "network_id": net, "cidr": "10.60.0.0/24", "ip_version": 4 }));
    let open = id(&create(&s, "network", json!({ "name": "open", "port_security_enabled": false })));
    let (st, v) = s.post("/v2.0/security-groups", json!({ "security_group": { "name": "web" } }));
    assert_eq!(st, 201, "{v}");
    let sg = id(&v["security_group"]);
    // Secured: the default group; unsecured by its own setting or its network's: none.
    let p = create(&s, "port", json!({ "network_id": net }));
    assert_eq!(p["security_groups"].as_array().unwrap().len(), 1, "the default group: {p}");
    let q = create(&s, "port", json!({ "network_id": net, "port_security_enabled": false }));
    assert_eq!(q["security_groups"], json!([]));
    let r = create(&s, "port", json!({ "network_id": open }));
    assert_eq!(r["security_groups"], json!([]), "the network's setting: {r}");
    // Groups asked for without port security: 400.
    for body in [
        json!({ "port": { "network_id": net, "port_security_enabled": false, "security_groups": [sg] } }),
        json!({ "port": { "network_id": open, "security_groups": [sg] } }),
    ] {
        let (st, v) = s.post("/v2.0/ports", body);
        assert_eq!((st, error_type(&v)), (400, "PortSecurityAndIPRequiredForSecurityGroups"), "{v}");
    }
    let (st, v) = put(&s, "port", &id(&q), json!({ "security_groups": [sg] }));
    assert_eq!((st, error_type(&v)), (400, "PortSecurityAndIPRequiredForSecurityGroups"), "{v}");
    // Port security off under the port's groups: 409 until they go; then it may go off.
    let (st, v) = put(&s, "port", &id(&p), json!({ "port_security_enabled": false }));
    assert_eq!((st, error_type(&v)), (409, "PortSecurityPortHasSecurityGroup"), "{v}");
    let (st, v) = put(&s, "port", &id(&p), json!({ "port_security_enabled": false, "security_groups": [] }));
    assert_eq!((st, v["port_security_enabled"].clone()), (200, json!(false)), "{v}");
    // An unknown group: 404.
    let (st, v) = put(&s, "port", &id(&q), json!({ "port_security_enabled": true, "security_groups": ["nope"] }));
    assert_eq!((st, error_type(&v)), (404, "SecurityGroupNotFound"), "{v}");
}

//! The Neutron API over HTTP (a real server on a loopback port, the embedded DB): bodies, status codes,
//! Neutron's error body, filters and fields, IPAM (never the same address twice, even to concurrent
//! requests), MAC generation.

mod api_server;

use std::sync::Arc;

use api_server::{serve, serve_db, serve_settings, serve_with};
use control::api::segments::Segments;
use control::api::Settings;
use control::db::embedded::EmbeddedDb;
use control::model::NetworkType;
use serde_json::{json, Value};
use test_support::{error_type, Neutron};

/// Segments as Neutron's ML2 gives them: tenant networks get the first free ID of the first tenant type
/// that has one and the MTU it leaves; provider networks are checked; an ID is taken once and given back
/// with its network.
#[test]
fn network_segments_are_allocated_checked_and_given_back() {
    let segments = Segments {
        tenant_types: vec![NetworkType::Geneve, NetworkType::Vlan],
        geneve: vec![(80_000, 80_000)],
        vlan: vec![("physnet1".into(), vec![(100, 101)]), ("physnet2".into(), vec![])],
        flat: vec!["public".into()],
        physnet_mtu: 9000,
        ..Segments::default()
    };
    let s = serve_settings("segments", Settings { segments: segments.into(), ..Default::default() }, |r| r);
    let create = |body: Value| s.post("/v2.0/networks", json!({ "network": body }));
    let seg = |v: &Value| {
        let n = &v["network"];
        (
            n["provider:network_type"].clone(),
            n["provider:physical_network"].clone(),
            n["provider:segmentation_id"].clone(),
            n["mtu"].clone(),
        )
    };
    // Tenant networks: the one Geneve VNI, then VLANs of physnet1, then none left (503).
    let (st, a) = create(json!({"name": "a"}));
    assert_eq!((st, seg(&a)), (201, (json!("geneve"), Value::Null, json!(80_000), json!(8950))), "{a}");
    let (_, b) = create(json!({"name": "b"}));
    assert_eq!(seg(&b), (json!("vlan"), json!("physnet1"), json!(100), json!(9000)));
    let (_, c) = create(json!({"name": "c"}));
    assert_eq!(seg(&c), (json!("vlan"), json!("physnet1"), json!(101), json!(9000)));
    let (st, v) = create(json!({"name": "d"}));
    assert_eq!((st, error_type(&v)), (503, "NoNetworkAvailable"));
    // Provider networks: what they ask for, checked.
    let (st, v) = create(json!({"provider:network_type": "vxlan", "provider:segmentation_id": 7}));
    assert_eq!((st, seg(&v)), (201, (json!("vxlan"), Value::Null, json!(7), json!(8950))), "{v}");
    let (st, v) = create(json!({"provider:network_type": "vxlan", "provider:segmentation_id": "7"}));
    assert_eq!((st, error_type(&v)), (409, "TunnelIdInUse"), "a string ID, as the OpenStack client sends it");
    let (st, v) = create(json!({"provider:network_type": "vxlan", "provider:segmentation_id": "seven"}));
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"));
    let (st, v) = create(json!({"provider:network_type": "gre", "provider:segmentation_id": 7, "mtu": 8958}));
    assert_eq!((st, seg(&v)), (201, (json!("gre"), Value::Null, json!(7), json!(8958))), "{v}");
    let (st, v) = create(json!({"provider:network_type": "vxlan", "mtu": 8951}));
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "MTU above what VXLAN leaves: {v}");
    let (st, v) = create(
        json!({"provider:network_type": "vlan", "provider:physical_network": "physnet2", "provider:segmentation_id": 100}),
    );
    assert_eq!(
        (st, seg(&v)),
        (201, (json!("vlan"), json!("physnet2"), json!(100), json!(9000))),
        "another physnet: {v}"
    );
    let (st, v) = create(
        json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 100}),
    );
    assert_eq!((st, error_type(&v)), (409, "VlanIdInUse"));
    for bad in [
        json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 4095}),
        json!({"provider:network_type": "vlan", "provider:physical_network": "nowhere", "provider:segmentation_id": 5}),
        json!({"provider:network_type": "vxlan", "provider:physical_network": "physnet1"}),
        json!({"provider:network_type": "flat", "provider:physical_network": "physnet1"}),
        json!({"provider:network_type": "flat", "provider:physical_network": "public", "provider:segmentation_id": 3}),
        json!({"provider:network_type": "stt"}),
        json!({"provider:segmentation_id": 3}),
    ] {
        let (st, v) = create(bad.clone());
        assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "{bad}: {v}");
    }
    let (st, flat) = create(json!({"provider:network_type": "flat", "provider:physical_network": "public"}));
    assert_eq!((st, seg(&flat)), (201, (json!("flat"), json!("public"), Value::Null, json!(9000))), "{flat}");
    let (st, v) = create(json!({"provider:network_type": "flat", "provider:physical_network": "public"}));
    assert_eq!((st, error_type(&v)), (409, "FlatNetworkInUse"));
    // The MTU follows the type on update too; the segment cannot be changed.
    let aid = a["network"]["id"].as_str().unwrap();
    let put = |id: &str, body: Value| {
        s.call("PUT", &format!("/v2.0/networks/{id}"), Some(&json!({ "network": body }).to_string()))
    };
    assert_eq!(put(aid, json!({"mtu": 8951})).0, 400);
    assert_eq!(put(aid, json!({"mtu": 1400})).0, 200);
    assert_eq!(put(aid, json!({"provider:segmentation_id": 9})).0, 400);
    // Deleted, a network gives its segment back: the next tenant network gets it.
    assert_eq!(s.call("DELETE", &format!("/v2.0/networks/{aid}"), None).0, 204);
    let (st, v) = create(json!({"name": "e"}));
    assert_eq!((st, seg(&v)), (201, (json!("geneve"), Value::Null, json!(80_000), json!(8950))), "{v}");
    let fid = flat["network"]["id"].as_str().unwrap();
    assert_eq!(s.call("DELETE", &format!("/v2.0/networks/{fid}"), None).0, 204);
    let (st, _) = create(json!({"provider:network_type": "flat", "provider:physical_network": "public"}));
    assert_eq!(st, 201, "the physnet is free again");
}

#[test]
fn networks_subnets_ports_and_their_errors() {
    let s = serve("crud");
    let (st, v) = s.call("GET", "/", None);
    assert_eq!((st, v["versions"][0]["id"].as_str()), (200, Some("v2.0")));
    let (st, v) = s.call("GET", "/v2.0/extensions", None);
    assert!(st == 200 && v["extensions"].as_array().unwrap().iter().any(|e| e["alias"] == "binding"));

    let (st, net) = s.post("/v2.0/networks", json!({"network": {"name": "n1", "provider:network_type": "vxlan"}}));
    assert_eq!(st, 201, "{net}");
    let nid = net["network"]["id"].as_str().unwrap().to_owned();
    assert_eq!((net["network"]["mtu"].as_u64(), net["network"]["admin_state_up"].as_bool()), (Some(1450), Some(true)));
    s.post("/v2.0/networks", json!({"network": {"name": "n2"}}));
    let (_, v) = s.call("GET", "/v2.0/networks?name=n1&fields=id&fields=name", None);
    assert_eq!(v["networks"], json!([{"id": nid, "name": "n1"}]));
    let (st, v) = s.call("PUT", &format!("/v2.0/networks/{nid}"), Some(r#"{"network": {"name": "renamed"}}"#));
    assert_eq!((st, v["network"]["name"].as_str()), (200, Some("renamed")));
    assert!(v["network"]["revision_number"].as_u64() > net["network"]["revision_number"].as_u64());

    // Bad bodies: malformed JSON, unknown attribute, wrong type; a missing object.
    let (st, v) = s.call("POST", "/v2.0/networks", Some("{not json"));
    assert_eq!((st, error_type(&v)), (400, "HTTPBadRequest"));
    let (st, _) = s.post("/v2.0/networks", json!({"network": {"colour": "blue"}}));
    assert_eq!(st, 400);
    let (st, _) = s.post("/v2.0/networks", json!({"network": {"admin_state_up": "maybe"}}));
    assert_eq!(st, 400);
    let (st, v) = s.call("GET", "/v2.0/networks/nope", None);
    assert_eq!((st, error_type(&v)), (404, "NetworkNotFound"));

    // Subnets: an invalid CIDR, then a good one, then an overlapping one.
    let (st, v) =
        s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.0.0.0/33", "ip_version": 4}}));
    assert_eq!((st, error_type(&v)), (400, "HTTPBadRequest"));
    for bad in [json!(5), json!("5"), json!("four"), json!(6)] {
        let (st, v) =
            s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": bad}}));
        assert_eq!(st, 400, "ip_version {bad}: {v}");
    }
    let (st, sub) =
        s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.0.0.0/24", "ip_version": "4"}}));
    assert_eq!((st, sub["subnet"]["ip_version"].clone()), (201, json!(4)), "a string, as Neutron converts it: {sub}");
    assert_eq!(sub["subnet"]["gateway_ip"], "10.0.0.1");
    assert_eq!(sub["subnet"]["allocation_pools"], json!([{"start": "10.0.0.2", "end": "10.0.0.254"}]));
    let sid = sub["subnet"]["id"].as_str().unwrap().to_owned();
    // A new gateway must be in the CIDR (400), outside the pools (409); none at all is allowed.
    let sub_path = format!("/v2.0/subnets/{sid}");
    for (gw, status) in
        [(json!("10.9.9.9"), 400), (json!("10.0.0.7"), 409), (Value::Null, 200), (json!("10.0.0.1"), 200)]
    {
        let (st, v) = s.call("PUT", &sub_path, Some(&json!({"subnet": {"gateway_ip": gw}}).to_string()));
        assert_eq!(st, status, "gateway {gw}: {v}");
    }
    let (st, _) =
        s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.0.0.128/25", "ip_version": 4}}));
    assert_eq!(st, 400, "overlapping subnets");
    let (st, _) =
        s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "2001:db8::/64", "ip_version": 6}}));
    assert_eq!(st, 201);

    // Ports: a generated MAC and the first free addresses (10.0.0.2 and 2001:db8::2 are the network's
    // DHCP port's, made with the subnets); an IP outside the subnet; duplicates.
    let (st, p) = s.post("/v2.0/ports", json!({"port": {"network_id": nid, "name": "vm1"}}));
    assert_eq!(st, 201, "{p}");
    let mac = p["port"]["mac_address"].as_str().unwrap().to_owned();
    assert!(mac.starts_with("fa:16:3e:"), "{mac}");
    assert_eq!(p["port"]["fixed_ips"][0], json!({"subnet_id": sid, "ip_address": "10.0.0.3"}));
    assert_eq!(p["port"]["fixed_ips"][1]["ip_address"], "2001:db8::3");
    assert_eq!((p["port"]["status"].as_str(), p["port"]["binding:vif_type"].as_str()), (Some("DOWN"), Some("unbound")));
    let pid = p["port"]["id"].as_str().unwrap().to_owned();
    let (st, v) = s.post(
        "/v2.0/ports",
        json!({"port": {"network_id": nid, "fixed_ips": [{"subnet_id": sid, "ip_address": "10.9.9.9"}]}}),
    );
    assert_eq!((st, error_type(&v)), (400, "HTTPBadRequest"));
    let (st, v) =
        s.post("/v2.0/ports", json!({"port": {"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.3"}]}}));
    assert_eq!((st, error_type(&v)), (409, "IpAddressAlreadyAllocated"));
    let (st, v) = s.post("/v2.0/ports", json!({"port": {"network_id": nid, "mac_address": mac}}));
    assert_eq!((st, error_type(&v)), (409, "MacAddressInUse"));
    // The failed requests released what they took: the next port gets 10.0.0.4.
    let (_, p2) = s.post("/v2.0/ports", json!({"port": {"network_id": nid, "fixed_ips": [{"subnet_id": sid}]}}));
    assert_eq!(p2["port"]["fixed_ips"], json!([{"subnet_id": sid, "ip_address": "10.0.0.4"}]));
    let (_, v) = s.call("GET", &format!("/v2.0/ports?network_id={nid}&fields=id"), None);
    assert_eq!(v["ports"].as_array().unwrap().len(), 3, "vm1, p2 and the DHCP port");
    let (st, v) = s.call("PUT", &format!("/v2.0/ports/{pid}"), Some(r#"{"port": {"binding:host_id": "compute-1"}}"#));
    assert_eq!((st, v["port"]["binding:host_id"].as_str()), (200, Some("compute-1")));

    // New fixed IPs on an update: taken (a taken one is refused), the old ones released, the kept kept.
    let p2id = p2["port"]["id"].as_str().unwrap().to_owned();
    let put_ips = |port: &str, ips: Value| {
        s.call("PUT", &format!("/v2.0/ports/{port}"), Some(&json!({"port": {"fixed_ips": ips}}).to_string()))
    };
    let (st, v) = put_ips(&p2id, json!([{"subnet_id": sid, "ip_address": "10.0.0.3"}]));
    assert_eq!((st, error_type(&v)), (409, "IpAddressAlreadyAllocated"), "vm1's address");
    let (st, v) = put_ips(&p2id, json!([{"subnet_id": sid, "ip_address": "10.0.0.50"}]));
    assert_eq!((st, &v["port"]["fixed_ips"]), (200, &json!([{"subnet_id": sid, "ip_address": "10.0.0.50"}])));
    let (st, v) = put_ips(&p2id, json!([{"subnet_id": sid}, {"ip_address": "10.0.0.4"}]));
    assert_eq!(st, 200, "10.0.0.4 was released: {v}");
    assert_eq!(
        v["port"]["fixed_ips"],
        json!([{"subnet_id": sid, "ip_address": "10.0.0.50"}, {"subnet_id": sid, "ip_address": "10.0.0.4"}]),
        "the subnet alone keeps the port's address there"
    );
    let (st, _) = put_ips(&p2id, json!([{"subnet_id": sid, "ip_address": "10.0.0.50"}]));
    assert_eq!(st, 200);
    let (_, p3) =
        s.post("/v2.0/ports", json!({"port": {"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.4"}]}}));
    assert_eq!(p3["port"]["fixed_ips"][0]["ip_address"], "10.0.0.4", "released again: {p3}");
    assert_eq!(s.call("DELETE", &format!("/v2.0/ports/{}", p3["port"]["id"].as_str().unwrap()), None).0, 204);

    // Deleting a network with ports is refused; a subnet with allocations too. (The DHCP port counts for
    // neither: it goes with them.)
    let (st, v) = s.call("DELETE", &format!("/v2.0/networks/{nid}"), None);
    assert_eq!((st, error_type(&v)), (409, "NetworkInUse"));
    let (st, v) = s.call("DELETE", &format!("/v2.0/subnets/{sid}"), None);
    assert_eq!((st, error_type(&v)), (409, "SubnetInUse"));
    for p in [&pid, p2["port"]["id"].as_str().unwrap()] {
        assert_eq!(s.call("DELETE", &format!("/v2.0/ports/{p}"), None).0, 204);
    }
    assert_eq!(s.call("DELETE", &format!("/v2.0/networks/{nid}"), None).0, 204);
    assert_eq!(s.call("GET", &format!("/v2.0/networks/{nid}"), None).0, 404);
}

#[test]
fn concurrent_port_creations_never_share_an_address() {
    let s = Arc::new(serve("ipam"));
    let (_, net) = s.post("/v2.0/networks", json!({"network": {"name": "n"}}));
    let nid = net["network"]["id"].as_str().unwrap().to_owned();
    s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.1.0.0/28", "ip_version": 4}}));
    // 13 addresses in the pool (.2-.14), the first the DHCP port's; 16 requests at once: 12 get distinct
    // addresses, 4 are refused.
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (s, nid) = (s.clone(), nid.clone());
            std::thread::spawn(move || s.post("/v2.0/ports", json!({"port": {"network_id": nid}})))
        })
        .collect();
    let results: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut ips: Vec<String> = results
        .iter()
        .filter(|(st, _)| *st == 201)
        .map(|(_, p)| p["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap().to_owned())
        .collect();
    let refused = results.iter().filter(|(st, v)| *st == 409 && error_type(v) == "IpAddressGenerationFailure").count();
    assert_eq!((ips.len(), refused), (12, 4), "{results:?}");
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 12, "an address was given twice");
    assert!(!ips.contains(&"10.1.0.2".to_owned()), "the DHCP port's address was given: {ips:?}");
}

#[test]
fn routers_and_their_interfaces() {
    let s = serve("routers");
    let (_, net) = s.post("/v2.0/networks", json!({"network": {"name": "n"}}));
    let nid = net["network"]["id"].as_str().unwrap().to_owned();
    let (_, sub) =
        s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.5.0.0/24", "ip_version": 4}}));
    let sid = sub["subnet"]["id"].as_str().unwrap().to_owned();
    let (st, r) = s.post("/v2.0/routers", json!({"router": {"name": "r1"}}));
    assert_eq!(st, 201, "{r}");
    let rid = r["router"]["id"].as_str().unwrap().to_owned();
    let add = format!("/v2.0/routers/{rid}/add_router_interface");
    let (st, v) = s.call("PUT", &add, Some(&json!({"subnet_id": sid}).to_string()));
    assert_eq!((st, v["subnet_id"].as_str()), (200, Some(sid.as_str())), "{v}");
    let port_id = v["port_id"].as_str().unwrap().to_owned();
    let (_, p) = s.call("GET", &format!("/v2.0/ports/{port_id}"), None);
    assert_eq!(p["port"]["fixed_ips"][0]["ip_address"], "10.5.0.1", "the subnet's gateway");
    assert_eq!(
        (p["port"]["device_owner"].as_str(), p["port"]["device_id"].as_str()),
        (Some("network:router_interface"), Some(rid.as_str()))
    );
    let (st, _) = s.call("PUT", &add, Some(&json!({"subnet_id": sid}).to_string()));
    assert_eq!(st, 400, "a second interface on one subnet");
    // Nor on a subnet that overlaps one it has (another network's), by subnet or by port.
    let (_, net2) = s.post("/v2.0/networks", json!({"network": {"name": "n2"}}));
    let nid2 = net2["network"]["id"].as_str().unwrap().to_owned();
    let (_, sub2) =
        s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid2, "cidr": "10.5.0.0/16", "ip_version": 4}}));
    let (st, v) = s.put(&add, json!({"subnet_id": sub2["subnet"]["id"]}));
    assert_eq!((st, error_type(&v)), (400, "HTTPBadRequest"), "overlapping subnets: {v}");
    let (_, p2) = s.post("/v2.0/ports", json!({"port": {"network_id": nid2}}));
    let (st, v) = s.put(&add, json!({"port_id": p2["port"]["id"]}));
    assert_eq!((st, error_type(&v)), (400, "HTTPBadRequest"), "overlapping subnets: {v}");
    let (st, v) = s.call(
        "PUT",
        &format!("/v2.0/routers/{rid}"),
        Some(&json!({"router": {"routes": [{"destination": "10.9.0.0/16", "nexthop": "10.5.0.7"}]}}).to_string()),
    );
    assert_eq!((st, v["router"]["routes"][0]["nexthop"].as_str()), (200, Some("10.5.0.7")));
    // Atomic extra routes (`extraroute-atomic`): added to those it has, once; removed by value.
    let r1 = json!({"destination": "10.9.0.0/16", "nexthop": "10.5.0.7"});
    let r2 = json!({"destination": "10.8.0.0/16", "nexthop": "10.5.0.8"});
    let (st, v) = s.put(&format!("/v2.0/routers/{rid}/add_extraroutes"), json!({"router": {"routes": [r1, r2]}}));
    assert_eq!((st, v["router"]["routes"].clone()), (200, json!([r1, r2])), "{v}");
    let (st, v) = s.put(&format!("/v2.0/routers/{rid}/remove_extraroutes"), json!({"router": {"routes": [r1]}}));
    assert_eq!((st, v["router"]["routes"].clone()), (200, json!([r2])), "{v}");
    let bad = json!({"router": {"routes": [{"destination": "nope", "nexthop": "x"}]}});
    assert_eq!(s.put(&format!("/v2.0/routers/{rid}/add_extraroutes"), bad).0, 400);
    let (st, _) = s.call(
        "PUT",
        &format!("/v2.0/routers/{rid}"),
        Some(&json!({"router": {"routes": [{"destination": "nope", "nexthop": "x"}]}}).to_string()),
    );
    assert_eq!(st, 400);
    let (st, v) = s.call("DELETE", &format!("/v2.0/routers/{rid}"), None);
    assert_eq!((st, error_type(&v)), (409, "RouterInUse"));
    let (st, _) = s.call(
        "PUT",
        &format!("/v2.0/routers/{rid}/remove_router_interface"),
        Some(&json!({"subnet_id": sid}).to_string()),
    );
    assert_eq!(st, 200);
    assert_eq!(s.call("GET", &format!("/v2.0/ports/{port_id}"), None).0, 404);
    assert_eq!(s.call("DELETE", &format!("/v2.0/routers/{rid}"), None).0, 204);
    assert_eq!(s.call("DELETE", &format!("/v2.0/subnets/{sid}"), None).0, 204, "the gateway address was released");
}

#[test]
fn security_groups_rules_and_the_default_group() {
    let s = serve("sg");
    let (_, net) = s.post("/v2.0/networks", json!({"network": {"name": "n", "project_id": "p1"}}));
    let nid = net["network"]["id"].as_str().unwrap().to_owned();
    s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.6.0.0/24", "ip_version": 4}}));
    // A port without groups gets its project's default group, made on first use.
    let (_, p) = s.post("/v2.0/ports", json!({"port": {"network_id": nid, "project_id": "p1"}}));
    let default = p["port"]["security_groups"][0].as_str().unwrap().to_owned();
    let (st, g) = s.call("GET", &format!("/v2.0/security-groups/{default}"), None);
    assert_eq!((st, g["security_group"]["name"].as_str()), (200, Some("default")));
    assert_eq!(g["security_group"]["security_group_rules"].as_array().unwrap().len(), 4);

    let (st, g) = s.post("/v2.0/security-groups", json!({"security_group": {"name": "web"}}));
    assert_eq!(st, 201, "{g}");
    let gid = g["security_group"]["id"].as_str().unwrap().to_owned();
    assert_eq!(g["security_group"]["security_group_rules"].as_array().unwrap().len(), 2, "egress v4 and v6");
    let http = json!({"security_group_rule": {"security_group_id": gid, "direction": "ingress", "protocol": "tcp",
                      "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}});
    let (st, r) = s.post("/v2.0/security-group-rules", http.clone());
    assert_eq!(st, 201, "{r}");
    let (st, v) = s.post("/v2.0/security-group-rules", http);
    assert_eq!((st, error_type(&v)), (409, "SecurityGroupRuleExists"));
    for bad in [
        json!({"security_group_rule": {"security_group_id": gid, "direction": "sideways"}}),
        json!({"security_group_rule": {"security_group_id": gid, "direction": "ingress", "protocol": "tcp", "port_range_min": 90, "port_range_max": 80}}),
        json!({"security_group_rule": {"security_group_id": gid, "direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}}),
        json!({"security_group_rule": {"security_group_id": gid, "direction": "ingress", "protocol": "carrier-pigeon"}}),
    ] {
        assert_eq!(s.post("/v2.0/security-group-rules", bad.clone()).0, 400, "{bad}");
    }
    let (_, v) = s.call("GET", &format!("/v2.0/security-groups/{gid}"), None);
    assert_eq!(v["security_group"]["security_group_rules"].as_array().unwrap().len(), 3);
    // In use by a port: not deleted.
    let pid = p["port"]["id"].as_str().unwrap().to_owned();
    s.call("PUT", &format!("/v2.0/ports/{pid}"), Some(&json!({"port": {"security_groups": [gid]}}).to_string()));
    let (st, v) = s.call("DELETE", &format!("/v2.0/security-groups/{gid}"), None);
    assert_eq!((st, error_type(&v)), (409, "SecurityGroupInUse"));
    s.call("DELETE", &format!("/v2.0/ports/{pid}"), None);
    assert_eq!(s.call("DELETE", &format!("/v2.0/security-groups/{gid}"), None).0, 204);
    let rid = r["security_group_rule"]["id"].as_str().unwrap();
    assert_eq!(s.call("GET", &format!("/v2.0/security-group-rules/{rid}"), None).0, 404, "rules go with their group");
}

#[test]
fn floating_ips_come_from_the_external_network_through_a_router() {
    let s = serve("fip");
    let (_, ext) = s.post("/v2.0/networks", json!({"network": {"name": "public", "router:external": true}}));
    let ext_id = ext["network"]["id"].as_str().unwrap().to_owned();
    s.post("/v2.0/subnets", json!({"subnet": {"network_id": ext_id, "cidr": "203.0.113.0/24", "ip_version": 4}}));
    let (_, net) = s.post("/v2.0/networks", json!({"network": {"name": "private"}}));
    let nid = net["network"]["id"].as_str().unwrap().to_owned();
    let (_, sub) =
        s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": "10.7.0.0/24", "ip_version": 4}}));
    let sid = sub["subnet"]["id"].as_str().unwrap().to_owned();
    let (_, p) = s.post("/v2.0/ports", json!({"port": {"network_id": nid}}));
    let pid = p["port"]["id"].as_str().unwrap().to_owned();

    let (st, v) = s.post("/v2.0/floatingips", json!({"floatingip": {"floating_network_id": nid}}));
    assert_eq!(st, 400, "not an external network: {v}");
    // No router between the port's subnet and the external network yet.
    let (st, v) = s.post("/v2.0/floatingips", json!({"floatingip": {"floating_network_id": ext_id, "port_id": pid}}));
    assert_eq!((st, error_type(&v)), (404, "ExternalGatewayForFloatingIPNotFound"));
    let (_, r) =
        s.post("/v2.0/routers", json!({"router": {"name": "r", "external_gateway_info": {"network_id": ext_id}}}));
    let rid = r["router"]["id"].as_str().unwrap().to_owned();
    s.call("PUT", &format!("/v2.0/routers/{rid}/add_router_interface"), Some(&json!({"subnet_id": sid}).to_string()));
    let (st, f) = s.post("/v2.0/floatingips", json!({"floatingip": {"floating_network_id": ext_id, "port_id": pid}}));
    assert_eq!(st, 201, "{f}");
    // (.2 of both subnets: their DHCP ports'; .3 of the external one the router's gateway's.)
    assert_eq!(f["floatingip"]["floating_ip_address"], "203.0.113.4");
    assert_eq!(
        (f["floatingip"]["fixed_ip_address"].as_str(), f["floatingip"]["router_id"].as_str()),
        (Some("10.7.0.3"), Some(rid.as_str()))
    );
    let fid = f["floatingip"]["id"].as_str().unwrap().to_owned();
    let (st, v) = s.call("DELETE", &format!("/v2.0/networks/{ext_id}"), None);
    assert_eq!((st, error_type(&v)), (409, "NetworkInUse"), "floating IPs are on it");
    let (rp, _) = s.call("GET", &format!("/v2.0/ports?device_id={rid}"), None);
    assert_eq!(rp, 200);
    let (_, ports) = s.call("GET", &format!("/v2.0/ports?device_id={rid}&fields=id"), None);
    let rport = ports["ports"][0]["id"].as_str().unwrap().to_owned();
    let (st, v) = s.call("DELETE", &format!("/v2.0/ports/{rport}"), None);
    assert_eq!((st, error_type(&v)), (409, "PortInUse"), "a router interface goes through the router");
    // Deleting the port disassociates its floating IP.
    let (_, p2) = s.post("/v2.0/ports", json!({"port": {"network_id": nid}}));
    let p2id = p2["port"]["id"].as_str().unwrap().to_owned();
    s.call("PUT", &format!("/v2.0/floatingips/{fid}"), Some(&json!({"floatingip": {"port_id": p2id}}).to_string()));
    s.call("DELETE", &format!("/v2.0/ports/{p2id}"), None);
    let (_, f) = s.call("GET", &format!("/v2.0/floatingips/{fid}"), None);
    assert_eq!((f["floatingip"]["port_id"].clone(), f["floatingip"]["status"].as_str()), (Value::Null, Some("DOWN")));
    let (st, f) = s.call("PUT", &format!("/v2.0/floatingips/{fid}"), Some(r#"{"floatingip": {"port_id": null}}"#));
    assert_eq!(
        (st, f["floatingip"]["port_id"].clone(), f["floatingip"]["status"].as_str()),
        (200, Value::Null, Some("DOWN"))
    );
    assert_eq!(s.call("DELETE", &format!("/v2.0/floatingips/{fid}"), None).0, 204);
    let (_, f) = s.post("/v2.0/floatingips", json!({"floatingip": {"floating_network_id": ext_id}}));
    assert_eq!(f["floatingip"]["floating_ip_address"], "203.0.113.4", "the address came back");
}

/// `external_gateway_info: {}` is no gateway, on a create and on an update (how clients clear one), and
/// `routes: null` no routes. A gateway is on an external network that exists, with a port there
/// (`network:router_gateway`) whose addresses are its `external_fixed_ips`.
#[test]
fn an_empty_gateway_is_no_gateway_and_null_routes_none() {
    let s = serve("gw");
    let (_, ext) = s.post("/v2.0/networks", json!({"network": {"name": "public", "router:external": true}}));
    let ext_id = ext["network"]["id"].as_str().unwrap().to_owned();
    s.post("/v2.0/subnets", json!({"subnet": {"network_id": ext_id, "cidr": "203.0.113.0/24", "ip_version": 4}}));
    let (st, r) = s.post("/v2.0/routers", json!({"router": {"name": "r", "external_gateway_info": {}}}));
    assert_eq!((st, r["router"]["external_gateway_info"].clone()), (201, Value::Null), "{r}");
    let rid = r["router"]["id"].as_str().unwrap().to_owned();
    let put =
        |body: Value| s.call("PUT", &format!("/v2.0/routers/{rid}"), Some(&json!({ "router": body }).to_string()));
    let gw_ports = || {
        let (_, v) = s.get(&format!("/v2.0/ports?device_id={rid}&device_owner=network:router_gateway"));
        v["ports"].as_array().unwrap().clone()
    };
    let (st, r) = put(json!({"external_gateway_info": {"network_id": ext_id}}));
    assert_eq!((st, r["router"]["external_gateway_info"]["network_id"].as_str()), (200, Some(ext_id.as_str())), "{r}");
    let ips = r["router"]["external_gateway_info"]["external_fixed_ips"].clone();
    assert_eq!(ips[0]["ip_address"], "203.0.113.3", "{r}");
    assert_eq!(gw_ports().len(), 1);
    assert_eq!(gw_ports()[0]["fixed_ips"], ips, "the gateway's addresses are its port's");
    let (st, r) = put(json!({"external_gateway_info": {"network_id": ext_id}}));
    assert_eq!(
        (st, &r["router"]["external_gateway_info"]["external_fixed_ips"]),
        (200, &ips),
        "the same gateway keeps its port"
    );
    let (st, r) = put(json!({"external_gateway_info": {"network_id": ext_id, "enable_snat": false}}));
    assert_eq!((st, &r["router"]["external_gateway_info"]["external_fixed_ips"]), (200, &ips), "{r}");
    assert_eq!(gw_ports().len(), 1, "enable_snat alone keeps the port");
    let asked = json!([{"subnet_id": ips[0]["subnet_id"], "ip_address": "203.0.113.99"}]);
    let (st, r) = put(json!({"external_gateway_info": {"network_id": ext_id, "external_fixed_ips": asked}}));
    assert_eq!((st, &r["router"]["external_gateway_info"]["external_fixed_ips"]), (200, &asked), "{r}");
    assert_eq!(gw_ports().len(), 1, "the old port went");
    let gw = gw_ports()[0]["id"].as_str().unwrap().to_owned();
    let (st, v) = s.delete(&format!("/v2.0/ports/{gw}"));
    assert_eq!((st, error_type(&v)), (409, "PortInUse"), "a gateway port goes through its router");
    let (st, v) = s.delete(&format!("/v2.0/networks/{ext_id}"));
    assert_eq!((st, error_type(&v)), (409, "NetworkInUse"), "a gateway is on it");
    let (st, r) = put(json!({"external_gateway_info": {}}));
    assert_eq!((st, r["router"]["external_gateway_info"].clone()), (200, Value::Null), "{r}");
    assert!(gw_ports().is_empty(), "no gateway, no port");
    let (_, f) = s.post("/v2.0/floatingips", json!({"floatingip": {"floating_network_id": ext_id}}));
    assert_eq!(f["floatingip"]["floating_ip_address"], "203.0.113.3", "the gateway's address came back");
    let (_, private) = s.post("/v2.0/networks", json!({"network": {"name": "private"}}));
    let (st, v) = put(json!({"external_gateway_info": {"network_id": private["network"]["id"]}}));
    assert_eq!((st, error_type(&v)), (400, "HTTPBadRequest"), "not an external network: {v}");
    let (st, v) = put(json!({"external_gateway_info": {"network_id": "nope"}}));
    assert_eq!((st, error_type(&v)), (404, "NetworkNotFound"), "{v}");
    let (st, v) = s.post("/v2.0/routers", json!({"router": {"external_gateway_info": {"network_id": "nope"}}}));
    assert_eq!((st, error_type(&v)), (404, "NetworkNotFound"), "{v}");
    let (st, r2) = s.post("/v2.0/routers", json!({"router": {"external_gateway_info": {"network_id": ext_id}}}));
    assert_eq!(st, 201, "{r2}");
    let r2 = r2["router"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.delete(&format!("/v2.0/routers/{r2}")).0, 204);
    let (_, v) = s.get("/v2.0/ports?device_owner=network:router_gateway");
    assert_eq!(v["ports"], json!([]), "its gateway port went with the router");
    let (st, v) = put(json!({"external_gateway_info": {"enable_snat": false}}));
    assert_eq!(st, 400, "a gateway without a network: {v}");
    // `routes: null` is no routes, as Neutron takes it.
    let (st, r) = put(json!({"routes": null}));
    assert_eq!((st, r["router"]["routes"].clone()), (200, json!([])), "{r}");
}

#[test]
fn a_static_token_guards_everything_but_the_version_document() {
    let s = serve_with("token", |routes| control::api::with_token(routes, "s3cret".into()));
    assert_eq!(s.call("GET", "/", None).0, 200);
    let (st, v) = s.call("GET", "/v2.0/networks", None);
    assert_eq!((st, error_type(&v)), (401, "HTTPUnauthorized"));
    let (st, v) = Neutron::new(s.addr()).with_token("s3cret").get("/v2.0/networks");
    assert_eq!((st, v["networks"].is_array()), (200, true), "{v}");
}

/// What the DB holds is not trusted: a row that does not decode is left out of a list, and a subnet whose
/// stored CIDR is invalid fails the requests that need it with an error; the server stays up.
#[test]
fn bad_rows_in_the_db_are_errors_not_crashes() {
    use control::db::Db;
    let dir = std::env::temp_dir().join(format!("df-api-badrows-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Arc::new(EmbeddedDb::open(&dir).unwrap());
    let s = serve_db(db.clone(), dir, Settings::default(), |r| r);
    let (_, net) = s.post("/v2.0/networks", json!({"network": {"name": "n"}}));
    let nid = net["network"]["id"].as_str().unwrap().to_owned();
    let (st, _) = s.post("/v2.0/ports", json!({"port": {"network_id": nid, "name": "good"}}));
    assert_eq!(st, 201);
    db.create("port", "garbage", b"{not json").unwrap();
    db.create("port", "wrong-shape", br#"{"id": 7}"#).unwrap();
    let bad = json!({"id": "bad-subnet", "network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/99"});
    db.create("subnet", "bad-subnet", bad.to_string().as_bytes()).unwrap();

    let (st, v) = s.call("GET", "/v2.0/ports", None);
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["ports"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["good"]);
    let (st, v) = s.call("GET", "/v2.0/ports/garbage", None);
    assert!(st >= 500 && v["NeutronError"].is_object(), "{st} {v}");

    let (st, v) =
        s.call("PUT", "/v2.0/subnets/bad-subnet", Some(&json!({"subnet": {"gateway_ip": "10.0.0.9"}}).to_string()));
    // (A panic in the handler would be a 500 too here, but aborts the release binary: panic = "abort".)
    assert_eq!((st, error_type(&v)), (500, "InternalError"), "{v}");
    assert!(v["NeutronError"]["message"].as_str().unwrap().contains("invalid cidr"), "{v}");
    let fixed = json!([{"subnet_id": "bad-subnet", "ip_address": "10.0.0.5"}]);
    let (st, v) = s.post("/v2.0/ports", json!({"port": {"network_id": nid, "fixed_ips": fixed}}));
    assert!(st >= 400, "{st} {v}");
    let (st, _) = s.call("GET", "/v2.0/networks", None);
    assert_eq!(st, 200, "the server is still up");
}

/// A subnet with no address after its first (a /32, the top /128 of IPv6) gets no default gateway and no
/// pool, and the request does not crash the server (base + 1 overflowed at ffff:…:ffff).
#[test]
fn a_single_address_subnet_has_no_default_gateway() {
    let s = serve("single");
    let (_, net) = s.post("/v2.0/networks", json!({"network": {"name": "n"}}));
    let nid = net["network"]["id"].as_str().unwrap().to_owned();
    for (cidr, v) in [("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 6), ("10.0.0.5/32", 4)] {
        let (st, sub) = s.post("/v2.0/subnets", json!({"subnet": {"network_id": nid, "cidr": cidr, "ip_version": v}}));
        assert_eq!(st, 201, "{cidr}: {sub}");
        assert_eq!(sub["subnet"]["gateway_ip"], Value::Null, "{cidr}: {sub}");
        assert_eq!(sub["subnet"]["allocation_pools"], json!([]), "{cidr}: {sub}");
    }
}

/// Bulk create (`{"networks": [...]}`), as Neutron's native bulk: every object made, or none (one that
/// fails undoes those made before it, and what they took is given back).
#[test]
fn bulk_create_makes_all_or_none() {
    let s = serve("bulk");
    let (st, v) = s.post("/v2.0/networks", json!({"networks": [{"name": "a"}, {"name": "b"}]}));
    assert_eq!(st, 201, "{v}");
    let names: Vec<&str> = v["networks"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b"]);
    let net = v["networks"][0]["id"].as_str().unwrap().to_owned();
    let (st, v) = s.post(
        "/v2.0/subnets",
        json!({"subnets": [{"network_id": net, "cidr": "10.3.0.0/24", "ip_version": 4},
                           {"network_id": net, "cidr": "2001:db8:3::/64", "ip_version": 6}]}),
    );
    assert_eq!((st, v["subnets"].as_array().map(Vec::len)), (201, Some(2)), "{v}");
    let sub = v["subnets"][0]["id"].as_str().unwrap().to_owned();
    let ports = || s.get("/v2.0/ports").1["ports"].as_array().unwrap().len();
    let before = ports();
    let fixed = |ip: &str| json!({"network_id": net, "fixed_ips": [{"subnet_id": sub, "ip_address": ip}]});
    let (st, v) = s.post("/v2.0/ports", json!({"ports": [fixed("10.3.0.10"), fixed("10.3.0.11"), fixed("10.3.0.10")]}));
    assert_eq!((st, error_type(&v)), (409, "IpAddressAlreadyAllocated"), "{v}");
    assert_eq!(ports(), before, "none made");
    let (st, v) = s.post("/v2.0/ports", json!({"ports": [fixed("10.3.0.10"), fixed("10.3.0.11")]}));
    assert_eq!((st, v["ports"].as_array().map(Vec::len)), (201, Some(2)), "the addresses were given back: {v}");
    let mut gw = fixed("10.3.0.12");
    gw["device_owner"] = json!("network:router_gateway");
    let (st, v) = s.post("/v2.0/ports", json!({"ports": [gw, fixed("10.3.0.10")]}));
    assert_eq!((st, error_type(&v)), (409, "IpAddressAlreadyAllocated"), "{v}");
    let (_, v) = s.get("/v2.0/ports?device_owner=network:router_gateway");
    assert_eq!(v["ports"], json!([]), "a router's port a bulk made is undone too: {v}");
    assert_eq!(s.post("/v2.0/ports", json!({"port": fixed("10.3.0.12")})).0, 201, "its address given back");
    let (st, v) = s.post("/v2.0/networks", json!({"networks": [{"network": {"name": "wrapped"}}]}));
    assert_eq!(
        (st, v["networks"][0]["name"].as_str()),
        (201, Some("wrapped")),
        "an item wrapped as some clients send it: {v}"
    );
    let (st, v) = s.post("/v2.0/networks", json!({"networks": [{"name": "c"}, {"nonsense": 1}]}));
    assert_eq!((st, error_type(&v)), (400, "HTTPBadRequest"), "{v}");
    for bad in [json!({"networks": []}), json!({"networks": {}}), json!({"networks": [1]}), json!({})] {
        assert_eq!(s.post("/v2.0/networks", bad.clone()).0, 400, "{bad}");
    }
    assert_eq!(s.get("/v2.0/networks").1["networks"].as_array().unwrap().len(), 3);
}

/// Floating IPs that point nowhere go with their external network (Neutron's
/// `delete_disassociated_floatingips`); the extensions are listed and shown one by one; a list takes
/// Neutron's filters (validated), sorting and pages with links.
#[test]
fn external_network_deletion_extensions_and_list_queries() {
    let s = serve("lists");
    let (_, ext) = s.post("/v2.0/networks", json!({"network": {"name": "public", "router:external": true}}));
    let ext_id = ext["network"]["id"].as_str().unwrap().to_owned();
    s.post("/v2.0/subnets", json!({"subnet": {"network_id": ext_id, "cidr": "203.0.113.0/24", "ip_version": 4}}));
    let (st, f) = s.post("/v2.0/floatingips", json!({"floatingip": {"floating_network_id": ext_id}}));
    assert_eq!(st, 201, "{f}");
    // Its address is a port's on the external network, as Neutron's (users see the address taken).
    let (_, v) = s.get("/v2.0/ports?device_owner=network:floatingip");
    let fport = &v["ports"][0];
    assert_eq!(
        (fport["device_id"].clone(), fport["fixed_ips"][0]["ip_address"].clone()),
        (f["floatingip"]["id"].clone(), f["floatingip"]["floating_ip_address"].clone()),
        "{v}"
    );
    let (st, e) = s.delete(&format!("/v2.0/ports/{}", fport["id"].as_str().unwrap()));
    assert_eq!((st, error_type(&e)), (409, "PortInUse"), "it goes with its floating IP");
    let (st, v) = s.post("/v2.0/floatingips", json!({"floatingip": {"floating_network_id": ext_id, "floating_ip_address": f["floatingip"]["floating_ip_address"]}}));
    assert_eq!((st, error_type(&v)), (409, "IpAddressAlreadyAllocated"), "{v}");
    assert_eq!(s.delete(&format!("/v2.0/networks/{ext_id}")).0, 204);
    assert_eq!(s.get("/v2.0/floatingips").1["floatingips"], json!([]));
    assert_eq!(s.get("/v2.0/ports").1["ports"], json!([]), "the floating IP's port went with it");

    let (_, all) = s.get("/v2.0/extensions");
    for e in all["extensions"].as_array().unwrap() {
        let (st, one) = s.get(&format!("/v2.0/extensions/{}", e["alias"].as_str().unwrap()));
        assert_eq!((st, &one["extension"]), (200, e));
    }
    assert_eq!(s.get("/v2.0/extensions/qos").0, 404);

    for name in ["b", "A", "c"] {
        s.post("/v2.0/networks", json!({"network": {"name": name}}));
    }
    let names = |v: &Value| -> Vec<String> {
        v["networks"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_owned()).collect()
    };
    let (_, v) = s.get("/v2.0/networks?sort_key=name&sort_dir=desc");
    assert_eq!(names(&v), ["c", "b", "A"]);
    let (_, v) = s.get("/v2.0/networks?sort_key=name&sort_dir=asc&limit=2");
    assert_eq!(names(&v), ["A", "b"]);
    let next = v["networks_links"][0]["href"].as_str().unwrap();
    assert!(next.starts_with(&format!("http://{}/v2.0/networks?", s.addr())), "{next}");
    let (_, v) = s.get(&next[next.find("/v2.0").unwrap()..]);
    assert_eq!(names(&v), ["c"], "the next page");
    let (st, v) = s.get("/v2.0/networks?invalid_filter=x");
    assert_eq!((st, error_type(&v)), (400, "HTTPBadRequest"), "{v}");
    let (_, v) = s.get("/v2.0/networks?tenant_id=&name=b");
    assert_eq!(names(&v), ["b"], "tenant_id is project_id (none here)");
}

/// Neutron's standard attributes on every resource: `description` (set and changed), `tenant_id`
/// beside `project_id`, `created_at`/`updated_at` (and `changed_since`), and tags through
/// `…/{id}/tags`, which lists filter by.
#[test]
fn standard_attributes_and_tags() {
    let s = serve("standard");
    let (_, ext) = s.post("/v2.0/networks", json!({"network": {"name": "public", "router:external": true}}));
    let ext_id = ext["network"]["id"].as_str().unwrap().to_owned();
    let net = s.create("network", json!({"name": "n", "description": "d-network", "project_id": "p"}));
    let nid = net["id"].as_str().unwrap().to_owned();
    let made = [
        ("network", "networks", net.clone()),
        (
            "subnet",
            "subnets",
            s.create(
                "subnet",
                json!({"network_id": nid, "cidr": "10.4.0.0/24", "ip_version": 4, "description": "d-subnet"}),
            ),
        ),
        ("port", "ports", s.create("port", json!({"network_id": nid, "description": "d-port"}))),
        ("router", "routers", s.create("router", json!({"name": "r", "description": "d-router"}))),
        ("floatingip", "floatingips", {
            s.post(
                "/v2.0/subnets",
                json!({"subnet": {"network_id": ext_id, "cidr": "203.0.113.0/24", "ip_version": 4}}),
            );
            s.create("floatingip", json!({"floating_network_id": ext_id, "description": "d-floatingip"}))
        }),
        (
            "security_group",
            "security-groups",
            s.post(
                "/v2.0/security-groups",
                json!({"security_group": {"name": "g", "description": "d-security_group"}}),
            )
            .1["security_group"]
                .clone(),
        ),
    ];
    for (one, many, o) in &made {
        assert_eq!(o["description"], format!("d-{one}"), "{o}");
        assert_eq!(o["tenant_id"], o["project_id"], "{o}");
        let created = o["created_at"].as_str().unwrap_or_default();
        assert!(created.len() == 20 && created.ends_with('Z'), "{one}: {o}");
        assert_eq!(o["updated_at"], o["created_at"]);
        let path = format!("/v2.0/{many}/{}", o["id"].as_str().unwrap());
        let (st, v) = s.put(&path, json!({ *one: {"description": "changed"} }));
        assert_eq!((st, v[*one]["description"].as_str()), (200, Some("changed")), "{v}");
        // Tags.
        let tags = format!("{path}/tags");
        assert_eq!(s.put(&format!("{tags}/red"), json!(null)).0, 201);
        assert_eq!(s.put(&format!("{tags}/red"), json!(null)).0, 201, "once");
        assert_eq!(s.get(&tags).1, json!({"tags": ["red"]}));
        assert_eq!(s.get(&format!("{tags}/red")).0, 204);
        let (st, v) = s.get(&format!("{tags}/blue"));
        assert_eq!((st, error_type(&v)), (404, "TagNotFound"));
        let (st, v) = s.put(&tags, json!({"tags": ["blue", "green"]}));
        assert_eq!((st, v), (200, json!({"tags": ["blue", "green"]})));
        assert_eq!(s.put(&tags, json!({"tags": ["x", "x"]})).0, 400, "unique");
        assert_eq!(s.put(&tags, json!({"tags": ["x".repeat(256)]})).0, 400, "at most 255");
        let (_, v) = s.get(&format!("/v2.0/{many}?tags=blue,green"));
        let listed: Vec<&str> =
            v[many.replace('-', "_")].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(listed, [o["id"].as_str().unwrap()], "{many} filtered by tags: {v}");
        assert_eq!(s.delete(&format!("{tags}/blue")).0, 204);
        assert_eq!(s.delete(&format!("{tags}/blue")).0, 404);
        assert_eq!(s.delete(&tags).0, 204);
        let (_, v) = s.get(&path);
        assert_eq!(v[*one]["tags"], json!([]), "{v}");
        assert!(v[*one]["revision_number"].as_u64() > o["revision_number"].as_u64(), "tags are a write: {v}");
    }
    let (st, v) = s.put("/v2.0/networks/nope/tags/red", json!(null));
    assert_eq!((st, error_type(&v)), (404, "NetworkNotFound"));
    let (_, v) = s.get("/v2.0/networks?changed_since=2000-01-01T00:00:00");
    assert_eq!(v["networks"].as_array().unwrap().len(), 2);

    // Tags at creation, one object or a bulk (`tag-ports-during-bulk-creation`); bad tags refuse the
    // whole bulk.
    let tagged = s.create("port", json!({"network_id": nid, "tags": ["a", "b"]}));
    assert_eq!(tagged["tags"], json!(["a", "b"]), "{tagged}");
    let (st, v) = s.post(
        "/v2.0/ports",
        json!({"ports": [{"network_id": nid, "name": "t1", "tags": ["x"]}, {"network_id": nid, "name": "t2"}]}),
    );
    let tags: Vec<Value> =
        v["ports"].as_array().map(|l| l.iter().map(|p| p["tags"].clone()).collect()).unwrap_or_default();
    assert_eq!((st, tags), (201, vec![json!(["x"]), json!([])]), "{v}");
    let (_, v) = s.get("/v2.0/ports?tags=x");
    assert_eq!(v["ports"].as_array().unwrap().len(), 1, "stored: {v}");
    let before = s.get("/v2.0/ports").1["ports"].as_array().unwrap().len();
    for bad in [json!(["y", "y"]), json!("y"), json!([7]), json!(["y".repeat(256)])] {
        let (st, v) = s.post(
            "/v2.0/ports",
            json!({"ports": [{"network_id": nid, "tags": ["fine"]}, {"network_id": nid, "tags": bad}]}),
        );
        assert_eq!(st, 400, "{bad}: {v}");
    }
    assert_eq!(s.get("/v2.0/ports").1["ports"].as_array().unwrap().len(), before, "nothing of the bulks made");
    let (st, v) = s.post("/v2.0/security-groups", json!({"security_group": {"name": "tagged", "tags": ["web"]}}));
    assert_eq!((st, v["security_group"]["tags"].clone()), (201, json!(["web"])), "every resource: {v}");
    let (_, v) = s.get("/v2.0/networks?changed_since=2999-01-01T00:00:00Z");
    assert_eq!(v["networks"], json!([]));
}

/// Neutron's checks that its plugin test suite holds an API to: `If-Match: revision_number=N` (412),
/// a parent's revision moving with its children, name and description lengths, a router's gateway
/// address kept, allowed address pairs, one floating IP per fixed IP, MTUs per IP version.
#[test]
fn revisions_lengths_pairs_and_mtus() {
    let s = serve("checks");
    let net = s.create("network", json!({"name": "n"}));
    let nid = net["id"].as_str().unwrap().to_owned();
    let path = format!("/v2.0/networks/{nid}");
    let rev = net["revision_number"].as_u64().unwrap();
    let if_match = |n: u64, body: Value| {
        let (method, b) = ("PUT", body.to_string());
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", s.addr()))
            .header("If-Match", format!("revision_number={n}"))
            .header("Content-Type", "application/json")
            .body(b)
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        agent.run(req).unwrap().status().as_u16()
    };
    assert_eq!(if_match(rev + 100, json!({"network": {"name": "x"}})), 412, "a stale revision");
    assert_eq!(if_match(rev, json!({"network": {"name": "x"}})), 200);

    let (st, v) = s.post("/v2.0/networks", json!({"network": {"name": "n".repeat(256)}}));
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"));
    assert_eq!(s.put(&path, json!({"network": {"description": "d".repeat(256)}})).0, 400);
    assert_eq!(s.put(&path, json!({"network": {"description": "d".repeat(255)}})).0, 200);

    // A router's revision moves with its interfaces; a group's with its rules.
    let sub = s.create("subnet", json!({"network_id": nid, "cidr": "10.6.0.0/24", "ip_version": 4}));
    let r = s.create("router", json!({"name": "r"}));
    let rpath = format!("/v2.0/routers/{}", r["id"].as_str().unwrap());
    let (st, _) = s.put(&format!("{rpath}/add_router_interface"), json!({"subnet_id": sub["id"]}));
    assert_eq!(st, 200);
    assert!(s.get(&rpath).1["router"]["revision_number"].as_u64() > r["revision_number"].as_u64());
    let (st, v) = s.put(&format!("{rpath}/add_router_interface"), json!({"port_id": "not-a-uuid"}));
    assert_eq!(st, 400, "{v}");
    let (st, v) =
        s.put(&format!("/v2.0/subnets/{}", sub["id"].as_str().unwrap()), json!({"subnet": {"gateway_ip": "10.6.0.9"}}));
    assert_eq!((st, error_type(&v)), (409, "GatewayIpInUse"), "the router's interface has it: {v}");
    let (_, g) = s.post("/v2.0/security-groups", json!({"security_group": {"name": "g"}}));
    let g = &g["security_group"];
    let gpath = format!("/v2.0/security-groups/{}", g["id"].as_str().unwrap());
    let (_, rule) = s.post(
        "/v2.0/security-group-rules",
        json!({"security_group_rule": {"security_group_id": g["id"], "direction": "ingress"}}),
    );
    let after_rule = s.get(&gpath).1["security_group"]["revision_number"].as_u64();
    assert!(after_rule > g["revision_number"].as_u64());
    s.delete(&format!("/v2.0/security-group-rules/{}", rule["security_group_rule"]["id"].as_str().unwrap()));
    assert!(s.get(&gpath).1["security_group"]["revision_number"].as_u64() > after_rule);

    // Allowed address pairs: valid, once each, at most 10, only with port security.
    let pairs = |ps: Value| s.post("/v2.0/ports", json!({"port": {"network_id": nid, "allowed_address_pairs": ps}}));
    assert_eq!(
        pairs(json!([{"ip_address": "10.6.0.50"}, {"ip_address": "10.6.1.0/24", "mac_address": "fa:16:3e:00:00:09"}]))
            .0,
        201
    );
    assert_eq!(pairs(json!([{"ip_address": "12.12.12.a"}])).0, 400);
    assert_eq!(pairs(json!([{"ip_address": "10.6.0.50"}, {"ip_address": "10.6.0.50"}])).0, 400);
    let many: Vec<Value> = (0..11).map(|i| json!({"ip_address": format!("10.6.2.{i}")})).collect();
    assert_eq!(pairs(json!(many)).0, 400);
    let (st, v) = s.post("/v2.0/ports", json!({"port": {"network_id": nid, "port_security_enabled": false, "allowed_address_pairs": [{"ip_address": "10.6.0.51"}]}}));
    assert_eq!((st, error_type(&v)), (409, "AddressPairAndPortSecurityRequired"), "{v}");

    // One floating IP per fixed IP.
    let (_, ext) = s.post("/v2.0/networks", json!({"network": {"name": "public", "router:external": true}}));
    let ext_id = ext["network"]["id"].as_str().unwrap().to_owned();
    s.post("/v2.0/subnets", json!({"subnet": {"network_id": ext_id, "cidr": "203.0.113.0/24", "ip_version": 4}}));
    s.put(&rpath, json!({"router": {"external_gateway_info": {"network_id": ext_id}}}));
    let port = s.create("port", json!({"network_id": nid}));
    let f1 = s.create("floatingip", json!({"floating_network_id": ext_id, "port_id": port["id"]}));
    assert_eq!(f1["port_id"], port["id"]);
    assert_eq!(
        (f1["port_details"]["network_id"].as_str(), &f1["port_details"]["mac_address"]),
        (Some(nid.as_str()), &port["mac_address"]),
        "{f1}"
    );
    let ext2 = s.create("subnet", json!({"network_id": ext_id, "cidr": "198.51.100.0/24", "ip_version": 4}));
    let (_, v) = s.get("/v2.0/floatingip-pools");
    let pools: Vec<(&str, &str)> = v["floatingip_pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["network_id"].as_str().unwrap(), p["cidr"].as_str().unwrap()))
        .collect();
    let mut pools = pools;
    pools.sort();
    assert_eq!(pools, [(ext_id.as_str(), "198.51.100.0/24"), (ext_id.as_str(), "203.0.113.0/24")], "{v}");
    let f2 = s.create("floatingip", json!({"floating_network_id": ext_id, "subnet_id": ext2["id"]}));
    assert!(f2["floating_ip_address"].as_str().unwrap().starts_with("198.51.100."), "from the pool asked for: {f2}");
    let (st, v) =
        s.post("/v2.0/floatingips", json!({"floatingip": {"floating_network_id": ext_id, "port_id": port["id"]}}));
    assert_eq!((st, error_type(&v)), (409, "FloatingIPPortAlreadyAssociated"), "{v}");
    let fpath = format!("/v2.0/floatingips/{}", f1["id"].as_str().unwrap());
    let (_, v) = s.put(&fpath, json!({"floatingip": {"description": "d2"}}));
    assert_eq!(v["floatingip"]["port_id"], port["id"], "a description change keeps the association");
    let (_, v) = s.put(&fpath, json!({"floatingip": {}}));
    assert_eq!(
        (v["floatingip"]["port_id"].clone(), v["floatingip"]["description"].as_str()),
        (Value::Null, Some("d2")),
        "an empty update clears it"
    );

    // A network may have a small MTU; a subnet of an IP version it cannot carry may not.
    let small = s.create("network", json!({"name": "small", "mtu": 67}));
    let (st, v) =
        s.post("/v2.0/subnets", json!({"subnet": {"network_id": small["id"], "cidr": "10.9.0.0/24", "ip_version": 4}}));
    assert_eq!((st, error_type(&v)), (409, "NetworkMTUTooSmall"), "{v}");
    let mid = s.create("network", json!({"name": "mid", "mtu": 1280}));
    s.create("subnet", json!({"network_id": mid["id"], "cidr": "2001:db8:9::/64", "ip_version": 6}));
    let (st, v) = s.put(&format!("/v2.0/networks/{}", mid["id"].as_str().unwrap()), json!({"network": {"mtu": 1279}}));
    assert_eq!((st, error_type(&v)), (409, "NetworkMTUTooSmall"), "{v}");
}

/// Subnet pools (`subnet_allocation`): subnets take a CIDR asked for inside the pool, or the first free
/// block of a prefix length; a project's quota; prefixes only grow; a pool in use stays.
#[test]
fn subnet_pools_allocate_cidrs() {
    let s = serve("pools");
    let (st, pool) = s.post(
        "/v2.0/subnetpools",
        json!({"subnetpool": {"name": "p", "prefixes": ["10.11.12.0/24"], "min_prefixlen": "28", "max_prefixlen": 30, "default_quota": 32, "project_id": "t"}}),
    );
    assert_eq!(st, 201, "{pool}");
    let pool = &pool["subnetpool"];
    assert_eq!(
        (pool["min_prefixlen"].as_str(), pool["default_prefixlen"].as_str(), pool["max_prefixlen"].as_str()),
        (Some("28"), Some("28"), Some("30")),
        "as strings, as Neutron shows them"
    );
    assert_eq!((pool["ip_version"].as_u64(), pool["shared"].as_bool()), (Some(4), Some(false)));
    let pid = pool["id"].as_str().unwrap().to_owned();
    let net = s.create("network", json!({"name": "n", "project_id": "t"}));
    let subnet = |extra: Value| {
        let mut b = json!({"network_id": net["id"], "subnetpool_id": pid, "project_id": "t"});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        s.post("/v2.0/subnets", json!({ "subnet": b }))
    };
    let (st, a) = subnet(json!({}));
    assert_eq!(
        (st, a["subnet"]["cidr"].as_str(), a["subnet"]["subnetpool_id"].as_str()),
        (201, Some("10.11.12.0/28"), Some(pid.as_str())),
        "{a}"
    );
    assert_eq!(a["subnet"]["gateway_ip"], "10.11.12.1");
    let (st, b) = subnet(json!({"prefixlen": 30}));
    assert_eq!((st, b["subnet"]["cidr"].as_str()), (201, Some("10.11.12.16/30")), "{b}");
    let (st, v) = subnet(json!({"cidr": "10.11.12.16/29"}));
    assert_eq!((st, error_type(&v)), (409, "SubnetAllocationError"), "overlaps: {v}");
    let (st, v) = subnet(json!({"cidr": "10.11.13.0/28"}));
    assert_eq!(st, 400, "outside the pool: {v}");
    let (st, v) = subnet(json!({"prefixlen": 24}));
    assert_eq!(st, 400, "shorter than min_prefixlen: {v}");
    let (st, v) = subnet(json!({"ip_version": 6}));
    assert_eq!(st, 400, "{v}");
    let (st, v) = subnet(json!({"cidr": "10.11.12.32/28"}));
    assert_eq!((st, error_type(&v)), (409, "SubnetPoolQuotaExceeded"), "16 + 4 + 16 > 32: {v}");
    let (st, v) =
        s.post("/v2.0/subnets", json!({"subnet": {"network_id": net["id"], "cidr": "10.50.0.0/24", "ip_version": 4}}));
    assert_eq!(st, 400, "one pool per network and IP version: {v}");
    let (st, v) =
        s.post("/v2.0/subnets", json!({"subnet": {"network_id": net["id"], "subnetpool_id": "nope", "ip_version": 4}}));
    assert_eq!((st, error_type(&v)), (404, "SubnetPoolNotFound"), "{v}");

    let path = format!("/v2.0/subnetpools/{pid}");
    let (st, v) = s.put(&path, json!({"subnetpool": {"prefixes": ["10.11.15.0/24"]}}));
    assert_eq!((st, error_type(&v)), (400, "IllegalSubnetPoolPrefixUpdate"), "a prefix dropped: {v}");
    let (st, v) = s.put(&path, json!({"subnetpool": {"prefixes": ["10.11.0.0/16"]}}));
    assert_eq!((st, v["subnetpool"]["prefixes"].clone()), (200, json!(["10.11.0.0/16"])), "extended: {v}");
    let (st, v) = s.put(&path, json!({"subnetpool": {"shared": true}}));
    assert_eq!(st, 400, "shared is set once: {v}");
    let (st, v) = s.put(&path, json!({"subnetpool": {"min_prefixlen": 31}}));
    assert_eq!(st, 400, "its subnets are /28 and /30: {v}");
    let (st, v) = s.put(&format!("{path}/add_prefixes"), json!({"prefixes": ["10.20.0.0/24", "10.11.5.0/24"]}));
    assert_eq!((st, v), (200, json!({"prefixes": ["10.11.0.0/16", "10.20.0.0/24"]})), "one inside another is dropped");
    let (st, v) = s.put(&format!("{path}/remove_prefixes"), json!({"prefixes": ["10.11.0.0/16"]}));
    assert_eq!((st, error_type(&v)), (409, "IllegalSubnetPoolUpdate"), "its subnets are there: {v}");
    let (st, v) = s.put(&format!("{path}/remove_prefixes"), json!({"prefixes": ["10.20.0.0/24"]}));
    assert_eq!((st, v), (200, json!({"prefixes": ["10.11.0.0/16"]})));
    let (st, v) = s.delete(&path);
    assert_eq!((st, error_type(&v)), (409, "SubnetPoolInUse"));
    for sub in [&a, &b] {
        assert_eq!(s.delete(&format!("/v2.0/subnets/{}", sub["subnet"]["id"].as_str().unwrap())).0, 204);
    }
    assert_eq!(s.delete(&path).0, 204);
    let (st, v) = s.post(
        "/v2.0/subnetpools",
        json!({"subnetpool": {"name": "v6", "prefixes": ["2001:db8:3::/48"], "min_prefixlen": 64}}),
    );
    assert_eq!((st, v["subnetpool"]["max_prefixlen"].as_str()), (201, Some("128")), "{v}");
    let (st, v) = s.post("/v2.0/subnetpools", json!({"subnetpool": {"prefixes": ["10.0.0.0/8", "2001:db8::/32"]}}));
    assert_eq!(st, 400, "one IP version: {v}");
}

/// The operator's default quotas (`--default-quotas`) limit every project without its own; the operator's
/// objects (no project, authentication off) are not counted.
#[test]
fn default_quotas_limit_projects_not_the_operator() {
    let quotas = control::api::QuotaDefaults::parse("network=1").unwrap();
    let s = serve_settings("default-quotas", Settings { quotas: quotas.into(), ..Default::default() }, |r| r);
    s.create("network", json!({"name": "a", "project_id": "px"}));
    let (st, v) = s.post("/v2.0/networks", json!({"network": {"name": "b", "project_id": "px"}}));
    assert_eq!((st, error_type(&v)), (409, "OverQuota"), "{v}");
    s.create("network", json!({"name": "a", "project_id": "py"}));
    for name in ["o1", "o2"] {
        s.create("network", json!({ "name": name }));
    }
    let (_, v) = s.get("/v2.0/quotas/px");
    assert_eq!(v["quota"]["network"], 1, "{v}");
}

/// Network IP availability: each network's addresses in its subnets' pools and in use, per subnet,
/// filtered by IP version; and a port's MAC regenerated by updating it to null.
#[test]
fn ip_availability_and_mac_regeneration() {
    let s = serve("ip-availability");
    let net = s.create("network", json!({"name": "n"}));
    let id = net["id"].as_str().unwrap();
    let path = format!("/v2.0/network-ip-availabilities/{id}");
    let (st, v) = s.get(&path);
    let a = &v["network_ip_availability"];
    assert_eq!(
        (st, a["total_ips"].clone(), a["used_ips"].clone(), a["network_name"].clone()),
        (200, json!(0), json!(0), json!("n")),
        "{v}"
    );

    let v4 =
        s.create("subnet", json!({"network_id": id, "cidr": "10.0.0.0/28", "ip_version": 4, "enable_dhcp": false}));
    let v6 =
        s.create("subnet", json!({"network_id": id, "cidr": "2001:db8::/64", "ip_version": 6, "enable_dhcp": false}));
    let port = s.create("port", json!({"network_id": id}));
    assert_eq!(port["fixed_ips"].as_array().unwrap().len(), 2, "{port}");
    let (_, v) = s.get(&path);
    let a = &v["network_ip_availability"];
    assert_eq!(
        (a["total_ips"].clone(), a["used_ips"].clone()),
        (json!(u64::MAX), json!(2)),
        "2^64 - 2 + 13 is capped: {v}"
    );
    let subnet = |v: &Value, sid: &Value| {
        v["subnet_ip_availability"].as_array().unwrap().iter().find(|x| x["subnet_id"] == *sid).cloned().unwrap()
    };
    let s4 = subnet(a, &v4["id"]);
    assert_eq!(
        (s4["total_ips"].clone(), s4["used_ips"].clone(), s4["cidr"].clone()),
        (json!(13), json!(1), json!("10.0.0.0/28"))
    );
    assert_eq!(
        subnet(a, &v6["id"])["total_ips"],
        json!(u64::MAX - 1),
        "a /64 less the subnet-router anycast and gateway"
    );

    // The list, by IP version: only that version's subnets, only networks with one.
    s.create("network", json!({"name": "empty"}));
    let (_, v) = s.get("/v2.0/network-ip-availabilities?ip_version=4");
    let l = v["network_ip_availabilities"].as_array().unwrap();
    assert_eq!(l.len(), 1, "{v}");
    assert_eq!((l[0]["total_ips"].clone(), l[0]["used_ips"].clone()), (json!(13), json!(1)));
    let (_, v) = s.get("/v2.0/network-ip-availabilities?network_name=empty&fields=total_ips");
    assert_eq!(v, json!({"network_ip_availabilities": [{"total_ips": 0}]}));
    let (st, v) = s.get("/v2.0/network-ip-availabilities?ip_version=5");
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "{v}");
    let (st, v) = s.get("/v2.0/network-ip-availabilities?colour=red");
    assert_eq!(st, 400, "an unknown filter: {v}");
    let (st, v) = s.get("/v2.0/network-ip-availabilities/nope");
    assert_eq!((st, error_type(&v)), (404, "NetworkNotFound"));

    // A subnet without pools counts its whole CIDR, as Neutron does.
    let bare = s.create("network", json!({"name": "bare"}));
    s.create("subnet", json!({"network_id": bare["id"], "cidr": "10.9.0.0/24", "ip_version": 4, "allocation_pools": [], "enable_dhcp": false}));
    let (_, v) = s.get(&format!("/v2.0/network-ip-availabilities/{}", bare["id"].as_str().unwrap()));
    assert_eq!(v["network_ip_availability"]["total_ips"], 256, "{v}");

    // A port deleted gives its addresses back.
    let pid = port["id"].as_str().unwrap();
    let other = s.create("port", json!({"network_id": id}));
    assert_eq!(s.delete(&format!("/v2.0/ports/{pid}")).0, 204);
    assert_eq!(s.get(&path).1["network_ip_availability"]["used_ips"], 2);

    // `mac_address: null` is a new MAC, taken on the network.
    let opath = format!("/v2.0/ports/{}", other["id"].as_str().unwrap());
    let (st, v) = s.put(&opath, json!({"port": {"mac_address": null}}));
    let mac = v["port"]["mac_address"].as_str().unwrap_or_default().to_owned();
    assert_eq!(st, 200, "{v}");
    assert!(mac.starts_with("fa:16:3e:") && mac != other["mac_address"], "{mac}");
    let (st, v) = s.post("/v2.0/ports", json!({"port": {"network_id": id, "mac_address": mac}}));
    assert_eq!((st, error_type(&v)), (409, "MacAddressInUse"), "the new MAC is taken: {v}");
    let (st, v) = s.post("/v2.0/ports", json!({"port": {"network_id": id, "mac_address": other["mac_address"]}}));
    assert_eq!(st, 201, "the old one given back: {v}");
}

/// Default subnet pools (`default-subnetpools`): one per IP version; a subnet with
/// `use_default_subnetpool` takes its CIDR from the one of its version.
#[test]
fn a_default_pool_per_ip_version() {
    let s = serve("default-pools");
    let pool = |prefix: &str, default: Value| {
        s.post("/v2.0/subnetpools", json!({"subnetpool": {"name": "p", "prefixes": [prefix], "default_prefixlen": 26, "is_default": default, "shared": true}}))
    };
    let net = s.create("network", json!({"name": "n"}));
    let subnet = |extra: Value| {
        let mut body = json!({"network_id": net["id"], "use_default_subnetpool": true});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        s.post("/v2.0/subnets", json!({ "subnet": body }))
    };
    let (st, v) = subnet(json!({"ip_version": 4}));
    assert_eq!((st, v["NeutronError"]["message"].as_str()), (400, Some("No default subnetpool found for IPv4")), "{v}");
    let (st, v) = pool("10.20.0.0/16", json!(true));
    assert_eq!((st, v["subnetpool"]["is_default"].clone()), (201, json!(true)), "{v}");
    let default4 = v["subnetpool"]["id"].clone();
    let (st, v) = pool("10.30.0.0/16", json!("true"));
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "a second IPv4 default: {v}");
    let (st, v) = s.post(
        "/v2.0/subnetpools",
        json!({"subnetpool": {"name": "p6", "prefixes": ["2001:db8::/48"], "is_default": true}}),
    );
    assert_eq!(st, 201, "IPv6 has its own: {v}");
    let (_, v) = pool("10.30.0.0/16", json!(false));
    let other = v["subnetpool"]["id"].as_str().unwrap().to_owned();
    let (st, v) = s.put(&format!("/v2.0/subnetpools/{other}"), json!({"subnetpool": {"is_default": true}}));
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "{v}");
    let (st, v) = s.put(
        &format!("/v2.0/subnetpools/{}", default4.as_str().unwrap()),
        json!({"subnetpool": {"is_default": true, "name": "d"}}),
    );
    assert_eq!(st, 200, "the default itself stays the default: {v}");

    let (st, v) = subnet(json!({"ip_version": 4}));
    assert_eq!(
        (st, v["subnet"]["subnetpool_id"].clone(), v["subnet"]["cidr"].clone()),
        (201, default4, json!("10.20.0.0/26")),
        "{v}"
    );
    let (st, v) = subnet(json!({"ip_version": 4, "subnetpool_id": other}));
    assert_eq!(st, 400, "both: {v}");

    // In one bulk, the second default of a version is seen by the check as the first is made.
    let (st, v) = s.post(
        "/v2.0/subnetpools",
        json!({"subnetpools": [{"name": "a", "prefixes": ["10.40.0.0/16"]}, {"name": "b", "prefixes": ["2001:db9::/48"], "is_default": true}]}),
    );
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "IPv6 has a default already: {v}");
    let (_, v) = s.get("/v2.0/subnetpools?name=a");
    assert_eq!(v["subnetpools"], json!([]), "the bulk undone: {v}");
}

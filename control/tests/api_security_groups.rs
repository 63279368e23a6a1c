//! Neutron's security group semantics over HTTP on the real DB: `stateful` (`stateful-security-group`)
//! and its rules for groups in use and for ports; the `default` name; rules converted and checked as
//! Neutron does (protocol names and numbers, ICMP type and code, port ranges, prefixes with
//! `normalized_cidr`, duplicates); a group's deletion taking the rules that name it; and the
//! portsecurity rules for trusted (`network:`) ports and ports without an address.

mod api_server;

use api_server::{serve, Server};
use serde_json::{json, Value};
use test_support::error_type;

/// Creates a `one` (`network`, `port`, …) through `s`; its JSON (201 asserted).
fn create(s: &Server, one: &str, body: Value) -> Value {
    let path = format!("/v2.0/{}s", one.replace('_', "-"));
    let (st, v) = s.post(&path, json!({ one: body }));
    assert_eq!(st, 201, "{one} {body}: {v}");
    v[one].clone()
}

/// `PUT /v2.0/<one>s/<id>`: the status and the object (or the error).
fn put(s: &Server, one: &str, id: &str, body: Value) -> (u16, Value) {
    let (st, v) = s.put(&format!("/v2.0/{}s/{id}", one.replace('_', "-")), json!({ one: body }));
    (st, if st == 200 { v[one].clone() } else { v })
}

/// An object's id.
fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// The message of Neutron's error body.
fn message(v: &Value) -> &str {
    v["NeutronError"]["message"].as_str().unwrap_or_default()
}

/// A network with an IPv4 subnet; its id.
fn network(s: &Server, cidr: &str) -> String {
    let net = id(&create(s, "network", json!({ "name": "n" })));
    create(s, "subnet", json!({ "network_id": net, "cidr": cidr, "ip_version": 4 }));
    net
}

/// `stateful`: listed as an extension, true by default, set on create (a boolean or Neutron's strings)
/// and on update while no port uses the group (409 `SecurityGroupInUse` then); a port's groups are all
/// stateful or all stateless (409 `SecurityGroupConflict`).
#[test]
fn stateful_groups_and_their_rules() {
    let s = serve("sg-stateful");
    let (_, v) = s.get("/v2.0/extensions");
    let aliases: Vec<&str> = v["extensions"].as_array().unwrap().iter().filter_map(|e| e["alias"].as_str()).collect();
    for alias in ["stateful-security-group", "security-groups-normalized-cidr", "security-group"] {
        assert!(aliases.contains(&alias), "{alias}: {aliases:?}");
    }
    assert!(!aliases.contains(&"security-groups-remote-address-group"), "no address groups");

    let web = create(&s, "security_group", json!({ "name": "web" }));
    assert_eq!(web["stateful"], true, "{web}");
    let udp = create(&s, "security_group", json!({ "name": "udp", "stateful": false }));
    assert_eq!(udp["stateful"], false);
    let other = create(&s, "security_group", json!({ "name": "other", "stateful": "False" }));
    assert_eq!(other["stateful"], false, "Neutron's convert_to_boolean");
    let (st, v) = s.post("/v2.0/security-groups", json!({ "security_group": { "name": "x", "stateful": "maybe" } }));
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "{v}");
    let (_, v) = s.get("/v2.0/security-groups?stateful=false");
    let names: Vec<&str> = v["security_groups"].as_array().unwrap().iter().filter_map(|g| g["name"].as_str()).collect();
    assert_eq!(names.len(), 2, "filtered on stateful: {names:?}");

    // Not in use: stateful may change, both ways.
    let (st, v) = put(&s, "security_group", &id(&other), json!({ "stateful": true }));
    assert_eq!((st, &v["stateful"]), (200, &json!(true)), "{v}");
    let (st, v) = put(&s, "security_group", &id(&other), json!({ "stateful": false }));
    assert_eq!((st, &v["stateful"]), (200, &json!(false)), "{v}");

    // A port's groups: not stateful and stateless at once, on create or on update.
    let net = network(&s, "10.70.0.0/24");
    let (st, v) =
        s.post("/v2.0/ports", json!({ "port": { "network_id": net, "security_groups": [id(&web), id(&udp)] } }));
    assert_eq!((st, error_type(&v)), (409, "SecurityGroupConflict"), "{v}");
    assert!(message(&v).contains("Cannot apply both stateful and stateless security groups"), "{v}");
    let (st, v) =
        s.post("/v2.0/ports", json!({ "port": { "network_id": net, "security_groups": [id(&udp), id(&udp)] } }));
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "a group twice, as Neutron's uuid_list: {v}");
    let p = create(&s, "port", json!({ "network_id": net, "security_groups": [id(&udp)] }));
    let (st, v) = put(&s, "port", &id(&p), json!({ "security_groups": [id(&udp), id(&web)] }));
    assert_eq!((st, error_type(&v)), (409, "SecurityGroupConflict"), "{v}");
    let (st, v) = put(&s, "port", &id(&p), json!({ "security_groups": [id(&udp), id(&other)] }));
    assert_eq!(st, 200, "two stateless groups: {v}");

    // In use: stateful stays (another attribute may change, or stateful to what it is).
    let (st, v) = put(&s, "security_group", &id(&udp), json!({ "stateful": true }));
    assert_eq!((st, error_type(&v)), (409, "SecurityGroupInUse"), "{v}");
    assert_eq!(message(&v), format!("Security Group {} in use.", id(&udp)));
    let (st, v) = put(&s, "security_group", &id(&udp), json!({ "stateful": false, "description": "d" }));
    assert_eq!((st, &v["description"]), (200, &json!("d")), "{v}");
    // Free again: it may change.
    let (st, _) = put(&s, "port", &id(&p), json!({ "security_groups": [] }));
    assert_eq!(st, 200);
    let (st, v) = put(&s, "security_group", &id(&udp), json!({ "stateful": true }));
    assert_eq!((st, &v["stateful"]), (200, &json!(true)), "{v}");
}

/// `default` is the project's own group's name: no other group takes it, and it keeps it; the project's
/// default group is made with its first group.
#[test]
fn only_the_default_group_is_default() {
    let s = serve("sg-default");
    let g = create(&s, "security_group", json!({ "name": "web", "project_id": "p1" }));
    let (_, v) = s.get("/v2.0/security-groups?project_id=p1&name=default");
    let default = v["security_groups"].as_array().unwrap();
    assert_eq!(default.len(), 1, "the project's default group, made with its first group: {v}");
    let default = id(&default[0]);
    for name in ["default", "Default"] {
        let (st, v) = s.post("/v2.0/security-groups", json!({ "security_group": { "name": name } }));
        assert_eq!((st, error_type(&v)), (409, "SecurityGroupDefaultAlreadyExists"), "{v}");
    }
    let (st, v) = put(&s, "security_group", &id(&g), json!({ "name": "DEFAULT" }));
    assert_eq!((st, error_type(&v)), (409, "SecurityGroupDefaultAlreadyExists"), "{v}");
    let (st, v) = put(&s, "security_group", &default, json!({ "name": "mine" }));
    assert_eq!((st, error_type(&v)), (409, "SecurityGroupCannotUpdateDefault"), "{v}");
    let (st, v) = put(&s, "security_group", &default, json!({ "description": "ours" }));
    assert_eq!((st, &v["description"]), (200, &json!("ours")), "{v}");
    // Its rules say they belong to a default group; the other group's do not.
    let (_, v) = s.get(&format!("/v2.0/security-group-rules?security_group_id={default}"));
    let rules = v["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    assert!(rules.iter().all(|r| r["belongs_to_default_sg"] == true && r["project_id"] == "p1"), "{v}");
    assert!(g["security_group_rules"].as_array().unwrap().iter().all(|r| r["belongs_to_default_sg"] == false));
}

/// Rules as Neutron converts and refuses them: the error types (its exception names) and messages.
#[test]
fn rules_are_converted_and_checked_as_neutron_does() {
    let s = serve("sg-rules");
    let g = id(&create(&s, "security_group", json!({ "name": "web" })));
    let rule = |extra: Value| {
        let mut body = json!({ "security_group_id": g, "direction": "ingress" });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    // A protocol and a port range (null: not given).
    let ports =
        |p: &str, min: Value, max: Value| json!({ "protocol": p, "port_range_min": min, "port_range_max": max });
    let null = Value::Null;
    let refused = [
        (json!({ "protocol": "carrier-pigeon" }), 400, "SecurityGroupRuleInvalidProtocol"),
        (json!({ "protocol": 256 }), 400, "SecurityGroupRuleInvalidProtocol"),
        (json!({ "ethertype": "IPv5" }), 400, "SecurityGroupRuleInvalidEtherType"),
        (json!({ "direction": "sideways" }), 400, "HTTPBadRequest"),
        (ports("tcp", json!(90), json!(80)), 400, "SecurityGroupInvalidPortRange"),
        (ports("tcp", json!(80), null.clone()), 400, "SecurityGroupInvalidPortRange"),
        (ports("tcp", json!(0), json!(80)), 400, "SecurityGroupInvalidPortValue"),
        (ports("udp", json!(1), json!(70000)), 400, "SecurityGroupInvalidPortValue"),
        (json!({ "port_range_min": 80, "port_range_max": 80 }), 400, "SecurityGroupProtocolRequiredWithPorts"),
        (ports("icmp", json!(256), null.clone()), 400, "SecurityGroupInvalidIcmpValue"),
        (ports("icmp", json!(8), json!(256)), 400, "SecurityGroupInvalidIcmpValue"),
        (ports("icmp", null.clone(), json!(0)), 400, "SecurityGroupMissingIcmpType"),
        (ports("gre", json!(1), json!(2)), 400, "SecurityGroupInvalidProtocolForPort"),
        (json!({ "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8" }), 400, "SecurityGroupRuleParameterConflict"),
        (json!({ "remote_ip_prefix": "10.0.0.0/33" }), 400, "InvalidCIDR"),
        (json!({ "protocol": "ipv6-icmp" }), 400, "SecurityGroupEthertypeConflictWithProtocol"),
        (json!({ "protocol": "58" }), 400, "SecurityGroupEthertypeConflictWithProtocol"),
        (json!({ "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": g }), 400, "SecurityGroupMultipleRemoteEntites"),
        (json!({ "remote_address_group_id": "ag" }), 400, "HTTPBadRequest"),
        (json!({ "remote_group_id": "nope" }), 404, "SecurityGroupNotFound"),
    ];
    for (extra, status, kind) in refused {
        let body = rule(extra);
        let (st, v) = s.post("/v2.0/security-group-rules", json!({ "security_group_rule": body }));
        assert_eq!((st, error_type(&v)), (status, kind), "{body}: {v}");
    }
    let (st, v) = s.post(
        "/v2.0/security-group-rules",
        json!({ "security_group_rule": { "security_group_id": "nope", "direction": "ingress" } }),
    );
    assert_eq!((st, error_type(&v), message(&v)), (404, "SecurityGroupNotFound", "Security group nope does not exist"));
    let code_only = rule(ports("icmp", null, json!(3)));
    let (_, v) = s.post("/v2.0/security-group-rules", json!({ "security_group_rule": code_only }));
    assert_eq!(message(&v), "ICMP code (port-range-max) 3 is provided but ICMP type (port-range-min) is missing.");

    // What is stored and shown.
    let shown = |extra: Value| create(&s, "security_group_rule", rule(extra));
    let r = shown(
        json!({ "protocol": "TCP", "port_range_min": "22", "port_range_max": 22, "remote_ip_prefix": "10.1.2.3/16" }),
    );
    assert_eq!((&r["protocol"], &r["port_range_min"], &r["port_range_max"]), (&json!("tcp"), &json!(22), &json!(22)));
    assert_eq!((&r["remote_ip_prefix"], &r["normalized_cidr"]), (&json!("10.1.2.3/16"), &json!("10.1.0.0/16")), "{r}");
    assert_eq!((&r["ethertype"], &r["remote_group_id"]), (&json!("IPv4"), &Value::Null));
    let r = shown(
        json!({ "ethertype": "ipv6", "protocol": "icmp", "port_range_min": 128, "remote_ip_prefix": "2001:db8::1" }),
    );
    assert_eq!((&r["ethertype"], &r["protocol"]), (&json!("IPv6"), &json!("ipv6-icmp")), "ICMP on IPv6 is ipv6-icmp");
    assert_eq!((&r["remote_ip_prefix"], &r["normalized_cidr"]), (&json!("2001:db8::1/128"), &json!("2001:db8::1/128")));
    let r = shown(json!({ "protocol": "udp", "port_range_min": 1, "port_range_max": 65535 }));
    assert_eq!((&r["port_range_min"], &r["port_range_max"]), (&Value::Null, &Value::Null), "the whole range is none");
    let r = shown(json!({ "protocol": "any", "direction": "egress", "remote_group_id": g }));
    assert_eq!((&r["protocol"], &r["remote_group_id"]), (&Value::Null, &json!(g)), "any protocol; the group itself");
    let r = shown(json!({ "protocol": 132 }));
    assert_eq!((&r["protocol"], &r["normalized_cidr"]), (&json!("132"), &Value::Null));

    // The same rule again, by another name: 409, naming the rule there is.
    let (st, v) =
        s.post("/v2.0/security-group-rules", json!({ "security_group_rule": rule(json!({ "protocol": "sctp" })) }));
    assert_eq!((st, error_type(&v)), (409, "SecurityGroupRuleExists"), "sctp is 132: {v}");
    assert_eq!(message(&v), format!("Security group rule already exists. Rule id is {}.", id(&r)));
    let tcp = json!({ "protocol": 6, "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.1.2.3/16" });
    assert_eq!(s.post("/v2.0/security-group-rules", json!({ "security_group_rule": rule(tcp) })).0, 409);
    let everywhere = json!({ "direction": "egress", "ethertype": "IPv6", "remote_ip_prefix": "::/0" });
    let (st, v) = s.post("/v2.0/security-group-rules", json!({ "security_group_rule": rule(everywhere) }));
    assert_eq!((st, error_type(&v)), (409, "SecurityGroupRuleExists"), "::/0 is the egress rule the group has: {v}");
}

/// A group's deletion takes its rules and the other groups' rules that name it as their remote group
/// (Neutron's foreign keys cascade); in use by a port, it stays.
#[test]
fn a_deleted_group_takes_the_rules_that_name_it() {
    let s = serve("sg-cascade");
    let (a, b) =
        (create(&s, "security_group", json!({ "name": "a" })), create(&s, "security_group", json!({ "name": "b" })));
    let ssh = json!({ "security_group_id": id(&a), "direction": "ingress", "protocol": "tcp",
                      "port_range_min": 22, "port_range_max": 22, "remote_group_id": id(&b) });
    let r = create(&s, "security_group_rule", ssh);
    let net = network(&s, "10.71.0.0/24");
    let p = create(&s, "port", json!({ "network_id": net, "security_groups": [id(&b)] }));
    let (st, v) = s.delete(&format!("/v2.0/security-groups/{}", id(&b)));
    assert_eq!((st, error_type(&v)), (409, "SecurityGroupInUse"));
    assert_eq!(s.get(&format!("/v2.0/security-group-rules/{}", id(&r))).0, 200, "kept while b stays");
    assert_eq!(s.delete(&format!("/v2.0/ports/{}", id(&p))).0, 204);
    assert_eq!(s.delete(&format!("/v2.0/security-groups/{}", id(&b))).0, 204);
    let (st, v) = s.get(&format!("/v2.0/security-group-rules/{}", id(&r)));
    assert_eq!((st, error_type(&v)), (404, "SecurityGroupRuleNotFound"), "gone with its remote group: {v}");
    let (_, v) = s.get(&format!("/v2.0/security-groups/{}", id(&a)));
    assert_eq!(v["security_group"]["security_group_rules"].as_array().unwrap().len(), 2, "a's egress rules: {v}");
}

/// Neutron's portsecurity rules beyond `api_ports.rs`'s: a trusted port (`device_owner` `network:…`) has
/// no port security and no group (groups asked for: 400); a port needs no address for groups; a port
/// keeps the port security it was made with; `security_groups: null` is none.
#[test]
fn trusted_ports_have_no_groups_and_groups_need_no_address() {
    let s = serve("sg-ports");
    let g = id(&create(&s, "security_group", json!({ "name": "web" })));
    let net = network(&s, "10.72.0.0/24");
    let dhcp = create(&s, "port", json!({ "network_id": net, "device_owner": "network:dhcp", "device_id": "mine" }));
    assert_eq!((&dhcp["port_security_enabled"], &dhcp["security_groups"]), (&json!(false), &json!([])), "{dhcp}");
    let body =
        json!({ "port": { "network_id": net, "device_owner": "network:router_interface", "security_groups": [g] } });
    let (st, v) = s.post("/v2.0/ports", body);
    assert_eq!((st, error_type(&v)), (400, "PortSecurityAndIPRequiredForSecurityGroups"), "{v}");

    // No subnet, no address: the default group all the same, and another one asked for.
    let bare = id(&create(&s, "network", json!({ "name": "bare" })));
    let p = create(&s, "port", json!({ "network_id": bare }));
    assert_eq!((&p["fixed_ips"], p["security_groups"].as_array().unwrap().len()), (&json!([]), 1), "{p}");
    assert_eq!(p["port_security_enabled"], true, "the network's, shown");
    let (st, v) = put(&s, "port", &id(&p), json!({ "security_groups": [g] }));
    assert_eq!((st, &v["security_groups"]), (200, &json!([g])), "{v}");
    // The network's port security changes later: the port keeps its own.
    let (st, _) = put(&s, "network", &bare, json!({ "port_security_enabled": false }));
    assert_eq!(st, 200);
    let (_, v) = s.get(&format!("/v2.0/ports/{}", id(&p)));
    assert_eq!((&v["port"]["port_security_enabled"], &v["port"]["security_groups"]), (&json!(true), &json!([g])));
    let q = create(&s, "port", json!({ "network_id": bare }));
    assert_eq!((&q["port_security_enabled"], &q["security_groups"]), (&json!(false), &json!([])), "{q}");

    // null: no group.
    let n = create(&s, "port", json!({ "network_id": net, "security_groups": null }));
    assert_eq!(n["security_groups"], json!([]), "{n}");
    let (st, v) = put(&s, "port", &id(&p), json!({ "security_groups": null }));
    assert_eq!((st, &v["security_groups"]), (200, &json!([])), "{v}");
    let (st, v) = put(&s, "port", &id(&p), json!({ "security_groups": ["nope"] }));
    assert_eq!((st, error_type(&v), message(&v)), (404, "SecurityGroupNotFound", "Security group nope does not exist"));
}

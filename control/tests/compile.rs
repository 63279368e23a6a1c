//! The local controller's compiler on a small cloud: what a node holds (selective distribution) and how
//! the pipeline then handles its traffic (local switching, routing, remote ports, ARP for remote ones).

use control::compile::{compile, networks_needed, Links, Model, Summary};
use control::keys::Keys;
use control::model::{FixedIp, Network, Port, Route, Router, Subnet, ROUTER_INTERFACE};
use pipelines::buf::{HeapBuf, PacketBuf};
use pipelines::drop::Reason;
use pipelines::fixtures::{arp, arp_request, udp4};
use pipelines::meta::{Action, Meta};
use pipelines::stages;
use pipelines::wire::{ArpOperation, Ipv4Addr, Mac};

fn network(id: &str) -> Network {
    serde_json::from_value(serde_json::json!({"id": id})).unwrap()
}

fn subnet(id: &str, net: &str, cidr: &str) -> Subnet {
    serde_json::from_value(serde_json::json!({"id": id, "network_id": net, "ip_version": 4, "cidr": cidr})).unwrap()
}

fn port(id: &str, net: &str, subnet: &str, mac: &str, ip: &str, host: &str) -> Port {
    let mut p = Port::new(id.into(), net.into());
    p.mac_address = mac.into();
    p.fixed_ips = vec![FixedIp { subnet_id: subnet.into(), ip_address: ip.into() }];
    p.host_id = host.into();
    p
}

fn cloud() -> Model {
    let mut m = Model::default();
    for n in ["net1", "net2", "net3"] {
        m.networks.insert(n.into(), network(n));
    }
    for (s, n, c) in [("s1", "net1", "10.0.0.0/24"), ("s2", "net2", "10.2.0.0/24"), ("s3", "net3", "10.3.0.0/24")] {
        m.subnets.insert(s.into(), subnet(s, n, c));
    }
    let ports = [
        port("vm1", "net1", "s1", "fa:16:3e:00:00:01", "10.0.0.5", "here"),
        port("vm2", "net1", "s1", "fa:16:3e:00:00:02", "10.0.0.6", "other"),
        port("vm3", "net2", "s2", "fa:16:3e:00:00:03", "10.2.0.3", "here"),
        port("vm4", "net3", "s3", "fa:16:3e:00:00:04", "10.3.0.4", "other"),
    ];
    // Port security on, and a group that lets everything through (no group would let nothing).
    for p in ports {
        m.ports.insert(p.id.clone(), Port { security_groups: vec!["open".into()], ..p });
    }
    let g = serde_json::json!({"id": "open"});
    m.security_groups.insert("open".into(), serde_json::from_value(g).unwrap());
    for d in ["ingress", "egress"] {
        let r = serde_json::json!({"id": d, "security_group_id": "open", "direction": d, "ethertype": "IPv4"});
        m.security_group_rules.insert(d.into(), serde_json::from_value(r).unwrap());
    }
    for (id, net, sub, mac, ip) in [
        ("r1-a", "net1", "s1", "fa:16:3e:00:00:fe", "10.0.0.1"),
        ("r1-b", "net2", "s2", "fa:16:3e:00:00:fd", "10.2.0.1"),
    ] {
        let mut p = port(id, net, sub, mac, ip, "");
        (p.device_owner, p.device_id) = (ROUTER_INTERFACE.into(), "r1".into());
        m.ports.insert(id.into(), p);
    }
    let mut r: Router = serde_json::from_value(serde_json::json!({"id": "r1"})).unwrap();
    r.routes = vec![Route { destination: "10.9.0.0/16".into(), nexthop: "10.2.0.3".into() }];
    m.routers.insert("r1".into(), r);
    m
}

fn plumbed(p: &Port) -> Option<u16> {
    match p.id.as_str() {
        "vm1" => Some(0),
        "vm3" => Some(1),
        _ => None,
    }
}

#[test]
fn a_node_holds_its_networks_and_one_routed_hop_only() {
    let m = cloud();
    let mut here: Vec<String> = networks_needed(&m, "here").into_iter().collect();
    here.sort();
    assert_eq!(here, ["net1", "net2"], "net3 has nothing bound here and no router to here");
    let mut other: Vec<String> = networks_needed(&m, "other").into_iter().collect();
    other.sort();
    assert_eq!(other, ["net1", "net2", "net3"], "net2 through the router on net1");
    let (_, sum) = compile(&m, "here", &Links::default(), &mut Keys::default(), &plumbed);
    assert_eq!(sum, Summary { networks: 2, local_ports: 2, remote_ports: 1, routers: 1 });
}

#[test]
fn the_compiled_tables_switch_route_answer_and_hand_remote_traffic_to_the_tunnel_stage() {
    let m = cloud();
    let mut keys = Keys::default();
    let (t, _) = compile(&m, "here", &Links::default(), &mut keys, &plumbed);
    let vm1 = Mac::parse("fa:16:3e:00:00:01").unwrap();
    let vm2 = Mac::parse("fa:16:3e:00:00:02").unwrap();
    let router = Mac::parse("fa:16:3e:00:00:fe").unwrap();
    let ip1 = Ipv4Addr::new(10, 0, 0, 5);
    let frames = [
        udp4(vm1, vm2, ip1, Ipv4Addr::new(10, 0, 0, 6)),    // to the remote port
        arp_request(vm1, ip1, Ipv4Addr::new(10, 0, 0, 6)),  // its address, answered here
        udp4(vm1, router, ip1, Ipv4Addr::new(10, 2, 0, 3)), // routed to vm3, local
        udp4(vm1, router, ip1, Ipv4Addr::new(10, 9, 1, 1)), // the extra route via vm3
        udp4(vm1, router, Ipv4Addr::new(10, 0, 0, 99), Ipv4Addr::new(10, 2, 0, 3)), // spoofed
    ];
    let mut pkts: Vec<HeapBuf> = frames.iter().map(|f| HeapBuf::new(f)).collect();
    let mut meta = vec![Meta::new(0); frames.len()];
    stages::decide(&t, &mut stages::WorkerState::new(1), &mut pkts, &mut meta);
    assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, Reason::TunnelNoUnderlay), "no underlay on this node");
    assert_eq!(meta[0].chassis, u32::from(keys.chassis("other")));
    assert_eq!(meta[1].action, Action::Reply);
    assert_eq!(pkts[1].clone().into_vec(), arp(ArpOperation::Reply, vm2, Ipv4Addr::new(10, 0, 0, 6), vm1, ip1, vm1));
    assert_eq!((meta[2].action, meta[2].out_port), (Action::Output, 1));
    assert_eq!(pkts[2].data()[14 + 8], 63, "TTL decremented");
    assert_eq!((meta[3].action, meta[3].out_port), (Action::Output, 1));
    assert_eq!((meta[4].action, meta[4].reason), (Action::Drop, Reason::PortSecurityIp));
    // Compiling again gives the same keys.
    let (t2, _) = compile(&m, "here", &Links::default(), &mut keys, &plumbed);
    assert_eq!(t2.port(0).map(|p| (p.lport, p.network)), t.port(0).map(|p| (p.lport, p.network)));
}

#[test]
fn a_router_interface_address_on_another_networks_subnet_is_ignored() {
    let mut m = cloud();
    // r1's interface on net2 with its address on net1's subnet: Neutron never makes one.
    m.ports.get_mut("r1-b").unwrap().fixed_ips[0].subnet_id = "s1".into();
    let mut keys = Keys::default();
    let (t, sum) = compile(&m, "here", &Links::default(), &mut keys, &plumbed);
    assert_eq!(sum.routers, 1, "r1 keeps its interface on net1");
    assert_eq!(t.routers[&u32::from(keys.router("r1"))].ifaces.len(), 1);
    assert_eq!(t.arp_lookup(keys.network("net2").into(), Ipv4Addr::new(10, 2, 0, 1)), None);
    assert!(t.arp_lookup(keys.network("net1").into(), Ipv4Addr::new(10, 0, 0, 1)).is_some());
}

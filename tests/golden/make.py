#!/usr/bin/python3
"""Writes the golden pcaps of tests/golden/: for each case, `in.pcap` (frames entering on net_pcap0, VM1's
port) and `net_pcapN.pcap` for every port N (the frames expected out of it, in order), plus `drops.json`
(the drop counters expected at net_pcap0, by name). The expected frames are built here with scapy from
the protocols' rules, independently of the switch; tests/golden.rs runs every case through the pipeline
on heap buffers and through the DPDK runtime with net_pcap ports, and compares byte for byte.

Run it (needs python3-scapy) after changing a case, then review the diff of the pcaps' dumps:
    /usr/bin/python3 tests/golden/make.py && for f in tests/golden/*/*.pcap; do tcpdump -enr $f; done
The pcaps are committed, so the test suite itself does not need scapy (ci/setup.sh does not install it).
Every run rewrites every pcap with new timestamps: keep only the files whose frames changed.
Topology: topology.toml beside this file (every case shares it).
"""
import json
import os
import sys

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, IPv6, Raw, wrpcap, raw, BOOTP, DHCP, Dot1AD, Dot1Q
from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA,
                                ICMPv6ND_RS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo,
                                ICMPv6NDOptSrcLLAddr, ICMPv6TimeExceeded)
from scapy.layers.dhcp6 import (DHCP6_Advertise, DHCP6_Confirm, DHCP6_InfoRequest, DHCP6_Rebind, DHCP6_Release,
                                DHCP6_Renew, DHCP6_Reply, DHCP6_Request, DHCP6_Solicit, DHCP6OptClientId,
                                DHCP6OptDNSDomains, DHCP6OptDNSServers, DHCP6OptElapsedTime, DHCP6OptIA_NA,
                                DHCP6OptIAAddress, DHCP6OptOptReq, DHCP6OptRapidCommit, DHCP6OptServerId,
                                DHCP6OptStatusCode, DUID_LL)

HERE = os.path.dirname(os.path.abspath(__file__))
PORTS = 5
VM1, VM2, VM3, VM4, VM5 = (f"fa:16:3e:00:00:0{i}" for i in range(1, 6))
IP1, IP2, IP3, IP4, IP5 = "10.0.0.1", "10.0.0.2", "10.2.0.3", "10.0.0.4", "10.3.0.5"
V6_1, V6_2, V6_3 = "2001:db8::1", "2001:db8::2", "2001:db8:2::3"
LL_1 = "fe80::f816:3eff:fe00:1"  # VM1's link-local address (EUI-64 of its MAC)
R1_MAC, R2_MAC = "fa:16:3e:00:00:fe", "fa:16:3e:00:00:fd"
GW1, GW2, GW6_1 = "10.0.0.254", "10.2.0.254", "2001:db8::fe"
BCAST = "ff:ff:ff:ff:ff:ff"


def udp(sm, dm, s, d, ttl=64, payload=b"golden!!"):
    return Ether(src=sm, dst=dm) / IP(src=s, dst=d, ttl=ttl, id=1, flags="DF") / UDP(sport=1234, dport=5678) / payload


def udp6(sm, dm, s, d, hlim=64, payload=b"golden!!"):
    return Ether(src=sm, dst=dm) / IPv6(src=s, dst=d, hlim=hlim) / UDP(sport=1234, dport=5678) / payload


def arp_req(sm, s, t):
    return Ether(src=sm, dst=BCAST) / ARP(op=1, hwsrc=sm, psrc=s, hwdst="00:00:00:00:00:00", pdst=t)


def arp_reply(owner_mac, owner_ip, to_mac, to_ip):
    return Ether(src=owner_mac, dst=to_mac) / ARP(op=2, hwsrc=owner_mac, psrc=owner_ip, hwdst=to_mac, pdst=to_ip)


def solicited_node(addr):
    import ipaddress
    low = ipaddress.IPv6Address(addr).packed[-3:]
    return str(ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + low))


def ns(sm, s, target):
    dst = solicited_node(target)
    mac = "33:33:" + ":".join(f"{b:02x}" for b in __import__("ipaddress").IPv6Address(dst).packed[-4:])
    p = Ether(src=sm, dst=mac) / IPv6(src=s, dst=dst, hlim=255) / ICMPv6ND_NS(tgt=target)
    return p / ICMPv6NDOptSrcLLAddr(lladdr=sm) if s != "::" else p


def na(owner_mac, target, to_mac, to_ip, router=False):
    return (Ether(src=owner_mac, dst=to_mac) / IPv6(src=target, dst=to_ip, hlim=255)
            / ICMPv6ND_NA(R=int(router), S=1, O=1, tgt=target) / ICMPv6NDOptDstLLAddr(lladdr=owner_mac))


def routed(p, src_mac, dst_mac):
    """`p` as the router forwards it: new MACs, TTL/hop limit one less, checksums recomputed."""
    q = p.copy()
    q[Ether].src, q[Ether].dst = src_mac, dst_mac
    if IP in q:
        q[IP].ttl -= 1
        del q[IP].chksum
    else:
        q[IPv6].hlim -= 1
    return Ether(raw(q))


def time_exceeded(p, gw, router_mac):
    """RFC 792/1812: from the router's gateway, TOS 0xc0, quoting the datagram up to 576 bytes in all."""
    ip = raw(p[IP])[:576 - 28]
    return Ether(src=router_mac, dst=p[Ether].src) / IP(src=gw, dst=p[IP].src, ttl=64, tos=0xc0, id=0, flags=0) \
        / ICMP(type=11, code=0) / Raw(ip)


def time_exceeded6(p, gw, router_mac):
    ip = raw(p[IPv6])[:1280 - 48]
    return Ether(src=router_mac, dst=p[Ether].src) / IPv6(src=gw, dst=p[IPv6].src, hlim=64) \
        / ICMPv6TimeExceeded(code=0) / Raw(ip)


def case_classify():
    good = udp(VM1, VM2, IP1, IP2)
    ihl4 = bytearray(raw(udp(VM1, VM2, IP1, IP2)))
    ihl4[14] = 0x44
    ip = IP(src=IP1, dst=IP2, id=1, flags="DF") / UDP(sport=1234, dport=5678) / b"golden!!"
    # VLAN-tagged frames from a VM port (not a trunk) are dropped, as OVN drops `vlan.present`.
    tagged = Ether(src=VM1, dst=VM2) / Dot1Q(vlan=100) / ip
    qinq = Ether(src=VM1, dst=VM2) / Dot1AD(vlan=10) / Dot1Q(vlan=100) / ip
    inp = [Raw(b"\x01" * 10), Raw(raw(Ether(src=VM1, dst=VM2, type=0x0800)) + b"\x45" * 10), Raw(bytes(ihl4)),
           tagged, qinq, good]
    return inp, {1: [good]}, {"classify.malformed": 3, "classify.vlan_tagged": 2}


def case_port_security():
    good = udp(VM1, VM2, IP1, IP2)
    discover = (Ether(src=VM1, dst=BCAST) / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
                / BOOTP(chaddr=bytes.fromhex("fa163e000001"), xid=7) / DHCP(options=[("message-type", "discover"), "end"]))
    offer = (Ether(src=VM1, dst=BCAST) / IP(src=IP1, dst="255.255.255.255") / UDP(sport=67, dport=68)
             / BOOTP(op=2, xid=7) / DHCP(options=[("message-type", "offer"), "end"]))
    ra = (Ether(src=VM1, dst="33:33:00:00:00:01") / IPv6(src=LL_1, dst="ff02::1", hlim=255)
          / ICMPv6ND_RA() / ICMPv6NDOptSrcLLAddr(lladdr=VM1))

    def unsolicited_na(target, tll):
        return (Ether(src=VM1, dst="33:33:00:00:00:01") / IPv6(src=LL_1, dst="ff02::1", hlim=255)
                / ICMPv6ND_NA(R=0, S=0, O=1, tgt=target) / ICMPv6NDOptDstLLAddr(lladdr=tll))
    own_na = unsolicited_na(V6_1, VM1)
    ns_other_sll = ns(VM1, V6_1, V6_2)
    ns_other_sll[ICMPv6NDOptSrcLLAddr].lladdr = VM2
    inp = [
        udp("02:00:00:00:00:66", VM2, IP1, IP2),      # MAC spoof
        udp(VM1, VM2, "10.0.0.9", IP2),                 # IP spoof
        udp6(VM1, VM2, "2001:db8::9", V6_2),            # IPv6 spoof
        arp_req(VM1, "10.0.0.9", IP2),                  # ARP claiming another address
        offer,                                          # a VM acting as a DHCP server
        ra,                                             # a VM acting as a router
        Ether(src=VM1, dst=VM2, type=0x88b5) / Raw(b"x" * 46),  # not IP/ARP
        unsolicited_na(V6_2, VM1),                      # NA claiming VM2's address
        unsolicited_na(V6_1, VM2),                      # NA giving VM2's MAC for VM1's address
        ns_other_sll,                                   # NS giving VM2's MAC as its source
        own_na,                                         # allowed: VM1 announcing itself
        discover,                                       # allowed: DHCP from 0.0.0.0
        good,
    ]
    drops = {"port_security.mac_spoof": 1, "port_security.ip_spoof": 2, "port_security.arp_spoof": 1,
             "port_security.nd_spoof": 3, "port_security.rogue_server": 2, "port_security.ethertype": 1}
    return inp, {1: [own_na, discover, good]}, drops


def case_arp_responder():
    unknown = arp_req(VM1, IP1, "10.0.0.99")
    inp = [arp_req(VM1, IP1, IP2), arp_req(VM1, IP1, GW1), unknown, arp_req(VM1, IP1, IP4)]
    out0 = [arp_reply(VM2, IP2, VM1, IP1), arp_reply(R1_MAC, GW1, VM1, IP1), arp_reply(VM4, IP4, VM1, IP1)]
    return inp, {0: out0, 1: [unknown]}, {}


def case_nd_responder():
    dad = ns(VM1, "::", "2001:db8::77")
    inp = [ns(VM1, V6_1, V6_2), ns(VM1, V6_1, GW6_1), dad]
    out0 = [na(VM2, V6_2, VM1, V6_1), na(R1_MAC, GW6_1, VM1, V6_1, router=True)]
    return inp, {0: out0, 1: [dad]}, {}


def case_l2_switch():
    uni, bcast = udp(VM1, VM2, IP1, IP2), udp(VM1, BCAST, IP1, "10.0.0.255")
    unknown, other_net = udp(VM1, "fa:16:3e:00:00:99", IP1, IP2), udp(VM1, VM5, IP1, IP5)
    v6 = udp6(VM1, VM2, V6_1, V6_2)
    inp = [uni, bcast, unknown, other_net, v6, udp(VM1, VM1, IP1, IP1)]
    return inp, {1: [uni, bcast, unknown, other_net, v6]}, {"l2_switch.no_destination": 1}


def case_l3_route():
    to3 = udp(VM1, R1_MAC, IP1, IP3)
    to3_v6 = udp6(VM1, R1_MAC, V6_1, V6_3)
    via = udp(VM1, R1_MAC, IP1, "10.1.2.3")
    ping = Ether(src=VM1, dst=R1_MAC) / IP(src=IP1, dst=GW1, id=5) / ICMP(type=8, id=9, seq=1) / b"pingpong"
    pong = Ether(src=R1_MAC, dst=VM1) / IP(src=GW1, dst=IP1, id=5) / ICMP(type=0, id=9, seq=1) / b"pingpong"
    ping6 = Ether(src=VM1, dst=R1_MAC) / IPv6(src=V6_1, dst=GW6_1) / ICMPv6EchoRequest(id=9, seq=1, data=b"ping6")
    pong6 = Ether(src=R1_MAC, dst=VM1) / IPv6(src=GW6_1, dst=V6_1) / ICMPv6EchoReply(id=9, seq=1, data=b"ping6")
    expiring = udp(VM1, R1_MAC, IP1, IP3, ttl=1)
    big = udp(VM1, R1_MAC, IP1, IP3, ttl=1, payload=b"B" * 1000)
    expiring6 = udp6(VM1, R1_MAC, V6_1, V6_3, hlim=1)
    # Five more expiring from VM1: with `expiring` and `big`, 7 time-exceeded errors due to 10.0.0.1 at
    # once; Linux's per-destination limit (a burst of 6, then one a second) lets 6 go and drops the last.
    again = [udp(VM1, R1_MAC, IP1, IP3, ttl=1, payload=b"again!%d!" % i) for i in range(5)]
    inp = [to3, to3_v6, via, ping, ping6, expiring, big, expiring6,
           udp(VM1, R1_MAC, IP1, "192.168.1.1"), udp(VM1, R1_MAC, IP1, "10.2.0.99")] + again
    out0 = [pong, pong6, time_exceeded(expiring, GW1, R1_MAC), time_exceeded(big, GW1, R1_MAC),
            time_exceeded6(expiring6, GW6_1, R1_MAC)] + [time_exceeded(p, GW1, R1_MAC) for p in again[:4]]
    out2 = [routed(to3, R2_MAC, VM3), routed(to3_v6, R2_MAC, VM3), routed(via, R2_MAC, VM3)]
    return inp, {0: out0, 2: out2}, {"l3_route.no_route": 1, "l3_route.no_neighbor": 1,
                                     "l3_route.icmp_ratelimit": 1}


def case_egress():
    to_down = udp(VM1, VM4, IP1, IP4)
    ok = udp(VM1, VM2, IP1, IP2)
    return [to_down, ok], {1: [ok]}, {"egress.port_down": 1}


DHCP_MAC, DHCP_IP, DHCP_IP6 = "fa:16:3e:00:00:dd", "10.0.0.250", "2001:db8::250"
LL_DHCP = "fe80::f816:3eff:fe00:dd"
LL_R1 = "fe80::f816:3eff:fe00:fe"
CLIENT_ID = b"\x01" + bytes.fromhex("fa163e000001")


def dhcp4(mtype, dm=BCAST, s="0.0.0.0", d="255.255.255.255", ciaddr="0.0.0.0", flags=0, opts=()):
    """A DHCP message from VM1 (with its client identifier, as dhclient sends)."""
    return (Ether(src=VM1, dst=dm) / IP(src=s, dst=d, id=1, flags="DF") / UDP(sport=68, dport=67)
            / BOOTP(chaddr=bytes.fromhex("fa163e000001"), xid=0x2a, ciaddr=ciaddr, flags=flags)
            / DHCP(options=[("message-type", mtype), *opts, ("client_id", CLIENT_ID), "end"]))


def dhcp4_reply(mtype, ident, dm, d, yiaddr="0.0.0.0", ciaddr="0.0.0.0", flags=0, lease=True):
    """The server's answer (RFC 2131, 2132, 3442 and Neutron's options): from the DHCP port, TTL 64, the
    options in the server's order, padded to BOOTP's 300 bytes."""
    opts = [("message-type", mtype), ("server_id", DHCP_IP)]
    if mtype != "nak":
        if lease:
            opts += [("lease_time", 3600), ("renewal_time", 1800), ("rebinding_time", 3150)]
        opts += [("subnet_mask", "255.255.255.0"), ("router", GW1), ("name_server", "10.0.0.53"),
                 ("domain", b"openstacklocal"), ("hostname", b"host-10-0-0-1"), ("interface-mtu", 1450),
                 (121, bytes([16, 10, 9, 10, 0, 0, 5, 0, 10, 0, 0, 254]))]
    opts.append(("client_id", CLIENT_ID))
    if mtype != "nak":
        opts.append(("broadcast_address", "10.0.0.255"))
    bootp = (BOOTP(op=2, xid=0x2a, flags=flags, ciaddr=ciaddr, yiaddr=yiaddr,
                   siaddr="0.0.0.0" if mtype == "nak" else DHCP_IP, chaddr=bytes.fromhex("fa163e000001"))
             / DHCP(options=opts + ["end"]))
    b = raw(bootp)
    b += b"\x00" * (300 - len(b))
    return Ether(src=DHCP_MAC, dst=dm) / IP(src=DHCP_IP, dst=d, ttl=64, id=ident, flags=0) / UDP(sport=67, dport=68) / Raw(b)


def dhcp6(msg, *opts):
    return (Ether(src=VM1, dst="33:33:00:01:00:02") / IPv6(src=LL_1, dst="ff02::1:2", hlim=1) / UDP(sport=546, dport=547)
            / msg / DHCP6OptClientId(duid=DUID_LL(lladdr=VM1)) / b"".join(raw(o) for o in opts))


def dhcp6_reply(msg, *opts):
    """From the DHCP port's link-local address, its DUID-LL the server identifier."""
    body = raw(DHCP6OptClientId(duid=DUID_LL(lladdr=VM1))) + raw(DHCP6OptServerId(duid=DUID_LL(lladdr=DHCP_MAC)))
    body += b"".join(raw(o) for o in opts)
    return (Ether(src=DHCP_MAC, dst=VM1) / IPv6(src=LL_DHCP, dst=LL_1, hlim=255) / UDP(sport=547, dport=546)
            / msg / Raw(body))


def case_dhcp():
    """DHCPv4, DHCPv6 and router advertisements, each message type once (topology: dhcp/topology.toml).
    What no answer follows (RELEASE, DECLINE) is consumed, not dropped."""
    server = [("server_id", DHCP_IP)]
    v4 = [
        (dhcp4("discover"), dhcp4_reply("offer", 2, VM1, IP1, yiaddr=IP1)),
        (dhcp4("request", flags=0x8000, opts=server + [("requested_addr", IP1)]),
         dhcp4_reply("ack", 3, BCAST, "255.255.255.255", yiaddr=IP1, flags=0x8000)),
        (dhcp4("request", opts=server + [("requested_addr", "10.0.0.77")]),
         dhcp4_reply("nak", 4, BCAST, "255.255.255.255")),
        (dhcp4("request", dm=DHCP_MAC, s=IP1, d=DHCP_IP, ciaddr=IP1),           # renewing
         dhcp4_reply("ack", 5, VM1, IP1, yiaddr=IP1, ciaddr=IP1)),
        (dhcp4("inform", s=IP1, ciaddr=IP1), dhcp4_reply("ack", 6, VM1, IP1, ciaddr=IP1, lease=False)),
        (dhcp4("release", dm=DHCP_MAC, s=IP1, d=DHCP_IP, ciaddr=IP1, opts=server), None),
        (dhcp4("decline", opts=server + [("requested_addr", IP1)]), None),
    ]
    iana = lambda: DHCP6OptIA_NA(iaid=1, T1=0, T2=0)
    lease = lambda: DHCP6OptIA_NA(iaid=1, T1=1800, T2=2880, ianaopts=[
        DHCP6OptIAAddress(addr=V6_1, preflft=3600, validlft=3600)])
    info = [DHCP6OptDNSServers(dnsservers=["2001:db8::53"]), DHCP6OptDNSDomains(dnsdomains=["openstacklocal."])]
    sid = DHCP6OptServerId(duid=DUID_LL(lladdr=DHCP_MAC))
    ok = lambda m: DHCP6OptStatusCode(statuscode=0, statusmsg=m)
    v6 = [
        (dhcp6(DHCP6_Solicit(trid=1), iana(), DHCP6OptOptReq(reqopts=[23, 24]), DHCP6OptElapsedTime()),
         dhcp6_reply(DHCP6_Advertise(trid=1), lease(), *info)),
        (dhcp6(DHCP6_Solicit(trid=2), iana(), DHCP6OptRapidCommit()),
         dhcp6_reply(DHCP6_Reply(trid=2), lease(), DHCP6OptRapidCommit(), *info)),
        (dhcp6(DHCP6_Request(trid=3), sid, iana()), dhcp6_reply(DHCP6_Reply(trid=3), lease(), *info)),
        (dhcp6(DHCP6_Renew(trid=4), sid, iana()), dhcp6_reply(DHCP6_Reply(trid=4), lease(), *info)),
        (dhcp6(DHCP6_Rebind(trid=5), iana()), dhcp6_reply(DHCP6_Reply(trid=5), lease(), *info)),
        (dhcp6(DHCP6_Confirm(trid=6), DHCP6OptIA_NA(iaid=1, ianaopts=[DHCP6OptIAAddress(addr=V6_1)])),
         dhcp6_reply(DHCP6_Reply(trid=6), *info, ok("all addresses on link"))),
        (dhcp6(DHCP6_Release(trid=7), sid, iana()), dhcp6_reply(DHCP6_Reply(trid=7), ok("done"))),
        (dhcp6(DHCP6_InfoRequest(trid=8)), dhcp6_reply(DHCP6_Reply(trid=8), *info)),
    ]
    rs = (Ether(src=VM1, dst="33:33:00:00:00:02") / IPv6(src=LL_1, dst="ff02::2", hlim=255) / ICMPv6ND_RS()
          / ICMPv6NDOptSrcLLAddr(lladdr=VM1))
    ra = (Ether(src=R1_MAC, dst=VM1) / IPv6(src=LL_R1, dst=LL_1, hlim=255)
          / ICMPv6ND_RA(chlim=64, M=1, O=0, prf=0, routerlifetime=300, reachabletime=0, retranstimer=0)
          / ICMPv6NDOptSrcLLAddr(lladdr=R1_MAC) / ICMPv6NDOptMTU(mtu=1450)
          / ICMPv6NDOptPrefixInfo(prefixlen=64, L=1, A=0, validlifetime=86400, preferredlifetime=14400, prefix="2001:db8::"))
    pairs = v4 + v6 + [(rs, ra)]
    return [p for p, _ in pairs], {0: [r for _, r in pairs if r is not None]}, {}


def tcp(sm, dm, s, d, dport, flags, sport=40000):
    return Ether(src=sm, dst=dm) / IP(src=s, dst=d, id=1, flags="DF") / TCP(sport=sport, dport=dport, flags=flags)


def case_security_groups():
    """Neutron's security groups from VM1 (topology: security_groups/topology.toml): what VM1's egress
    rules and each destination's ingress rules allow passes, the rest is dropped by name; a TCP segment
    of a connection not seen opening is picked up, a SYN-ACK that answers nothing is invalid; a datagram's later fragments follow its first; DHCP and neighbour
    discovery need no rule; a stateless group checks each packet alone."""
    syn80 = tcp(VM1, VM2, IP1, IP2, 80, "S")
    again = tcp(VM1, VM2, IP1, IP2, 80, "S")  # retransmitted: the connection's, still opening
    syn81 = tcp(VM1, VM2, IP1, IP2, 81, "S", sport=40001)  # VM1 may send it, VM2 takes 80 only
    syn22 = tcp(VM1, VM2, IP1, IP2, 22, "S", sport=40002)  # VM1 may not send it
    stray = tcp(VM1, VM2, IP1, IP2, 80, "SA", sport=40003)  # answers nothing
    pickup = tcp(VM1, VM2, IP1, IP2, 80, "A", sport=40004)  # a connection not seen opening, the rules allow it
    ping = Ether(src=VM1, dst=VM2) / IP(src=IP1, dst=IP2, id=1) / ICMP(type=8, id=7, seq=1) / b"golden!!"
    dns = Ether(src=VM1, dst=VM3) / IP(src=IP1, dst=IP3, id=1) / UDP(sport=5353, dport=53) / b"golden!!"
    udp2 = Ether(src=VM1, dst=VM2) / IP(src=IP1, dst=IP2, id=1) / UDP(sport=5353, dport=53) / b"golden!!"
    first = Ether(src=VM1, dst=VM3) / IP(src=IP1, dst=IP3, id=77, flags="MF") / UDP(sport=5353, dport=53, len=40) / (b"x" * 16)
    later = Ether(src=VM1, dst=VM3) / IP(src=IP1, dst=IP3, id=77, frag=3, proto=17) / (b"y" * 16)
    orphan = Ether(src=VM1, dst=VM3) / IP(src=IP1, dst=IP3, id=78, frag=3, proto=17) / (b"z" * 16)
    syn80_6 = Ether(src=VM1, dst=VM2) / IPv6(src=V6_1, dst=V6_2) / TCP(sport=40000, dport=80, flags="S")
    ping6 = Ether(src=VM1, dst=VM2) / IPv6(src=V6_1, dst=V6_2) / ICMPv6EchoRequest(id=7, seq=1)
    dhcp = dhcp4("discover")
    solicit = ns(VM1, "::", "2001:db8::77")  # duplicate address detection: to all, as no one has it
    inp = [syn80, again, syn81, syn22, stray, pickup, ping, dns, udp2, first, later, orphan, syn80_6, ping6, dhcp, solicit]
    # VM2 takes no ICMPv6. The DHCP discovery and the solicitation are floods, checked against each
    # receiver's ingress rules: VM2 and VM3 take no DHCP request (only a server's replies), so it is
    # dropped; both take neighbour discovery.
    out = {1: [syn80, again, pickup, ping, syn80_6, solicit], 2: [dns, first, later, solicit]}
    drops = {"security_groups.ingress_denied": 4, "security_groups.egress_denied": 1, "security_groups.invalid": 1,
             "security_groups.fragment": 1}
    return inp, out, drops


# Cases with a topology of their own (`<case>/topology.toml`): not part of the "pipeline" case.
OWN_TOPOLOGY = {"dhcp": case_dhcp, "security_groups": case_security_groups}

CASES = {
    "classify": case_classify,
    "port_security": case_port_security,
    "arp_responder": case_arp_responder,
    "nd_responder": case_nd_responder,
    "l2_switch": case_l2_switch,
    "l3_route": case_l3_route,
    "egress": case_egress,
}


def write(name, inp, out, drops):
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    wrpcap(os.path.join(d, "in.pcap"), linktype=1, pkt=[Ether(raw(p)) if not isinstance(p, Raw) else p for p in inp])
    for port in range(PORTS):
        wrpcap(os.path.join(d, f"net_pcap{port}.pcap"), linktype=1, pkt=[Ether(raw(p)) for p in out.get(port, [])])
    with open(os.path.join(d, "drops.json"), "w") as f:
        json.dump(drops, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    everything_in, everything_out, everything_drops = [], {}, {}
    for name, case in CASES.items():
        inp, out, drops = case()
        write(name, inp, out, drops)
        # The whole pipeline: every case's frames in one stream.
        everything_in += inp
        for port, frames in out.items():
            everything_out.setdefault(port, []).extend(frames)
        for k, v in drops.items():
            everything_drops[k] = everything_drops.get(k, 0) + v
    write("pipeline", everything_in, everything_out, everything_drops)
    for name, case in OWN_TOPOLOGY.items():
        write(name, *case())


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""A tunnel peer nobody in this project wrote, for tests/multinode.rs: scapy's own Geneve (RFC 8926) and
GRE (RFC 2890) code, where this machine's kernel has no geneve or gretap device.

Run inside a namespace on the underlay that owns LOCAL_IP. Sends an ICMP echo request from a port bound to
this peer (INNER_SRC_MAC/INNER_SRC_IP) to a VM (INNER_DST_MAC/INNER_DST_IP) in a tunnel of KIND with
segment SEG to the node at NODE_IP, and waits for the VM's echo reply to come back in the same kind of
tunnel, addressed to LOCAL_IP with segment SEG. Prints what it got; exits 0 only if the reply parsed.

usage: tunnel_peer.py geneve|gre IFACE LOCAL_IP NODE_IP SEG INNER_SRC_MAC INNER_SRC_IP INNER_DST_MAC INNER_DST_IP
"""

import sys
import time

from scapy.all import AsyncSniffer, Ether, ICMP, IP, UDP, conf, send
from scapy.layers.l2 import GRE
from scapy.contrib.geneve import GENEVE

kind, iface, local_ip, node_ip, seg = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
src_mac, src_ip, dst_mac, dst_ip = sys.argv[6:10]
conf.verb = 0

inner = Ether(src=src_mac, dst=dst_mac) / IP(src=src_ip, dst=dst_ip) / ICMP(type=8, id=0x4242, seq=1) / (b"x" * 32)
if kind == "geneve":
    outer = IP(src=local_ip, dst=node_ip) / UDP(sport=50000, dport=6081) / GENEVE(vni=seg, proto=0x6558)
else:
    outer = IP(src=local_ip, dst=node_ip) / GRE(key_present=1, key=seg, proto=0x6558)


def reply(p):
    """The VM's echo reply in a tunnel of `kind` and segment `seg` to us, or None."""
    if IP not in p or p[IP].dst != local_ip:
        return None
    if kind == "geneve":
        if GENEVE not in p or p[UDP].dport != 6081 or p[GENEVE].vni != seg:
            return None
        e = p[GENEVE].payload
    else:
        if GRE not in p or p[GRE].key_present != 1 or p[GRE].key != seg:
            return None
        e = p[GRE].payload
    if not isinstance(e, Ether) or ICMP not in e:
        return None
    i = e[ICMP]
    ok = i.type == 0 and i.id == 0x4242 and e[IP].src == dst_ip and e[IP].dst == src_ip and e.dst == src_mac
    return e if ok else None


def match(p):
    return reply(p) is not None


sniffer = AsyncSniffer(iface=iface, store=True, lfilter=match, stop_filter=match, timeout=10)
sniffer.start()
time.sleep(0.3)
for _ in range(15):
    send(outer / inner)  # through the kernel's routing: it resolves the node's MAC by ARP
    sniffer.join(timeout=0.5)
    if not sniffer.running:
        break
if sniffer.running:
    sniffer.stop()
got = sniffer.results or []
if not got:
    print(f"no {kind} echo reply for segment {seg} came back", file=sys.stderr)
    sys.exit(1)
print(f"{kind} segment {seg}: {reply(got[0]).summary()}")

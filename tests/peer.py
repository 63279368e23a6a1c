#!/usr/bin/python3
"""A peer nobody in this project wrote, for tests/multinode.rs, where this machine's kernel lacks the
device: scapy's own Geneve (RFC 8926), GRE (RFC 2890) and 802.1Q code (no geneve, gretap nor 8021q in
this kernel).

geneve, gre: run inside a namespace on the underlay that owns LOCAL_IP. Sends an ICMP echo request from a
port bound to this peer (INNER_SRC_MAC/INNER_SRC_IP) to a VM (INNER_DST_MAC/INNER_DST_IP) in a tunnel of
KIND with segment SEG to the node at NODE_IP, and waits for the VM's echo reply to come back in the same
kind of tunnel, addressed to LOCAL_IP with segment SEG.

vlan: a host on the physical network behind IFACE (LOCAL_IP and NODE_IP unused): sends the echo request
tagged with VLAN SEG and waits for the reply tagged the same, answering the VM's ARP for INNER_SRC_IP
(tagged) meanwhile.

Prints what it got; exits 0 only if the reply parsed.

usage: peer.py geneve|gre|vlan IFACE LOCAL_IP NODE_IP SEG INNER_SRC_MAC INNER_SRC_IP INNER_DST_MAC INNER_DST_IP
"""

import sys
import time

from scapy.all import ARP, AsyncSniffer, Dot1Q, Ether, ICMP, IP, UDP, conf, send, sendp
from scapy.layers.l2 import GRE
from scapy.contrib.geneve import GENEVE

kind, iface, local_ip, node_ip, seg = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
src_mac, src_ip, dst_mac, dst_ip = sys.argv[6:10]
conf.verb = 0

inner = Ether(src=src_mac, dst=dst_mac) / IP(src=src_ip, dst=dst_ip) / ICMP(type=8, id=0x4242, seq=1) / (b"x" * 32)
if kind == "geneve":
    outer = IP(src=local_ip, dst=node_ip) / UDP(sport=50000, dport=6081) / GENEVE(vni=seg, proto=0x6558)
elif kind == "gre":
    outer = IP(src=local_ip, dst=node_ip) / GRE(key_present=1, key=seg, proto=0x6558)
else:
    inner = Ether(src=src_mac, dst=dst_mac) / Dot1Q(vlan=seg) / inner.payload


def answer_arp(p):
    """The VM's ARP for us, tagged: answered."""
    if kind == "vlan" and Dot1Q in p and p[Dot1Q].vlan == seg and ARP in p:
        a = p[ARP]
        if a.op == 1 and a.pdst == src_ip:
            is_at = ARP(op=2, hwsrc=src_mac, psrc=src_ip, hwdst=a.hwsrc, pdst=a.psrc)
            sendp(Ether(src=src_mac, dst=a.hwsrc) / Dot1Q(vlan=seg) / is_at, iface=iface)


def reply(p):
    """The VM's echo reply in a tunnel of `kind` and segment `seg` (tagged with VLAN `seg`) to us, or None."""
    if kind == "vlan":
        if Dot1Q not in p or p[Dot1Q].vlan != seg or ICMP not in p:
            return None
        e = p
    elif IP not in p or p[IP].dst != local_ip:
        return None
    elif kind == "geneve":
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
    answer_arp(p)
    return reply(p) is not None


sniffer = AsyncSniffer(iface=iface, store=True, lfilter=match, stop_filter=lambda p: reply(p) is not None, timeout=10)
sniffer.start()
time.sleep(0.3)
for _ in range(15):
    if kind == "vlan":
        sendp(inner, iface=iface)
    else:
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

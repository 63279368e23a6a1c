#!/usr/bin/python3
"""Writes the DHCP benchmark traffic (Debian's python3 with scapy): DHCPDISCOVERs as ISC dhclient sends them
(broadcast, client identifier, parameter request list), 1,000 transaction ids each.

    benches/gen_dhcp.py DIR    -> DIR/dhcp-vm1.pcap (from VM1 fa:16:3e:00:00:01, the source port's VM)
                                  DIR/dhcp-vm3.pcap (from VM3 fa:16:3e:00:00:03, the flooding VM)
"""
import os
import sys

from scapy.all import BOOTP, DHCP, IP, UDP, Ether, wrpcap


def discovers(mac):
    chaddr = bytes.fromhex(mac.replace(":", ""))
    return [Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
            / UDP(sport=68, dport=67) / BOOTP(chaddr=chaddr, xid=0x1000 + i)
            / DHCP(options=[("message-type", "discover"), ("client_id", b"\x01" + chaddr),
                            ("param_req_list", [1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]), "end"])
            for i in range(1000)]


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    wrpcap(os.path.join(d, "dhcp-vm1.pcap"), discovers("fa:16:3e:00:00:01"))
    wrpcap(os.path.join(d, "dhcp-vm3.pcap"), discovers("fa:16:3e:00:00:03"))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The transmitted-packet counter of one port of a running DPDK process, from its telemetry socket: the
harness's ANCHOR_TX_COUNTER_CMD for a rate counted on another port than its sink (benches/run.sh's
dhcp-exchanges: the DHCP answers leave by the source port).

    benches/tx_count.py PREFIX PORT_NAME     prints opackets as one integer
"""
import json
import os
import socket
import sys


def main():
    prefix, name = sys.argv[1], sys.argv[2]
    path = os.path.join(os.environ.get("RUNTIME_DIR", "/var/run/dpdk"), prefix, "dpdk_telemetry.v2")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    s.recv(16384)

    def query(cmd):
        s.send(cmd.encode())
        return json.loads(s.recv(1 << 20).decode())

    for i in query("/ethdev/list")["/ethdev/list"]:
        if query(f"/ethdev/info,{i}")["/ethdev/info"].get("name") == name:
            print(query(f"/ethdev/stats,{i}")["/ethdev/stats"]["opackets"])
            return 0
    print(f"no port {name}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

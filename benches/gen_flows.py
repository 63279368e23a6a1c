#!/usr/bin/env python3
"""Writes an l2-*flows pcap of any size, frame for frame what the harness's gen_pcaps.py makes (its flow(i):
VM1 -> VM2, IPv4/UDP, 60-byte frames, distinct 5-tuples) without scapy, so that 1,000,000 flows take seconds.

    benches/gen_flows.py N OUT.pcap      e.g. benches/gen_flows.py 1000000 /tmp/df-pcaps/l2-1mflows.pcap
    benches/gen_flows.py --check PCAP    compares with a harness pcap (e.g. ../shared/bench/pcaps/l2-1kflows.pcap)
"""
import struct
import sys

VM1, VM2 = bytes.fromhex("fa163e000001"), bytes.fromhex("fa163e000002")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def flow(i):
    """The harness's flow(i): a distinct (src ip, dst ip, sport, dport) inside 10.0.0.0/24 for every i < 3.6e9."""
    return (bytes([10, 0, 0, 1 + i % 200]), bytes([10, 0, 0, 201 + (i // 200) % 50]), 1024 + i % 60000,
            5001 + i % 7 + 8 * (i // 60000))


def frame(i):
    sip, dip, sport, dport = flow(i)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + 18, 1, 0, 64, 17, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    payload = b"\0" * 18
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    pseudo = sip + dip + struct.pack("!BBH", 0, 17, len(udp) + len(payload))
    c = csum(pseudo + udp + payload) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c)
    return VM2 + VM1 + b"\x08\x00" + ip + udp + payload


def frames_of(path):
    data = open(path, "rb").read()
    off = 24
    while off < len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl


def main():
    if sys.argv[1] == "--check":
        n = 0
        for i, f in enumerate(frames_of(sys.argv[2])):
            assert f == frame(i), f"frame {i} differs:\n{f.hex()}\n{frame(i).hex()}"
            n += 1
        print(f"{n} frames identical")
        return
    n, out = int(sys.argv[1]), sys.argv[2]
    with open(out + ".tmp", "wb") as w:
        w.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(n):
            f = frame(i)
            w.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(f), len(f)))
            w.write(f)
    __import__("os").replace(out + ".tmp", out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Seeds for the `pipeline` fuzz target from the golden pcaps (tests/golden/*/in.pcap, whose MACs and addresses are the fixtures'): one input per
golden case and topology, the case's frames as records [in_port, length, bytes] (frames over 255 bytes cut;
the fuzzer grows them back). Standard library only.

    python3 fuzz/seeds.py        (writes fuzz/corpus/pipeline/golden-<case>-<topology>)
"""
import glob, os, struct

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus", "pipeline")
os.makedirs(out, exist_ok=True)
for path in sorted(glob.glob(os.path.join(here, "..", "tests", "golden", "*", "in.pcap"))):
    data = open(path, "rb").read()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    at, frames = 24, []
    while at + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[at:at + 16])
        frames.append(data[at + 16:at + 16 + incl])
        at += 16 + incl
    case = os.path.basename(os.path.dirname(path))
    for topology in range(3):
        for first in range(0, len(frames), 32):
            body = bytes([topology])
            for f in frames[first:first + 32]:
                f = f[:255]
                body += bytes([0, len(f)]) + f  # every golden frame enters on port 0 (VM1)
            with open(os.path.join(out, f"golden-{case}-{topology}-{first // 32}"), "wb") as w:
                w.write(body)

"""TCP between VMs (network namespaces) for the end-to-end tests, on Debian's python alone.

  tcp.py serve PORT...             listens on each PORT (IPv4 and IPv6), echoes every line back;
                                   prints "listening" once every port listens, and "from ADDR"
                                   for each connection it accepts
  tcp.py connect ADDR PORT SECS    one connection and one echoed line within SECS: prints
                                   "connected" (exit 0), or "timeout", "refused", "error ..." (exit 1)
  tcp.py udp ADDR PORT SECS        one datagram from a connected UDP socket, then an answer awaited for
                                   SECS: prints "refused" (an ICMP port unreachable that names the socket
                                   came back), "reply" or "timeout"
  tcp.py stream ADDR PORT SECS     one long-lived connection: sends a numbered line every SECS and
                                   prints "echo N" for each line echoed back, forever (errors are
                                   printed and the sending goes on: the kernel retransmits)
"""

import socket
import sys
import threading
import time


def echo(conn):
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()


def accept(listener):
    while True:
        conn, peer = listener.accept()
        # (IPv4 peers come as IPv4-mapped IPv6 addresses: printed as IPv4.)
        print("from", peer[0].removeprefix("::ffff:"), flush=True)
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def serve(ports):
    for port in ports:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        s.listen(64)
        threading.Thread(target=accept, args=(s,), daemon=True).start()
    print("listening", flush=True)
    threading.Event().wait()


def connect(addr, port, secs):
    try:
        s = socket.create_connection((addr, port), timeout=secs)
        s.sendall(b"hello\n")
        got = s.recv(64)
        s.close()
    except socket.timeout:
        print("timeout", flush=True)
        return 1
    except ConnectionRefusedError:
        print("refused", flush=True)
        return 1
    except OSError as e:
        print("error", e, flush=True)
        return 1
    if got != b"hello\n":
        print("error: echoed", got, flush=True)
        return 1
    print("connected", flush=True)
    return 0


def udp(addr, port, secs):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(secs)
    s.connect((addr, port))
    try:
        s.send(b"hello\n")
        s.recv(64)
        print("reply", flush=True)
    except ConnectionRefusedError:
        print("refused", flush=True)
    except socket.timeout:
        print("timeout", flush=True)
    return 0


def stream(addr, port, secs):
    s = socket.create_connection((addr, port), timeout=3)
    print("connected", flush=True)
    n, pending = 0, b""
    while True:
        n += 1
        s.settimeout(secs)
        try:
            s.sendall(b"%d\n" % n)
        except OSError as e:
            print("send-error", e, flush=True)
        deadline = time.monotonic() + secs
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                data = s.recv(4096)
            except socket.timeout:
                break
            except OSError as e:
                print("recv-error", e, flush=True)
                time.sleep(left)
                break
            if not data:
                print("closed", flush=True)
                return 1
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                print("echo", line.decode(), flush=True)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        return serve([int(p) for p in args])
    if cmd == "connect":
        return connect(args[0], int(args[1]), float(args[2]))
    if cmd == "udp":
        return udp(args[0], int(args[1]), float(args[2]))
    if cmd == "stream":
        return stream(args[0], int(args[1]), float(args[2]))
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())

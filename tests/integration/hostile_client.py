#!/usr/bin/env python3
"""hostile_client.py - raw-socket clients for test_ingest_hostile.sh (loopback only).

What curl cannot do: send exact bytes, trickle them, hold many connections.
Every command is bounded in time and prints one line the test compares.

  raw PORT [--timeout S]          stdin's bytes as they are; "STATUS BODY" or "closed"
  trickle PORT headers|body GAP   one byte per GAP s; "closed after MS ms, status S"
  idle PORT N HOLD                N idle connections for HOLD s; "opened N closed C"
  slowloris PORT N SECONDS        N trickling clients while one normal client polls
                                  /healthz; "served K/K worst MS ms"

Secrets come from HOSTILE_SECRET (never printed).
"""
import hashlib
import hmac
import os
import resource
import select
import socket
import sys
import time

PATH = "/webhooks/stripe"


def sign(body, t=None, secret=None):
    secret = secret or os.environ["HOSTILE_SECRET"]
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)


def post_bytes(body, headers=(), content_length=None, sig=None):
    """A POST to the webhook path; sig None means a valid signature of body."""
    lines = [b"POST %s HTTP/1.1" % PATH.encode(), b"Host: 127.0.0.1",
             b"Content-Type: application/json"]
    if sig is not False:
        lines.append(b"Stripe-Signature: " + (sig if sig is not None else sign(body).encode()))
    n = len(body) if content_length is None else content_length
    lines.append(b"Content-Length: %d" % n)
    lines += list(headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def read_reply(s, timeout):
    """'STATUS BODY' of the first reply on s, or 'closed' / 'timeout'."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                if len(rest) >= length:
                    status = head.split(b" ", 2)[1].decode()
                    return "%s %s" % (status, rest[:length].decode(errors="replace").strip()), head
            chunk = s.recv(65536)
            if not chunk:
                return ("closed" if not data else "partial"), data
            data += chunk
    except socket.timeout:
        return "timeout", data
    except ConnectionResetError:
        return "closed", data


def send_all(port, payload, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before reading everything
    reply, head = read_reply(s, timeout)
    s.close()
    return reply, head


# ------------------------------------------------------------------ commands --

def cmd_raw(port, timeout=10.0):
    print(send_all(port, sys.stdin.buffer.read(), timeout)[0])


def cmd_trickle(port, what, gap):
    """Headers or body one byte at a time, until the server closes (at most 60 s)."""
    body = b'{"id":"evt_trickle","type":"invoice.paid"}'
    payload = post_bytes(body)
    start_at = payload.index(b"\r\n\r\n") + 4 if what == "body" else 0
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(payload[:start_at])
    t0 = time.monotonic()
    status = "none"
    for i in range(start_at, len(payload)):
        if time.monotonic() - t0 > 60:
            break
        r, _, _ = select.select([s], [], [], gap)
        if r:
            status, _ = read_reply(s, 1)
            break
        try:
            s.send(payload[i:i + 1])
        except OSError:
            status = "closed"
            break
    else:
        status, _ = read_reply(s, 60)
    s.close()
    print("closed after %d ms, status %s" % ((time.monotonic() - t0) * 1000, status.split()[0]))


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def cmd_idle(port, n, hold):
    """n connections that never send a byte; how many the server closed within hold s."""
    raise_fd_limit(n + 64)
    socks = {}
    poller = select.poll()
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks[s.fileno()] = s
        poller.register(s, select.POLLIN)
    deadline = time.monotonic() + hold
    closed = 0
    while time.monotonic() < deadline and closed < n:
        for fd, _ in poller.poll(200):
            try:
                data = socks[fd].recv(1)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data == b"":
                poller.unregister(fd)
                closed += 1
    for s in socks.values():
        s.close()
    print("opened %d closed %d" % (n, closed))


def cmd_slowloris(port, n, seconds):
    """n clients trickle headers; meanwhile a normal client must be served."""
    raise_fd_limit(n + 64)
    payload = post_bytes(b"{}")
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.setblocking(False)
            socks.append(s)
        except OSError:
            break
    t0, pos, served, asked, worst = time.monotonic(), 0, 0, 0, 0.0
    while time.monotonic() - t0 < seconds:
        for s in socks:
            try:
                s.send(payload[pos:pos + 1])
            except OSError:
                pass
        pos = min(pos + 1, len(payload) - 1)
        asked += 1
        q0 = time.monotonic()
        reply, _ = send_all(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                            timeout=5)
        worst = max(worst, time.monotonic() - q0)
        served += reply.startswith("200")
        time.sleep(0.25)
    for s in socks:
        s.close()
    print("trickling %d: served %d/%d worst %d ms" % (len(socks), served, asked, worst * 1000))


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "raw":
        cmd_raw(port, float(sys.argv[3]) if len(sys.argv) > 3 else 10.0)
    elif cmd == "trickle":
        cmd_trickle(port, sys.argv[3], float(sys.argv[4]))
    elif cmd == "idle":
        cmd_idle(port, int(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "slowloris":
        cmd_slowloris(port, int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit("hostile_client: unknown command %s" % cmd)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""hostile_client.py - raw-socket clients for test_ingest_hostile.sh and
test_ingest_framing.sh (loopback only).

What curl cannot do: send exact bytes, trickle them, hold many connections.
Every command is bounded in time and prints one line the test compares.

  raw PORT [--timeout S]          stdin's bytes as they are; "STATUS BODY" or "closed"
  trickle PORT headers|body GAP   one byte per GAP s; "closed after MS ms, status S"
  idle PORT N HOLD                N idle connections for HOLD s; "opened N closed C"
  slowloris PORT N SECONDS        N trickling clients while one normal client polls
                                  /healthz; "served K/K worst MS ms"
  talk PORT TIMEOUT STEP...       one connection driven step by step (see cmd_talk);
                                  what each step saw, joined by " | ", then a line
                                  "dated D of N" (final answers with a good Date)

Secrets come from HOSTILE_SECRET (never printed).
"""
import calendar
import hashlib
import hmac
import os
import re
import resource
import select
import socket
import sys
import threading
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


class TalkEnd(Exception):
    """The connection can carry the session no further; its word is the message."""


def recv_more(s, buf):
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        raise TalkEnd("timeout")
    except ConnectionResetError:
        raise TalkEnd("reset")
    if not chunk:
        raise TalkEnd("closed" if not buf else "closed mid-answer")
    return buf + chunk


def take_response(s, buf, no_body):
    """(status line, {name: [values]}, body, rest) of the next answer in buf + s."""
    while b"\r\n\r\n" not in buf:
        buf = recv_more(s, buf)
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    status = re.match(r"HTTP/1\.1 ([1-5][0-9][0-9]) [^\r\n]*$", lines[0])
    try:
        code = int(status.group(1))
        length = int(headers.get("content-length", ["0"])[0])
    except (AttributeError, ValueError):
        raise TalkEnd("garbage %r" % head[:40])
    if no_body or code < 200:
        length = 0
    while len(rest) < length:
        rest = recv_more(s, rest)
    return lines[0], headers, rest[:length], rest[length:]


def well_dated(values):
    """One Date in IMF-fixdate form, within a minute of our clock."""
    try:
        t = calendar.timegm(time.strptime(values[0], "%a, %d %b %Y %H:%M:%S GMT"))
    except (ValueError, IndexError):
        return False
    return len(values) == 1 and abs(t - time.time()) < 60


def cmd_talk(port, timeout, steps):
    """Steps on one connection, every socket call bounded by timeout s:
      send:FILE  the file's bytes ("send failed" if the server is gone)
      shut       shutdown(SHUT_WR): our half-close
      read       the next answer: "STATUS BODY"
      readhead   the next answer, to a HEAD (no body whatever its length): "STATUS"
      status     the last answer's status line
      hdr:NAME   "NAME: VALUE" of the last answer, or "no NAME"
      eof        "closed" if the server closes (recv gives b""), "reset", "open"
                 if nothing comes within timeout, or "extra N bytes"
    A read that cannot complete says why (closed, timeout, ...) and ends the session."""
    out, buf, line, headers, answers, dated = [], b"", "", {}, 0, 0
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        for step in steps:
            word, _, arg = step.partition(":")
            if word == "send":
                try:
                    with open(arg, "rb") as f:
                        s.sendall(f.read())
                except OSError:
                    out.append("send failed")
            elif word == "shut":
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    out.append("shut failed")
            elif word in ("read", "readhead"):
                line, headers, body, buf = take_response(s, buf, word == "readhead")
                code = line.split(" ")[1]
                if int(code) >= 200:
                    answers += 1
                    dated += well_dated(headers.get("date", []))
                out.append(("%s %s" % (code, body.decode(errors="replace"))).strip())
            elif word == "status":
                out.append(line)
            elif word == "hdr":
                v = headers.get(arg.lower())
                out.append("%s: %s" % (arg, ", ".join(v)) if v else "no " + arg)
            elif word == "eof":
                if buf:
                    out.append("extra %d bytes" % len(buf))
                    continue
                try:
                    buf = recv_more(s, buf)
                    out.append("extra %d bytes" % len(buf))
                except TalkEnd as e:
                    out.append("open" if str(e) == "timeout" else str(e))
            else:
                sys.exit("hostile_client: unknown talk step %s" % step)
    except TalkEnd as e:
        out.append(str(e))
    finally:
        s.close()
    print(" | ".join(out))
    print("dated %d of %d" % (dated, answers))


def answered_200(port):
    """The server's count of 200 answers, from its /metrics."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    m = re.search(rb'^paystream_ingest_requests_total\{code="200"\} (\d+)', data, re.M)
    return int(m.group(1)) if m else 0


def cmd_flood(port, n, pause):
    """Pipeline n GET /healthz on one connection and read nothing for `pause`
    s; print how many the server answered meanwhile (its /metrics), then read
    and print how many 200s come, in order, within 20 s."""
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    before = answered_200(port)
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)

    def send():
        try:
            s.sendall(req * n)
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(pause)
    held = answered_200(port) - before - 1  # the first /metrics itself was a 200
    got, tail, t0 = 0, b"", time.monotonic()
    try:
        while got < n and time.monotonic() - t0 < 20:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data = tail + chunk
            got += data.count(b"HTTP/1.1 200 OK\r\n")
            tail = data[-20:]
            got -= tail.count(b"HTTP/1.1 200 OK\r\n")
    except OSError:
        pass
    got += tail.count(b"HTTP/1.1 200 OK\r\n")
    s.close()
    print("answered %d while unread; read %d of %d" % (held, got, n))


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
    elif cmd == "flood":
        cmd_flood(port, int(sys.argv[3]), float(sys.argv[4]))
    elif cmd == "talk":
        cmd_talk(port, float(sys.argv[3]), sys.argv[4:])
    else:
        sys.exit("hostile_client: unknown command %s" % cmd)


if __name__ == "__main__":
    main()

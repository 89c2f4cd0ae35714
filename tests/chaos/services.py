"""services.py - the chaos run's view of its servers and processes.

A minimal Redis client (RESP over a socket, enough for XINFO, XLEN, EVAL and
pipelined XADD), psql for queries, and the paystream processes this run starts
(ingest and worker, owned as subprocesses: started, SIGKILLed, restarted and
stopped by pid). Redis and PostgreSQL belong to tests/harness/stack.sh (with
--pg-failover, the ledger's PostgreSQL is pg_standby.sh's primary and standby;
with --redis-failover, the stream's Redis is sentinel.sh's master, replica and
three sentinels, and a client follows the master the sentinels name); they are
crashed here by the pid they wrote and brought back by its helpers.
"""
import os
import signal
import socket
import subprocess
import time
import urllib.request

from plan import se

PSQL = "/usr/lib/postgresql/15/bin/psql"
STACK_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness", "stack.sh")
PAIR_SH = os.path.join(os.path.dirname(STACK_SH), "pg_standby.sh")
SENTINEL_SH = os.path.join(os.path.dirname(STACK_SH), "sentinel.sh")


# ------------------------------------------------------------------ Redis --

class RedisError(Exception):
    pass


class Redis:
    """One connection to 127.0.0.1:port; reconnects on the next call after an error.
    With `locate` (a function giving a port), to wherever it says, and only to a
    server that says it is a master."""

    def __init__(self, port, timeout=10.0, locate=None):
        self.port, self.timeout, self.sock, self.buf = port, timeout, None, b""
        self.locate = locate

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(max(1 << 16, n + 2 - len(self.buf)))
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            return None if int(rest) < 0 else self._exact(int(rest))
        if kind == b"*":
            return None if int(rest) < 0 else [self._reply() for _ in range(int(rest))]
        raise ConnectionError("bad RESP reply %r" % line[:40])

    def pipeline(self, commands):
        """Send all commands, then read all replies (errors returned in place)."""
        try:
            if self.sock is None:
                self.connect()
            self.sock.sendall(b"".join(se.resp_cmd(*c) for c in commands))
            return [self._reply() for _ in commands]
        except (OSError, ValueError):
            self.close()
            raise

    def connect(self):
        if self.locate is not None:
            self.port = self.locate()
        self.sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        if self.locate is not None:
            self.sock.sendall(se.resp_cmd("ROLE"))
            role = self._reply()
            if not isinstance(role, list) or role[0] != b"master":
                raise ConnectionError("127.0.0.1:%d is not a master (%r)" % (self.port, role))

    def call(self, *args):
        reply = self.pipeline([args])[0]
        if isinstance(reply, RedisError):
            raise reply
        return reply


class Sentinels:
    """The servers of tests/harness/sentinel.sh (--redis-failover): data nodes
    by index, the sentinels, and the master as the first sentinel that answers
    names it."""

    def __init__(self):
        lines = sentinel("sentinel_start_print").strip().splitlines()[-3:]
        self.url = lines[0]
        self.nodes = [int(x) for x in lines[1].split()]
        self.sentinels = [int(x) for x in lines[2].split()]
        self.name = self.url.rsplit("#", 1)[1]

    def master_port(self):
        for port in self.sentinels:
            r = Redis(port, timeout=2)
            try:
                addr = r.call("SENTINEL", "get-master-addr-by-name", self.name)
            except (OSError, RedisError):
                continue
            finally:
                r.close()
            if addr:
                return int(addr[1])
        raise ConnectionError("no sentinel knows master %s" % self.name)

    def master(self):
        """The index of the node the sentinels name."""
        return self.nodes.index(self.master_port())

    def redis(self, timeout=10.0):
        """A client that follows the master."""
        return Redis(self.nodes[0], timeout, locate=self.master_port)

    def kill(self, i, then=None):
        """SIGKILL data node i (a lost machine) by the pid it wrote; `then()`
        right after the signal; returns once it is gone."""
        pidfile = os.path.join(os.environ["PS_STACK_DIR"], "sentinel", "node%d.pid" % i)
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGKILL)
        if then is not None:
            then()
        if not wait_gone(pid, 30):
            raise RuntimeError("redis-server node %d (pid %d) still running after SIGKILL" % (i, pid))
        os.unlink(pidfile)  # as sentinel_node_kill: nobody signals that pid again
        return pid

    def replication(self, i):
        """(role, online replicas) of node i; (None, 0) when it does not answer."""
        r = Redis(self.nodes[i], timeout=2)
        try:
            info = r.call("INFO", "replication").decode()
        except (OSError, RedisError):
            return None, 0
        finally:
            r.close()
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        online = sum(1 for k, v in fields.items() if k.startswith("slave") and "state=online" in v)
        return fields.get("role"), online

    def healthy(self):
        """True when the named master says so, streams to every other node,
        and those say they are replicas."""
        try:
            m = self.master()
        except (OSError, ValueError):
            return False
        role, online = self.replication(m)
        return role == "master" and online == len(self.nodes) - 1 and all(
            self.replication(i)[0] == "slave" for i in range(len(self.nodes)) if i != m)

    def wait(self, what, cond, seconds):
        deadline = time.monotonic() + seconds
        while True:
            try:
                if cond():
                    return
            except (OSError, ValueError, RedisError):
                pass  # a server down or not known yet
            if time.monotonic() > deadline:
                raise RuntimeError("%s: not within %d s" % (what, seconds))
            time.sleep(0.1)


def as_dict(flat):
    """A RESP map sent as a flat array, with text keys."""
    return {flat[i].decode() if isinstance(flat[i], bytes) else flat[i]: flat[i + 1]
            for i in range(0, len(flat), 2)}


# ------------------------------------------------------------- PostgreSQL --

def psql(url, query, timeout=120):
    """Rows of a query as lists of text fields (psql -At, '|' separated)."""
    out = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", query],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError("psql: %s" % out.stderr.strip())
    return [line.split("|") for line in out.stdout.splitlines()]


def stack(helper, *args):
    """Run one function of tests/harness/stack.sh (its variables come from our
    env); what it printed."""
    return subprocess.run(["bash", "-c", '. "$0"; "$@"', STACK_SH, helper] + list(args),
                          check=True, timeout=180, capture_output=True, text=True).stdout


def pair(helper, *args):
    """Run one function of tests/harness/pg_standby.sh (a primary and its
    synchronous standby; --pg-failover); what it printed on stdout."""
    out = subprocess.run(["bash", "-c", '. "$0"; . "$1"; shift; "$@"', STACK_SH, PAIR_SH, helper]
                         + list(args), timeout=180, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("%s: %s" % (helper, out.stderr.strip()[-500:]))
    return out.stdout


def sentinel(helper, *args):
    """Run one function of tests/harness/sentinel.sh (--redis-failover) with the
    variables of the servers it started; what it printed on stdout."""
    attach = "" if helper == "sentinel_start_print" else "sentinel_attach; "
    out = subprocess.run(["bash", "-c", '. "$0"; . "$1"; shift; %s"$@"' % attach, STACK_SH,
                          SENTINEL_SH, helper] + list(args),
                         timeout=180, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("%s: %s" % (helper, out.stderr.strip()[-500:]))
    return out.stdout


# -------------------------------------------------------------- processes --

class Procs:
    """The ingest and worker processes of one run; logs under `logdir`."""

    def __init__(self, bin_dir, logdir, env):
        self.bin_dir, self.logdir, self.env = bin_dir, logdir, env
        self.running = {}  # name -> Popen
        self.started = 0

    def start(self, name, program, extra):
        env = dict(self.env, **extra)
        log = open(os.path.join(self.logdir, "%s.log" % name), "ab")
        p = subprocess.Popen([os.path.join(self.bin_dir, program)], env=env, stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.running[name] = p
        self.started += 1
        return p

    def kill(self, name):
        """SIGKILL one of ours by its pid and reap it."""
        p = self.running.pop(name)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        return p.pid

    def stop_all(self, timeout=60):
        """SIGTERM every process; {name: exit status} (None: had to be killed)."""
        for p in self.running.values():
            p.send_signal(signal.SIGTERM)
        status = {}
        for name, p in self.running.items():
            try:
                status[name] = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                status[name] = None
        self.running.clear()
        return status


def wait_http(url, seconds):
    """True once url answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def redis_pid(stack_dir):
    with open(os.path.join(stack_dir, "redis.pid")) as f:
        return int(f.read().strip())


def wait_gone(pid, seconds):
    """True once pid has ended (a zombie nobody reaped yet counts as ended)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.05)
    return False

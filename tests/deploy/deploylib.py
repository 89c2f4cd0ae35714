"""deploylib.py - what the deploy/ checks share: the report of failures, the
programs' settings as their own --help lists them, and `--show-config` runs
that prove a set of values is accepted. The checks themselves live in
check_units.py, check_container.py and check_k8s.py."""
import os
import re
import subprocess

import yaml

PROGRAMS = ("paystream-ingest", "paystream-worker", "paystreamctl")
HELP_SETTING = re.compile(r"^\s+((?:PAYSTREAM|STRIPE)_[A-Z0-9_]+)\s+--", re.M)
SETTING_NAME = re.compile(r"\b(?:PAYSTREAM|STRIPE)_[A-Z0-9_]+\b")


class Report:
    """Collects failures as 'file: message'; every check counts."""

    def __init__(self, source):
        self.source = source
        self.checks = 0
        self.failures = []

    def check(self, ok, where, msg):
        self.checks += 1
        if not ok:
            self.failures.append("%s: %s" % (self.rel(where), msg))
        return bool(ok)

    def rel(self, path):
        if os.path.isabs(path):
            return os.path.relpath(path, self.source)
        return path


class Programs:
    """The built programs: their settings and a validator for values."""

    def __init__(self, bindir, cache=None):
        self.bindir = bindir
        self.cache = cache  # file for facts about the binaries that are slow to learn
        self.settings = {}
        for prog in PROGRAMS:
            out = self._run(prog, ["--help"], {}).stdout
            names = set(HELP_SETTING.findall(out))
            if len(names) < 5:
                raise SystemExit("%s --help lists no settings; is %s built?" % (prog, bindir))
            self.settings[prog] = names

    def _run(self, prog, args, env):
        return subprocess.run([os.path.join(self.bindir, prog)] + args, env=env,
                              capture_output=True, text=True, timeout=30, check=False)

    def all_settings(self):
        return set().union(*self.settings.values())

    def show_config(self, prog, env):
        """(exit code, effective settings or the error line) for env alone."""
        r = self._run(prog, ["--show-config"], {k: str(v) for k, v in env.items()})
        if r.returncode != 0:
            return r.returncode, (r.stderr or r.stdout).strip()
        values = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
        return 0, values

    def program_of(self, command):
        """The paystream program a command line runs (None if none)."""
        words = re.split(r"[\s;&|]+", command if isinstance(command, str) else " ".join(command))
        for w in words:
            if os.path.basename(w) in PROGRAMS:
                return os.path.basename(w)
        return None

    def drain_seconds(self, env):
        """Longest SIGTERM drain of ingest with env: Redis timeout + client
        timeout + 1 s (ingest/main.c), from the values ingest itself reads."""
        rc, values = self.show_config("paystream-ingest", env)
        if rc != 0:
            return None
        return int(values["PAYSTREAM_REDIS_TIMEOUT_MS"]) / 1000 + int(values["PAYSTREAM_TIMEOUT"]) + 1

    def check_env(self, report, where, prog, env):
        """Every name is a setting of prog, and prog accepts the values."""
        unknown = sorted(set(env) - self.settings[prog])
        report.check(not unknown, where, "%s has no setting %s" % (prog, ", ".join(unknown)))
        rc, out = self.show_config(prog, {k: v for k, v in env.items() if k not in unknown})
        report.check(rc == 0, where, "%s refuses the values: %s" % (prog, out))


def load_yaml(report, path):
    """The documents of a YAML file ([] and a failure if it does not parse)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        report.check(False, path, "not valid YAML: %s" % e)
        return []


def dig(obj, *keys):
    """obj[k1][k2]... or None where a level is missing."""
    for k in keys:
        if isinstance(obj, dict):
            obj = obj.get(k)
        elif isinstance(obj, list) and isinstance(k, int) and k < len(obj):
            obj = obj[k]
        else:
            return None
    return obj


def parse_seconds(text):
    """'30s', '1m30s', '5min', '60' (seconds) -> seconds, or None."""
    if isinstance(text, (int, float)):
        return float(text)
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", str(text).strip())
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s", "", str(text)):
        return None
    total = 0.0
    for num, unit in parts:
        if unit not in units and unit != "":
            return None
        total += float(num) * units.get(unit, 1)
    return total

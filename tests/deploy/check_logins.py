"""check_logins.py - least privilege in the production recipes (SPEC 5, 7):
no program connects to PostgreSQL as a superuser, the workers connect as a
login in paystream_worker, and the workers run in live mode only (a test-mode
secret must not grant real credits). The recipes: compose.yaml with the
logins postgres-init.sh creates, the Kubernetes Secret and ConfigMap, and the
systemd environment files."""
import os
import re
from urllib.parse import urlsplit

from deploylib import dig, load_yaml

SUPERUSERS = {"postgres"}  # the one a cluster is made with; the postgres image's POSTGRES_USER too
ROLE_LINE = re.compile(r"CREATE ROLE (\w+)\s+([^;]*);", re.I)


def url_user(url):
    """The login a libpq URL names ("" when it names none)."""
    try:
        return urlsplit(str(url)).username or ""
    except ValueError:
        return ""


def init_logins(path):
    """{login: (superuser?, [groups])} from postgres-init.sh's CREATE ROLE lines."""
    logins = {}
    with open(path, encoding="utf-8") as f:
        for name, rest in ROLE_LINE.findall(f.read()):
            groups = re.findall(r"IN ROLE (\w+)", rest, re.I)
            logins[name] = ("SUPERUSER" in rest.upper().split(), groups)
    return logins


def check_compose(report, source):
    cdir = os.path.join(source, "deploy", "container")
    path = os.path.join(cdir, "compose.yaml")
    docs = load_yaml(report, path)
    if not docs or not isinstance(docs[0], dict):
        return
    services = docs[0].get("services") or {}
    supers = set(SUPERUSERS)
    for svc in services.values():
        if "postgres" in str(svc.get("image", "")):
            supers.add(str(dig(svc, "environment", "POSTGRES_USER") or "postgres"))
    logins = init_logins(os.path.join(cdir, "postgres-init.sh"))
    for name, svc in services.items():
        cmd = " ".join(svc.get("command") or [])
        if "paystream" not in cmd:
            continue
        env = svc.get("environment") or {}
        url = env.get("PAYSTREAM_DATABASE_URL")
        if url is None:
            continue
        user = url_user(re.sub(r"\$\{[^}]*\}", "pw", str(url)))
        report.check(user and user not in supers, path,
                     "%s connects to PostgreSQL as %s, a superuser" % (name, user or "(nobody)"))
        superuser, groups = logins.get(user, (False, []))
        report.check(user in logins and not superuser, path,
                     "%s's login %s is not one postgres-init.sh makes (not a superuser)"
                     % (name, user))
        if "paystream-worker" in cmd:
            report.check("paystream_worker" in groups, path,
                         "%s's login %s is not IN ROLE paystream_worker" % (name, user))
            report.check(env.get("PAYSTREAM_LIVEMODE") == "live", path,
                         "%s does not run with PAYSTREAM_LIVEMODE=live" % name)


def check_k8s(report, source):
    kdir = os.path.join(source, "deploy", "k8s")
    path = os.path.join(kdir, "secret.example.yaml")
    for doc in load_yaml(report, path):
        for key, url in (dig(doc, "stringData") or {}).items():
            if str(url).startswith("postgres"):
                user = url_user(url)
                report.check(user and user not in SUPERUSERS, path,
                             "%s connects as %s, a superuser" % (key, user or "(nobody)"))
    path = os.path.join(kdir, "configmap.yaml")
    modes = [dig(doc, "data", "PAYSTREAM_LIVEMODE") for doc in load_yaml(report, path)]
    report.check("live" in modes, path, "the workers do not run with PAYSTREAM_LIVEMODE=live")


def env_file(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "=" in line and not line.lstrip().startswith("#"):
                k, _, v = line.strip().partition("=")
                out[k] = v
    return out


def check_systemd_env(report, source):
    deploy = os.path.join(source, "deploy")
    for name in ("paystream.env.example", "paystream-secrets.env.example"):
        path = os.path.join(deploy, name)
        env = env_file(path)
        url = env.get("PAYSTREAM_DATABASE_URL")
        if url is not None:
            report.check(url_user(url) not in SUPERUSERS, path,
                         "PAYSTREAM_DATABASE_URL connects as %s, a superuser" % url_user(url))
        if name == "paystream.env.example":
            report.check(env.get("PAYSTREAM_LIVEMODE") == "live", path,
                         "the services do not run with PAYSTREAM_LIVEMODE=live")


def check(report, progs, source):
    del progs  # nothing to ask the programs
    check_compose(report, source)
    check_k8s(report, source)
    check_systemd_env(report, source)

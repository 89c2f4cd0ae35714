"""check_container.py - deploy/container/ without a container engine: the
Dockerfile's stages, sources, user and runtime libraries, and compose.yaml's
services, mounts, order and settings, each against the repository and the
built programs."""
import fnmatch
import json
import os
import re
import subprocess

from deploylib import PROGRAMS, dig, load_yaml, parse_seconds

SANITIZER_LIBS = ("libasan", "libubsan", "liblsan", "libtsan")


# ------------------------------------------------------------- Dockerfile --

def dockerfile_instructions(path):
    """[(INSTRUCTION, argument text)] with continuations joined."""
    out, pending = [], ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            full = pending + stripped
            pending = ""
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def split_stages(instructions):
    """[{'image', 'name', 'body': [(INSTR, args)]}] in order."""
    stages = []
    for instr, args in instructions:
        if instr == "FROM":
            m = re.match(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            stages.append({"image": m.group(1), "name": m.group(2), "body": []})
        elif stages:
            stages[-1]["body"].append((instr, args))
    return stages


def apt_packages(stage):
    pkgs = set()
    for instr, args in stage["body"]:
        if instr != "RUN":
            continue
        for cmd in re.split(r"&&|;", args):
            words = cmd.split()
            if words[:2] == ["apt-get", "install"]:
                pkgs |= {w for w in words[2:] if not w.startswith("-")}
    return pkgs


def ignored(patterns, src):
    """Whether a .dockerignore pattern excludes src (top-level and **/ forms)."""
    parts = src.strip("/").split("/")
    for p in (p.strip("/") for p in patterns):
        if p.startswith("**/"):
            if any(fnmatch.fnmatch(part, p[3:]) for part in parts):
                return True
        elif fnmatch.fnmatch(parts[0], p.split("/")[0]):
            return True
    return False


def linked_libraries(bindir):
    """Shared libraries the programs link directly, less libc and sanitizers."""
    libs = set()
    for prog in PROGRAMS:
        out = subprocess.run(["readelf", "-d", os.path.join(bindir, prog)], capture_output=True,
                             text=True, check=True).stdout
        libs |= {lib for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
                 if not lib.startswith(SANITIZER_LIBS + ("libc.so",))}
    return libs


def pkgconfig_modules(source):
    """The pkg-config modules CMakeLists.txt requires."""
    with open(os.path.join(source, "CMakeLists.txt"), encoding="utf-8") as f:
        text = f.read()
    mods = set()
    for args in re.findall(r"pkg_check_modules\(([^)]*)\)", text):
        mods |= {w for w in args.split()[1:] if w not in ("REQUIRED", "IMPORTED_TARGET", "QUIET")}
    return mods


def package_owners(files):
    """{file name: Debian package shipping it}, in one dpkg query (it reads the
    whole package database)."""
    out = subprocess.run(["dpkg", "-S"] + ["*/" + f for f in sorted(files)],
                         capture_output=True, text=True, check=False).stdout
    owners = dict.fromkeys(files)
    for line in out.splitlines():
        pkgs, _, path = line.partition(": ")
        name = os.path.basename(path)
        if name in owners and owners[name] is None:
            owners[name] = pkgs.split(",")[0].split(":")[0].strip()
    return owners


def needed_packages(source, bindir, cache):
    """{'runtime': {lib: package}, 'build': {module.pc: package}}, kept in the
    file cache (if given) for later runs against the same binaries."""
    if cache and os.path.exists(cache):
        with open(cache, encoding="utf-8") as f:
            return json.load(f)
    libs = linked_libraries(bindir)
    pcs = {m + ".pc" for m in pkgconfig_modules(source)}
    owners = package_owners(libs | pcs)
    needed = {"runtime": {l: owners[l] for l in libs}, "build": {p: owners[p] for p in pcs}}
    if cache:
        with open(cache, "w", encoding="utf-8") as f:
            json.dump(needed, f)
    return needed


def build_inputs(source, tests_off):
    """Repository paths a build reads: the directories CMakeLists.txt adds
    (tests/ only when tests are on), and every ${CMAKE_SOURCE_DIR}/path or
    install(DIRECTORY path) their CMakeLists.txt files name."""
    def read(d):
        with open(os.path.join(source, d, "CMakeLists.txt"), encoding="utf-8") as f:
            return f.read()
    top = read("")
    dirs = [d for d in re.findall(r"add_subdirectory\((\S+)\)", top)
            if not (tests_off and d == "tests")]
    paths = set(dirs)
    for d in [""] + dirs:
        text = read(d)
        paths |= set(re.findall(r"\$\{CMAKE_SOURCE_DIR\}/([\w./-]+)", text))
        paths |= {os.path.join(d, p) for p in re.findall(r"install\(DIRECTORY (\S+)", text)}
    return {p.strip("/") for p in paths if not p.startswith("..")}


def check_build_sources(report, source, path, stages):
    """The build stages copy everything the build reads."""
    copied, flags = set(), ""
    for st in stages[:-1]:
        for instr, args in st["body"]:
            if instr == "COPY" and "--from=" not in args:
                copied |= {w.strip("/") for w in args.split()[:-1] if not w.startswith("--")}
            if instr == "RUN":
                flags += args
    for need in sorted(build_inputs(source, "-DPAYSTREAM_TESTS=OFF" in flags)):
        report.check(any(need == c or need.startswith(c + "/") for c in copied), path,
                     "the build stage does not copy %s, which the build reads" % need)


def check_dockerfile(report, source, progs, path):
    stages = split_stages(dockerfile_instructions(path))
    if not report.check(len(stages) >= 2, path, "not multi-stage"):
        return
    names = []
    ignore_path = path + ".dockerignore"
    ignore = [l.strip() for l in open(ignore_path, encoding="utf-8")
              if l.strip() and not l.startswith("#")] if os.path.exists(ignore_path) else []
    for st in stages:
        report.check(st["image"].startswith("debian:12"), path,
                     "FROM %s is not Debian 12" % st["image"])
        for instr, args in st["body"]:
            if instr not in ("COPY", "ADD"):
                continue
            words = args.split()
            flags = [w for w in words if w.startswith("--")]
            srcs = [w for w in words if not w.startswith("--")][:-1]
            frm = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
            if frm:
                report.check(frm[0] in names, path, "COPY --from=%s: no earlier stage" % frm[0])
                continue
            for src in srcs:
                report.check(os.path.exists(os.path.join(source, src)), path,
                             "COPY source %s is not in the repository" % src)
                report.check(not ignored(ignore, src), path,
                             "COPY source %s is excluded by %s" % (src, report.rel(ignore_path)))
        names.append(st["name"])
    final = stages[-1]
    users = [a for i, a in final["body"] if i == "USER"]
    report.check(users and users[-1].split(":")[0] not in ("root", "0"), path,
                 "the runtime stage does not switch to a non-root USER")
    cmd = " ".join(a for i, a in final["body"] if i in ("CMD", "ENTRYPOINT"))
    report.check(any(p in cmd for p in PROGRAMS), path, "CMD runs none of the programs")
    check_build_sources(report, source, path, stages)
    needed = needed_packages(source, progs.bindir, progs.cache)
    runtime = apt_packages(final)
    for lib, pkg in sorted(needed["runtime"].items()):
        report.check(pkg in runtime, path, "the runtime stage lacks %s (package %s), which the "
                     "programs link" % (lib, pkg))
    build = set().union(*(apt_packages(st) for st in stages[:-1]))
    for pc, pkg in sorted(needed["build"].items()):
        report.check(pkg in build, path, "the build stage lacks %s (package %s), which "
                     "CMakeLists.txt requires" % (pc, pkg))


# ---------------------------------------------------------------- compose --

def interpolate(value):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} with a stand-in."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?(?::?\?[^}]*)?\}",
                  lambda m: m.group(2) if m.group(2) is not None else "placeholder", str(value))


def listen_port(env):
    return (env.get("PAYSTREAM_LISTEN") or "127.0.0.1:8080").rsplit(":", 1)[1]


def check_compose_service(report, progs, path, name, svc, ctx):
    cmd = svc.get("command") or []
    prog = progs.program_of(cmd)
    if prog is None and "paystream" in str(svc.get("image")):
        prog = "paystream-ingest"  # the image's CMD
    env = {k: interpolate(v) for k, v in (svc.get("environment") or {}).items()}
    if prog:
        progs.check_env(report, path, prog, env)
    for vol in svc.get("volumes") or []:
        src = str(vol).split(":")[0]
        if src.startswith((".", "/")):
            report.check(os.path.exists(os.path.join(ctx["dir"], src)), path,
                         "%s mounts %s, which does not exist" % (name, src))
    for dep, how in (svc.get("depends_on") or {}).items():
        target = ctx["services"].get(dep)
        report.check(target is not None, path, "%s depends on unknown service %s" % (name, dep))
        cond = dig(how, "condition")
        if target is not None and cond == "service_healthy":
            report.check(target.get("healthcheck"), path, "%s waits for %s to be healthy, "
                         "which has no healthcheck" % (name, dep))
    for s in svc.get("secrets") or []:
        report.check(s in ctx["secrets"], path, "%s uses undefined secret %s" % (name, s))
    if prog in ("paystream-ingest", "paystream-worker"):
        how = dig(svc, "depends_on", ctx["migrate"]) if ctx["migrate"] else None
        report.check(dig(how, "condition") == "service_completed_successfully", path,
                     "%s does not wait for the migration one-shot to complete" % name)
    if prog == "paystream-worker":
        replicas = dig(svc, "deploy", "replicas")
        report.check(isinstance(replicas, int) and replicas >= 1, path,
                     "%s is not scaled by deploy.replicas" % name)
    if prog == "paystream-ingest":
        port = listen_port(env)
        test = " ".join(dig(svc, "healthcheck", "test") or [])
        report.check(re.search(r"/(healthz|readyz)\b", test) and port in test, path,
                     "%s's healthcheck does not ask /healthz or /readyz on port %s" % (name, port))
        ports = [str(p).rsplit(":", 1)[-1] for p in svc.get("ports") or []]
        report.check(port in ports, path, "%s publishes %s, listens on %s" % (name, ports, port))
        drain = progs.drain_seconds(env)
        grace = parse_seconds(svc.get("stop_grace_period", "10s"))
        report.check(drain and grace and grace > drain, path,
                     "%s's stop_grace_period %ss does not cover the %ss drain" % (name, grace, drain))


def check_redis(report, source, path, services, cdir):
    conf = os.path.realpath(os.path.join(source, "deploy", "redis.conf"))
    found = False
    for svc in services.values():
        for vol in svc.get("volumes") or []:
            parts = str(vol).split(":")
            if os.path.realpath(os.path.join(cdir, parts[0])) == conf:
                found = found or (len(parts) > 1 and
                                  parts[1] in " ".join(svc.get("command") or []))
    report.check(found, path, "no Redis service runs with deploy/redis.conf mounted")
    text = open(conf, encoding="utf-8").read()
    for line in ("appendonly yes", "appendfsync always", "maxmemory-policy noeviction"):
        report.check(re.search(r"^%s\s*$" % line, text, re.M), conf, "lacks '%s'" % line)


def check_compose(report, progs, source, path):
    docs = load_yaml(report, path)
    if not report.check(len(docs) == 1 and isinstance(docs[0], dict), path, "not one mapping"):
        return
    doc, cdir = docs[0], os.path.dirname(path)
    services = doc.get("services") or {}
    migrate = [n for n, s in services.items() if "paystreamctl migrate" in " ".join(
        s.get("command") or [])]
    report.check(len(migrate) == 1, path, "expected one migration service, found %s" % migrate)
    ctx = {"dir": cdir, "services": services, "secrets": doc.get("secrets") or {},
           "migrate": migrate[0] if migrate else None}
    if ctx["migrate"]:
        report.check(services[ctx["migrate"]].get("restart") == "no", path,
                     "the migration service is not a one-shot (restart: \"no\")")
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            context = os.path.realpath(os.path.join(cdir, build.get("context", ".")))
            report.check(context == os.path.realpath(source), path,
                         "%s builds from %s, not the repository root" % (name, context))
            report.check(os.path.exists(os.path.join(context, build.get("dockerfile", ""))),
                         path, "%s: no Dockerfile %s" % (name, build.get("dockerfile")))
        check_compose_service(report, progs, path, name, svc, ctx)
    check_redis(report, source, path, services, cdir)


def check_compose_sentinel(report, progs, source, path):
    """compose.sentinel.yaml, applied over compose.yaml: every paystream service
    it changes exists there and reaches Redis through the sentinels it starts,
    ingest waits for a replica (MIN_REPLICAS), and the merged settings are the
    programs' own."""
    base = (load_yaml(report, os.path.join(os.path.dirname(path), "compose.yaml")) or [{}])[0]
    docs = load_yaml(report, path)
    if not report.check(len(docs) == 1 and isinstance(docs[0], dict), path, "not one mapping"):
        return
    services, known = docs[0].get("services") or {}, dict(base.get("services") or {})
    known.update(services)
    sentinels = [n for n, s in services.items() if "redis-sentinel" in " ".join(
        str(c) for c in s.get("command") or [])]
    report.check(len(sentinels) >= 3, path, "fewer than three sentinels: %s" % sentinels)
    volumes = set(base.get("volumes") or {}) | set(docs[0].get("volumes") or {})
    for name, svc in services.items():
        for vol in svc.get("volumes") or []:
            src = str(vol).split(":")[0]
            report.check(src.startswith((".", "/")) or src in volumes, path,
                         "%s mounts undeclared volume %s" % (name, src))
        for dep in svc.get("depends_on") or {}:
            report.check(dep in known, path, "%s depends on unknown service %s" % (name, dep))
        prog = progs.program_of((base.get("services") or {}).get(name, {}).get("command") or [])
        if not prog:
            continue
        env = {k: interpolate(v) for k, v in (dig(base, "services", name, "environment") or {}).items()}
        env.update({k: interpolate(v) for k, v in (svc.get("environment") or {}).items()})
        url = env.get("PAYSTREAM_REDIS_URL", "")
        report.check(url.startswith("redis-sentinel://") and all(
            s in url for s in sentinels), path, "%s does not ask the sentinels: %s" % (name, url))
        if prog == "paystream-ingest":
            report.check(env.get("PAYSTREAM_REDIS_MIN_REPLICAS") == "1", path,
                         "ingest does not wait for a replica (PAYSTREAM_REDIS_MIN_REPLICAS)")
        progs.check_env(report, path, prog, env)


def check(report, progs, source):
    cdir = os.path.join(source, "deploy", "container")
    check_dockerfile(report, source, progs, os.path.join(cdir, "Dockerfile"))
    check_compose(report, progs, source, os.path.join(cdir, "compose.yaml"))
    check_compose_sentinel(report, progs, source, os.path.join(cdir, "compose.sentinel.yaml"))

"""check_units.py - the systemd recipe as the programs see it: the env example
files hold only real settings with values the programs accept, and each unit
runs as the dedicated user, stops with SIGTERM and waits long enough for the
drain. systemd's own view (verify, security) is in test_deploy_files.sh."""
import glob
import os

from deploylib import dig, parse_seconds


def read_env_file(report, path):
    """NAME=value lines of an EnvironmentFile (comments and blanks skipped)."""
    env = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if report.check(sep and name.isidentifier(), path, "line %d is not NAME=value" % n):
                env[name] = value
    return env


def read_unit(path):
    """{section: {key: [values]}} of a unit file."""
    unit, section = {}, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = unit.setdefault(line.strip("[]"), {})
            elif section is not None and "=" in line:
                key, value = line.split("=", 1)
                section.setdefault(key.strip(), []).append(value.strip())
    return unit


def check_env_examples(report, progs, deploy):
    """The example EnvironmentFiles: each program accepts what it would read."""
    settings = read_env_file(report, os.path.join(deploy, "paystream.env.example"))
    secrets_path = os.path.join(deploy, "paystream-secrets.env.example")
    secrets = read_env_file(report, secrets_path)
    for name, value in secrets.items():
        report.check("CHANGE_ME" in value, secrets_path, "%s is not a placeholder" % name)
    env = {**settings, **secrets}
    unknown = sorted(set(env) - progs.all_settings())
    report.check(not unknown, os.path.join(deploy, "paystream.env.example"),
                 "not a setting of any program: %s" % ", ".join(unknown))
    for prog, names in progs.settings.items():
        progs.check_env(report, os.path.join(deploy, "paystream.env.example"), prog,
                        {k: v for k, v in env.items() if k in names})
    return env


def check_unit(report, progs, path, env):
    unit = read_unit(path)
    svc = unit.get("Service", {})
    exec_start = (dig(svc, "ExecStart") or [""])[0]
    prog = progs.program_of(exec_start)
    report.check(prog, path, "ExecStart runs none of the paystream programs")
    report.check(dig(svc, "User") == ["paystream"], path, "does not run as User=paystream")
    report.check("/etc/paystream/paystream.env" in (dig(svc, "EnvironmentFile") or []), path,
                 "does not read /etc/paystream/paystream.env")
    if prog in ("paystream-ingest", "paystream-worker"):
        report.check(dig(svc, "KillSignal") == ["SIGTERM"], path, "KillSignal is not SIGTERM")
        report.check(dig(svc, "Restart") == ["on-failure"], path, "Restart is not on-failure")
    if prog == "paystream-ingest":
        drain = progs.drain_seconds({k: v for k, v in env.items()
                                     if k in progs.settings[prog]})
        stop = parse_seconds((dig(svc, "TimeoutStopSec") or ["90s"])[-1])
        report.check(drain and stop and stop > drain, path,
                     "TimeoutStopSec %s does not cover the %ss drain" % (stop, drain))
        report.check(dig(svc, "ExecReload"), path, "no ExecReload (SIGHUP re-reads the secrets)")
    if prog == "paystream-worker":
        report.check(path.endswith("@.service"), path, "workers are not a template unit")
        report.check("paystream-migrate.service" in " ".join(dig(unit, "Unit", "After") or []),
                     path, "workers are not ordered after paystream-migrate.service")
    if prog == "paystreamctl":
        report.check(("migrate" in exec_start or "backfill" in exec_start) and
                     dig(svc, "Type") == ["oneshot"], path,
                     "the paystreamctl unit is not a one-shot migrate or backfill")
    if prog == "paystreamctl" and "backfill" in exec_start:
        timer = read_unit(path[:-len(".service")] + ".timer") if os.path.exists(
            path[:-len(".service")] + ".timer") else {}
        report.check(dig(timer, "Timer", "OnCalendar") == ["*:0/15"], path,
                     "no .timer starts the backfill every 15 minutes")
        report.check("--since 1h" in exec_start, path, "the backfill does not cover the last hour")
        report.check(any("backfill.env" in e for e in dig(svc, "EnvironmentFile") or []), path,
                     "the backfill reads no file with its key (STRIPE_API_KEY)")
        example = os.path.join(os.path.dirname(os.path.dirname(path)), "backfill.env.example")
        benv = read_env_file(report, example) if report.check(
            os.path.exists(example), path, "no deploy/backfill.env.example") else {}
        report.check(sorted(benv) == ["PAYSTREAM_DATABASE_URL", "STRIPE_API_KEY"] and
                     all("CHANGE_ME" in v for v in benv.values()), example,
                     "expected placeholders for STRIPE_API_KEY and PAYSTREAM_DATABASE_URL")
        progs.check_env(report, example, "paystreamctl", benv)


def check(report, progs, source):
    deploy = os.path.join(source, "deploy")
    env = check_env_examples(report, progs, deploy)
    units = sorted(glob.glob(os.path.join(deploy, "systemd", "*.service")))
    report.check(len(units) >= 3, os.path.join(deploy, "systemd"), "expected ingest, worker "
                 "template and migrate units, found %d" % len(units))
    for path in units:
        check_unit(report, progs, path, env)

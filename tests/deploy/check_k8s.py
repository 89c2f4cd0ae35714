"""check_k8s.py - deploy/k8s/ without a cluster: every document has the fields
its kind requires, names it refers to (ConfigMap, Secret keys, volumes,
ports, selectors) exist, containers are locked down, probes and the Service
meet on ingest's listening port, and the settings are the programs' own."""
import glob
import os

import yaml

from deploylib import dig, load_yaml

SECRET_EXAMPLE = "secret.example.yaml"
REQUIRED = {  # kind -> paths that must be present
    "Namespace": [],
    "ConfigMap": [("data",)],
    "Secret": [("stringData",)],
    "Deployment": [("spec", "replicas"), ("spec", "selector", "matchLabels"),
                   ("spec", "template", "metadata", "labels"),
                   ("spec", "template", "spec", "containers")],
    "Service": [("spec", "selector"), ("spec", "ports")],
    "Job": [("spec", "template", "spec", "containers"),
            ("spec", "template", "spec", "restartPolicy")],
    "CronJob": [("spec", "schedule"), ("spec", "jobTemplate", "spec", "template", "spec", "containers"),
                ("spec", "jobTemplate", "spec", "template", "spec", "restartPolicy")],
    "PodDisruptionBudget": [("spec", "selector", "matchLabels"), ("spec", "minAvailable")],
}


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_env(c, objs, report, path):
    """The environment a container starts with (ConfigMap, then env; secret
    references resolved from the Secret example)."""
    env = {}
    for src in c.get("envFrom") or []:
        cm = objs.get(("ConfigMap", dig(src, "configMapRef", "name")))
        if report.check(cm, path, "%s: envFrom names a ConfigMap not in the manifests" % c["name"]):
            env.update(cm.get("data") or {})
    for e in c.get("env") or []:
        ref = dig(e, "valueFrom", "secretKeyRef")
        if ref:
            secret = objs.get(("Secret", ref.get("name"))) or {}
            value = dig(secret, "stringData", ref.get("key"))
            report.check(value is not None, path, "%s: secret %s has no key %s" %
                         (c["name"], ref.get("name"), ref.get("key")))
            env[e["name"]] = value or ""
        else:
            env[e["name"]] = str(e.get("value", ""))
    return env


def check_container(report, progs, path, pod, c, objs):
    prog = progs.program_of(c.get("command") or [])
    report.check(prog, path, "%s runs none of the paystream programs" % c.get("name"))
    env = container_env(c, objs, report, path)
    if prog:
        names = progs.settings[prog]
        explicit = {e["name"] for e in c.get("env") or []}
        report.check(explicit <= names, path, "%s: %s has no setting %s" %
                     (c["name"], prog, ", ".join(sorted(explicit - names))))
        progs.check_env(report, path, prog, {k: v for k, v in env.items() if k in names})
    sc = c.get("securityContext") or {}
    report.check(sc.get("readOnlyRootFilesystem") is True and
                 sc.get("allowPrivilegeEscalation") is False and
                 dig(sc, "capabilities", "drop") == ["ALL"], path,
                 "%s: not read-only, no-escalation, all capabilities dropped" % c["name"])
    report.check(dig(pod, "securityContext", "runAsNonRoot") is True or sc.get("runAsNonRoot"),
                 path, "%s may run as root" % c["name"])
    report.check(dig(c, "resources", "requests") and dig(c, "resources", "limits"), path,
                 "%s has no resource requests and limits" % c["name"])
    volumes = {v["name"] for v in pod.get("volumes") or []}
    for m in c.get("volumeMounts") or []:
        report.check(m["name"] in volumes, path, "%s mounts unknown volume %s" % (c["name"], m["name"]))
    return prog, env


def port_number(c, port):
    if isinstance(port, int):
        return port
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def check_ingest(report, progs, path, dep, c, env, objs):
    """Replicas, probes on the admin port (or, without one, the listening port),
    the Service on the listening port only, the drain."""
    report.check(dep["spec"]["replicas"] >= 2, path, "ingest runs fewer than 2 replicas")
    listen = int((env.get("PAYSTREAM_LISTEN") or "127.0.0.1:8080").rsplit(":", 1)[1])
    admin = env.get("PAYSTREAM_ADMIN_LISTEN")
    probe_port = int(admin.rsplit(":", 1)[1]) if admin else listen
    for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = dig(c, probe, "httpGet") or {}
        report.check(get.get("path") == want, path, "ingest %s asks %s, not %s" %
                     (probe, get.get("path"), want))
        report.check(port_number(c, get.get("port")) == probe_port, path, "ingest %s port %s is "
                     "not the %s port %d" % (probe, get.get("port"),
                                            "admin" if admin else "listening", probe_port))
    labels = dep["spec"]["template"]["metadata"]["labels"]
    services = [o for (k, _), o in objs.items() if k == "Service" and
                matches(o["spec"]["selector"], labels)]
    report.check(services, path, "no Service selects the ingest pods")
    for svc in services:
        for p in svc["spec"]["ports"]:
            report.check(port_number(c, p.get("targetPort", p.get("port"))) == listen, path,
                         "Service %s targets %s, ingest listens on %d" %
                         (svc["metadata"]["name"], p.get("targetPort"), listen))
    pre = dig(c, "lifecycle", "preStop", "exec", "command") or []
    report.check(pre, path, "ingest has no preStop (endpoints leave before SIGTERM)")
    wait = float(pre[-1]) if pre and pre[-1].replace(".", "").isdigit() else 0
    drain = progs.drain_seconds({k: v for k, v in env.items()
                                 if k in progs.settings["paystream-ingest"]})
    grace = dig(dep, "spec", "template", "spec", "terminationGracePeriodSeconds") or 30
    report.check(drain and grace > wait + drain, path, "terminationGracePeriodSeconds %s does "
                 "not cover preStop %ss + the %ss drain" % (grace, wait, drain))


def check_workload(report, progs, path, obj, objs):
    kind, spec = obj["kind"], obj["spec"]
    if kind == "CronJob":
        report.check(spec["schedule"] == "*/15 * * * *", path,
                     "the backfill CronJob does not run every 15 minutes")
        report.check(spec.get("concurrencyPolicy") == "Forbid", path,
                     "backfill runs may overlap (concurrencyPolicy is not Forbid)")
        spec = spec["jobTemplate"]["spec"]
    pod = spec["template"]["spec"]
    if kind == "CronJob":
        report.check(pod["restartPolicy"] in ("Never", "OnFailure"), path, "CronJob restartPolicy")
        report.check("paystreamctl backfill --since 1h" in
                     " ".join(pod["containers"][0].get("command") or []), path,
                     "the CronJob does not run paystreamctl backfill --since 1h")
    elif kind == "Deployment":
        report.check(matches(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"]),
                     path, "%s: the selector does not match its pods" % obj["metadata"]["name"])
    else:
        report.check(pod["restartPolicy"] in ("Never", "OnFailure"), path, "Job restartPolicy")
        report.check("paystreamctl migrate" in " ".join(pod["containers"][0].get("command") or []),
                     path, "the Job does not run paystreamctl migrate")
    report.check(pod.get("automountServiceAccountToken") is False, path,
                 "%s mounts a service account token it does not need" % obj["metadata"]["name"])
    for c in (pod.get("initContainers") or []) + pod["containers"]:
        prog, env = check_container(report, progs, path, pod, c, objs)
        if kind == "Deployment" and prog == "paystream-ingest":
            check_ingest(report, progs, path, obj, c, env, objs)
        if kind == "Deployment" and prog == "paystream-worker":
            report.check(pod.get("terminationGracePeriodSeconds"), path,
                         "workers have no terminationGracePeriodSeconds")


def check_document(report, progs, path, obj, objs):
    kind = obj.get("kind")
    report.check(obj.get("apiVersion") and kind and dig(obj, "metadata", "name"), path,
                 "a document lacks apiVersion, kind or metadata.name")
    if not report.check(kind in REQUIRED, path, "no shape check for kind %s" % kind):
        return
    for keys in REQUIRED[kind]:
        if not report.check(dig(obj, *keys) is not None, path, "%s %s lacks %s" %
                            (kind, dig(obj, "metadata", "name"), ".".join(keys))):
            return
    if kind == "ConfigMap":
        data = obj["data"]
        report.check(all(isinstance(v, str) for v in data.values()), path,
                     "ConfigMap values must be strings (quote numbers)")
        unknown = sorted(set(data) - progs.all_settings())
        report.check(not unknown, path, "not a setting of any program: %s" % ", ".join(unknown))
    elif kind == "Secret":
        for k, v in obj["stringData"].items():
            report.check(isinstance(v, str) and "CHANGE_ME" in v, path,
                         "secret %s is not a CHANGE_ME placeholder" % k)
    elif kind in ("Deployment", "Job", "CronJob"):
        check_workload(report, progs, path, obj, objs)
    elif kind == "PodDisruptionBudget":
        deps = [o for (k, _), o in objs.items() if k == "Deployment" and
                matches(obj["spec"]["selector"]["matchLabels"],
                        o["spec"]["template"]["metadata"]["labels"])]
        report.check(deps and obj["spec"]["minAvailable"] < deps[0]["spec"]["replicas"], path,
                     "the disruption budget selects no Deployment or blocks every eviction")


def check_kustomization(report, kdir, docs, listed_files):
    path = os.path.join(kdir, "kustomization.yaml")
    resources = dig(docs[0], "resources") or []
    for r in resources:
        report.check(os.path.exists(os.path.join(kdir, r)), path, "resource %s is missing" % r)
    unlisted = sorted(set(listed_files) - set(resources) - {"kustomization.yaml", SECRET_EXAMPLE})
    report.check(not unlisted, path, "manifests not in resources: %s" % ", ".join(unlisted))
    report.check(SECRET_EXAMPLE not in resources, path, "lists the Secret example")


def check(report, progs, source):
    kdir = os.path.join(source, "deploy", "k8s")
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(kdir, "*.yaml")))
    objs, located = {}, []
    for name in files:
        docs = load_yaml(report, os.path.join(kdir, name))
        if name == "kustomization.yaml":
            if docs:
                check_kustomization(report, kdir, docs, files)
            continue
        for obj in docs:
            objs[(obj.get("kind"), dig(obj, "metadata", "name"))] = obj
            located.append((os.path.join(kdir, name), obj))
    for kind in ("Deployment", "Service", "Job", "ConfigMap", "Secret"):
        report.check(any(k == kind for k, _ in objs), kdir, "no %s among the manifests" % kind)
    for path, obj in located:
        check_document(report, progs, path, obj, objs)
    check_sentinel_overlay(report, progs, kdir, objs)


def check_sentinel_overlay(report, progs, kdir, objs):
    """deploy/k8s/sentinel: the base plus Redis and sentinels as StatefulSets;
    its resources exist, its pods are locked down and read only Secret keys
    the example has, and the settings it patches in are ingest's own."""
    odir = os.path.join(kdir, "sentinel")
    kpath = os.path.join(odir, "kustomization.yaml")
    docs = load_yaml(report, kpath)
    if not report.check(docs, kpath, "no kustomization"):
        return
    resources = docs[0].get("resources") or []
    report.check("../" in resources or ".." in resources, kpath, "does not build on deploy/k8s")
    secret = objs.get(("Secret", "paystream-secrets")) or {}
    for r in (r for r in resources if r.rstrip("/") != ".."):
        path = os.path.join(odir, r)
        if not report.check(os.path.exists(path), kpath, "resource %s is missing" % r):
            continue
        for obj in load_yaml(report, path):
            pod = dig(obj, "spec", "template", "spec")
            if obj.get("kind") != "StatefulSet" or not report.check(pod, path, "no pod template"):
                continue
            report.check(pod.get("automountServiceAccountToken") is False, path,
                         "%s mounts a service account token" % obj["metadata"]["name"])
            for c in pod["containers"]:
                sc = c.get("securityContext") or {}
                report.check(sc.get("readOnlyRootFilesystem") is True and
                             sc.get("allowPrivilegeEscalation") is False and
                             dig(pod, "securityContext", "runAsNonRoot") is True, path,
                             "%s: not read-only, non-root and without escalation" % c["name"])
                for e in c.get("env") or []:
                    key = dig(e, "valueFrom", "secretKeyRef", "key")
                    report.check(key is None or key in (secret.get("stringData") or {}), path,
                                 "%s reads Secret key %s, not in secret.example.yaml" % (c["name"], key))
    patched = {}
    for p in docs[0].get("patches") or []:
        for op in yaml.safe_load(p.get("patch") or "[]") or []:
            if str(op.get("path", "")).startswith("/data/"):
                patched[op["path"][len("/data/"):]] = str(op.get("value"))
    report.check(patched.get("PAYSTREAM_REDIS_MIN_REPLICAS") == "1", kpath,
                 "does not set PAYSTREAM_REDIS_MIN_REPLICAS to 1")
    progs.check_env(report, kpath, "paystream-ingest",
                    {k: v for k, v in patched.items() if k in progs.settings["paystream-ingest"]})

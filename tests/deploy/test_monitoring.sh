#!/usr/bin/env bash
# test_monitoring.sh - deploy/monitoring/ checked with promtool: both scrape
# configurations, the alert rules, and the rules' unit tests (alerts.test.yml).
# Exit 77 (skipped) when promtool is missing (deploy/install-deps.sh installs it).
set -euo pipefail
dir=${PS_SOURCE_DIR:-$(dirname "$0")/../..}/deploy/monitoring
command -v promtool >/dev/null || { echo "skip: promtool not installed"; exit 77; }
cd "$dir"
promtool check config prometheus.yml
# Debian's Prometheus is built without Kubernetes discovery: there, only
# check the rest of the file (everything but that field's presence)
if ! out=$(promtool check config prometheus-kubernetes.yml 2>&1); then
    echo "$out"
    grep -q "field kubernetes_sd_configs not found" <<<"$out" || exit 1
    echo "note: this promtool has no kubernetes_sd_configs; checking the file without it"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 - prometheus-kubernetes.yml "$tmp/k8s.yml" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
for job in cfg["scrape_configs"]:
    sd = job.pop("kubernetes_sd_configs")
    assert sd and all(s["role"] == "pod" for s in sd), sd
    job["static_configs"] = [{"targets": ["127.0.0.1:1"]}]
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
PY
    cp alerts.yml "$tmp/"
    promtool check config "$tmp/k8s.yml"
fi
promtool check rules alerts.yml
promtool test rules alerts.test.yml
python3 -c '
import json, sys
d = json.load(open("grafana-dashboard.json"))
assert d["schemaVersion"] >= 30 and d["panels"], "not a dashboard"
assert any(v["type"] == "datasource" and v["name"] == "datasource" for v in d["templating"]["list"])
for p in d["panels"]:
    assert p["datasource"]["uid"] == "${datasource}", p["title"]
    assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]
print("grafana-dashboard.json: %d panels" % len(d["panels"]))
'
echo "ok - deploy/monitoring"

#!/usr/bin/env python3
"""check_deploy.py - checks the deploy/ recipes (systemd, container, Kubernetes)
against the repository and the built programs; prints each failure and exits
1 if there is any. Used by test_deploy_files.sh.

    check_deploy.py --source REPO --bin DIR_WITH_THE_PROGRAMS [--cache FILE]"""
import argparse
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import check_container  # noqa: E402
import check_k8s  # noqa: E402
import check_logins  # noqa: E402
import check_units  # noqa: E402
from deploylib import SETTING_NAME, Programs, Report  # noqa: E402


def recipe_files(source):
    deploy = os.path.join(source, "deploy")
    files = glob.glob(os.path.join(deploy, "*.env.example"))
    for sub in ("systemd", "container", "k8s"):
        files += glob.glob(os.path.join(deploy, sub, "*"))
    return sorted(f for f in files if os.path.isfile(f))


def check_setting_names(report, progs, source):
    """Any PAYSTREAM_*/STRIPE_* name a recipe mentions, even in a comment, is a
    setting some program has: a renamed setting breaks this test."""
    known = progs.all_settings()
    for path in recipe_files(source):
        with open(path, encoding="utf-8") as f:
            names = set(SETTING_NAME.findall(f.read()))
        report.check(names <= known, path, "names %s, which no program has" %
                     ", ".join(sorted(names - known)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--cache", help="file keeping what the programs link, between runs")
    args = ap.parse_args()
    report = Report(os.path.abspath(args.source))
    progs = Programs(os.path.abspath(args.bin), args.cache)
    check_setting_names(report, progs, report.source)
    for module in (check_units, check_container, check_k8s, check_logins):
        module.check(report, progs, report.source)
    for failure in report.failures:
        print("FAIL " + failure)
    print("%d checks, %d failed" % (report.checks, len(report.failures)))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())

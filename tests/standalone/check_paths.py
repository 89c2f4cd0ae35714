#!/usr/bin/env python3
"""check_paths.py - the repository stands alone: no tracked file reads a path
outside it (SPEC §7). A clone placed anywhere must build, test and bench with
nothing beside it, so a `..` that climbs above the repository's root is a defect.

For every tracked text file (documentation aside) it finds each run of `..`
segments and works out where it starts: at the root when it follows a variable
that names the root (ROOT, CMAKE_SOURCE_DIR, PS_SOURCE_DIR, ...), else at the
file's own folder (`$(dirname "$0")/..`, `$HERE/..`, a compose `context: ../..`).
A run that climbs higher than that start is reported with its file and line.

  check_paths.py [ROOT]     exit 0 clean, 1 with a report
  check_paths.py --self-test  proves the check catches what it must
"""
import os
import re
import subprocess
import sys
import tempfile

# Variables the project's scripts and CMake files use for the repository's root.
ROOT_VARS = {"ROOT", "root", "BENCH_ROOT", "CMAKE_SOURCE_DIR", "PROJECT_SOURCE_DIR",
             "PS_SOURCE_DIR", "top", "TOP", "REPO"}
# `..` segments joined by `/` (shell, CMake, YAML, C) ...
SLASH_RUN = re.compile(r'(?:(?<=[^\w.])|^)((?:\.\./)*\.\.)(?=/|["\'\s:)]|$)')
# ... or given one per argument to os.path.join / path.join (Python, JavaScript)
JOIN_RUN = re.compile(r'((?:["\']\.\.["\']\s*,\s*)*["\']\.\.["\'])')
ROOT_BEFORE = re.compile(r'[$][{(]?(\w+)[})]?/?$')


def tracked_files(root):
    out = subprocess.run(["git", "-C", root, "ls-files", "-z"], check=True,
                         capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p]


def start_depth(path, line, col):
    """How deep below the root the run at line[col:] starts."""
    m = ROOT_BEFORE.search(line[:col])
    if m and m.group(1) in ROOT_VARS:
        return 0
    return path.count("/")


def climbs(run):
    return run.count("..")


def violations(root):
    found = []
    for path in tracked_files(root):
        if path.endswith(".md") or path.startswith("tests/fixtures/"):
            continue
        try:
            with open(os.path.join(root, path), encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        for n, line in enumerate(lines, 1):
            for rx in (SLASH_RUN, JOIN_RUN):
                for m in rx.finditer(line):
                    if climbs(m.group(1)) > start_depth(path, line, m.start(1)):
                        found.append("%s:%d: %s" % (path, n, line.strip()))
            if re.search(r"\bshared/fixtures\b", line):
                found.append("%s:%d: %s" % (path, n, line.strip()))
    return sorted(set(found))


def self_test():
    """Each bad line must be caught, each good line must pass."""
    # `^` stands for `.`, so that this file holds no path that climbs out itself
    bad = {
        "tests/CMakeLists.txt": 'set(X "${CMAKE_SOURCE_DIR}/^^/shared")',
        "bench/run": 'F=${F:-$ROOT/^^/shared/data/x.json}',
        "tests/events/gen.py": 'p = os.path.join(HERE, "^^", "^^", "^^", "shared")',
        "deploy/local.sh": 'cd "$(dirname "$0")/^^/^^"',
        "tests/a/b.sh": '. "$here/^^/^^/^^/outside.sh"',
        "tests/c.sh": 'F=$PS_DATA/shared/' + 'fixtures/x.json',
    }
    good = {
        "tests/CMakeLists.txt": 'set(X "${CMAKE_CURRENT_SOURCE_DIR}/fixtures")',
        "bench/worker/run": 'ROOT=$(cd "$(dirname "$0")/../.." && pwd)',
        "tests/events/gen.py": 'p = os.path.join(HERE, "..", "fixtures")',
        "deploy/container/compose.yaml": "    context: ../..",
        "worker/x.c": '#include "../common/log.h"',
    }
    ok = True
    for case, want in ((bad, True), (good, False)):
        for path, text in case.items():
            with tempfile.TemporaryDirectory() as d:
                subprocess.run(["git", "init", "-q", d], check=True)
                os.makedirs(os.path.join(d, os.path.dirname(path)), exist_ok=True)
                with open(os.path.join(d, path), "w", encoding="utf-8") as f:
                    f.write(text.replace("^", ".") + "\n")
                subprocess.run(["git", "-C", d, "add", path], check=True)
                got = bool(violations(d))
            print("%s - %s %s: %s" % ("ok" if got == want else "not ok",
                                      "caught" if want else "passed", path, text))
            ok &= got == want
    return ok


def main():
    if sys.argv[1:] == ["--self-test"]:
        return 0 if self_test() else 1
    root = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    found = violations(os.path.abspath(root))
    for v in found:
        print("reads outside the repository: " + v)
    print("%d tracked file line(s) read outside the repository" % len(found))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

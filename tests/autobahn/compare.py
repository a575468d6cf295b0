#!/usr/bin/env python3
"""Compares an Autobahn|Testsuite report (kosoku's index.json) with the expected results.

    compare.py EXPECTED.json REPORT_DIR/index.json
    compare.py --write EXPECTED.json REPORT_DIR/index.json   # record a run as the new expectation

Fails (exit 1) when a case is missing, when a case ends other than OK, NON-STRICT or
INFORMATIONAL (or its closing behaviour other than OK or INFORMATIONAL), or when a case does
worse than expected. A case that does better is reported, so the expectation can be updated.
"""
import json
import sys
from collections import Counter

ALLOWED = {"OK", "NON-STRICT", "INFORMATIONAL"}
ALLOWED_CLOSE = {"OK", "INFORMATIONAL"}
RANK = {"OK": 0, "INFORMATIONAL": 0, "NON-STRICT": 1}


def load_run(path):
    with open(path) as f:
        agents = json.load(f)
    if len(agents) != 1:
        sys.exit(f"{path}: expected one agent, found {sorted(agents)}")
    (cases,) = agents.values()
    return {case: [r["behavior"], r["behaviorClose"]] for case, r in cases.items()}


def case_key(case):
    return [int(part) for part in case.split(".")]


def main(argv):
    write = argv[:1] == ["--write"]
    if write:
        argv = argv[1:]
    if len(argv) != 2:
        sys.exit(__doc__)
    expected_path, report_path = argv
    run = load_run(report_path)
    if write:
        lines = [f"  {json.dumps(case)}: {json.dumps(run[case])}" for case in sorted(run, key=case_key)]
        with open(expected_path, "w") as f:
            f.write("{\n" + ",\n".join(lines) + "\n}\n")
        print(f"recorded {len(run)} cases in {expected_path}")
        return 0
    with open(expected_path) as f:
        expected = json.load(f)
    failures, better = [], []
    for case in sorted(expected, key=case_key):
        want = expected[case]
        got = run.get(case)
        if got is None:
            failures.append(f"{case}: missing from the run")
        elif got[0] not in ALLOWED or got[1] not in ALLOWED_CLOSE:
            failures.append(f"{case}: {got[0]} / close {got[1]}")
        elif RANK[got[0]] > RANK.get(want[0], 0):
            failures.append(f"{case}: {got[0]}, expected {want[0]}")
        elif got != want:
            better.append(f"{case}: {got[0]} / close {got[1]}, expected {want[0]} / close {want[1]}")
    counts = Counter(behavior for behavior, _ in run.values())
    summary = ", ".join(f"{n} {b}" for b, n in sorted(counts.items()))
    print(f"{report_path}: {len(run)} cases: {summary}")
    for line in better:
        print(f"  differs (not worse): {line}")
    for line in failures:
        print(f"  FAILED {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Compares an Autobahn|Testsuite report (kosoku's index.json) with the expected results.

    compare.py [--fragment-size N] EXPECTED.json REPORT_DIR/index.json
    compare.py --write EXPECTED.json REPORT_DIR/index.json   # record a run as the new expectation

Fails (exit 1) when the run and the expectation differ in any way: a case missing from the
run, a case in the run that the expectation does not list, or a case whose behaviour or
closing behaviour changed, for better or worse (record the run with --write when the change
is intended). Fails as well when a case ends other than OK, NON-STRICT or INFORMATIONAL (or its
closing behaviour other than OK or INFORMATIONAL), whatever the expectation says.

--fragment-size N is the subject's setting: the per-case reports must show that it was
applied. With 0 (the default), no case may have received a continuation frame from the
subject. With N > 0, every data message that the wire logs record must have come in
fragments of exactly N bytes but the last, and the run must hold continuation frames at all.
"""
import argparse
import json
import os
import sys
from collections import Counter

ALLOWED = {"OK", "NON-STRICT", "INFORMATIONAL"}
ALLOWED_CLOSE = {"OK", "INFORMATIONAL"}
CONTINUATION, TEXT, BINARY = 0, 1, 2


def load_index(path):
    with open(path) as f:
        agents = json.load(f)
    if len(agents) != 1:
        sys.exit(f"{path}: expected one agent, found {sorted(agents)}")
    (cases,) = agents.values()
    return cases


def case_key(case):
    return [int(part) for part in case.split(".")]


def messages_from_subject(wirelog):
    """The data messages the subject sent, as lists of frame lengths, from the wire log's
    received frames ('RF': [length, preview], opcode, fin, ...). Control frames may come
    between fragments; a message cut off by the end of the connection is left out."""
    messages, current = [], None
    for entry in wirelog or []:
        if entry[0] != "RF":
            continue
        length, opcode, fin = entry[1][0], entry[2], entry[3]
        if opcode in (TEXT, BINARY):
            current = [length]
        elif opcode == CONTINUATION and current is not None:
            current.append(length)
        else:
            continue
        if fin:
            messages.append(current)
            current = None
    return messages


def check_fragments(report_dir, cases, size):
    """Problems with how the subject framed its messages, and a one-line account of it."""
    problems = []
    continuations, fragmented_cases, fragmented_messages, largest = 0, 0, 0, 0
    for case in sorted(cases, key=case_key):
        with open(os.path.join(report_dir, cases[case]["reportfile"])) as f:
            report = json.load(f)
        received = int(report["rxFrameStats"].get(str(CONTINUATION), 0))
        continuations += received
        fragmented_cases += received > 0
        if size == 0 and received:
            problems.append(f"{case}: {received} continuation frames from a subject that sends whole messages")
        for frames in messages_from_subject(report["wirelog"]):
            largest = max(largest, *frames)
            if size == 0:
                continue
            whole = sum(frames)
            want = [size] * (whole // size) + ([whole % size] if whole % size or whole == 0 else [])
            if frames != want:
                shown = frames if len(frames) <= 6 else frames[:3] + ["..."] + frames[-2:]
                problems.append(f"{case}: a {whole}-byte message came as frames of {shown}, not fragments of {size}")
            fragmented_messages += len(frames) > 1
    if size and not continuations:
        problems.append(f"no continuation frames in the whole run, although the subject fragments at {size} bytes")
    account = (
        f"{continuations} continuation frames from the subject in {fragmented_cases} cases; "
        f"{fragmented_messages} wire-logged messages in fragments, largest data frame {largest} bytes"
    )
    return problems, account


def main(argv):
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--fragment-size", type=int, default=0)
    parser.add_argument("expected")
    parser.add_argument("report")
    args = parser.parse_args(argv)
    cases = load_index(args.report)
    run = {case: [r["behavior"], r["behaviorClose"]] for case, r in cases.items()}
    if args.write:
        lines = [f"  {json.dumps(case)}: {json.dumps(run[case])}" for case in sorted(run, key=case_key)]
        with open(args.expected, "w") as f:
            f.write("{\n" + ",\n".join(lines) + "\n}\n")
        print(f"recorded {len(run)} cases in {args.expected}")
        return 0
    with open(args.expected) as f:
        expected = json.load(f)
    failures = []
    for case in sorted(set(expected) | set(run), key=case_key):
        want, got = expected.get(case), run.get(case)
        if got is None:
            failures.append(f"{case}: missing from the run")
        elif want is None:
            failures.append(f"{case}: {got[0]} / close {got[1]}, not in the expectation")
        elif got[0] not in ALLOWED or got[1] not in ALLOWED_CLOSE:
            failures.append(f"{case}: {got[0]} / close {got[1]}")
        elif got != want:
            failures.append(f"{case}: {got[0]} / close {got[1]}, expected {want[0]} / close {want[1]}")
    problems, account = check_fragments(os.path.dirname(args.report), cases, args.fragment_size)
    counts = Counter(behavior for behavior, _ in run.values())
    summary = ", ".join(f"{n} {b}" for b, n in sorted(counts.items()))
    print(f"{args.report}: {len(run)} cases: {summary}")
    print(f"  fragment size {args.fragment_size}: {account}")
    for line in failures + problems:
        print(f"  FAILED {line}")
    if failures:
        print("  (if the change is intended, record the runs: bash tests/autobahn/run.sh --record)")
    return 1 if failures or problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

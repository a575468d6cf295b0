#!/usr/bin/env python3
"""Checks the benches against their targets, and prints each figure beside its target with a
verdict. Exits 1 when a target is missed by more than the measured noise.

    python3 benches/check.py instructions [--runs N] [--bin PATH] [--record] [SUBSTRING ...]
    python3 benches/check.py time [CRITERION_DIR]

`instructions` runs the codec and session cases of benches/instructions.rs under callgrind
(build it first: `cargo bench -p benches --bench instructions --no-run`), each N times (default 3): the
figure is the median ratio of the runs, the noise half their spread, and at least 0.5%,
because the allocator's state and how tasks interleave move an otherwise identical run by
that much. CI runs this one: instruction counts do not depend on the machine's load.

`time` reads criterion's last results ($CARGO_TARGET_DIR/criterion, else target/criterion):
the figure is the ratio of the medians, the noise the ratio of the ends of their 95%
confidence intervals. Ours and its baseline must come from one run (their results written
within 30 minutes of each other); a pair from different runs is an error, not a figure.

Verdicts: `met` when the figure is within its target; `within noise` when it is above the
target by less than the noise; `MISSED` otherwise (the check fails). A miss listed in KNOWN
(why, and the issue that works on it) reads `missed (known, ...)` instead and does not fail.
An instruction-count figure also fails when even its best run is worse than its figure in
benches/record.json by more than the noise and at least 1%: regressions show before they
reach a target, and known misses cannot grow. `--record` writes the figures of this run there instead of
comparing (after a change that is meant to move them).
Python 3 standard library only.
"""

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import instructions  # noqa: E402  (benches/instructions.py, beside this file)

CODECS = ["json", "cbor", "msgpack"]

# What the README claims, bench by bench: (name, measure, case pattern, ours, baseline, target,
# what the baseline is and why).
TARGETS = [
    (
        "codec",
        "instructions",
        r"codec/.*",
        "ours",
        "reference",
        1.03,
        "what a hand-written client does: the codec's own call (serde_json::to_vec and "
        "from_str, ciborium::into_writer and from_reader, rmp_serde::to_vec_named and "
        "from_slice) and the tungstenite Message made from it or read into it",
    ),
    (
        "session",
        "instructions",
        r"session/.*",
        "ours",
        "baseline",
        1.0,
        "the typed echo of tokio-tungstenite's README: accept_async, then "
        "ws.next() / serde decode / serde encode / ws.send() on both ends",
    ),
    (
        "codec",
        "time",
        r"codec/(small|medium|large|logs)/(encode|decode)",
        "{codec}/typed_ws",
        "{codec}/direct_message",
        1.03,
        "as for instructions",
    ),
    (
        "session",
        "time",
        r"session/.*",
        "typed_ws",
        "handwritten",
        1.0,
        "as for instructions",
    ),
    (
        "fragmentation",
        "time",
        r"fragmentation/(tcp|duplex)/1MiB",
        "frag_4KiB",
        "whole",
        1.25,
        "the same 1 MiB message sent as one frame, by the same typed-ws sessions",
    ),
]

# Targets missed today, each with why and where it is being worked on. They are reported as
# such and do not fail the check; the record below keeps them from getting worse.
KNOWN = {
    "fragmentation/duplex/1MiB frag_4KiB": (
        "tungstenite copies every fragment into the message it reassembles; over TCP the "
        "same transfer meets the target, since there the socket's own costs dominate",
        "issue 13",
    ),
    "session/msgpack/1MiB/one": (
        "the safe defaults' 4 KiB read buffer: tungstenite zero-fills and reads 4 KiB at a "
        "time, 37x the read calls of the hand-written loop's 128 KiB, and the elastic reader "
        "hands bulk reads over with one more copy; in time the same case is 0.65x",
        "issues 8 and 13",
    ),
    "session/msgpack/1MiB/pipelined64": ("as for one in flight", "issues 8 and 13"),
    "session/msgpack/small/pipelined64 typed_ws": (
        "fewer user-space instructions than the hand-written loop (0.64x), so the time goes "
        "to the kernel and to scheduling: one write per reply",
        "issue 13",
    ),
    "session/json/small/pipelined64 typed_ws": ("as for msgpack", "issue 13"),
    "session/msgpack/64KiB/one typed_ws": ("as for small pipelined", "issue 13"),
    "session/msgpack/64KiB/pipelined64 typed_ws": ("as for small pipelined", "issue 13"),
    "codec/logs/decode cbor/typed_ws": (
        "not explained: the instruction count is 1.009x, the same work; the time ratio "
        "repeats (1.05 and 1.07 in two runs)",
        "open",
    ),
}

# Instruction-count figures on record (benches/record.json, written by --record): a figure
# that grows past its record by more than the noise, and at least REGRESSION, fails even
# when it still meets its target, so that a regression shows before it reaches the target.
RECORD = Path(__file__).resolve().parent / "record.json"
REGRESSION = 0.01

# Cases whose baseline's count moves with the machine, not with the code: the hand-written loop
# writes each echo with a write of its own and its client reads whatever has arrived, so how
# many replies one read finds is up to the kernel's timing, which callgrind's slowdown puts at
# a different place on each machine. Ours coalesces its writes and counts the same to 0.01%
# from run to run; the baseline's count spans 7.2-8.0 M instructions in these two cases
# (ratios 0.65-0.73 for one binary), and a machine can give the upper end on every run. Their
# figures on record are the middle of that span; a figure fails past it by this share of it
# (half the span, and REGRESSION beyond).
TIMED_BASELINE = {
    "session/msgpack/small/pipelined64": 0.06,
    "session/json/small/pipelined64": 0.06,
}
NOISE_FLOOR = 0.005
SAME_RUN = 30 * 60


def verdict(case, figure, low, noise, target, recorded=None):
    """The verdict words, and whether they fail the check."""
    if figure <= target:
        words, failed = "met", False
    elif figure - target <= noise:
        words, failed = "within noise", False
    elif case in KNOWN:
        words, failed = f"missed (known, {KNOWN[case][1]})", False
    else:
        words, failed = "MISSED", True
    # Even the best of the runs: the cases with tasks interleaving move by a few percent
    # between runs of one binary, in both directions, and those in TIMED_BASELINE by more.
    allowed = max(noise, REGRESSION, TIMED_BASELINE.get(case, 0) * (recorded or 0))
    if recorded is not None and low - recorded > allowed:
        words += f"; WORSE than the {recorded:.3f} on record"
        failed = True
    return words, failed


def report(name, measure, target, baseline_doc, rows, record=None):
    """rows: (case, figure, low, high, noise). Prints the table; gives the number of failures."""
    print(f"### {name} ({measure}): ours / baseline, target <= {target:.2f}\n")
    print(f"Baseline: {baseline_doc}.\n")
    print("| case | ours / baseline | spread | verdict |")
    print("|---|---|---|---|")
    failures = 0
    for case, figure, low, high, noise in rows:
        recorded = record.get(case) if record is not None else None
        words, failed = verdict(case, figure, low, noise, target, recorded)
        failures += failed
        print(f"| {case} | {figure:.3f} | {low:.3f}–{high:.3f} | {words} |")
    print()
    known = [case for case, *_ in rows if case in KNOWN]
    for case in known:
        print(f"- {case}: {KNOWN[case][0]} ({KNOWN[case][1]}).")
    if known:
        print()
    return failures


def check_instructions(args):
    runs = 3
    explicit = None
    write_record = False
    filters = []
    it = iter(args)
    for arg in it:
        if arg == "--runs":
            runs = int(next(it))
        elif arg == "--bin":
            explicit = next(it)
        elif arg == "--record":
            write_record = True
        else:
            filters.append(arg)
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    figures = {}
    binary = instructions.find_binary(explicit)
    cases = subprocess.run([binary], check=True, capture_output=True, text=True).stdout.split()
    print(f"<!-- instruction counts (callgrind), {runs} runs per case, from {binary} -->\n")
    failures = 0
    for name, measure, pattern, ours, base, target, doc in TARGETS:
        if measure != "instructions":
            continue
        rows = []
        for case in cases:
            if not re.fullmatch(pattern, case) or (filters and not any(f in case for f in filters)):
                continue
            ratios = []
            for _ in range(runs):
                counts = instructions.measure(binary, case)
                ratios.append(counts[ours] / counts[base])
            low, high = min(ratios), max(ratios)
            noise = max((high - low) / 2, NOISE_FLOOR)
            rows.append((case, statistics.median(ratios), low, high, noise))
            figures[case] = round(statistics.median(ratios), 4)
            print(f"{case}: {' '.join(f'{r:.4f}' for r in ratios)}", file=sys.stderr)
        if rows:
            failures += report(name, measure, target, doc, rows, None if write_record else record)
    if write_record:
        record.update(figures)
        RECORD.write_text(json.dumps(dict(sorted(record.items())), indent=1) + "\n")
        print(f"recorded {len(figures)} figures in {RECORD}")
    return failures


def load_criterion(root):
    """{group: {function: (median, low, high, mtime)}} in seconds."""
    results = {}
    for bench in root.glob("**/new/benchmark.json"):
        estimates = bench.with_name("estimates.json")
        if not estimates.exists():
            continue
        meta = json.loads(bench.read_text())
        group, function = meta.get("group_id"), meta.get("function_id")
        if group is None or function is None:
            continue
        median = json.loads(estimates.read_text())["median"]
        interval = median["confidence_interval"]
        results.setdefault(group, {})[function] = (
            median["point_estimate"] * 1e-9,
            interval["lower_bound"] * 1e-9,
            interval["upper_bound"] * 1e-9,
            estimates.stat().st_mtime,
        )
    return results


def check_time(args):
    if args:
        root = Path(args[0])
    else:
        root = Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion"
    results = load_criterion(root)
    if not results:
        sys.exit(f"no criterion results under {root}; run `cargo bench -p benches` first")
    print(f"<!-- criterion medians and their 95% confidence intervals, from {root} -->\n")
    failures = 0
    for name, measure, pattern, ours, base, target, doc in TARGETS:
        if measure != "time":
            continue
        rows = []
        for group in sorted(results):
            if not re.fullmatch(pattern, group):
                continue
            functions = results[group]
            for codec in CODECS if "{codec}" in ours else [None]:
                a = functions.get(ours.format(codec=codec))
                b = functions.get(base.format(codec=codec))
                if a is None or b is None:
                    continue
                case = f"{group} {ours.format(codec=codec)}"
                if abs(a[3] - b[3]) > SAME_RUN:
                    print(f"error: {case}: ours and baseline come from different runs")
                    failures += 1
                    continue
                figure, low, high = a[0] / b[0], a[1] / b[2], a[2] / b[1]
                rows.append((case, figure, low, high, max(high - figure, figure - low)))
        if rows:
            failures += report(name, measure, target, doc, rows)
    return failures


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("instructions", "time"):
        sys.exit(__doc__)
    check = check_instructions if sys.argv[1] == "instructions" else check_time
    failures = check(sys.argv[2:])
    if failures:
        print(f"{failures} target(s) missed by more than the noise")
        sys.exit(1)
    print("every target met, within noise, or a known miss no worse than on record")


if __name__ == "__main__":
    main()

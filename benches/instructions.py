#!/usr/bin/env python3
"""Runs the cases of benches/instructions.rs under callgrind and prints instruction ratios.

    cargo bench -p benches --bench instructions --no-run
    python3 benches/instructions.py [SUBSTRING ...] [--bin PATH]

Each case runs ours, its baseline and (where there is one) a reference in functions of their
own; the ratio is of their inclusive instruction counts (Ir). Instruction counts do not move
with the load of a shared machine, so a ratio of 1.000 means equal work in user space; they
do not count syscalls or time spent in the kernel. Needs valgrind (callgrind and
callgrind_annotate); Python 3 standard library only. The binary is the newest
$CARGO_TARGET_DIR/release/deps/instructions-* (target/ without the variable), or --bin.
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def find_binary(explicit):
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    candidates = [
        p
        for p in (target / "release" / "deps").glob("instructions-*")
        if p.is_file() and os.access(p, os.X_OK) and p.suffix == ""
    ]
    if not candidates:
        sys.exit("no instructions binary; run `cargo bench -p benches --bench instructions --no-run`")
    return str(max(candidates, key=lambda p: p.stat().st_mtime))


def measure(binary, case):
    """{"ours": Ir, "baseline": Ir, "reference": Ir} for one case."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, case],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    counts = {}
    for line in annotated.splitlines():
        m = re.match(r"\s*([\d,]+)\s.*::measure_(ours|baseline|reference)\b", line)
        if m:
            ir = int(m.group(1).replace(",", ""))
            # Inlined code shows as more lines of the same function; the largest is the
            # function's inclusive total.
            counts[m.group(2)] = max(counts.get(m.group(2), 0), ir)
    return counts


def ratio(a, b):
    if not a or not b:
        return "—"
    return f"{a / b:.3f}"


def main():
    args = sys.argv[1:]
    explicit = None
    if "--bin" in args:
        i = args.index("--bin")
        explicit = args[i + 1]
        del args[i : i + 2]
    binary = find_binary(explicit)
    cases = subprocess.run([binary], check=True, capture_output=True, text=True).stdout.split()
    if args:
        cases = [c for c in cases if any(a in c for a in args)]
    rows = {"codec": [], "session": [], "fragmentation": []}
    for case in cases:
        c = measure(binary, case)
        family = case.split("/")[0]
        if family == "codec":
            row = [case, ratio(c.get("ours"), c.get("baseline"))]
            row.append(ratio(c.get("ours"), c.get("reference")))
        elif family == "session":
            row = [case, ratio(c.get("ours"), c.get("baseline"))]
        else:
            row = [
                case,
                ratio(c.get("ours"), c.get("baseline")),
                ratio(c.get("reference"), c.get("baseline")),
                ratio(c.get("ours"), c.get("reference")),
            ]
        print(" ".join(row), file=sys.stderr)
        rows[family].append(row)
    headers = {
        "codec": ["case", "converter / direct call", "converter / hand-written with a Message"],
        "session": ["case", "typed-ws / hand-written"],
        "fragmentation": [
            "case",
            "typed-ws fragmented / typed-ws whole",
            "bare tungstenite fragmented / typed-ws whole",
            "typed-ws / bare tungstenite, same fragments",
        ],
    }
    print(f"<!-- instruction counts (callgrind) from {binary} -->\n")
    for family, table in rows.items():
        if not table:
            continue
        print(f"### {family}: instruction-count ratios\n")
        print("| " + " | ".join(headers[family]) + " |")
        print("|" + "|".join("---" for _ in headers[family]) + "|")
        for row in table:
            print("| " + " | ".join(row) + " |")
        print()


if __name__ == "__main__":
    main()

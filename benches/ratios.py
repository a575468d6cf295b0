#!/usr/bin/env python3
"""Prints the ratio tables of benches/README.md from criterion's last results.

Reads every <criterion dir>/**/new/{benchmark,estimates}.json (criterion's dir is
$CARGO_TARGET_DIR/criterion, else target/criterion; or give it as the first argument) and
prints Markdown tables of ours / baseline, per bench family:

  codec          <codec>/typed_ws (and /any) over <codec>/direct
  fragmentation  frag_<size> over whole, and the per-frame overhead (t(N) - t(1)) / (N - 1)
  session        typed_ws and typed_ws_ping over handwritten

    python3 benches/ratios.py [CRITERION_DIR] [--stat median|mean]

The statistic defaults to the median. A group whose results were written more than 30 minutes
apart (a bench rerun for some of its functions only) is left out, with a warning: its ratios
would compare different runs. `benches/check.py time` gives the verdicts against the targets,
with the spread. Python 3 standard library only.
"""

import json
import math
import os
import re
import sys
from pathlib import Path


def parse_args(argv):
    stat = "median"
    paths = []
    it = iter(argv)
    for arg in it:
        if arg == "--stat":
            stat = next(it)
        elif arg.startswith("--stat="):
            stat = arg.split("=", 1)[1]
        elif arg in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        else:
            paths.append(arg)
    if paths:
        root = Path(paths[0])
    else:
        target = os.environ.get("CARGO_TARGET_DIR", "target")
        root = Path(target) / "criterion"
    return root, stat


SAME_RUN = 30 * 60


def load(root, stat):
    """{group_id: {function_id: seconds}} from criterion's `new` results."""
    results, written = {}, {}
    for bench in root.glob("**/new/benchmark.json"):
        estimates = bench.with_name("estimates.json")
        if not estimates.exists():
            continue
        meta = json.loads(bench.read_text())
        group = meta.get("group_id")
        function = meta.get("function_id")
        if group is None or function is None:
            continue
        est = json.loads(estimates.read_text())
        value = est.get(stat) or est.get("mean")
        if value is None:
            continue
        results.setdefault(group, {})[function] = value["point_estimate"] * 1e-9
        written.setdefault(group, []).append(estimates.stat().st_mtime)
    for group, times in written.items():
        if max(times) - min(times) > SAME_RUN:
            print(f"warning: {group} holds results of different runs; left out", file=sys.stderr)
            del results[group]
    return results


def size_bytes(label):
    m = re.fullmatch(r"(\d+)(B|KiB|MiB)", label)
    if not m:
        return None
    return int(m.group(1)) << {"B": 0, "KiB": 10, "MiB": 20}[m.group(2)]


def fmt_time(seconds):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def ratio(a, b):
    if a is None or b is None:
        return "—"
    return f"{a / b:.3f}"


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def codec_tables(results):
    groups = {g: f for g, f in results.items() if g.startswith("codec/")}
    if not groups:
        return
    payload_order = ["small", "medium", "large", "logs"]
    codecs = ["json", "cbor", "msgpack"]
    print("### codec: typed-ws converter / direct codec call (time ratio; 1.000 = equal)\n")
    rows = []
    for payload in payload_order:
        for op in ("encode", "decode"):
            fns = groups.get(f"codec/{payload}/{op}")
            if not fns:
                continue
            row = [payload, op]
            for codec in codecs:
                row.append(ratio(fns.get(f"{codec}/typed_ws"), fns.get(f"{codec}/direct")))
            row.append(
                ", ".join(
                    f"{c} {fmt_time(fns[f'{c}/direct'])}" for c in codecs if f"{c}/direct" in fns
                )
            )
            rows.append(row)
    table(["payload", "op", "json", "cbor", "msgpack", "direct call time"], rows)

    message_rows = []
    for payload in payload_order:
        for op in ("encode", "decode"):
            fns = groups.get(f"codec/{payload}/{op}")
            if not fns:
                continue
            message_rows.append(
                [payload, op]
                + [
                    ratio(fns.get(f"{c}/typed_ws"), fns.get(f"{c}/direct_message"))
                    for c in codecs
                ]
            )
    if any(any(cell != "—" for cell in row[2:]) for row in message_rows):
        print("typed-ws converter / what a hand-written client does with a tungstenite Message")
        print("(encode: direct call + `Message::Binary(vec.into())`; decode: JSON `from_str`):\n")
        table(["payload", "op", "json", "cbor", "msgpack"], message_rows)

    any_rows = []
    for op in ("encode", "decode"):
        fns = groups.get(f"codec/small/{op}", {})
        if any(f"{c}/any" in fns for c in codecs):
            any_rows.append(
                ["small", op]
                + [ratio(fns.get(f"{c}/any"), fns.get(f"{c}/direct")) for c in codecs]
            )
    if any_rows:
        print("AnyConverter (codec chosen at run time) / direct call:\n")
        table(["payload", "op", "json", "cbor", "msgpack"], any_rows)


def fragmentation_tables(results):
    groups = {g: f for g, f in results.items() if g.startswith("fragmentation/")}
    if not groups:
        return
    print("### fragmentation: fragmented / whole message (time ratio), per-frame overhead\n")
    fragments = ["256B", "4KiB", "64KiB"]
    for transport in ("duplex", "tcp"):
        rows = []
        keys = [g for g in groups if g.split("/")[1] == transport]
        keys.sort(key=lambda g: size_bytes(g.split("/")[2]) or 0)
        for group in keys:
            label = group.split("/")[2]
            size = size_bytes(label)
            fns = groups[group]
            whole = fns.get("whole")
            if whole is None:
                continue
            row = [label, f"{fmt_time(whole)} ({size / whole / 2**20:.0f} MiB/s)"]
            overheads = []
            for frag in fragments:
                t = fns.get(f"frag_{frag}")
                if t is None:
                    row.append("—")
                    overheads.append("—")
                    continue
                n = math.ceil(size / size_bytes(frag))
                row.append(f"{t / whole:.3f}")
                overheads.append(f"{(t - whole) / (n - 1) * 1e9:.0f} ns")
            rows.append(row + overheads)
        if rows:
            print(f"{transport}:\n")
            table(
                ["message", "whole (N=1)"]
                + [f"{f} ratio" for f in fragments]
                + [f"{f} per frame" for f in fragments],
                rows,
            )
    fragmentation_reference_table(groups, fragments)


def fragmentation_reference_table(groups, fragments):
    """The groups that also ran bare tokio-tungstenite (`raw_*`)."""
    rows = []
    for group in sorted(groups):
        fns = groups[group]
        if "raw_whole" not in fns:
            continue
        _, transport, label = group.split("/")
        raw_whole = fns["raw_whole"]
        row = [transport, label]
        row += [ratio(fns.get(f"raw_frag_{f}"), raw_whole) for f in fragments]
        row += [ratio(fns.get("whole"), raw_whole)]
        row += [ratio(fns.get(f"frag_{f}"), fns.get(f"raw_frag_{f}")) for f in fragments]
        rows.append(row)
    if rows:
        print("bare tokio-tungstenite, same transfer: its own fragmented / whole ratio, and")
        print("typed-ws / bare tokio-tungstenite at equal framing:\n")
        table(
            ["transport", "message"]
            + [f"raw {f} / raw whole" for f in fragments]
            + ["typed/raw whole"]
            + [f"typed/raw {f}" for f in fragments],
            rows,
        )


def session_tables(results):
    groups = {g: f for g, f in results.items() if g.startswith("session/")}
    if not groups:
        return
    print("### session: typed-ws / hand-written tokio-tungstenite loop (time ratio)\n")

    def key(g):
        _, codec, size, mode = g.split("/")
        return (size_bytes(size) or (0 if size == "small" else 1 << 40), codec, mode)

    rows = []
    for group in sorted(groups, key=key):
        _, codec, size, mode = group.split("/")
        fns = groups[group]
        hand = fns.get("handwritten")
        rows.append(
            [
                codec,
                size,
                mode,
                fmt_time(hand) if hand else "—",
                ratio(fns.get("typed_ws"), hand),
                ratio(fns.get("typed_ws_ping"), hand),
                ratio(fns.get("typed_ws_ping"), fns.get("typed_ws")),
            ]
        )
    table(
        [
            "codec",
            "message",
            "in flight",
            "hand-written",
            "typed_ws / hand",
            "typed_ws+ping / hand",
            "ping / no ping",
        ],
        rows,
    )


def main():
    root, stat = parse_args(sys.argv[1:])
    results = load(root, stat)
    if not results:
        sys.exit(f"no criterion results under {root}; run `cargo bench` first")
    print(f"<!-- from {root}, statistic: {stat} -->\n")
    codec_tables(results)
    fragmentation_tables(results)
    session_tables(results)


if __name__ == "__main__":
    main()

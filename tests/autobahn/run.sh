#!/usr/bin/env bash
# Runs the Autobahn|Testsuite cases 1 to 10 (kosoku, installed by tests/peers/install.sh)
# against typed-ws in both roles, each without and with --fragment-size 1000, and compares every
# run with the expected results in tests/autobahn/expected/ (any difference fails) and with the
# fragment size it ran with (the reports' frame counts must show it). Cases 12 and 13 need
# permessage-deflate, which tungstenite does not implement; Autobahn has no case group 8.
#
#   bash tests/autobahn/run.sh            # check
#   bash tests/autobahn/run.sh --record   # record the runs as the new expectations
#
# Builds, peers and reports go under $CARGO_TARGET_DIR (a relative one from the repository
# root), or target/ without it, where cargo and tests/peers/install.sh put them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
kosoku="$target/peers/venv/bin/kosoku"
out="$target/autobahn"
compare=(python3 "$here/compare.py")
[ "${1:-}" = "--record" ] && compare+=(--write)

if [ ! -x "$kosoku" ]; then
    echo "kosoku is not installed ($kosoku): run bash tests/peers/install.sh first" >&2
    exit 1
fi

cases=()
for group in 1 2 3 4 5 6 7 9 10; do cases+=(-i "$group.*"); done

cargo build --release --quiet --all-features --example autobahn_server --example autobahn_client
bin="$target/release/examples"
rm -rf "$out"
mkdir -p "$out"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# Waits for a line matching $2 in file $1 and prints the ws:// address in it.
address_from() {
    for _ in $(seq 1 300); do
        if grep -q "$2" "$1" 2>/dev/null; then
            grep -o 'ws://[0-9.:]*' "$1" | head -n 1
            return 0
        fi
        sleep 0.1
    done
    echo "no '$2' in $1 after 30 s:" >&2
    cat "$1" >&2
    return 1
}

status=0
for fragments in 0 1000; do
    name=server; [ "$fragments" = 0 ] || name=server-fragmented
    "$bin/autobahn_server" --addr 127.0.0.1:0 --fragment-size "$fragments" >"$out/$name.log" 2>&1 &
    pids+=($!)
    url="$(address_from "$out/$name.log" listening)"
    timeout 600 "$kosoku" -m fuzzingclient "${url#ws://}" "${cases[@]}" -p 2 -o "$out/$name" >"$out/$name-kosoku.log" 2>&1 || true
    "${compare[@]}" --fragment-size "$fragments" "$here/expected/$name.json" "$out/$name/index.json" || status=1

    name=client; [ "$fragments" = 0 ] || name=client-fragmented
    timeout 600 "$kosoku" -m fuzzingserver 127.0.0.1:0 "${cases[@]}" -o "$out/$name" >"$out/$name-kosoku.log" 2>&1 &
    fuzzer=$!
    pids+=($fuzzer)
    url="$(address_from "$out/$name-kosoku.log" listening)"
    timeout 600 "$bin/autobahn_client" --url "$url" --fragment-size "$fragments" >"$out/$name.log" 2>&1 || status=1
    wait "$fuzzer" || true
    "${compare[@]}" --fragment-size "$fragments" "$here/expected/$name.json" "$out/$name/index.json" || status=1
done
exit $status

#!/usr/bin/env bash
# Runs the Autobahn|Testsuite cases 1 to 13 (kosoku, installed by tests/peers/install.sh)
# against typed-ws in both roles, each without and with --fragment-size 1000, with
# permessage-deflate on (--compress: cases 12 and 13 negotiate it, the others offer nothing),
# and compares every run with the expected results in tests/autobahn/expected/ (any difference
# fails) and with the fragment size it ran with (the reports' frame counts must show it).
# Autobahn has no case groups 8 and 11.
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
for group in 1 2 3 4 5 6 7 9 10 12 13; do cases+=(-i "$group.*"); done

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

# One run of typed-ws as the server, compared with its expectations.
server_run() {
    local fragments="$1" name="$2" url
    "$bin/autobahn_server" --addr 127.0.0.1:0 --fragment-size "$fragments" --compress >"$out/$name.log" 2>&1 &
    pids+=($!)
    url="$(address_from "$out/$name.log" listening)"
    timeout 900 "$kosoku" -m fuzzingclient "${url#ws://}" "${cases[@]}" -o "$out/$name" >"$out/$name-kosoku.log" 2>&1 || true
    kill "${pids[@]}" 2>/dev/null || true
    "${compare[@]}" --fragment-size "$fragments" "$here/expected/$name.json" "$out/$name/index.json"
}

# One run of typed-ws as the client, compared with its expectations.
client_run() {
    local fragments="$1" name="$2" url fuzzer status=0
    timeout 900 "$kosoku" -m fuzzingserver 127.0.0.1:0 "${cases[@]}" -o "$out/$name" >"$out/$name-kosoku.log" 2>&1 &
    fuzzer=$!
    pids+=($fuzzer)
    url="$(address_from "$out/$name-kosoku.log" listening)"
    timeout 900 "$bin/autobahn_client" --url "$url" --fragment-size "$fragments" --compress >"$out/$name.log" 2>&1 || status=1
    wait "$fuzzer" || true
    "${compare[@]}" --fragment-size "$fragments" "$here/expected/$name.json" "$out/$name/index.json" || status=1
    return $status
}

# The whole runs, then the fragmented ones, each pair at once: two kosoku processes and two
# subjects on the two cores CI has. Four at once would take each case twice as long, and the
# largest of cases 12 and 13 would pass kosoku's 20-second limit per case.
status=0
for fragments in 0 1000; do
    suffix=""; [ "$fragments" = 0 ] || suffix=-fragmented
    server_run "$fragments" "server$suffix" & server=$!
    client_run "$fragments" "client$suffix" & client=$!
    wait "$server" || status=1
    wait "$client" || status=1
done
exit $status

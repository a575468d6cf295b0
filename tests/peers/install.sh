#!/usr/bin/env bash
# Installs the independent peers the interop and conformance tests talk to: a Python venv
# (websockets, cbor2, msgpack, kosoku), the npm packages ws, cbor-x and @msgpack/msgpack, and
# Debian's chromium for tests/interop/browser.rs, and Debian's nats-server and redis-server (with
# redis-cli) for the bus tests, which start their own on free loopback ports (system-wide, with apt-get, unless they
# are on the PATH; the packages' own services are stopped and disabled).
# Safe to run again; it only installs what is missing or changed. They go under
# $CARGO_TARGET_DIR/peers/ (a relative CARGO_TARGET_DIR is taken from the repository root), or
# target/peers/ without the variable; the tests and tests/autobahn/run.sh look there the same
# way, so run all of them with the same CARGO_TARGET_DIR.
#
#   bash tests/peers/install.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
peers="$target/peers"
mkdir -p "$peers"

if [ ! -x "$peers/venv/bin/python" ]; then
    python3 -m venv "$peers/venv"
fi
"$peers/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

mkdir -p "$peers/node"
cp "$here/package.json" "$peers/node/package.json"
(cd "$peers/node" && npm install --no-audit --no-fund --loglevel=error)

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# redis-cli: tests/integrations/bus_history.rs looks at the streams typed-ws keeps in Redis.
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    # policy-rc.d 101: the packages' own services are not started; the tests start theirs.
    echo 'exit 101' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${as_root[@]}" chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    "${as_root[@]}" rm -f /usr/sbin/policy-rc.d
fi

"$peers/venv/bin/python" -c 'import websockets, cbor2, msgpack, kosoku; print("python peers:", websockets.__version__, cbor2.__name__, msgpack.version)'
(cd "$peers/node" && node -e 'require("ws"); require("cbor-x"); require("@msgpack/msgpack"); console.log("node peers: ws, cbor-x, @msgpack/msgpack")')
# Debian's launcher script prints a shell warning of its own on some machines; the version line
# is what matters.
echo "browser: $(chromium --version 2>/dev/null)"
echo "brokers: $(nats-server --version), $(redis-server --version | cut -d' ' -f1-3), $(redis-cli --version)"

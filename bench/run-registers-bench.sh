#!/usr/bin/env bash
# Builds ringraftd and the registers load generator (release), installs etcd 3.4 from Debian when
# it is missing, and runs the registers bench of issue 12: kv_cas on hot and cold keys beside
# etcd's Txn CAS and ringraft's propose, 3 and 5 nodes. Extra arguments go to registers_load
# (try --help). Not part of the test suite: benchmarks report numbers, tests assert behaviour.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

if ! command -v etcd >/dev/null 2>&1; then
    echo "run-registers-bench: installing etcd-server and etcd-client" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
fi

cargo build --release -p ringraft-daemon -p ringraft-bench
exec "$CARGO_TARGET_DIR/release/registers_load" \
    --ringraftd "$CARGO_TARGET_DIR/release/ringraftd" \
    --etcd "$(command -v etcd)" "$@"

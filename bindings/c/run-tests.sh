#!/usr/bin/env bash
# The C test suite of libringraft, under AddressSanitizer (leak checking on), against a live
# 3-node dev cluster.
#
#   bindings/c/run-tests.sh            build libringraft and ringraftd, start
#                                      `ringraftd dev --nodes 3 --dir <tmpdir>`, run the suite
#   bindings/c/run-tests.sh --offline  only the tests that need no daemon
#   bindings/c/run-tests.sh [--offline] NAME
#                                      only the tests whose name contains NAME (e.g. kv_)
#   bindings/c/run-tests.sh --no-build [--offline] [NAME]
#                                      use libringraft and ringraftd as cargo already built them
#                                      (scripts/test.sh builds the workspace once, and a cargo
#                                      build of only these packages would compile them again)
#
# Environment: CARGO_TARGET_DIR (default <repo>/target); RINGRAFT_PROFILE (debug, the default,
# reuses what `cargo build`/`cargo test` built; or release); RINGRAFTD to use a ringraftd
# binary that is already built. The suite's last line is "N passed, N failed, N skipped"; the exit
# status is non-zero if any test failed or the cluster did not start.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
stage="$CARGO_TARGET_DIR/ringraft-c"
# Leak checking covers the library too: it is not built with ASan, but its allocations go
# through malloc/free, which ASan intercepts. Exit code 23 marks an ASan report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}

profile=${RINGRAFT_PROFILE:-debug}
cargo=cargo
if [[ "${1:-}" == "--no-build" ]]; then
    shift
    cargo=true
    RINGRAFTD=${RINGRAFTD:-$CARGO_TARGET_DIR/$profile/ringraftd}
fi
make -s -C "$here" test PROFILE="$profile" CARGO="$cargo"

if [[ "${1:-}" == "--offline" ]]; then
    shift
    exec "$stage/test_ringraft" "$@"
fi

if [[ -z "${RINGRAFTD:-}" ]]; then
    profile_flag=()
    [[ "$profile" == release ]] && profile_flag=(--release)
    (cd "$root" && cargo build "${profile_flag[@]}" -p ringraft-daemon --bin ringraftd)
    RINGRAFTD="$CARGO_TARGET_DIR/$profile/ringraftd"
fi

dir=$(mktemp -d /tmp/ringraft-c-tests.XXXXXX)
dev_pid=
cleanup() {
    local status=$?
    if [[ -n "$dev_pid" ]]; then
        kill -TERM "$dev_pid" 2>/dev/null || true
        wait "$dev_pid" 2>/dev/null || true
    fi
    # A node restarted by the suite is not the launcher's child: stop it by its pid file.
    for pidfile in "$dir"/n*/ringraftd.pid; do
        [[ -f "$pidfile" ]] || continue
        pid=$(cat "$pidfile" 2>/dev/null || true)
        [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
    done
    if [[ $status -ne 0 ]]; then
        echo "cluster logs kept in $dir (n*/ringraftd.log, dev.out)" >&2
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT

# Nodes are marked down only after a minute, so the restart test sees the same ring.
"$RINGRAFTD" dev --nodes 3 --dir "$dir" --down-after-ms 60000 >"$dir/dev.out" 2>&1 &
dev_pid=$!
for _ in $(seq 1 900); do
    grep -q "cluster ready" "$dir/dev.out" 2>/dev/null && break
    if ! kill -0 "$dev_pid" 2>/dev/null; then
        echo "ringraftd dev exited before the cluster was ready:" >&2
        cat "$dir/dev.out" >&2
        exit 1
    fi
    sleep 0.1
done
if ! grep -q "cluster ready" "$dir/dev.out"; then
    echo "the dev cluster was not ready within 90 s" >&2
    exit 1
fi

export RINGRAFT_TEST_DIR="$dir"
export RINGRAFT_TEST_KILL_CMD="'$here/node-ctl.sh' kill '$dir' 1"
export RINGRAFT_TEST_START_CMD="'$here/node-ctl.sh' start '$dir' 1 '$RINGRAFTD'"
"$stage/test_ringraft" "$@"

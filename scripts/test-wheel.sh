#!/usr/bin/env bash
# Tests the Python wheel as a user gets it: builds it (bindings/python/build-wheel.sh), checks
# that it is platform-specific and carries libringraft, installs it into a fresh venv
# (build/wheel-test-venv, nothing else installed, no index), and from outside the repository,
# with RINGRAFT_LIB and LD_LIBRARY_PATH unset, checks that the bundled library is the one loaded
# and runs the Python examples of bindings/python/README.md and README.md against a live 3-node
# dev cluster on Unix sockets.
#
#   scripts/test-wheel.sh              build the wheel and test it
#   scripts/test-wheel.sh --no-build   wheel of target/release/libringraft.so as it is
#   WHEEL=path.whl scripts/test-wheel.sh   test that file as it is
#
# Environment: RINGRAFTD (default target/debug/ringraftd, built if missing), CARGO_TARGET_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
die() { echo "test-wheel: $*" >&2; exit 1; }

if [[ -z "${WHEEL:-}" ]]; then
  WHEEL=$(bindings/python/build-wheel.sh "$@" | tail -n 1)
fi
[[ -f "$WHEEL" ]] || die "no wheel at '$WHEEL'"
WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")
case "$(basename "$WHEEL")" in
  *-py3-none-any.whl) die "$WHEEL is a pure wheel: it must be platform-specific" ;;
  ringraft-*-py3-none-*linux_*.whl) ;;
  *) die "unexpected wheel name $(basename "$WHEEL")" ;;
esac

if [[ -z "${RINGRAFTD:-}" ]]; then
  RINGRAFTD="$target/debug/ringraftd"
  [[ -x "$RINGRAFTD" ]] || cargo build --locked -p ringraft-daemon --bin ringraftd
fi
[[ -x "$RINGRAFTD" ]] || die "no ringraftd at $RINGRAFTD"

venv="$root/build/wheel-test-venv"
echo "test-wheel: fresh venv $venv, pip install $(basename "$WHEEL")"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --no-index "$WHEEL"
python="$venv/bin/python"

dir=$(mktemp -d /tmp/ringraft-wheel-test.XXXXXX)
dev_pid=
cleanup() {
  local status=$?
  if [[ -n "$dev_pid" ]]; then
    kill -TERM "$dev_pid" 2>/dev/null || true
    wait "$dev_pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 ]]; then
    echo "test-wheel: cluster logs kept in $dir (n*/ringraftd.log, dev.out)" >&2
  else
    rm -rf "$dir"
  fi
  exit "$status"
}
trap cleanup EXIT

"$RINGRAFTD" dev --nodes 3 --dir "$dir/cluster" >"$dir/dev.out" 2>&1 &
dev_pid=$!
ready=0
for _ in $(seq 1 900); do # at most 90 s
  if grep -q "cluster ready" "$dir/dev.out" 2>/dev/null; then ready=1; break; fi
  kill -0 "$dev_pid" 2>/dev/null || { cat "$dir/dev.out" >&2; die "ringraftd dev exited before the cluster was ready"; }
  sleep 0.1
done
[[ $ready -eq 1 ]] || { cat "$dir/dev.out" >&2; die "the dev cluster was not ready within 90 s"; }
socket="$dir/cluster/n1/ringraftd.sock"
[[ -S "$socket" ]] || die "no socket at $socket"
echo "test-wheel: dev cluster ready ($socket)"

passed=0
failed=0
run() { # run DESCRIPTION COMMAND...: from outside the repository, no library path from outside
  local what=$1
  shift
  if (cd "$dir" && env -u RINGRAFT_LIB -u LD_LIBRARY_PATH -u PYTHONPATH "$@") >"$dir/run.out" 2>&1; then
    passed=$((passed + 1))
    echo "  ok    $what"
    sed 's/^/        /' "$dir/run.out"
  else
    failed=$((failed + 1))
    echo "  FAIL  $what" >&2
    sed 's/^/        /' "$dir/run.out" >&2
  fi
}

run "the installed package loads its bundled libringraft.so.0" "$python" -c '
import pathlib, sys, ringraft
package = pathlib.Path(ringraft.__file__).resolve().parent
loaded = pathlib.Path(ringraft.library_path()).resolve()
print("package", package, "library", loaded, "version", ringraft.library_version())
assert str(package).startswith(sys.prefix), f"{package} is not inside the venv {sys.prefix}"
assert loaded == package / "libringraft.so.0", f"loaded {loaded}, not the bundled copy"
'
override_lib="$target/${RINGRAFT_PACKAGE_PROFILE:-release}/libringraft.so"
if [[ -f "$override_lib" ]]; then
  run "RINGRAFT_LIB still overrides the bundled copy" env RINGRAFT_LIB="$override_lib" \
    "$python" -c '
import os, ringraft
assert ringraft.library_path() == os.environ["RINGRAFT_LIB"], ringraft.library_path()
print("loaded", ringraft.library_path())
'
fi

# The examples as the READMEs print them; only the socket path is this cluster's.
extract() { # extract README SOCKET_IN_README OUT: the README's first ```python block
  "$python" - "$1" "$2" "$socket" >"$3" <<'EOF'
import re, sys
readme, placeholder, socket = sys.argv[1:]
text = open(readme, encoding="utf-8").read()
match = re.search(r"^```python\n(.*?)^```", text, re.S | re.M)
if not match or placeholder not in match.group(1) or "ringraft.Client(" not in match.group(1):
    sys.exit(f"{readme}: no ```python example connecting to {placeholder}")
print(match.group(1).replace(placeholder, socket))
EOF
}
extract bindings/python/README.md /run/ringraft/ringraftd.sock "$dir/example_bindings.py" ||
  die "cannot extract the example of bindings/python/README.md"
extract README.md /tmp/ringraft-dev/n1/ringraftd.sock "$dir/example_readme.py" ||
  die "cannot extract the example of README.md"
run "bindings/python/README.md's example" "$python" "$dir/example_bindings.py"
run "README.md's example" "$python" "$dir/example_readme.py"

echo "wheel: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

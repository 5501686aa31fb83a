#!/usr/bin/env bash
# Checks `make install`: every file lands under a prefix the loader does not search, and ldconfig
# runs only for the system prefixes (/usr, /usr/local) installed for real, not under DESTDIR.
#
#   bindings/c/test-install.sh     (after a debug build of ringraft-ffi, as scripts/test.sh does)
#
# Environment: CARGO_TARGET_DIR (default <repo>/target); RINGRAFT_PROFILE (debug, the default, or
# release): which built library is installed (nothing is compiled here).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
profile=${RINGRAFT_PROFILE:-debug}
work=$(mktemp -d /tmp/ringraft-c-install.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A stand-in ldconfig that records its calls: the real one is not this test's to run.
printf '#!/bin/sh\necho "ldconfig $*" >> "%s/ldconfig.calls"\n' "$work" >"$work/ldconfig"
chmod +x "$work/ldconfig"
make_install() { make -s -C "$here" install PROFILE="$profile" CARGO=true STAGE="$work/stage" \
  LDCONFIG="$work/ldconfig" "$@"; }

failed=0
fail() { echo "test-install: FAIL: $*" >&2; failed=1; }

make_install PREFIX="$work/prefix"
for file in lib/libringraft.so lib/libringraft.so.0 lib/libringraft.a include/ringraft.h \
  lib/pkgconfig/ringraft.pc; do
  [[ -e "$work/prefix/$file" ]] || fail "make install PREFIX=$work/prefix did not install $file"
done
[[ ! -e "$work/ldconfig.calls" ]] || fail "ldconfig ran for PREFIX=$work/prefix: $(cat "$work/ldconfig.calls")"

# The system prefixes are not installed into here: what make would run is enough.
for prefix in /usr /usr/local; do
  make_install -n PREFIX="$prefix" | grep -qF "$work/ldconfig" ||
    fail "make install PREFIX=$prefix would not refresh the loader cache"
done
for args in "PREFIX=$HOME/.local" "PREFIX=/opt/ringraft" "PREFIX=/usr/local DESTDIR=$work/dest"; do
  # shellcheck disable=SC2086 # the words of $args are make's arguments
  if make_install -n $args | grep -q ldconfig; then
    fail "make install $args would run ldconfig"
  fi
done

[[ $failed -eq 0 ]] || exit 1
echo "test-install: ok"

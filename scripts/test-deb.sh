#!/usr/bin/env bash
# Tests the Debian package on this machine, as root: builds it (packaging/build-deb.sh), installs
# it with apt-get, checks every file, link, the user, the units (systemd-analyze verify), runs the
# installed ringraftd and ringraftctl, compiles and runs a C program against the installed header
# and library through pkg-config, then removes and purges the package and checks it left nothing.
# The machine is left as it was (the ringraft user too, if this script created it).
#
#   scripts/test-deb.sh              build and test
#   scripts/test-deb.sh --no-build   test a package of what target/release already holds
#   DEB=path/to.deb scripts/test-deb.sh   test that file as it is
#
# Refuses to run if a ringraft package is already installed (it would remove it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DEBIAN_FRONTEND=noninteractive

die() { echo "test-deb: $*" >&2; exit 1; }
if [[ "$(id -u)" -ne 0 ]]; then
  # CI runs as root: there a missing root is an error, never a skip.
  [[ "${CI:-}" != true ]] || die "must run as root (it installs the package with apt-get)"
  echo "test-deb: skipped: not root (it installs the package with apt-get; CI runs it as root)" >&2
  exit 0
fi
if dpkg-query -W -f='${db:Status-Status}' ringraft 2>/dev/null | grep -qv '^not-installed$'; then
  die "a ringraft package is already installed: remove it first (dpkg --purge ringraft)"
fi

if [[ -z "${DEB:-}" ]]; then
  DEB=$(packaging/build-deb.sh "$@" | tail -n 1)
fi
[[ -f "$DEB" ]] || die "no package at '$DEB'"
DEB=$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB")
version=$(dpkg-deb -f "$DEB" Version)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || cc -print-multiarch)
libdir=/usr/lib/$multiarch

passed=0
failed=0
check() { # check DESCRIPTION COMMAND...: runs the command, counts and reports the outcome
  local what=$1
  shift
  if "$@" >"$work/check.out" 2>&1; then
    passed=$((passed + 1))
    echo "  ok    $what"
  else
    failed=$((failed + 1))
    echo "  FAIL  $what" >&2
    sed 's/^/        /' "$work/check.out" >&2
  fi
}
is_file() { [[ -f "$1" && ! -L "$1" ]] || { echo "$1: not a regular file"; ls -ld "$1"; return 1; }; }
is_exe() { [[ -f "$1" && -x "$1" ]] || { echo "$1: not an executable file"; ls -ld "$1"; return 1; }; }
is_link() { # is_link PATH TARGET
  [[ -L "$1" ]] || { echo "$1: not a symlink"; ls -ld "$1"; return 1; }
  [[ "$(readlink "$1")" == "$2" ]] || { echo "$1 -> $(readlink "$1"), expected $2"; return 1; }
  [[ -e "$1" ]] || { echo "$1: dangling"; return 1; }
}
same_file() { # same_file WHAT PATH EXPECTED: PATH (from a tool's output) is EXPECTED, links resolved
  [[ -n "$2" && "$(readlink -f "$2")" == "$(readlink -f "$3")" ]] ||
    { echo "$1 is '$2', expected $3 ($(readlink -f "$3"))"; return 1; }
}
absent() { [[ ! -e "$1" && ! -L "$1" ]] || { echo "$1 is still there"; return 1; }; }
output_has() { # output_has TEXT COMMAND...
  local text=$1 out
  shift
  local status=0
  out=$("$@" 2>&1) || status=$?
  [[ $status -eq 0 ]] || { echo "$out"; echo "(exit status $status)"; return 1; }
  echo "$out"
  grep -qF -- "$text" <<<"$out" || { echo "(expected '$text' in the output)"; return 1; }
}

work=$(mktemp -d /tmp/ringraft-test-deb.XXXXXX)
had_user=0
getent passwd ringraft >/dev/null && had_user=1
had_group=0
getent group ringraft >/dev/null && had_group=1
cleanup() {
  local status=$?
  if dpkg-query -W -f='${db:Status-Status}' ringraft 2>/dev/null | grep -qv '^not-installed$'; then
    dpkg --purge ringraft >/dev/null 2>&1 || echo "test-deb: could not purge ringraft" >&2
  fi
  if [[ $had_user -eq 0 ]] && getent passwd ringraft >/dev/null; then userdel ringraft || true; fi
  if [[ $had_group -eq 0 ]] && getent group ringraft >/dev/null; then groupdel ringraft || true; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

echo "test-deb: installing $DEB"
if ! apt-get install -y -q "$DEB" >"$work/apt.out" 2>&1; then
  cat "$work/apt.out" >&2
  die "apt-get install failed"
fi

echo "test-deb: files"
check "ringraftd in /usr/bin" is_exe /usr/bin/ringraftd
check "ringraftctl in /usr/bin" is_exe /usr/bin/ringraftctl
check "libringraft.so.$version" is_file "$libdir/libringraft.so.$version"
check "libringraft.so.0 -> libringraft.so.$version" is_link "$libdir/libringraft.so.0" "libringraft.so.$version"
check "libringraft.so -> libringraft.so.0" is_link "$libdir/libringraft.so" libringraft.so.0
check "libringraft.a" is_file "$libdir/libringraft.a"
check "SONAME libringraft.so.0" output_has "Library soname: [libringraft.so.0]" \
  readelf -d "$libdir/libringraft.so.$version"
check "ldconfig knows libringraft.so.0" same_file "ldconfig's libringraft.so.0" \
  "$(ldconfig -p | sed -n 's/^[[:space:]]*libringraft\.so\.0 .* => //p' | head -n 1)" "$libdir/libringraft.so.0"
check "ringraft.h in /usr/include" cmp include/ringraft.h /usr/include/ringraft.h
check "ringraft.pc" is_file "$libdir/pkgconfig/ringraft.pc"
check "pkg-config finds ringraft $version" output_has "$version" pkg-config --modversion ringraft
check "ringraftd.service" cmp packaging/ringraftd.service /usr/lib/systemd/system/ringraftd.service
check "ringraftd.socket" cmp packaging/ringraftd.socket /usr/lib/systemd/system/ringraftd.socket
check "sysusers.d/ringraft.conf" cmp packaging/ringraft.sysusers /usr/lib/sysusers.d/ringraft.conf
check "tmpfiles.d/ringraft.conf" cmp packaging/ringraft.tmpfiles /usr/lib/tmpfiles.d/ringraft.conf
check "/etc/ringraft/ringraftd.toml" cmp packaging/ringraftd.toml /etc/ringraft/ringraftd.toml
check "ringraftd.toml is a conffile" output_has /etc/ringraft/ringraftd.toml \
  dpkg-query -W -f='${Conffiles}' ringraft
check "the unit's documentation is installed" is_file /usr/share/doc/ringraft/README.md
check "copyright" is_file /usr/share/doc/ringraft/copyright
check "dpkg -L lists the binaries and the library" bash -c \
  "dpkg -L ringraft | grep -qx /usr/bin/ringraftd && dpkg -L ringraft | grep -qx '$libdir/libringraft.so.0'"

echo "test-deb: maintainer scripts"
check "postinst created the ringraft user" getent passwd ringraft
check "postinst: /etc/ringraft is 0750 root:ringraft" output_has "750 root:ringraft" \
  stat -c '%a %U:%G' /etc/ringraft

echo "test-deb: units"
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' /usr/lib/systemd/system/ringraftd.service)
check "ExecStart ($exec_start) is an installed binary" is_exe "$exec_start"
if command -v systemd-analyze >/dev/null 2>&1; then
  # As scripts/check-units.sh: without --recursive-errors=no, verify exits 0 even on errors.
  check "systemd-analyze verify" systemd-analyze verify --recursive-errors=no \
    /usr/lib/systemd/system/ringraftd.service /usr/lib/systemd/system/ringraftd.socket
  check "systemd-analyze security: exposure within 2.0" systemd-analyze security --offline=yes \
    --threshold=20 /usr/lib/systemd/system/ringraftd.service
else
  echo "  skip  systemd-analyze verify (no systemd-analyze here)"
fi

echo "test-deb: the installed programs"
check "ringraftd --version says $version" output_has "$version" /usr/bin/ringraftd --version
check "ringraftctl --help" output_has "Usage" /usr/bin/ringraftctl --help
cat >"$work/version.c" <<'EOF'
#include <ringraft.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    const char *v = ringraft_version();
    printf("header %d.%d.%d, library %s\n", RINGRAFT_VERSION_MAJOR, RINGRAFT_VERSION_MINOR,
           RINGRAFT_VERSION_PATCH, v);
    return v != NULL && strchr(v, '.') != NULL ? 0 : 1;
}
EOF
# shellcheck disable=SC2046 # pkg-config's words are separate arguments
check "cc \$(pkg-config --cflags --libs ringraft)" \
  cc -std=c11 -Wall -Werror -o "$work/version" "$work/version.c" $(pkg-config --cflags --libs ringraft)
check "the C program loads the installed libringraft.so.0" same_file "ldd's libringraft.so.0" \
  "$(ldd "$work/version" | sed -n 's/^[[:space:]]*libringraft\.so\.0 => \([^ ]*\).*/\1/p')" \
  "$libdir/libringraft.so.0"
check "the C program prints ringraft_version() = $version" output_has "library $version" \
  env -u LD_LIBRARY_PATH "$work/version"

echo "test-deb: remove and purge"
check "apt-get remove -y ringraft" apt-get remove -y -q ringraft
check "remove took ringraftd" absent /usr/bin/ringraftd
check "remove took libringraft.so.0" absent "$libdir/libringraft.so.0"
check "remove took the units" absent /usr/lib/systemd/system/ringraftd.service
check "remove kept the conffile" is_file /etc/ringraft/ringraftd.toml
check "dpkg --purge ringraft" dpkg --purge ringraft
check "purge took the conffile" absent /etc/ringraft/ringraftd.toml
check "ldconfig forgot libringraft" bash -c '! ldconfig -p | grep -q libringraft'
check "the package is gone" bash -c \
  "! dpkg-query -W -f='\${db:Status-Status}' ringraft 2>/dev/null | grep -qv '^not-installed\$'"

echo "deb: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

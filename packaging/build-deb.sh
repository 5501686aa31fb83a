#!/usr/bin/env bash
# Builds the Debian package build/ringraft_<version>_<arch>.deb with dpkg-deb (no other tool).
#
#   packaging/build-deb.sh              release-build ringraftd, ringraftctl and libringraft, then
#                                       package them; prints the .deb's path on its last line
#   packaging/build-deb.sh --no-build   package what target/release already holds
#
# The package holds:
#   /usr/bin/ringraftd, /usr/bin/ringraftctl            (where ringraftd.service's ExecStart points)
#   /usr/lib/<multiarch>/libringraft.so.X.Y.Z, .so.0 -> it, .so -> .so.0, libringraft.a,
#   /usr/lib/<multiarch>/pkgconfig/ringraft.pc, /usr/include/ringraft.h
#                                       (exactly what `make -C bindings/c install` puts there)
#   /usr/lib/systemd/system/ringraftd.service, ringraftd.socket
#   /usr/lib/sysusers.d/ringraft.conf, /usr/lib/tmpfiles.d/ringraft.conf
#   /etc/ringraft/ringraftd.toml        (the example config, a conffile)
#   /usr/share/doc/ringraft/README.md, copyright
# The maintainer scripts create the user and /etc/ringraft's ownership (systemd-sysusers,
# systemd-tmpfiles) and run ldconfig, each when available; no unit is enabled or started (the
# config needs this node's id, peers and certificates first).
#
# Environment: CARGO_TARGET_DIR (default <repo>/target); OUT_DIR (default <repo>/build);
# RINGRAFT_PACKAGE_PROFILE=debug packages the dev-profile build instead of the release one (the
# test command does, to spare CI a second full compile: the packaging is the same either way).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT_DIR:-$root/build}

die() { echo "build-deb: $*" >&2; exit 1; }

# shellcheck source=build-choice.sh
source "$root/packaging/build-choice.sh"
parse_build_choice packaging/build-deb.sh "$@"

for tool in dpkg-deb dpkg make install strip sed; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing (scripts/setup.sh installs what is needed)"
done

# The workspace version is the package's; the header's must agree (it names the .so file).
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
[[ -n "$version" ]] || die "no version in Cargo.toml's [workspace.package]"
header_version=$(sed -n 's/^#define RINGRAFT_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' \
  include/ringraft.h | paste -sd.)
[[ "$header_version" == "$version" ]] ||
  die "include/ringraft.h says $header_version, Cargo.toml says $version"
arch=$(dpkg --print-architecture)
if command -v dpkg-architecture >/dev/null 2>&1; then
  multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
else
  multiarch=$(cc -print-multiarch)
fi
[[ -n "$multiarch" ]] || die "cannot tell the multiarch library directory"

if [[ $build -eq 1 ]]; then
  echo "build-deb: cargo build ${profile_flag[*]} -p ringraft-daemon -p ringraft-ffi" >&2
  cargo build "${profile_flag[@]}" --locked -p ringraft-daemon -p ringraft-ffi >&2
fi
release="$target/$profile"
for f in ringraftd ringraftctl libringraft.so libringraft.a; do
  [[ -f "$release/$f" ]] || die "$release/$f is missing (run without --no-build)"
done

mkdir -p "$out"
work=$(mktemp -d "$out/deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
pkg="$work/root"

# The library, header and pkg-config file: the C Makefile's own install rule (its .pc template),
# with a private staging directory so a concurrent `make` elsewhere cannot swap the library.
make -s -C bindings/c install PROFILE="$profile" STAGE="$work/c-stage" CARGO=true CARGO_TARGET_DIR="$target" \
  PREFIX=/usr LIBDIR="/usr/lib/$multiarch" INCLUDEDIR=/usr/include DESTDIR="$pkg" >&2

install -d -m 0755 "$pkg/usr/bin" "$pkg/usr/lib/systemd/system" "$pkg/usr/lib/sysusers.d" \
  "$pkg/usr/lib/tmpfiles.d" "$pkg/etc/ringraft" "$pkg/usr/share/doc/ringraft" "$pkg/DEBIAN"
install -m 0755 "$release/ringraftd" "$release/ringraftctl" "$pkg/usr/bin/"
strip --strip-unneeded "$pkg/usr/bin/ringraftd" "$pkg/usr/bin/ringraftctl" \
  "$pkg/usr/lib/$multiarch/libringraft.so.$version"
strip --strip-debug "$pkg/usr/lib/$multiarch/libringraft.a"
install -m 0644 packaging/ringraftd.service packaging/ringraftd.socket "$pkg/usr/lib/systemd/system/"
install -m 0644 packaging/ringraft.sysusers "$pkg/usr/lib/sysusers.d/ringraft.conf"
install -m 0644 packaging/ringraft.tmpfiles "$pkg/usr/lib/tmpfiles.d/ringraft.conf"
install -m 0644 packaging/ringraftd.toml "$pkg/etc/ringraft/ringraftd.toml"
install -m 0644 README.md "$pkg/usr/share/doc/ringraft/README.md"
license=$(sed -n '/^\[workspace.package\]/,/^\[/s/^license *= *"\(.*\)"/\1/p' Cargo.toml)
cat >"$pkg/usr/share/doc/ringraft/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ringraft

Files: *
Copyright: the ringraft authors
License: $license
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF

# Every path a unit names must be a path this package installs.
for unit in ringraftd.service ringraftd.socket; do
  for exe in $(sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "packaging/$unit"); do
    [[ -x "$pkg$exe" ]] || die "packaging/$unit runs $exe, which the package does not install"
  done
done

# Depends: from the binaries' NEEDED entries when dpkg-shlibdeps is there, else libc6.
depends="libc6"
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
  mkdir -p "$work/src/debian"
  printf 'Source: ringraft\n\nPackage: ringraft\nArchitecture: any\n' >"$work/src/debian/control"
  shlibs=$(cd "$work/src" && dpkg-shlibdeps -O -e"$pkg/usr/bin/ringraftd" -e"$pkg/usr/bin/ringraftctl" \
    -e"$pkg/usr/lib/$multiarch/libringraft.so.$version" 2>"$work/shlibdeps.err") ||
    { cat "$work/shlibdeps.err" >&2; die "dpkg-shlibdeps failed"; }
  depends=$(sed -n 's/^shlibs:Depends=//p' <<<"$shlibs")
  [[ -n "$depends" ]] || die "dpkg-shlibdeps gave no Depends: $shlibs"
else
  echo "build-deb: dpkg-shlibdeps not found (package dpkg-dev): Depends: libc6 only" >&2
fi

installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<EOF
Package: ringraft
Version: $version
Architecture: $arch
Maintainer: ringraft developers <ringraft@localhost>
Installed-Size: $installed_size
Depends: $depends
Suggests: systemd
Section: net
Priority: optional
Description: node-local coordination daemon (Raft membership, consistent-hash ring)
 ringraftd runs on every machine of a cluster; the daemons keep the membership
 and a consistent-hash ring in Raft-replicated state, and programs on the host
 ask their local daemon over a Unix socket who owns a key and which nodes hold
 it, and commit proposals to the cluster's log.
 .
 This package holds ringraftd and ringraftctl, the systemd units (neither
 enabled nor started), the C client library libringraft with its header and
 pkg-config file, and an example /etc/ringraft/ringraftd.toml.
EOF
echo "/etc/ringraft/ringraftd.toml" >"$pkg/DEBIAN/conffiles"
# Lets other packages' dpkg-shlibdeps find libringraft.so.0 here.
echo "libringraft 0 ringraft (>= $version)" >"$pkg/DEBIAN/shlibs"

cat >"$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers /usr/lib/sysusers.d/ringraft.conf
    elif ! getent passwd ringraft >/dev/null; then
        adduser --system --group --no-create-home --home /var/lib/ringraft ringraft >/dev/null
    fi
    if command -v systemd-tmpfiles >/dev/null 2>&1; then
        systemd-tmpfiles --create /usr/lib/tmpfiles.d/ringraft.conf
    else
        chgrp ringraft /etc/ringraft && chmod 0750 /etc/ringraft
    fi
    if command -v ldconfig >/dev/null 2>&1; then ldconfig; fi
    if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
fi
exit 0
EOF
cat >"$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop ringraftd.service ringraftd.socket >/dev/null 2>&1 || true
fi
exit 0
EOF
cat >"$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
case "$1" in
    remove|purge)
        if command -v ldconfig >/dev/null 2>&1; then ldconfig; fi
        if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
        ;;
esac
# The user and /var/lib/ringraft (the node's Raft state) are kept, also on purge.
exit 0
EOF
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles" "$pkg/DEBIAN/shlibs" "$pkg/DEBIAN/md5sums"

deb="$out/ringraft_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >&2
echo "build-deb: wrote $deb (Depends: $depends)" >&2
echo "$deb"

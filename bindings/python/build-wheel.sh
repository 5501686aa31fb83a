#!/usr/bin/env bash
# Builds a wheel of the `ringraft` package that carries libringraft, so that
# `pip install ringraft-*.whl` is all another machine of the same platform needs.
#
#   bindings/python/build-wheel.sh              release-build libringraft, then the wheel
#   bindings/python/build-wheel.sh --no-build   use target/release/libringraft.so as it is
#
# The package is copied to a staging directory, the stripped release library goes in as
# ringraft/libringraft.so.0 (the package loads it before the system's; RINGRAFT_LIB still wins),
# and `pip wheel` builds from there; the source tree is not touched. The wheel is
# build/wheels/ringraft-<version>-py3-none-<platform>.whl (any Python 3: ctypes, no extension
# module), where the platform is manylinux_2_<N>_<arch> when the library needs only glibc 2.N and
# the libraries manylinux allows, else linux_<arch>. Its path is the last line printed.
#
# Needs the venv of scripts/setup.sh (build/venv, with setuptools >= 70.1); VENV overrides it.
# Environment: CARGO_TARGET_DIR (default <repo>/target), OUT_DIR (default <repo>/build/wheels).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT_DIR:-$root/build/wheels}
venv=${VENV:-$root/build/venv}

die() { echo "build-wheel: $*" >&2; exit 1; }

# shellcheck source=../../packaging/build-choice.sh
source "$root/packaging/build-choice.sh"
parse_build_choice bindings/python/build-wheel.sh "$@"
[[ -x "$venv/bin/python" ]] || die "no venv at $venv: run scripts/setup.sh first"
"$venv/bin/python" -c 'import setuptools.command.bdist_wheel' 2>/dev/null ||
  die "$venv lacks setuptools >= 70.1: run scripts/setup.sh"
for tool in readelf strip; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is missing (package binutils; scripts/setup.sh)"
done

if [[ $build -eq 1 ]]; then
  echo "build-wheel: cargo build ${profile_flag[*]} -p ringraft-ffi" >&2
  (cd "$root" && cargo build "${profile_flag[@]}" --locked -p ringraft-ffi >&2)
fi
lib="$target/$profile/libringraft.so"
[[ -f "$lib" ]] || die "$lib is missing (run without --no-build)"

mkdir -p "$out"
work=$(mktemp -d "$out/.stage.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/src"
mkdir -p "$src"
cp "$here/pyproject.toml" "$here/setup.py" "$here/README.md" "$src/"
cp -r "$here/ringraft" "$src/ringraft"
find "$src" -name __pycache__ -prune -exec rm -rf {} +
rm -f "$src"/ringraft/libringraft.so*
install -m 0755 "$lib" "$src/ringraft/libringraft.so.0"
strip --strip-unneeded "$src/ringraft/libringraft.so.0"
soname=$(readelf -d "$src/ringraft/libringraft.so.0" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[[ "$soname" == libringraft.so.0 ]] || die "$lib has SONAME '$soname', expected libringraft.so.0"

# The platform tag: manylinux_2_N (PEP 600) if the library links only what manylinux allows and
# needs at most glibc 2.N; otherwise this machine's linux_<arch>.
arch=$(uname -m)
platform="linux_$arch"
needed=$(readelf -d "$src/ringraft/libringraft.so.0" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
allowed='^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|librt\.so\.1|libpthread\.so\.0|libutil\.so\.1|libgcc_s\.so\.1|libresolv\.so\.2|ld-linux.*)$'
glibc=$(readelf --dyn-syms -W "$src/ringraft/libringraft.so.0" | grep -o 'GLIBC_2\.[0-9]*' |
  sort -u -t. -k2,2n | tail -n 1 || true)
if [[ -n "$glibc" ]] && ! grep -Evq "$allowed" <<<"$needed"; then
  platform="manylinux_2_${glibc#GLIBC_2.}_$arch"
else
  echo "build-wheel: not manylinux (needs: $(echo $needed), ${glibc:-no glibc version})" >&2
fi

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$src/pyproject.toml")
rm -f "$out"/ringraft-"$version"-*.whl
echo "build-wheel: pip wheel (platform $platform)" >&2
RINGRAFT_WHEEL_PLATFORM=$platform "$venv/bin/python" -m pip wheel -q --disable-pip-version-check \
  --no-deps --no-build-isolation --wheel-dir "$out" "$src" >&2
wheel="$out/ringraft-$version-py3-none-$platform.whl"
[[ -f "$wheel" ]] || die "pip wheel did not write $wheel: $(ls "$out")"
"$venv/bin/python" - "$wheel" <<'EOF' || die "$wheel does not carry ringraft/libringraft.so.0"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
sys.exit(0 if "ringraft/libringraft.so.0" in names else 1)
EOF
echo "build-wheel: wrote $wheel" >&2
echo "$wheel"

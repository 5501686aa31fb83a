#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine (idempotent): system
# packages, and a Python venv under build/ with the test requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
build="$(pwd)/build"
mkdir -p "$build"

need_pkgs=()
for tool in cc:gcc pkg-config:pkg-config ip:iproute2 nft:nftables python3:python3 systemd-analyze:systemd \
  dpkg-shlibdeps:dpkg-dev readelf:binutils strip:binutils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need_pkgs+=("${tool##*:}")
done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages ${need_pkgs[*]} and not root; install them first" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if [ ! -x "$build/venv/bin/python" ]; then
  python3 -m venv "$build/venv"
fi
if ! "$build/venv/bin/python" -c 'import pytest, mypy' >/dev/null 2>&1; then
  "$build/venv/bin/pip" install -q --disable-pip-version-check -r bindings/python/requirements-test.txt
fi
# bindings/python/build-wheel.sh builds without build isolation (offline): setuptools' own
# bdist_wheel (>= 70.1) in the venv.
if ! "$build/venv/bin/python" -c 'import setuptools.command.bdist_wheel' >/dev/null 2>&1; then
  "$build/venv/bin/pip" install -q --disable-pip-version-check -r bindings/python/requirements-build.txt
fi

#!/usr/bin/env bash
# Runs every test of the project: Rust (unit, property, simulator, multi-process), C (under
# AddressSanitizer, against a live dev cluster) and Python. Installs what it needs first.
# Usage: scripts/test.sh            (from the repository root or anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build="$root/build"
mkdir -p "$build"

section() { printf '\n=== %s ===\n' "$*"; }

section "setup"
scripts/setup.sh

section "format and lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

section "Rust tests"
# Libraries too: the ffi tests inspect target/debug/libringraft.so, the multi-process tests run
# the binaries. One build serves every step below, so ringraft-ffi is compiled once: with
# --all-targets the libraries get the dependency features of the tests' dev-dependencies, as in
# `cargo test` (a plain build resolves fewer, and `cargo test` compiled them again); the package
# and C steps take these artifacts (--no-build), as a build of only some packages resolves other
# features and compiles them once more.
cargo build --workspace --all-targets --locked
cargo test --workspace --locked

section "systemd units"
scripts/check-units.sh

# The packages are made of the dev-profile build above: what they test is the packaging, which
# is the same for both profiles, and a second (release) compile would cost CI minutes.
section "Debian package (build, install, check, purge)"
RINGRAFT_PACKAGE_PROFILE=debug scripts/test-deb.sh --no-build

section "Python wheel (build, install into a fresh venv, README examples on a dev cluster)"
RINGRAFT_PACKAGE_PROFILE=debug scripts/test-wheel.sh --no-build

if [ -x bindings/c/run-tests.sh ]; then
  section "C tests (AddressSanitizer, live 3-node dev cluster)"
  bindings/c/run-tests.sh --no-build
  bindings/c/test-install.sh
fi

if [ -d bindings/python/tests ]; then
  section "Python tests"
  "$build/venv/bin/python" -m pytest -q bindings/python/tests
fi

section "all tests passed"

#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and integration tests, then builds the
# .deb, the .rpm and the container image and checks them (scripts/check-packages.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# A fresh run writes about 4.8 GB under target/ (debug and test builds, then the release build
# the packages hold); 3.4 GB without incremental data, which a one-off CI run never reuses.
# The check asks for a little more than target/ takes: the test peers (Debian packages, npm
# modules) and the packages' staging need room too.
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0
  check_free_space 4000 "the test suite"
else
  check_free_space 6000 "the test suite"
fi
source scripts/setup-test-peers.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi
echo "== packages (.deb, .rpm, container image): built and checked"
scripts/check-packages.sh

#!/usr/bin/env bash
# Runs the offline demo: mock AgentConnect, FranceConnect and FranceConnect+ providers, a demo app
# and guichet in front of it.
# Open http://127.0.0.1:8080/ once it prints that it is running.
#
# A debug build: it compiles in about 3 minutes on two cores (the optimised one, fat LTO, takes
# 8 to 9) and shares its dependencies with the test suite's build. The demo serves one person at
# a time; deploy the binary of `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
check_free_space 2500 "the demo's build"
exec cargo run --locked -- demo "$@"

#!/usr/bin/env bash
# Runs the offline demo: mock AgentConnect, FranceConnect and FranceConnect+ providers, a demo app
# and guichet in front of it.
# Open http://127.0.0.1:8080/ once it prints that it is running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
check_free_space 2500 "the demo's release build"
exec cargo run --release --locked -- demo "$@"

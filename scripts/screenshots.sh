#!/usr/bin/env bash
# Refreshes the README's screenshots: runs the browser test (tests/browser.rs), which walks the
# demo in Chromium and leaves PNGs in target/screenshots/, then copies them to docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/setup-test-peers.sh
cargo nextest run --locked --test browser
mkdir -p docs/screenshots
for shot in chooser error demo-app; do
  cp "target/screenshots/$shot.png" "docs/screenshots/$shot.png"
done
ls -l docs/screenshots

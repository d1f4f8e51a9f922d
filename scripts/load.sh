#!/usr/bin/env bash
# The load test moved to benches/load.sh; kept so that existing habits still work.
exec "$(dirname "$0")/../benches/load.sh" "$@"

#!/usr/bin/env bash
# Installs what building guichet needs on a fresh Debian machine, and nothing that is already there.
# Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install Rust (1.85 or newer) with rustup first" >&2
  exit 1
fi

# The build writes several GB under target/ (see the callers' need_mb); when the disk is short
# it fails deep inside a C build with "No space left on device". Say so first, and plainly.
# GUICHET_SKIP_DISK_CHECK=1 skips the check.
check_free_space() {
  local need_mb=$1 what=$2 target=${CARGO_TARGET_DIR:-target}
  [ "${GUICHET_SKIP_DISK_CHECK:-0}" = 1 ] && return 0
  mkdir -p "$target"
  local free_mb have_mb
  free_mb=$(df -Pm "$target" | awk 'NR == 2 { print $4 }')
  # What target/ already holds is mostly reused: count it towards the need.
  have_mb=$(du -sm "$target" 2>/dev/null | cut -f1)
  if [ -n "$free_mb" ] && [ $((free_mb + ${have_mb:-0})) -lt "$need_mb" ]; then
    echo "setup: not enough disk space for $what: $free_mb MB free where $target is" \
      "($(df -P "$target" | awk 'NR == 2 { print $6 }')), ${have_mb:-0} MB already in $target," \
      "about $need_mb MB needed in all. Free some space, point CARGO_TARGET_DIR elsewhere, or" \
      "set GUICHET_SKIP_DISK_CHECK=1 to try anyway." >&2
    exit 1
  fi
}

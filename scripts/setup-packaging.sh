#!/usr/bin/env bash
# Installs what building and checking the packages needs: dpkg-deb and rpm, podman with runc
# (crun cannot run containers on the CI machines' hybrid cgroup layout; runc can), binutils
# (strip), ca-certificates, curl and unshare, from Debian; cargo-deb and cargo-generate-rpm from
# crates.io.
# Sourced by scripts/package.sh and scripts/check-packages.sh.
set -euo pipefail

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
need_apt=()
command -v rpm >/dev/null 2>&1 || need_apt+=(rpm)
command -v podman >/dev/null 2>&1 || need_apt+=(podman)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v unshare >/dev/null 2>&1 || need_apt+=(util-linux)
command -v runc >/dev/null 2>&1 || need_apt+=(runc)
command -v strip >/dev/null 2>&1 || need_apt+=(binutils)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages for packaging: ${need_apt[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
for tool in cargo-deb cargo-generate-rpm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "setup: cargo install --locked $tool"
    cargo install --locked --quiet "$tool"
  fi
done
export PODMAN_RUNTIME=runc

#!/usr/bin/env bash
# Installs what the integration tests run beside guichet: the runtimes of the verification
# examples (php-cli and a JDK from Debian, PyJWT in a virtualenv under target/, jose from npm),
# the third-party OpenID provider (oidc-provider from npm, tests/oidc-provider), openssl (test
# certificates), systemd-analyze (the unit file check), redis-server (the shared session
# store of tests/shared.rs), and the front proxies guichet is tested beside (nginx with the
# headers-more module, Caddy, Apache httpd: tests/forward_auth.rs), Chromium with playwright-core
# and axe-core from npm (tests/browser.rs), and the packaging tools (dpkg-deb and rpm from Debian,
# cargo-deb and cargo-generate-rpm from crates.io, podman and runc: scripts/package.sh).
# Sourced by scripts/test.sh after scripts/setup.sh. What cannot be installed fails here,
# loudly: no test is silently skipped.
set -euo pipefail

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
need_apt=()
command -v php >/dev/null 2>&1 || need_apt+=(php-cli)
command -v java >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx-light)
[ -f /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so ] || need_apt+=(libnginx-mod-http-headers-more-filter)
command -v caddy >/dev/null 2>&1 || need_apt+=(caddy)
command -v apache2 >/dev/null 2>&1 || need_apt+=(apache2)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages for the test peers: ${need_apt[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

venv=target/verify-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import jwt' >/dev/null 2>&1; then
  echo "setup: creating $venv with examples/verify/python/requirements.txt"
  mkdir -p target
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r examples/verify/python/requirements.txt
fi

for package in examples/verify/node tests/oidc-provider tests/browser; do
  if [ ! -f "$package/node_modules/.package-lock.json" ] || [ "$package/package-lock.json" -nt "$package/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci in $package"
    (cd "$package" && npm ci --no-audit --no-fund --silent)
  fi
done

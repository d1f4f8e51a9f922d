#!/usr/bin/env bash
# Builds the .deb, the .rpm and the container image (scripts/package.sh) and checks each one:
#   .deb   dpkg-deb --info/--contents; installed with dpkg into a throw-away root
#          (target/package/root-deb, --force-script-chrootless: the maintainer scripts run and
#          must neither enable nor start anything); `guichet check` on the installed
#          /etc/guichet/guichet.toml (its credential in a private tmpfs); `systemd-analyze
#          verify` on the installed unit; purged: nothing of the package is left.
#   .rpm   rpm -qip / -qlp / -qcp / --scripts; installed into a throw-away rpm root and erased.
#   image  its user, entrypoint and size; `guichet --version` and `guichet check` inside with a
#          read-only root filesystem; `guichet demo` inside, reached from the host.
# Called by scripts/test.sh. Every check that fails stops the run with what it saw.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/package.sh
source scripts/setup-packaging.sh

version=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')
deb="target/debian/guichet_${version}-1_amd64.deb"
rpm_file="target/generate-rpm/guichet-${version}-1.x86_64.rpm"
image="localhost/guichet:$version"
work=$(mktemp -d /tmp/guichet-packages.XXXXXX)
cleanup() {
  podman rm -f guichet-demo-check >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# contains NAME TEXT EXPECTED...: every EXPECTED line is in TEXT.
contains() {
  local name=$1 text=$2
  shift 2
  for expected in "$@"; do
    grep -qF -- "$expected" <<<"$text" || fail "$name: '$expected' not found in:
$text"
  done
}
absent() {
  local name=$1 text=$2
  shift 2
  for unexpected in "$@"; do
    if grep -qF -- "$unexpected" <<<"$text"; then fail "$name: '$unexpected' found in:
$text"; fi
  done
}
secret=$(head -c 24 /dev/urandom | base64)

echo "== .deb: $deb"
info=$(dpkg-deb --info "$deb")
contains "dpkg-deb --info" "$info" "Package: guichet" "Version: ${version}-1" "Architecture: amd64" \
  "Depends: libc6" "Section: net" "conffiles"
contains "conffiles" "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" "/etc/guichet/guichet.toml"
contents=$(dpkg-deb --contents "$deb")
contains "dpkg-deb --contents" "$contents" "./usr/bin/guichet" "./lib/systemd/system/guichet.service" \
  "./etc/guichet/guichet.toml" "./usr/share/doc/guichet/README.md" "./usr/share/doc/guichet/copyright" \
  "./usr/share/doc/guichet/examples/guichet.example.toml"
contains "binary mode" "$(grep ' ./usr/bin/guichet' <<<"$contents")" "-rwxr-xr-x 0/0"
# The maintainer scripts: nothing is enabled or started.
for script in postinst prerm postrm; do
  text=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO "./$script" | grep -v "^[[:space:]]*#")
  absent "$script" "$text" "systemctl start" "systemctl enable" "deb-systemd-invoke start"
done

root="$work/root-deb"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null -i "$deb" >/dev/null 2>&1 \
  || fail "dpkg -i into $root"
[ "$(dpkg --root="$root" -s guichet | grep '^Status:')" = "Status: install ok installed" ] || fail "dpkg status"
unit="$root/lib/systemd/system/guichet.service"
contains "installed unit" "$(cat "$unit")" "ExecStart=/usr/bin/guichet run --daemon --config /etc/guichet/guichet.toml" \
  "ExecStartPre=/usr/bin/guichet check --config /etc/guichet/guichet.toml" "DynamicUser=yes"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/guichet.service" ] || fail "the package enabled the service"
"$root/usr/bin/guichet" --version | grep -q "^guichet $version" || fail "--version"
# guichet check on the installed configuration, as the unit runs it: the binary at /usr/bin,
# the credential under /run/credentials/guichet.service/ (both only in a private mount
# namespace), and systemd-analyze verify on the installed unit, which needs the same binary.
printf '%s\n' "$secret" > "$work/agentconnect-secret"
checked=$(unshare --mount --fork sh -c '
  set -e
  mount -t overlay overlay -o "lowerdir=$1/usr/bin:/usr/bin" /usr/bin
  mkdir -p /run/credentials
  mount -t tmpfs -o mode=0755 tmpfs /run/credentials
  mkdir -p /run/credentials/guichet.service
  cp "$2" /run/credentials/guichet.service/agentconnect-secret
  /usr/bin/guichet check --config "$1/etc/guichet/guichet.toml"
  systemd-analyze verify "$1/lib/systemd/system/guichet.service"
  echo verified
' sh "$root" "$work/agentconnect-secret" 2>&1) || fail "check or verify of the installed package:
$checked"
contains "guichet check (installed)" "$checked" "OK — listen 127.0.0.1:8080, upstream 127.0.0.1:9000, 1 provider(s): proconnect" "verified"
absent "guichet check (installed)" "$checked" "$secret"
dpkg --root="$root" --force-script-chrootless --log=/dev/null --purge guichet >/dev/null 2>&1 || fail "dpkg --purge"
left=$(find "$root" -mindepth 1 -not -path "$root/var/lib/dpkg*" \( -type f -o -type l \) -print)
[ -z "$left" ] || fail "files left after purge: $left"
[ ! -d "$root/etc/guichet" ] || fail "/etc/guichet left after purge"
echo "ok .deb: metadata, contents, conffile, installed, checked, unit verified, purged clean"

echo "== .rpm: $rpm_file"
info=$(rpm -qip "$rpm_file" 2>/dev/null)
contains "rpm -qip" "$info" "Name        : guichet" "Version     : $version" "Release     : 1" \
  "Architecture: x86_64" "License     : EUPL-1.2"
files=$(rpm -qlp "$rpm_file" 2>/dev/null)
contains "rpm -qlp" "$files" "/usr/bin/guichet" "/usr/lib/systemd/system/guichet.service" \
  "/etc/guichet/guichet.toml" "/usr/share/doc/guichet/README.md"
contains "rpm -qcp" "$(rpm -qcp "$rpm_file" 2>/dev/null)" "/etc/guichet/guichet.toml"
scripts=$(rpm -qp --scripts "$rpm_file" 2>/dev/null)
contains "rpm --scripts" "$scripts" "daemon-reload"
absent "rpm --scripts" "$scripts" "systemctl start" "systemctl enable" "systemctl --now"
rpmroot="$work/root-rpm"
mkdir -p "$rpmroot"
rpm --root "$rpmroot" --initdb
rpm --root "$rpmroot" -i --nodeps --noscripts "$rpm_file" 2>/dev/null || fail "rpm -i into $rpmroot"
[ -x "$rpmroot/usr/bin/guichet" ] && [ -f "$rpmroot/etc/guichet/guichet.toml" ] || fail "rpm installed files"
"$rpmroot/usr/bin/guichet" --version | grep -q "^guichet $version" || fail "--version (rpm)"
rpm --root "$rpmroot" -e --nodeps --noscripts guichet 2>/dev/null || fail "rpm -e"
[ ! -e "$rpmroot/usr/bin/guichet" ] && [ ! -e "$rpmroot/etc/guichet/guichet.toml" ] || fail "files left after rpm -e"
echo "ok .rpm: metadata, files, config file, scripts, installed into a throw-away root, erased"

echo "== image: $image"
inspect=$(podman image inspect "$image" --format '{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Size}}')
contains "image config" "$inspect" '65532:65532 ["/usr/bin/guichet"] ["run","--config","/etc/guichet/guichet.toml"]'
# The CI machines refuse podman's default ulimits and crun (see setup-packaging.sh).
run=(podman run --runtime "$PODMAN_RUNTIME" --ulimit "nofile=1024:1024" --ulimit "nproc=4096:4096" --read-only)
"${run[@]}" --rm "$image" --version | grep -q "^guichet $version" || fail "--version in the image"
mkdir -p "$work/credentials"
printf '%s\n' "$secret" > "$work/credentials/agentconnect-secret"
chmod 0644 "$work/credentials/agentconnect-secret"
checked=$("${run[@]}" --rm -v "$work/credentials:/run/credentials/guichet.service:ro" "$image" \
  check --config /etc/guichet/guichet.toml 2>&1) || fail "guichet check in the image: $checked"
contains "guichet check in the image" "$checked" "OK — listen 127.0.0.1:8080"
ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(5)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
read -r p0 p1 p2 p3 p4 <<<"$ports"
"${run[@]}" -d --name guichet-demo-check --network host "$image" demo \
  --gateway "127.0.0.1:$p0" --provider "127.0.0.1:$p1" --app "127.0.0.1:$p2" \
  --franceconnect "127.0.0.1:$p3" --franceconnect-plus "127.0.0.1:$p4" >/dev/null
ready=""
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$p0/.guichet/readyz" >/dev/null 2>&1; then ready=yes; break; fi
  sleep 0.5
done
[ -n "$ready" ] || fail "the demo in the image never became ready: $(podman logs guichet-demo-check 2>&1 | tail -20)"
status=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$p0/dossier")
contains "demo in the image: /dossier" "$status" "302 http://127.0.0.1:$p0/.guichet/login?rd=%2Fdossier"
chooser=$(curl -fsS "http://127.0.0.1:$p0/.guichet/login?rd=%2Fdossier")
contains "demo in the image: chooser" "$chooser" 'class="fr-connect fr-connect--pro"'
podman rm -f guichet-demo-check >/dev/null
echo "ok image: non-root user, entrypoint, --version and check with a read-only root, demo reached from the host"

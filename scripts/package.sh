#!/usr/bin/env bash
# Builds guichet's release binary and its three distributions:
#   target/debian/guichet_<version>-1_amd64.deb        (cargo-deb)
#   target/generate-rpm/guichet-<version>-1.x86_64.rpm (cargo-generate-rpm)
#   the container image localhost/guichet:<version>   (podman, from packaging/Containerfile)
# The binary is stripped and staged in target/package/ with the packaged unit (the unit of
# systemd/, with the binary at /usr/bin). The image's root filesystem is staged in
# target/package/image/rootfs/: the binary, the C libraries it links against (ldd), the CA
# certificates and a passwd entry for the non-root user; no base image is pulled.
# Usage: scripts/package.sh [deb] [rpm] [image]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/setup-packaging.sh

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(deb rpm image)
want() { [[ " ${wanted[*]} " == *" $1 "* ]]; }

version=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')
echo "== cargo build --release ($version)"
cargo build --release --locked

stage=target/package
rm -rf "$stage"
mkdir -p "$stage"
strip --strip-debug -o "$stage/guichet" target/release/guichet
sed 's|/usr/local/bin/guichet|/usr/bin/guichet|g' systemd/guichet.service > "$stage/guichet.service"

if want deb; then
  echo "== cargo deb"
  cargo deb --no-build --no-strip
fi
if want rpm; then
  echo "== cargo generate-rpm"
  cargo generate-rpm
fi
if want image; then
  echo "== podman build (localhost/guichet:$version)"
  rootfs="$stage/image/rootfs"
  mkdir -p "$rootfs/usr/bin" "$rootfs/etc/guichet" "$rootfs/etc/ssl/certs" "$rootfs/tmp"
  cp "$stage/guichet" "$rootfs/usr/bin/guichet"
  # The C runtime the binary links against, at the paths the loader expects.
  for lib in $(ldd "$stage/guichet" | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/:/sbin/nologin\nguichet:x:65532:65532:guichet:/:/sbin/nologin\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nguichet:x:65532:\n' > "$rootfs/etc/group"
  cp packaging/guichet.toml "$rootfs/etc/guichet/guichet.toml"
  chmod 1777 "$rootfs/tmp"
  previous=$(podman image inspect --format '{{.Id}}' "localhost/guichet:$version" 2>/dev/null || true)
  podman build --quiet --runtime "$PODMAN_RUNTIME" -f packaging/Containerfile \
    -t "localhost/guichet:$version" "$stage/image" >/dev/null
  # A rebuild moves the tag; the image it left untagged would stay on disk for good.
  current=$(podman image inspect --format '{{.Id}}' "localhost/guichet:$version")
  if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
  podman image ls "localhost/guichet:$version"
fi
ls -l target/debian/*.deb target/generate-rpm/*.rpm 2>/dev/null || true

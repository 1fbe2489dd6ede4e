#!/usr/bin/env bash
# `make deb`: turns a staged `make install DESTDIR=ROOT PREFIX=/usr` into weir_VERSION_ARCH.deb
# with dpkg-deb. Depends: the Debian packages of the shared libraries the binary links (ldd, then
# dpkg -S). conffiles: every /etc/weir/conf.d file, so an upgrade keeps the operator's edits.
# postinst creates nothing (weir.service uses DynamicUser=: no account) and never enables or
# starts a unit; it only has systemd re-read its units when systemd runs.
# Usage: make-deb.sh ROOT VERSION ARCH OUT_DIR [LEVEL]  (gzip level, 9 by default; tests use 1)
set -euo pipefail
root=$1 version=$2 arch=$3 out=$4 level=${5:-9}
bin="$root/usr/bin/weir"
[ -x "$bin" ] || { echo "make-deb: $bin is missing (stage with make install PREFIX=/usr)" >&2; exit 1; }

# The package that owns each linked library (usrmerge: dpkg may know it under /lib or /usr/lib).
owner() {
  local path=$1
  for p in "$path" "$(realpath "$path")" "${path#/usr}" "/usr${path}"; do
    dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1 && return 0
  done
  echo "make-deb: no package owns $path" >&2
  return 1
}
depends=$(ldd "$bin" | awk '/=>/ {print $3}' | while read -r lib; do owner "$lib"; done | sort -u | paste -sd, - | sed 's/,/, /g')

# Debian ships binaries stripped (the symbol tables are a quarter of the static binary).
strip --strip-unneeded "$bin"
# Debian wants man pages compressed (reproducibly: -n, no name or time in the header).
find "$root/usr/share/man" -type f ! -name '*.gz' -exec gzip -9n {} +

mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: weir
Version: $version
Architecture: $arch
Maintainer: Weir developers <weir@localhost>
Section: httpd
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Recommends: iproute2, iputils-arping
Description: HTTP reverse-proxy gateway and IP redirector
 Weir balances HTTP/1.1 requests over pools of backend servers (health checks,
 reported load, sticky transactions, redirect mode, TLS), alone or as a group of
 peers that take over each other's addresses. Ships weir.service and
 weir-peer.service (Type=notify, watchdog, sandboxed, DynamicUser) and an example
 configuration in /etc/weir/conf.d; nothing is enabled or started on install.
CONTROL
find "$root/etc" -type f | sed "s|^$root||" | sort > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
# Nothing to create: the units use DynamicUser= (systemd allocates the user at start).
# Nothing is enabled or started: `systemctl enable --now weir` once /etc/weir/conf.d is set up.
set -e
if [ "$1" = "configure" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
SCRIPT
cat > "$root/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
SCRIPT
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
mkdir -p "$out"
# gzip: xz takes a minute over the 60 MB static binary for 35 % less.
dpkg-deb --root-owner-group -Zgzip -z"$level" --build "$root" "$out/weir_${version}_${arch}.deb"

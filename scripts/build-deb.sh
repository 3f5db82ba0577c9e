#!/usr/bin/env bash
# Build the Debian package of dropmon with dpkg-deb, from this checkout:
#   /usr/lib/dropmon          the program, its knowledge base, dashboard and runtime npm modules
#   /usr/bin/dropmon          the command
#   /lib/systemd/system/dropmon.service, /etc/dropmon/dropmon.yaml (conffile)
#   a `dropmon` system user and group (postinst; removed on purge), /var/lib/dropmon
#
# Usage: scripts/build-deb.sh [--no-build] [OUTDIR]      (default OUTDIR: dist/)
#   --no-build   use dist/ as it is (already built by `npm run build`)
# Prints the path of the .deb. Needs dpkg-dev (dpkg-deb, dpkg-shlibdeps), a
# checkout set up by `npm ci` (better-sqlite3 built for this Node) and fakeroot
# when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
if [ "${1:-}" = --no-build ]; then build=0; shift; fi
out=$(realpath -m "${1:-dist}")
[ "$build" = 1 ] && npm run build --silent
[ -f dist/kb.compiled.json ] || { echo "build-deb: dist/ is not built (npm run build)" >&2; exit 1; }

version=$(node -p 'require("./package.json").version')
# Who builds the package (as dch does): DEBFULLNAME and DEBEMAIL.
maintainer="${DEBFULLNAME:-dropmon maintainers} <${DEBEMAIL:-dropmon@example.org}>"
arch=$(dpkg --print-architecture)
# better-sqlite3 is compiled for this Node's ABI: the package needs the same major version.
node_major=$(node -p 'process.versions.node.split(".")[0]')
stage=$(mktemp -d "${TMPDIR:-/tmp}/dropmon-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
lib="$root/usr/lib/dropmon"

# The program: what the npm package ships, without sources maps and READMEs.
install -d "$lib/dist" "$root/usr/bin" "$root/etc/dropmon" "$root/lib/systemd/system" \
  "$root/usr/share/doc/dropmon" "$root/usr/share/man/man1" "$root/usr/share/lintian/overrides" "$root/DEBIAN"
cp -r dist/src "$lib/dist/"
cp dist/kb.compiled.json "$lib/dist/"
find "$lib/dist" -name '*.map' -delete
cp -r kb web "$lib/"
rm -f "$lib/kb/README.md" "$lib/web/README.md"
node -e 'const p=require("./package.json"); for (const k of ["devDependencies","scripts","files"]) delete p[k]; process.stdout.write(JSON.stringify(p, null, 2) + "\n")' >"$lib/package.json"
chmod 755 "$lib/dist/src/cli/main.js"

# Runtime npm modules, copied from the checkout (better-sqlite3 as npm ci built it),
# without build leftovers, sources, docs and tests.
for m in $(node dist/scripts/runtime-modules.js .); do
  install -d "$lib/$(dirname "$m")"
  cp -r "$m" "$lib/$m"
done
nm="$lib/node_modules"
bs="$nm/better-sqlite3"
find "$bs/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$bs/build/Release" -mindepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
rm -rf "$bs/deps" "$bs/src" "$bs/binding.gyp" "$nm/koffi/src/koffi/CMakeLists.txt" "$nm/koffi/vendor" "$nm/koffi/doc" "$nm/koffi/cnoke.cjs"
find "$nm/@koromix" -mindepth 2 -maxdepth 2 -type d ! -name "linux_*" -exec rm -rf {} + 2>/dev/null || true
find "$nm" \( -iname '*.md' -o -iname '*.markdown' -o -name '*.ts' -o -name '*.map' -o -name '.*' -o -iname 'changelog*' \) -type f -delete
find "$nm" -type d \( -name test -o -name tests -o -name docs -o -name example -o -name examples \) -prune -exec rm -rf {} +
find "$nm" -name '*.node' -exec strip --strip-unneeded {} +
find "$nm" -name '*.node' -exec chmod 644 {} +
find "$lib" -type f ! -name main.js -exec chmod 644 {} +
find "$lib" -type d -exec chmod 755 {} +
# Scripts (a #! line) keep their executable bit, as lintian expects.
find "$nm" -type f \( -name '*.js' -o -name '*.cjs' -o -name '*.mjs' \) -exec grep -l -m1 '^#!' {} + | xargs -r chmod 755

cat >"$root/usr/bin/dropmon" <<'EOF'
#!/bin/sh
exec /usr/bin/node /usr/lib/dropmon/dist/src/cli/main.js "$@"
EOF
chmod 755 "$root/usr/bin/dropmon"

install -m 644 contrib/dropmon.service "$root/lib/systemd/system/dropmon.service"
install -m 644 contrib/dropmon.yaml "$root/etc/dropmon/dropmon.yaml"
install -m 644 contrib/grafana-dropmon.json docs/api.md "$root/usr/share/doc/dropmon/"
gzip -9n "$root/usr/share/doc/dropmon/grafana-dropmon.json" "$root/usr/share/doc/dropmon/api.md"
install -m 644 README.md "$root/usr/share/doc/dropmon/README.md"
gzip -9n "$root/usr/share/doc/dropmon/README.md"
install -m 644 contrib/debian/copyright "$root/usr/share/doc/dropmon/copyright"
date=$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")
printf 'dropmon (%s) unstable; urgency=medium\n\n  * Package of dropmon %s.\n\n -- %s  %s\n' \
  "$version" "$version" "$maintainer" "$date" | gzip -9n >"$root/usr/share/doc/dropmon/changelog.gz"
gzip -9n <contrib/debian/dropmon.1 >"$root/usr/share/man/man1/dropmon.1.gz"
chmod 644 "$root/usr/share/man/man1/dropmon.1.gz" "$root/usr/share/doc/dropmon/"*
install -m 644 contrib/debian/lintian-overrides "$root/usr/share/lintian/overrides/dropmon"

# Maintainer scripts and control.
for f in postinst prerm postrm; do install -m 755 "contrib/debian/$f" "$root/DEBIAN/$f"; done
echo /etc/dropmon/dropmon.yaml >"$root/DEBIAN/conffiles"
# Shared libraries of the native modules (libc, libstdc++), as dpkg-shlibdeps finds them.
shlibs=$(cd "$stage" && mkdir -p debian && printf 'Source: dropmon\n\nPackage: dropmon\nArchitecture: any\n' >debian/control &&
  dpkg-shlibdeps -O "$(find root -name '*.node' | head -1)" $(find root -name '*.node' | tail -n +2) 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: dropmon
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: nodejs (>= ${node_major}), nodejs (<< $((node_major + 1))), adduser${shlibs:+, $shlibs}
Section: net
Priority: optional
Description: network drop monitor for Linux: every kernel packet drop, where and why
 dropmon watches the kernel's packet drops (tracefs skb:kfree_skb, a BPF
 program or the NET_DM drop monitor), reads the kernel's drop counters, and
 explains each drop with a knowledge base of drop reasons and counters. It
 records to SQLite and serves a dashboard, an HTTP API and Prometheus
 metrics (dropmon.service).
EOF

mkdir -p "$out"
deb="$out/dropmon_${version}_${arch}.deb"
if [ "$(id -u)" = 0 ]; then
  chown -R root:root "$root"
  dpkg-deb --build -Zxz "$root" "$deb" >/dev/null
else
  fakeroot dpkg-deb --build -Zxz "$root" "$deb" >/dev/null
fi
echo "$deb"

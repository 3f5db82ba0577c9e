#!/usr/bin/env bash
# Install what dropmon's build and tests need on a Debian machine, idempotently:
# Debian packages (only those missing), npm packages (npm ci), then build.
# Usage: scripts/setup.sh            (as root for apt; the rest works as any user)
set -euo pipefail
cd "$(dirname "$0")/.."

# Node.js 20 or later (Debian's own package where node is missing: trixie has 20).
if ! command -v node >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: dropmon needs Node.js 20 or later (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# Debian packages the tests use: nft for drop rules, ip for namespaces and veths,
# a C compiler for the drop generator (bench/dropgen.c), g++/make/python3 for
# better-sqlite3 (node-gyp builds it against the system Node headers), procps for sysctl;
# for the NET_DM tests in a VM (scripts/kernel-vm.sh): qemu, busybox, cpio,
# kmod, xz/zstd (kernel modules), dropwatch (the reference client), tshark;
# for the packaging tests dpkg-dev (dpkg-deb, dpkg-shlibdeps: scripts/build-deb.sh) and lintian;
# for the kernel's drop_monitor selftest in the VM: mausezahn (netsniff-ng), udevadm (udev);
# for the service's access tests: curl, run as an unprivileged user through setpriv (util-linux).
PKGS=(nftables iproute2 ethtool gcc g++ make python3 libc6-dev procps qemu-system-x86 busybox-static cpio kmod xz-utils zstd dropwatch tshark netsniff-ng udev bpftrace prometheus chromium dpkg-dev lintian curl util-linux)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  else
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# npm packages exactly as locked; skipped when node_modules matches the lock.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent

#!/usr/bin/env bash
# Run a command inside a throwaway qemu VM booting one of Debian's own
# kernels, which have NET_DM (drop_monitor), for the tests that the host
# kernel cannot run. Everything comes from Debian packages and is cached; the
# project folder is shared into the guest at the same path.
#
#   scripts/kernel-vm.sh COMMAND...        exit code: the command's; 124 timed out; 125 VM failure
#   scripts/kernel-vm.sh --prepare         download and build only
#
# Environment: VM_KERNEL (6.1: Debian 12's linux-image-amd64, the default;
# 6.12: the same from bookworm-backports, read through a private apt state so
# the host's sources are never changed), VM_CACHE (default
# /var/cache/dropmon-vm/KERNEL), VM_TIMEOUT (600 s), VM_MEM (1024 MiB),
# VM_SMP (2), VM_ENV ("NAME ..." variables copied in), VM_MODULES (more
# modules to load at boot), VM_BINS (more host programs to copy in, with
# their libraries), VM_FILES (more host files or folders copied in as they
# are, e.g. a program's data files and plugins; shared objects among them
# bring their libraries), VM_ICOUNT (without KVM: a shift, 0 for one
# instruction per ns, to run on a clock of executed instructions; see below).
# Guest: busybox, bash, node (the host's binary), ip, devlink, dropwatch, the
# modules drop_monitor psample veth and netdevsim (built here from Debian's
# linux-source against its headers, once: Debian does not ship it; its
# devlink traps make hardware drops); the kernel's own drop_monitor selftest
# from the same linux-source in /usr/share/kselftest/net; tracefs mounted; no
# network but lo, veths.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PROJECT=$(cd "$HERE/.." && pwd)
KERNEL=${VM_KERNEL:-6.1}
case "$KERNEL" in 6.1 | 6.12) ;; *) echo "kernel-vm: VM_KERNEL is 6.1 or 6.12, not '$KERNEL'" >&2; exit 125 ;; esac
CACHE=${VM_CACHE:-/var/cache/dropmon-vm/$KERNEL}
TIMEOUT=${VM_TIMEOUT:-600}
MEM=${VM_MEM:-1024}
SMP=${VM_SMP:-2}
MODULES="virtio_pci 9pnet_virtio 9p drop_monitor psample veth ${VM_MODULES:-}"
BINS="bash node ip devlink dropwatch ${VM_BINS:-}"
die() { echo "kernel-vm: $*" >&2; exit 125; }
[ "$(id -u)" = 0 ] || die "needs root (apt, 9p)"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v busybox >/dev/null || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v depmod >/dev/null || need+=(kmod)
command -v dropwatch >/dev/null || need+=(dropwatch)
command -v xz >/dev/null || need+=(xz-utils)
command -v zstd >/dev/null || need+=(zstd)
command -v make >/dev/null || need+=(make)
command -v devlink >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
    die "cannot install ${need[*]}"
fi

mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
flock 9

# apt as the host has it (6.1), or with only bookworm-backports in a private
# list and state under the cache (6.12), from the mirror the host already uses.
APT=(-o APT::Sandbox::User=root)
if [ "$KERNEL" = 6.12 ]; then
  mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p; s/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) bookworm .*/\2/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -v -e security -e '^$' | head -n1 || true)
  [ -n "$mirror" ] || die "no Debian mirror in the host's apt sources"
  mkdir -p "$CACHE/apt/lists/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm-backports main" > "$CACHE/apt/sources.list"
  APT+=(-o Dir::Etc::SourceList="$CACHE/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o Dir::State::Lists="$CACHE/apt/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
fi

# 1. the kernel: Debian's linux-image-amd64, resolved once and kept
if [ ! -s "$CACHE/kver" ] || [ ! -f "$CACHE/kernel/.done" ]; then
  apt-get "${APT[@]}" update -qq >&2 || die "apt-get update failed"
  pkg=linux-image-amd64
  for _ in 1 2 3; do
    dep=$(apt-cache "${APT[@]}" depends "$pkg" | awk '$1 ~ /Depends:/ && $2 ~ /^linux-image-/ {print $2; exit}')
    [ -n "$dep" ] || break
    pkg=$dep
  done
  rm -rf "$CACHE/kernel" "$CACHE/deb" && mkdir -p "$CACHE/kernel" "$CACHE/deb"
  (cd "$CACHE/deb" && apt-get "${APT[@]}" download -qq "$pkg" >&2) || die "apt-get download $pkg failed"
  dpkg-deb -x "$CACHE"/deb/*.deb "$CACHE/kernel"
  rm -rf "$CACHE/deb"
  kver=$(ls "$CACHE/kernel/lib/modules" | head -n1)
  [ -f "$CACHE/kernel/boot/vmlinuz-$kver" ] || die "unexpected layout of $pkg"
  depmod -b "$CACHE/kernel" "$kver"
  echo "$kver" > "$CACHE/kver"
  touch "$CACHE/kernel/.done"
fi
KVER=$(cat "$CACHE/kver")
KDIR="$CACHE/kernel/lib/modules/$KVER"

# 1b. from the matching linux-source (downloaded when needed, not kept):
# netdevsim.ko built against Debian's headers, and the kernel's drop_monitor
# selftest with the helpers it sources (kept in the cache, copied in)
NSIM="$CACHE/netdevsim-$KVER.ko"
SELFTEST="$CACHE/selftest-$KVER"
want_nsim=; [ -f "$NSIM" ] || [ -f "$NSIM.failed" ] || want_nsim=1
want_st=; [ -f "$SELFTEST/.done" ] || [ -f "$SELFTEST.failed" ] || want_st=1
if [ -n "$want_nsim$want_st" ]; then
  kpkg=$(apt-cache "${APT[@]}" policy "linux-image-$KVER" | awk '/Candidate:/{print $2; exit}')
  mm=$(echo "$KVER" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
  work=$(mktemp -d "$CACHE/src.XXXXXX")
  hdr="linux-headers-$KVER"
  pkgs=("linux-source-$mm=$kpkg")
  if [ -n "$want_nsim" ]; then
    pkgs+=("$hdr=$kpkg")
    for d in $(apt-cache "${APT[@]}" depends "$hdr" | awk '$1 ~ /Depends:/ && $2 ~ /^linux-(headers|kbuild)-/ {print $2}'); do pkgs+=("$d=$kpkg"); done
  fi
  if (cd "$work" && apt-get "${APT[@]}" download -qq "${pkgs[@]}" >&2); then
    mkdir -p "$work/src"
    top="linux-source-$mm"
    # Files a kernel version lacks (lib.sh before 6.8) are not an error here.
    dpkg-deb --fsys-tarfile "$work"/linux-source-*.deb | tar -xO "./usr/src/$top.tar.xz" | xz -dc -T0 |
      tar -x -C "$work/src" --strip-components=1 --wildcards "$top/drivers/net/netdevsim/*" \
        "$top/tools/testing/selftests/net/drop_monitor_tests.sh" "$top/tools/testing/selftests/net/lib.sh" \
        "$top/tools/testing/selftests/net/net_helper.sh" "$top/tools/testing/selftests/kselftest/*" 2> /dev/null || true
    if [ -n "$want_st" ]; then
      if [ -f "$work/src/tools/testing/selftests/net/drop_monitor_tests.sh" ]; then
        rm -rf "$SELFTEST" && mkdir -p "$SELFTEST"
        cp -r "$work/src/tools/testing/selftests/net" "$work/src/tools/testing/selftests/kselftest" "$SELFTEST/" 2> /dev/null || true
        touch "$SELFTEST/.done"
      else
        echo "kernel-vm: warning: linux-source $kpkg has no drop_monitor_tests.sh; the selftest will skip" >&2
        touch "$SELFTEST.failed"
      fi
    fi
    if [ -n "$want_nsim" ]; then
      mkdir -p "$work/root"
      for d in "$work"/linux-headers-*.deb "$work"/linux-kbuild-*.deb; do dpkg-deb -x "$d" "$work/root"; done
      sed -i "s#/usr/src/#$work/root/usr/src/#g" "$work/root/usr/src/$hdr/Makefile"
      if make -C "$work/root/usr/src/$hdr" M="$work/src/drivers/net/netdevsim" CONFIG_NETDEVSIM=m CONFIG_DEBUG_INFO_BTF_MODULES= -j"$(nproc)" modules > "$work/build.log" 2>&1; then
        strip --strip-debug -o "$NSIM" "$work/src/drivers/net/netdevsim/netdevsim.ko"
      else
        echo "kernel-vm: warning: netdevsim did not build ($(tail -n 3 "$work/build.log" | tr '\n' ' ')); hardware-drop tests will skip" >&2
        touch "$NSIM.failed"
      fi
    fi
  else
    echo "kernel-vm: warning: cannot download ${pkgs[*]}; hardware-drop tests and the kernel's selftest will skip" >&2
    [ -n "$want_nsim" ] && touch "$NSIM.failed"
    [ -n "$want_st" ] && touch "$SELFTEST.failed"
  fi
  rm -rf "$work"
fi

# 2. the initramfs, rebuilt when this script, init.sh or a copied program changes
[ -f "$NSIM" ] && MODULES="$MODULES netdevsim"
FILES=${VM_FILES:-}
for f in $FILES; do [ -e "$f" ] || die "VM_FILES: $f not found"; done
key=$({ echo "$KVER $MODULES $BINS $FILES"; cat "$0" "$HERE/vm/init.sh"; [ -f "$NSIM" ] && stat -c '%s %Y' "$NSIM"
  [ -f "$SELFTEST/.done" ] && stat -c '%Y' "$SELFTEST/.done"
  for b in $BINS busybox; do stat -L -c '%n %s %Y' "$(command -v "$b")"; done
  [ -z "$FILES" ] || find -L $FILES -type f -printf '%p %s %T@\n' | LC_ALL=C sort; } | sha1sum | cut -c1-16)
INITRD="$CACHE/initrd-$key.cpio"
if [ ! -f "$INITRD" ]; then
  root=$(mktemp -d "$CACHE/root.XXXXXX")
  mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{etc,proc,sys,dev,tmp,run,root}
  ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
  copy() { [ -e "$root$1" ] || { mkdir -p "$root$(dirname "$1")"; cp -L "$1" "$root$1"; }; }
  for b in $BINS busybox; do
    p=$(command -v "$b") || die "$b not found"
    copy "$p"
    for lib in $(ldd "$p" 2>/dev/null | awk '/=> \//{print $3} /^\t\//{print $1}'); do copy "$lib"; done
  done
  libs_of() { for lib in $(ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\//{print $1}'); do copy "$lib"; done; }
  for f in $FILES; do
    mkdir -p "$root$(dirname "$f")"
    cp -rL "$f" "$root$f"
    for so in $(find -L "$f" -type f -name '*.so*'); do libs_of "$so"; done
  done
  if [ -f "$SELFTEST/.done" ]; then mkdir -p "$root/usr/share/kselftest"; cp -r "$SELFTEST"/* "$root/usr/share/kselftest/"; fi
  for a in $(busybox --list-full); do [ -e "$root/$a" ] || [ -L "$root/$a" ] || ln -s /usr/bin/busybox "$root/$a"; done
  g="$root/lib/modules/$KVER"
  mkdir -p "$g"
  cp "$KDIR"/modules.builtin* "$KDIR/modules.order" "$g/" 2>/dev/null || true
  deps=""
  [ -f "$NSIM" ] && deps=$(modinfo -F depends "$NSIM" | tr ',' ' ')
  for m in $MODULES $deps; do
    [ "$m" = netdevsim ] && continue
    for p in $(modprobe -d "$CACHE/kernel" -S "$KVER" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'); do
      rel=${p#"$KDIR"/}; rel=${rel%.xz}; rel=${rel%.zst}; rel=${rel%.gz}
      mkdir -p "$g/$(dirname "$rel")"
      case "$p" in
        *.xz) xz -dc "$p" > "$g/$rel" ;; *.zst) zstd -qdc "$p" > "$g/$rel" ;; *.gz) gzip -dc "$p" > "$g/$rel" ;; *) cp "$p" "$g/$rel" ;;
      esac
    done
  done
  if [ -f "$NSIM" ]; then mkdir -p "$g/extra"; cp "$NSIM" "$g/extra/netdevsim.ko"; fi
  depmod -b "$root" "$KVER"
  echo "$MODULES" > "$root/etc/vm-modules"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  printf '127.0.0.1 localhost\n' > "$root/etc/hosts"
  for f in /etc/protocols /etc/services; do [ -f "$f" ] && cp "$f" "$root$f"; done
  echo 'include /etc/ld.so.conf.d/*.conf' > "$root/etc/ld.so.conf"
  cp -r /etc/ld.so.conf.d "$root/etc/" 2>/dev/null || true
  ldconfig -r "$root" 2>/dev/null || true
  install -m 755 "$HERE/vm/init.sh" "$root/init"
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$INITRD.tmp"
  mv "$INITRD.tmp" "$INITRD"
  rm -rf "$root"
fi
# Keep the few newest initramfs images (each module and program set has one;
# touched on use, so an image another run is about to boot stays).
touch "$INITRD"
ls -t "$CACHE"/initrd-*.cpio | tail -n +7 | xargs -r rm -f
flock -u 9
[ "${1:-}" = --prepare ] && exit 0
[ $# -gt 0 ] || die "usage: kernel-vm.sh COMMAND..."

# 3. boot, run, collect the exit code
RUN=$(mktemp -d "${TMPDIR:-/tmp}/dropmon-vm.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
mkdir "$RUN/ctl"
printf '%q ' "$@" > "$RUN/ctl/cmd.sh"; echo >> "$RUN/ctl/cmd.sh"
{
  printf 'VM_DIR=%q\n' "$PROJECT"
  for v in ${VM_ENV:-}; do [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"; done
} > "$RUN/ctl/env"
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then accel=(-accel kvm -cpu host)
elif [ -n "${VM_ICOUNT:-}" ]; then
  # Emulated: guest time counts executed instructions (2^shift ns each) and
  # skips idle waits, so guest programs with fixed time limits see the same
  # speed however loaded the host is. One vCPU: icount cannot run several.
  accel=(-accel tcg -cpu max -icount "shift=$VM_ICOUNT,sleep=off"); SMP=1
else accel=(-accel tcg -cpu max); fi
rc=0
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 "${accel[@]}" -smp "$SMP" -m "$MEM" \
  -nodefaults -no-user-config -display none -vga none -nic none -no-reboot \
  -kernel "$CACHE/kernel/boot/vmlinuz-$KVER" -initrd "$INITRD" \
  -append "console=ttyS0 panic=-1 loglevel=4 mitigations=off tsc=reliable" \
  -chardev "file,id=con,path=$RUN/console.log" -serial chardev:con \
  -chardev stdio,id=out,signal=off -serial chardev:out \
  -fsdev "local,id=ctl,path=$RUN/ctl,security_model=none" -device virtio-9p-pci,fsdev=ctl,mount_tag=ctl \
  -fsdev "local,id=share,path=$PROJECT,security_model=none" -device virtio-9p-pci,fsdev=share,mount_tag=share \
  < /dev/null 2> "$RUN/qemu.err" || rc=$?
[ -s "$RUN/ctl/rc" ] && exit "$(cat "$RUN/ctl/rc")"
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "kernel-vm: timed out after ${TIMEOUT}s" >&2; tail -n 30 "$RUN/console.log" >&2; exit 124; fi
echo "kernel-vm: the VM reported no exit code (qemu exit $rc)" >&2
tail -n 40 "$RUN/console.log" "$RUN/qemu.err" >&2 || true
exit 125

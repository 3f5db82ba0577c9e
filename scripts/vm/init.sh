#!/bin/sh
# PID 1 of the test VM (see scripts/kernel-vm.sh): mount the pseudo file
# systems, load the modules listed in /etc/vm-modules, mount the host's
# project folder (9p) at the same path, run the command with its output on
# the second serial port, record its exit code in the control share, power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
ip link set lo up
for m in $(cat /etc/vm-modules); do modprobe "$m" 2>/dev/null || echo "vm: modprobe $m failed" > /dev/kmsg; done
mkdir -p /run/ctl
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ctl /run/ctl || poweroff -f
. /run/ctl/env
mkdir -p "$VM_DIR"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none share "$VM_DIR"
cd "$VM_DIR" || cd /
stty -F /dev/ttyS1 raw -echo 2>/dev/null
bash /run/ctl/cmd.sh < /dev/null > /dev/ttyS1 2>&1
echo $? > /run/ctl/rc.tmp && mv /run/ctl/rc.tmp /run/ctl/rc
sync
poweroff -f

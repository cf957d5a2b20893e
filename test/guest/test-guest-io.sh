#!/bin/bash
# A real guest (Debian kernel, busybox /init) writes and read-back-verifies
# 4 KiB blocks for 10 s on two disks served by `vaioctl up`: vda through
# nbdkit's cache filter in writethrough mode plus the rate filter (policy
# gold), vdb through the cache filter in its default writeback mode (policy
# silver), so the guest's flushes are what make its writes durable.  Path:
# virtio-blk -> QEMU's NBD client (reconnect-delay) -> nbdkit chain -> file.
# The guest must report zero I/O errors and zero mismatches.  Then both
# nbdkits are killed with SIGKILL (no graceful flush) and each backing image
# must hold exactly what the guest last wrote to every block (unwritten
# blocks still zero): no acknowledged write lost.
. "$(dirname "$0")/lib.sh"
seed=${VAIO_GUEST_SEED:-$((RANDOM + 1))}
echo "seed $seed (VAIO_GUEST_SEED=$seed reproduces the block sequence)"
guest_build

one_vm_two_disks_config "$T/c.yaml"
"$VAIOCTL" up "$T/c.yaml" > "$T/up.out" || fail "vaioctl up: $(cat "$T/up.out")"
pass "vaioctl up: $(tr '\n' ';' < "$T/up.out")"

guest_start g1 10 64 "$seed" "$(vaio_sock vm1 disk0)" "$(vaio_sock vm1 disk1)"
guest_wait_for g1 'VAIO-GUEST START disk=vda' 90
pass "guest booted and started writing"
guest_wait g1 120
guest_check g1
[ "$GUEST_WRITES" -ge 10 ] || fail "only $GUEST_WRITES writes in 10 s"

kill9_wait "$(vaio_pid vm1 disk0)"
kill9_wait "$(vaio_pid vm1 disk1)"
guest_verify "$T/vm1.img" g1 vda
guest_verify "$T/vm1-disk1.img" g1 vdb

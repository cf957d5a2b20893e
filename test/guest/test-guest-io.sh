#!/bin/bash
# A real guest (Debian kernel, busybox /init) writes and read-back-verifies
# 4 KiB blocks for 10 s through virtio-blk -> QEMU's NBD client -> nbdkit
# with the cache filter (writethrough) -> file.  The guest must report zero
# I/O errors and zero mismatches, and the backing image must hold exactly
# what the guest last wrote to every block (unwritten blocks still zero).
. "$(dirname "$0")/lib.sh"
seed=${VAIO_GUEST_SEED:-$((RANDOM + 1))}
echo "seed $seed (VAIO_GUEST_SEED=$seed reproduces the block sequence)"
guest_build

truncate -s 32M "$T/disk.img"
serve_nbdkit disk "$T/disk.img"
guest_start g1 10 64 "$seed" "$T/disk.sock"
guest_wait_for g1 'VAIO-GUEST START disk=vda' 90
pass "guest booted and started writing"
guest_wait g1 120
guest_check g1
[ "$GUEST_WRITES" -ge 20 ] || fail "only $GUEST_WRITES writes in 10 s"

kill "$(cat "$T/disk.nbdkit.pid")"
guest_verify "$T/disk.img" g1 vda

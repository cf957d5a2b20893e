#!/bin/bash
# Per-VM failure domains with real guests.  Two guests write and verify on
# two VMs' disks; one VM's nbdkit is killed with SIGKILL mid-run.  The other
# guest must finish with zero errors; the dead disk is brought back within
# the first guest's reconnect-delay, QEMU replays the held requests, and
# that guest must finish with zero errors too.  Both backing images must
# hold every acknowledged (flushed) write: verify-image on each.
#
# VAIO_GUEST_FAULT=no-restart leaves the killed disk dead: the test must
# then FAIL (the guest gets I/O errors once reconnect-delay expires).
. "$(dirname "$0")/lib.sh"
seed=${VAIO_GUEST_SEED:-$((RANDOM + 1))}
echo "seed $seed (VAIO_GUEST_SEED=$seed reproduces the block sequences)"
fault=${VAIO_GUEST_FAULT:-}
guest_build

truncate -s 32M "$T/vm1.img" "$T/vm2.img"
serve_nbdkit vm1 "$T/vm1.img"
serve_nbdkit vm2 "$T/vm2.img"
pid2=$(cat "$T/vm2.nbdkit.pid")

guest_start g1 14 64 "$seed" "$T/vm1.sock"
guest_start g2 14 64 "$((seed + 1))" "$T/vm2.sock"
guest_wait_for g1 'VAIO-GUEST START disk=vda' 90
guest_wait_for g2 'VAIO-GUEST START disk=vda' 90
pass "both guests writing"
sleep 3

pid1=$(cat "$T/vm1.nbdkit.pid")
kill -9 "$pid1"
for _ in $(seq 50); do kill -0 "$pid1" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid1" 2>/dev/null && fail "vm1's nbdkit survived SIGKILL"
killed_at=$SECONDS
guest_running g1 || fail "guest g1 finished before the kill: the kill was not mid-run"
grep -aq 'VAIO-GUEST DONE' "$T/g1.log" && fail "guest g1 already done at the kill"
pass "killed vm1's nbdkit (pid $pid1) while guest g1 was writing"

sleep 3   # an outage: g1's requests are held by QEMU's NBD client
if [ "$fault" = no-restart ]; then
  echo "VAIO_GUEST_FAULT=no-restart: leaving vm1 dead"
else
  serve_nbdkit vm1 "$T/vm1.img"
  pass "vm1 served again $((SECONDS - killed_at)) s after the kill (reconnect-delay $GUEST_RECONNECT_DELAY s)"
fi
kill -0 "$pid2" 2>/dev/null || fail "vm2's nbdkit died with vm1's"

guest_wait g2 120
guest_check g2
guest_wait g1 $((GUEST_RECONNECT_DELAY + 120))
guest_check g1

kill "$(cat "$T/vm1.nbdkit.pid")" "$pid2"
guest_verify "$T/vm1.img" g1 vda
guest_verify "$T/vm2.img" g2 vda

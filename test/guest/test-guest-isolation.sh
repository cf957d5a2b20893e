#!/bin/bash
# Per-VM failure domains with real guests.  `vaioctl up` serves two VMs'
# disks; a guest on each writes and verifies 4 KiB blocks (O_DIRECT, fsync
# after every write).  vm1's nbdkit is killed with SIGKILL mid-run.  The
# other guest must finish with zero errors; `vaioctl up` brings the dead
# disk back (and only it) well within the guest's reconnect-delay, QEMU
# replays the held requests, and that guest must finish with zero errors
# too.  Both backing images must hold every acknowledged write.
#
# Fault injection, to show the test catches real failures (it must FAIL):
#   VAIO_GUEST_FAULT=no-restart    leave vm1 dead: guest I/O errors once
#                                  reconnect-delay expires
#   VAIO_GUEST_FAULT=unsafe-cache  vm1's cache ignores flushes
#                                  (cache: unsafe): acknowledged writes die
#                                  with the process.  nbdkit's cache filter
#                                  has that mode, so this fault runs on it;
#                                  the normal run uses vaio-cache + vaio-sioc.
. "$(dirname "$0")/lib.sh"
seed=${VAIO_GUEST_SEED:-$((RANDOM + 1))}
echo "seed $seed (VAIO_GUEST_SEED=$seed reproduces the block sequences)"
fault=${VAIO_GUEST_FAULT:-}
guest_build

if [ "$fault" = unsafe-cache ]; then
  two_vm_config "$T/c.yaml"   # nbdkit's cache filter has the unsafe mode
  sed -i 's/      cache: writethrough/      cache: unsafe/' "$T/c.yaml"
  echo "VAIO_GUEST_FAULT=unsafe-cache: vm1's cache ignores flushes"
else
  vaio_two_vm_config "$T/c.yaml"
fi
"$VAIOCTL" up "$T/c.yaml" > "$T/up1.out" || fail "vaioctl up: $(cat "$T/up1.out")"
pid1=$(vaio_pid vm1)
pid2=$(vaio_pid vm2)
pass "vaioctl up: vm1 pid $pid1, vm2 pid $pid2"

guest_start g1 14 64 "$seed" "$(vaio_sock vm1)"
guest_start g2 14 64 "$((seed + 1))" "$(vaio_sock vm2)"
guest_wait_for g1 'VAIO-GUEST START disk=vda' 90
guest_wait_for g2 'VAIO-GUEST START disk=vda' 90
pass "both guests writing"
sleep 4

kill9_wait "$pid1"
killed_at=$SECONDS
guest_running g1 || fail "guest g1 finished before the kill: the kill was not mid-run"
grep -aq 'VAIO-GUEST DONE' "$T/g1.log" && fail "guest g1 already done at the kill"
pass "killed vm1's nbdkit (pid $pid1) while guest g1 was writing"

sleep 2   # an outage: g1's requests are held by QEMU's NBD client
kill -0 "$pid2" 2>/dev/null || fail "vm2's nbdkit died with vm1's"
if [ "$fault" = no-restart ]; then
  echo "VAIO_GUEST_FAULT=no-restart: leaving vm1 dead"
else
  "$VAIOCTL" up "$T/c.yaml" > "$T/up2.out" || fail "vaioctl up (restart): $(cat "$T/up2.out")"
  grep -q "vm2/disk0: already running (pid $pid2)" "$T/up2.out" ||
    fail "vm2 was restarted: $(cat "$T/up2.out")"
  grep -q "vm1/disk0: serving" "$T/up2.out" || fail "vm1 not restarted: $(cat "$T/up2.out")"
  pass "vaioctl up restarted only vm1 (pid $(vaio_pid vm1)), $((SECONDS - killed_at)) s after the kill (reconnect-delay $GUEST_RECONNECT_DELAY s)"
fi

guest_wait g2 120
guest_wait g1 $((GUEST_RECONNECT_DELAY + 120))

# Kill both servers without a graceful flush: what the guests were told is
# written must already be in the images.  Check everything, then fail.
kill9_wait "$pid2"
kill9_wait "$(vaio_pid vm1)" 2>/dev/null || true
bad=0
( guest_check g2 ) || bad=1
( guest_check g1 ) || bad=1
( guest_verify "$T/vm2.img" g2 vda ) || bad=1
( guest_verify "$T/vm1.img" g1 vda ) || bad=1
[ "$bad" -eq 0 ] || fail "see above"
# The kill hit g1's I/O: held by QEMU across the outage, not failed.
stall=$(guest_max_iter g1 vda)
[ "${stall:-0}" -ge 1500 ] ||
  fail "guest g1's longest iteration ${stall:-?} ms: the outage did not hold its I/O"
pass "guest g1's I/O was held ${stall} ms across the outage, then completed"

#!/bin/bash
# Per-VM failure domains with real guests.  `vaioctl up` serves two VMs'
# disks on vaio-nbd's filters: vm1 (gold) vaio-cache in write-back mode +
# vaio-sioc, vm2 (silver) vaio-cache write-through + vaio-sioc, both
# disks' vaio-sioc on datastore ds1: one shared SIOC segment, the only
# state the two VMs' processes share.  A guest on each writes and
# verifies 4 KiB blocks (O_DIRECT, fsync after every write).  vm1's
# nbdkit is killed with SIGKILL mid-run while its cache holds dirty
# (acknowledged, not yet destaged) blocks and its slot in the segment is
# live.  The other guest must keep making progress during the outage (its
# PROGRESS counter on the console grows) with no error; vm2's vaio-sioc
# must drop the dead peer (its peers gauge, in `vaioctl status --json`,
# goes 2 -> 1 and the segment shows vm1's slot stale) and count the
# restarted vm1 again (peers 2).  Both guests finish with zero errors;
# `vaioctl up` brings the dead disk
# back (and only it) well within the guest's reconnect-delay, the cache
# recovers its dirty blocks, QEMU replays the held requests, and that
# guest must finish with zero errors too.  At the end both servers are
# SIGKILLed again; vm1 is recovered with `vaioctl up` and verified block
# by block through its chain, then after `vaioctl down` (destage) in its
# backing image; vm2's image is verified directly.
#
# Fault injection, to show the test catches real failures (it must FAIL):
#   VAIO_GUEST_FAULT=no-restart    leave vm1 dead: guest I/O errors once
#                                  reconnect-delay expires
#   VAIO_GUEST_FAULT=lose-cache    delete vm1's cache file before the
#                                  restart: the acknowledged write-back
#                                  data is gone (guest and host verify)
#   VAIO_GUEST_FAULT=unsafe-cache  vm1's cache ignores flushes
#                                  (cache: unsafe): acknowledged writes die
#                                  with the process.  Only nbdkit's cache
#                                  filter has that mode (vaio-cache has no
#                                  way to ignore a flush), so this fault
#                                  runs on it.
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
  vaio_two_vm_config "$T/c.yaml" write-back write-through sioc
fi
# The SIOC checks need vaio-sioc on both disks (not the unsafe-cache fault).
shared_sioc=yes
[ "$fault" != unsafe-cache ] || shared_sioc=no
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

# progress NAME: the guest's last PROGRESS counter (acknowledged writes).
progress () {
  grep -a 'VAIO-GUEST PROGRESS' "$T/$1.log" | tr -d '\r' | tail -n 1 |
    sed -n 's/.*writes=\([0-9]*\).*/\1/p'
}
if [ -z "$fault" ]; then
  dirty=$(vaio_gauge "$T/c.yaml" vm1 caching dirty_bytes)
  [ "$dirty" != none ] && [ "$dirty" -gt 0 ] ||
    fail "vm1's write-back cache holds no dirty data (dirty_bytes=$dirty): the kill would prove nothing"
fi
# peers VM: the live disks VM's vaio-sioc counts on its datastore (itself
# included), as `vaioctl status --json` shows it.
peers () { vaio_gauge "$T/c.yaml" "$1" sioc peers; }
# slot_line SLOT: that slot of ds1's segment as sioc-inspect prints it.
slot_line () { "$SIOC_INSPECT" segment "$(vaio_segment)" | grep "^slot=$1 " || true; }
# wait_peers VM N SECS: until VM's peers gauge reads N; prints the ms taken.
wait_peers () {
  local t0=$EPOCHREALTIME i
  for ((i = 0; i < $3 * 20; i++)); do
    [ "$(peers "$1")" = "$2" ] && { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'; return 0; }
    sleep 0.05
  done
  fail "$1's vaio-sioc counts $(peers "$1") peers on ds1 after $3 s, want $2"
}
if [ "$shared_sioc" = yes ]; then
  slot1=$(vaio_gauge "$T/c.yaml" vm1 sioc slot)
  [ "$(peers vm2)" = 2 ] && [ "$(peers vm1)" = 2 ] ||
    fail "vm1 and vm2 do not share ds1 before the kill (peers: vm1 $(peers vm1), vm2 $(peers vm2))"
  slot_line "$slot1" | grep -q "state=live pid=$pid1 " ||
    fail "vm1's slot $slot1 is not live in ds1's segment: $(slot_line "$slot1")"
  pass "vm1 (slot $slot1) and vm2 share ds1's SIOC segment: 2 live peers each"
fi
kill9_wait "$pid1"
killed_at=$SECONDS
g2_before=$(progress g2)
guest_running g1 || fail "guest g1 finished before the kill: the kill was not mid-run"
grep -aq 'VAIO-GUEST DONE' "$T/g1.log" && fail "guest g1 already done at the kill"
pass "killed vm1's nbdkit (pid $pid1) while guest g1 was writing${dirty:+ ($dirty dirty bytes in its cache)}"

if [ "$shared_sioc" = yes ]; then
  # vaio-sioc counts a peer silent for 400 ms as gone.
  ms=$(wait_peers vm2 1 3)
  slot_line "$slot1" | grep -q 'state=stale' ||
    fail "vm1's dead slot $slot1 is not stale in ds1's segment: $(slot_line "$slot1")"
  pass "vm2's vaio-sioc dropped the dead peer within $ms ms of the kill (peers 1, slot $slot1 stale)"
fi
sleep 1
g1_held=$(progress g1)
sleep 2   # an outage: g1's requests are held by QEMU's NBD client
g1_after=$(progress g1)
g2_after=$(progress g2)
kill -0 "$pid2" 2>/dev/null || fail "vm2's nbdkit died with vm1's"
[ "${g2_after:-0}" -gt "${g2_before:-0}" ] ||
  fail "guest g2 made no progress during vm1's outage (writes ${g2_before:-none} -> ${g2_after:-none})"
[ "${g1_after:-0}" = "${g1_held:-0}" ] ||
  fail "guest g1 progressed with vm1's nbdkit dead (writes $g1_held -> $g1_after): no outage"
errs=$(grep -a 'VAIO-GUEST ERROR\|I/O error' "$T/g2.log" || true)
[ -z "$errs" ] || fail "guest g2 logged errors during vm1's outage:"$'\n'"$errs"
[ "$shared_sioc" = no ] || [ "$(peers vm2)" = 1 ] ||
  fail "vm2's vaio-sioc counts $(peers vm2) peers during vm1's outage, want 1"
pass "during vm1's outage g2's acknowledged writes went ${g2_before:-0} -> $g2_after with no error, g1's stayed at ${g1_held:-0}"
if [ "$fault" = lose-cache ]; then
  rm -f "$T/state/host1/vms/vm1/disk0/caching/cache.img"
  echo "VAIO_GUEST_FAULT=lose-cache: deleted vm1's cache file"
fi
if [ "$fault" = no-restart ]; then
  echo "VAIO_GUEST_FAULT=no-restart: leaving vm1 dead"
else
  "$VAIOCTL" up "$T/c.yaml" > "$T/up2.out" || fail "vaioctl up (restart): $(cat "$T/up2.out")"
  grep -q "vm2/disk0: already running (pid $pid2)" "$T/up2.out" ||
    fail "vm2 was restarted: $(cat "$T/up2.out")"
  grep -q "vm1/disk0: serving" "$T/up2.out" || fail "vm1 not restarted: $(cat "$T/up2.out")"
  pass "vaioctl up restarted only vm1 (pid $(vaio_pid vm1)), $((SECONDS - killed_at)) s after the kill (reconnect-delay $GUEST_RECONNECT_DELAY s)"
  if [ "$shared_sioc" = yes ]; then
    ms=$(wait_peers vm2 2 3)
    slot=$(vaio_gauge "$T/c.yaml" vm1 sioc slot)
    slot_line "$slot" | grep -q "state=live pid=$(vaio_pid vm1) " ||
      fail "restarted vm1's slot $slot is not live in ds1's segment: $(slot_line "$slot")"
    pass "vm2's vaio-sioc counts the restarted vm1 (slot $slot) within $ms ms: peers 2"
  fi
fi

guest_wait g2 120
guest_wait g1 $((GUEST_RECONNECT_DELAY + 120))

# Kill both servers without a graceful flush: what the guests were told is
# written must be durable: in vm2's image (write-through), in vm1's cache
# or image (write-back), so vm1 is recovered by `vaioctl up` and read
# through its chain, then destaged by `vaioctl down` and read from its
# image.  Check everything, then fail.
kill9_wait "$pid2"
kill9_wait "$(vaio_pid vm1)" 2>/dev/null || true
bad=0
( guest_check g2 ) || bad=1
( guest_check g1 ) || bad=1
( guest_verify "$T/vm2.img" g2 vda ) || bad=1
"$VAIOCTL" up "$T/c.yaml" > "$T/up3.out" || fail "vaioctl up (recovery): $(cat "$T/up3.out")"
( guest_verify "$(vaio_uri vm1)" g1 vda ) || bad=1
"$VAIOCTL" down "$T/c.yaml" > "$T/down.out" || fail "vaioctl down: $(cat "$T/down.out")"
( guest_verify "$T/vm1.img" g1 vda ) || bad=1
[ "$bad" -eq 0 ] || fail "see above"
# The kill hit g1's I/O: held by QEMU across the outage, not failed.
stall=$(guest_max_iter g1 vda)
[ "${stall:-0}" -ge 1500 ] ||
  fail "guest g1's longest iteration ${stall:-?} ms: the outage did not hold its I/O"
pass "guest g1's I/O was held ${stall} ms across the outage, then completed"

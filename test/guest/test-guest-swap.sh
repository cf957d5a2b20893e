#!/bin/bash
# Live chain swap under a real guest, on vaio-nbd's own filters.  One guest
# writes and verifies on two disks: vda = vm1/disk0 (policy gold: vaio-cache
# write-back + vaio-sioc), vdb = vm2/disk0 (policy silver: vaio-cache
# write-back).  Mid-run, while vm2's cache holds dirty blocks, `vaioctl
# apply` moves vm2 to gold (adds vaio-sioc), then a second apply moves it
# back to silver.  Each swap quiesces vdb's chain, drops its NBD connection
# and serves the new chain on the same socket over the same cache; QEMU
# replays the held requests.  The guest must finish with zero I/O errors
# and zero mismatches and vm1's nbdkit must never be touched.  Then both
# servers are SIGKILLed, `vaioctl up` recovers them (dirty cache blocks),
# each disk is verified through its chain, and after `vaioctl down`
# (destage) each image must hold every acknowledged write.
#
# VAIO_GUEST_FAULT=naive-swap replaces apply by SIGTERM + `vaioctl up` of
# the new config (nbdkit answers in-flight and new requests with ESHUTDOWN,
# which QEMU does not retry): the test must then FAIL.
. "$(dirname "$0")/lib.sh"
seed=${VAIO_GUEST_SEED:-$((RANDOM + 1))}
echo "seed $seed (VAIO_GUEST_SEED=$seed reproduces the block sequences)"
fault=${VAIO_GUEST_FAULT:-}
guest_build

vaio_two_vm_config "$T/c.yaml" write-back write-back
sed 's/        policy: silver/        policy: gold/' "$T/c.yaml" > "$T/c2.yaml"
"$VAIOCTL" up "$T/c.yaml" > "$T/up.out" || fail "vaioctl up: $(cat "$T/up.out")"
pid1=$(vaio_pid vm1)
pid2=$(vaio_pid vm2)

guest_start g1 16 64 "$seed" "$(vaio_sock vm1)" "$(vaio_sock vm2)"
guest_wait_for g1 'VAIO-GUEST START disk=vdb' 90
pass "guest writing on vda (vm1) and vdb (vm2)"
sleep 3

# apply CONFIG WANT: swap vm2 and check vm1 was left alone.
swap () {
  local out old
  old=$(vaio_pid vm2)
  guest_running g1 || fail "guest finished before the swap: the test proves nothing"
  grep -aq 'VAIO-GUEST DISK vdb' "$T/g1.log" && fail "vdb writer done before the swap"
  if [ "$fault" = naive-swap ]; then
    kill -TERM "$old"
    for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
    out=$("$VAIOCTL" up "$1" 2>&1) || fail "vaioctl up $(basename "$1"): $out"
    pass "VAIO_GUEST_FAULT=naive-swap: SIGTERM + up: $(grep vm2/disk0 <<<"$out")"
    return
  fi
  out=$("$VAIOCTL" apply "$1" 2>&1) || fail "vaioctl apply $(basename "$1"): $out"
  grep -Eq "vm2/disk0: swapped chain \\(pid $old -> [0-9]+\\); I/O held [0-9]+ ms" <<<"$out" ||
    fail "vm2 not swapped: $out"
  grep -q "vm1/disk0: unchanged (pid $pid1)" <<<"$out" || fail "vm1 touched: $out"
  [ "$(vaio_pid vm2)" != "$old" ] || fail "vm2 pid unchanged after a swap"
  pass "$(grep vm2/disk0 <<<"$out") [$2]"
}
dirty=$(vaio_gauge "$T/c.yaml" vm2 caching dirty_bytes)
[ "$dirty" != none ] && [ "$dirty" -gt 0 ] ||
  fail "vm2's write-back cache holds no dirty data (dirty_bytes=$dirty) before the swap"
pass "vm2's cache holds $dirty dirty bytes before the swap"
swap "$T/c2.yaml" "silver -> gold"
sleep 2
swap "$T/c.yaml" "gold -> silver"
through=yes   # checked last, so the guest's own errors are reported first
guest_running g1 || through=no

guest_wait g1 150
[ "$(vaio_pid vm1)" = "$pid1" ] || fail "vm1's nbdkit changed"
kill -0 "$pid1" 2>/dev/null || fail "vm1's nbdkit died"
kill9_wait "$pid1"
kill9_wait "$(vaio_pid vm2)"
bad=0
( guest_check g1 ) || bad=1
"$VAIOCTL" up "$T/c.yaml" > "$T/up2.out" || fail "vaioctl up (recovery): $(cat "$T/up2.out")"
( guest_verify "$(vaio_uri vm1)" g1 vda ) || bad=1
( guest_verify "$(vaio_uri vm2)" g1 vdb ) || bad=1
"$VAIOCTL" down "$T/c.yaml" > "$T/down.out" || fail "vaioctl down: $(cat "$T/down.out")"
( guest_verify "$T/vm1.img" g1 vda ) || bad=1
( guest_verify "$T/vm2.img" g1 vdb ) || bad=1
[ "$bad" -eq 0 ] || fail "see above"
[ "$through" = yes ] || fail "guest finished during the swaps: the test proves nothing"
[ "$pid2" != "$(vaio_pid vm2)" ] || fail "vm2 never swapped"
pass "longest write+verify iteration: vda $(guest_max_iter g1 vda) ms, vdb (swapped) $(guest_max_iter g1 vdb) ms"

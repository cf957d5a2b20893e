#!/bin/bash
# The issue-7 scenario on vaio-nbd's own filters.  One guest writes and
# verifies continuously on vm1's disk while the host reconfigures it with
# `vaioctl apply`, one change at a time:
#   1. sioc only (vaio-sioc, limit 5000)        -> vaioctl up
#   2. add caching (vaio-cache, write-back)      -> swap
#   3. change the SIOC limit and shares          -> live, same pid; the
#      filter's limit-iops and shares gauges show the new values
#   4. add replication (vaio-replication, async) -> swap; the replica is
#      connected and records are shipped to it
#   5. remove caching                            -> swap, started while the
#      cache holds dirty blocks (dirty_bytes > 0), so it must destage
#   6. add caching again                         -> swap; the guest wrote
#      blocks the old cache held while it was gone: none may read stale
#   7. remove replication                        -> swap
#   8. add replication again                     -> swap; connected and
#      shipping, and the replica must catch up on the writes it missed
# After each step the guest's acknowledged writes must keep growing.  The
# guest must log zero I/O errors and mismatches; its disk read through the
# final chain, and after `vaioctl down` the backing image and the replica,
# must each hold every block the guest last wrote, and the image and the
# replica be identical.
. "$(dirname "$0")/lib.sh"
seed=${VAIO_GUEST_SEED:-$((RANDOM + 1))}
echo "seed $seed (VAIO_GUEST_SEED=$seed reproduces the block sequences)"
guest_build
B=$VAIO_BUILD/nbdkit-filters

truncate -s 64M "$T/vm1.img" "$T/replica.img"
nbdkit -U "$T/replica.sock" -P "$T/replica.pid" file "$T/replica.img"
wait_sock "$T/replica.sock" 10
NBDKIT_PIDS+=("$(cat "$T/replica.pid")")

# config FILE POLICY-BODY: one host with the four vaio filters, one VM.
config () {
  cat > "$1" <<YAML
cluster: guest
hosts:
  - name: host1
    state-dir: state/host1
    filters:
      - $B/replication/vaio-replication.yaml
      - $B/caching/vaio-cache.yaml
      - $B/sioc/vaio-sioc.yaml
policies:
  - name: p
$2
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
  GUEST_CONFIGS+=("$1")
}
SIOC1='    sioc: { sioc-datastore: state/ds.seg, sioc-limit-iops: 5000, sioc-shares: normal }'
SIOC2='    sioc: { sioc-datastore: state/ds.seg, sioc-limit-iops: 3000, sioc-shares: high }'
CACHE='    caching: { cache-size: 16M, cache-mode: write-back }'
REPL="    replication: { repl-target: \"nbd+unix:///?socket=$T/replica.sock\" }"
config "$T/c1.yaml" "$SIOC1"
config "$T/c2.yaml" "$SIOC1"$'\n'"$CACHE"
config "$T/c3.yaml" "$SIOC2"$'\n'"$CACHE"
config "$T/c4.yaml" "$SIOC2"$'\n'"$CACHE"$'\n'"$REPL"
config "$T/c5.yaml" "$SIOC2"$'\n'"$REPL"
config "$T/c6.yaml" "$SIOC2"$'\n'"$CACHE"$'\n'"$REPL"
config "$T/c7.yaml" "$SIOC2"$'\n'"$CACHE"
config "$T/c8.yaml" "$SIOC2"$'\n'"$CACHE"$'\n'"$REPL"

"$VAIOCTL" up "$T/c1.yaml" > "$T/up.out" || fail "vaioctl up: $(cat "$T/up.out")"
guest_start g1 35 256 "$seed" "$(vaio_sock vm1)"
guest_wait_for g1 'VAIO-GUEST START disk=vda' 90
pass "guest writing on vm1 (chain: vaio-sioc)"
sleep 2

# progress: the guest's last PROGRESS counter (acknowledged writes).
progress () {
  grep -a 'VAIO-GUEST PROGRESS' "$T/g1.log" | tr -d '\r' | tail -n 1 |
    sed -n 's/.*writes=\([0-9]*\).*/\1/p'
}
# gauge CONFIG CLASS NAME: vm1 disk0's filter gauge, as status shows it.
gauge () { vaio_gauge "$1" vm1 "$2" "$3"; }
# wait_gauge CONFIG CLASS NAME OP VALUE SECS: until the gauge OP VALUE
# holds (OP: -eq, -gt, -ge), leaving the value in $GAUGE; fail naming
# the last value.
wait_gauge () {
  local v i
  for ((i = 0; i < $6 * 10; i++)); do
    v=$(gauge "$1" "$2" "$3")
    [ "$v" != none ] && [ "$v" "$4" "$5" ] && { GAUGE=$v; return 0; }
    sleep 0.1
  done
  fail "vm1's $2 $3 is $v after $6 s, want $4 $5"
}

wait_gauge "$T/c1.yaml" sioc limit-iops -eq 5000 5

# step CONFIG WHAT PATTERN [N]: apply, expect PATTERN for vm1 in the
# output, then wait until the guest acknowledged N (5) more writes.
step () {
  local out w0 w n=${4:-5}
  guest_running g1 || fail "guest finished before '$2': the test proves nothing"
  w0=$(progress)
  out=$("$VAIOCTL" apply "$1" 2>&1) || fail "vaioctl apply ($2): $out"
  grep -Eq "$3" <<<"$out" || fail "apply ($2): expected /$3/ in: $out"
  pass "$2: $(grep vm1/disk0 <<<"$out")"
  for _ in $(seq 150); do
    w=$(progress)
    [ "${w:-0}" -ge $((${w0:-0} + n)) ] && return 0
    guest_running g1 || break
    sleep 0.1
  done
  fail "guest's acknowledged writes stalled after '$2' (${w0:-0} -> ${w:-0})"
}
# swapped: the apply line of a swap away from vm1's current nbdkit.
swapped () { echo "vm1/disk0: swapped chain \\(pid $(vaio_pid vm1) -> [0-9]+\\); I/O held [0-9]+ ms"; }
step "$T/c2.yaml" "add caching" "$(swapped)"
pid=$(vaio_pid vm1)
step "$T/c3.yaml" "change SIOC limit" "vm1/disk0: changed live \\(pid $pid unchanged\\)"
wait_gauge "$T/c3.yaml" sioc limit-iops -eq 3000 5
wait_gauge "$T/c3.yaml" sioc shares -eq 2000 5
[ "$(gauge "$T/c3.yaml" sioc settings-reloads)" -ge 1 ] || fail "vaio-sioc never reloaded its settings"
[ "$(vaio_pid vm1)" = "$pid" ] || fail "a live change restarted the disk"
pass "vaio-sioc (pid $pid) runs the new settings: limit-iops 3000, shares 2000 (high)"
step "$T/c4.yaml" "add replication" "$(swapped)"
wait_gauge "$T/c4.yaml" replication replica_connected -eq 1 10
wait_gauge "$T/c4.yaml" replication shipped_bytes -gt 0 10
pass "replica connected; $GAUGE bytes shipped to it"
# The removal must destage: start it while the cache holds dirty blocks.
wait_gauge "$T/c4.yaml" caching dirty_bytes -gt 0 10
# 30 writes without the cache: some land on blocks the old cache holds,
# which the re-added cache must not serve.  256 blocks, not 64, so that
# the rest of the run does not overwrite every block a gap wrote (and with
# it the evidence of a stale cache or replica).
step "$T/c5.yaml" "remove caching (cache held $GAUGE dirty bytes)" "$(swapped)" 30
step "$T/c6.yaml" "add caching again" "$(swapped)"
# 30 writes the replica does not see while replication is gone.
step "$T/c7.yaml" "remove replication" "$(swapped)" 30
step "$T/c8.yaml" "add replication again" "$(swapped)"
wait_gauge "$T/c8.yaml" replication replica_connected -eq 1 10
wait_gauge "$T/c8.yaml" replication shipped_bytes -gt 0 10
pass "replica connected again; $GAUGE bytes shipped to it"
through=yes
guest_running g1 || through=no

guest_wait g1 180
"$VAIOCTL" status "$T/c8.yaml" --json |
  jq -e '.vms[0].disks[0].chain | map(.filter) == ["vaio-replication", "vaio-cache", "vaio-sioc"]' >/dev/null ||
  fail "final chain is not replication -> cache -> sioc"
bad=0
( guest_verify "$(vaio_uri vm1)" g1 vda ) || bad=1
# down must stop the chain cleanly: flush, then SIGTERM, on which the
# cache destages into the image (a SIGKILL after the timeout leaves it in
# the cache, and the image checks below fail for that reason).
"$VAIOCTL" down "$T/c8.yaml" --timeout 10 > "$T/down.out" 2>&1 || fail "vaioctl down: $(cat "$T/down.out")"
if grep -q "vm1/disk0: stopped (pid [0-9]*), flushed" "$T/down.out" &&
   ! grep -q "killed" "$T/down.out"; then
  pass "vaioctl down: $(tr '\n' ' ' < "$T/down.out")"
else
  echo "FAIL: vaioctl down did not stop vm1 cleanly: $(cat "$T/down.out")" >&2
  bad=1
fi
( guest_check g1 ) || bad=1
( guest_verify "$T/vm1.img" g1 vda ) || bad=1
( guest_verify "$T/replica.img" g1 vda ) || bad=1
cmp -s "$T/vm1.img" "$T/replica.img" || { echo "FAIL: replica differs from the image" >&2; bad=1; }
[ "$bad" -eq 0 ] || fail "see above"
[ "$through" = yes ] || fail "guest finished during the applies: the test proves nothing"
pass "image and replica hold every acknowledged write and are identical; longest write+verify $(guest_max_iter g1 vda) ms"

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
# After each step the guest's acknowledged writes must keep growing.  The
# guest must log zero I/O errors and mismatches; after `vaioctl down`
# the backing image and the replica must each hold every block the guest
# last wrote, and be identical.
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

"$VAIOCTL" up "$T/c1.yaml" > "$T/up.out" || fail "vaioctl up: $(cat "$T/up.out")"
guest_start g1 30 64 "$seed" "$(vaio_sock vm1)"
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

# step CONFIG WHAT PATTERN: apply, expect PATTERN for vm1 in the output,
# then wait until the guest acknowledged 5 more writes.
step () {
  local out w0 w
  guest_running g1 || fail "guest finished before '$2': the test proves nothing"
  w0=$(progress)
  out=$("$VAIOCTL" apply "$1" 2>&1) || fail "vaioctl apply ($2): $out"
  grep -Eq "$3" <<<"$out" || fail "apply ($2): expected /$3/ in: $out"
  pass "$2: $(grep vm1/disk0 <<<"$out")"
  for _ in $(seq 150); do
    w=$(progress)
    [ "${w:-0}" -ge $((${w0:-0} + 5)) ] && return 0
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
step "$T/c5.yaml" "remove caching (cache held $GAUGE dirty bytes)" "$(swapped)"
through=yes
guest_running g1 || through=no

guest_wait g1 180
"$VAIOCTL" status "$T/c5.yaml" --json |
  jq -e '.vms[0].disks[0].chain | map(.filter) == ["vaio-replication", "vaio-sioc"]' >/dev/null ||
  fail "final chain is not replication -> sioc"
"$VAIOCTL" down "$T/c5.yaml" >/dev/null
bad=0
( guest_check g1 ) || bad=1
( guest_verify "$T/vm1.img" g1 vda ) || bad=1
( guest_verify "$T/replica.img" g1 vda ) || bad=1
cmp -s "$T/vm1.img" "$T/replica.img" || { echo "FAIL: replica differs from the image" >&2; bad=1; }
[ "$bad" -eq 0 ] || fail "see above"
[ "$through" = yes ] || fail "guest finished during the applies: the test proves nothing"
pass "image and replica hold every acknowledged write and are identical; longest write+verify $(guest_max_iter g1 vda) ms"

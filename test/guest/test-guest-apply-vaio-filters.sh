#!/bin/bash
# The issue-7 scenario on vaio-nbd's own filters.  One guest writes and
# verifies continuously on vm1's disk while the host reconfigures it with
# `vaioctl apply`, one change at a time:
#   1. sioc only (vaio-sioc, limit 5000)        -> vaioctl up
#   2. add caching (vaio-cache, write-back)      -> swap
#   3. change the SIOC limit and shares          -> live, same pid
#   4. add replication (vaio-replication, async) -> swap, replica synced
#   5. remove caching                            -> swap (cache drained)
# The guest must log zero I/O errors and mismatches; after `vaioctl down`
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
guest_start g1 40 64 "$seed" "$(vaio_sock vm1)"
guest_wait_for g1 'VAIO-GUEST START disk=vda' 90
pass "guest writing on vm1 (chain: vaio-sioc)"
sleep 3

# step CONFIG WHAT PATTERN: apply, expect PATTERN for vm1 in the output.
step () {
  local out
  guest_running g1 || fail "guest finished before '$2': the test proves nothing"
  out=$("$VAIOCTL" apply "$1" 2>&1) || fail "vaioctl apply ($2): $out"
  grep -Eq "$3" <<<"$out" || fail "apply ($2): expected /$3/ in: $out"
  pass "$2: $(grep vm1/disk0 <<<"$out")"
  sleep 2
}
pid=$(vaio_pid vm1)
step "$T/c2.yaml" "add caching" "vm1/disk0: swapped chain \\(pid $pid -> [0-9]+\\); I/O held [0-9]+ ms"
pid=$(vaio_pid vm1)
step "$T/c3.yaml" "change SIOC limit" "vm1/disk0: changed live \\(pid $pid unchanged\\)"
step "$T/c4.yaml" "add replication" "vm1/disk0: swapped chain \\(pid $pid -> [0-9]+\\); I/O held [0-9]+ ms"
pid=$(vaio_pid vm1)
step "$T/c5.yaml" "remove caching" "vm1/disk0: swapped chain \\(pid $pid -> [0-9]+\\); I/O held [0-9]+ ms"
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

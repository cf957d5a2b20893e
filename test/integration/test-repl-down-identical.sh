#!/bin/bash
# A random write workload through vaioctl chains with replication, then
# `vaioctl down`: the replica is byte-identical to the source, in both
# modes.  vm1 replicates async, vm2 sync; each gets fio random writes
# (4k-64k) and then zeros, trims and writes from qemu-io, and nothing
# waits for the replica before down: down's clean stop must ship the rest.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
truncate -s 32M "$T/vm1.img" "$T/vm2.img" "$T/rep1.img" "$T/rep2.img"
# vm1's replica is slow (10 ms a write): async acks long before it has
# everything, so down finds a backlog to ship (checked below).
nbdkit -f -U "$T/rep1.sock" --filter=delay file "$T/rep1.img" delay-write=10ms \
  2>>"$T/replicas.log" &
pids=($!)
nbdkit -f -U "$T/rep2.sock" file "$T/rep2.img" 2>>"$T/replicas.log" &
pids+=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 100); do [ -S "$T/rep1.sock" ] && [ -S "$T/rep2.sock" ] && break; sleep 0.05; done

# The journal holds the whole workload: it is shipped from the journal,
# not copied by a resync after an overflow (checked below).
cat > "$T/c.yaml" <<YAML
cluster: repl-down
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/replication/vaio-replication.yaml ]
policies:
  - name: async
    replication: { repl-target: "nbd+unix:///?socket=$T/rep1.sock", repl-mode: async, repl-journal-size: 64M }
  - name: sync
    replication: { repl-target: "nbd+unix:///?socket=$T/rep2.sock", repl-mode: sync, repl-journal-size: 64M }
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: async } ]
  - name: vm2
    host: host1
    disks: [ { name: disk0, image: vm2.img, policy: sync } ]
YAML
TEST_CONFIGS+=("$T/c.yaml")
"$VAIOCTL" up "$T/c.yaml" >/dev/null

# counters: both disks' replication stats, one JSON object per line.
counters () {
  "$VAIOCTL" status "$T/c.yaml" --json | jq -c '.vms[].disks[0].chain[0].stats.counters'
}
# The initial sync of the new replicas first: the workload then goes
# through the journal (a write during a resync would be copied by it).
for _ in $(seq 300); do
  [ "$(counters | jq -s 'map(select(.replica_connected == 1 and .tracking == 0
        and .dirty_bytes == 0)) | length')" = 2 ] && break
  sleep 0.1
done
counters > "$T/before"
[ "$(jq -s 'map(select(.tracking == 0)) | length' "$T/before")" = 2 ] ||
  fail "initial sync did not finish: $(cat "$T/before")"

for vm in vm1 vm2; do
  uri=$(sock_uri "$vm")
  fio --name=w --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k-64k \
    --iodepth=16 --size=32M --io_size=24M --randrepeat=0 --output=/dev/null ||
    fail "$vm: fio failed"
  qemu-io -f raw -t writeback -c "write -z 1M 3M" -c "discard 8M 2M" \
    -c "write -z 20M 64k" -c "discard 27M 36k" -c "write -P 0x7b 30M 1M" \
    -c "discard 30M 4k" "$uri" >/dev/null || fail "$vm: qemu-io failed"
done
counters > "$T/after"
lag=$(head -1 "$T/after" | jq .lag_us)
[ "$lag" -gt 0 ] || fail "vm1 (async) had nothing left to ship at down: the test proves nothing"
for i in 0 1; do
  b=$(sed -n "$((i + 1))p" "$T/before")
  jq -e --argjson b "$b" ".journal_overflows == 0 and .tracking == 0 and .sync_mode == $i
        and .resync_done_bytes == \$b.resync_done_bytes
        and .shipped_records > \$b.shipped_records" <<<"$(sed -n "$((i + 1))p" "$T/after")" \
    >/dev/null || fail "vm$((i + 1)): the workload did not go through the journal: $b -> $(sed -n "$((i + 1))p" "$T/after")"
done

out=$("$VAIOCTL" down "$T/c.yaml" 2>&1)
[ "$(grep -c "stopped (pid [0-9]*), flushed" <<<"$out")" = 2 ] && ! grep -q killed <<<"$out" ||
  fail "down did not stop both disks cleanly: $out"
cmp "$T/vm1.img" "$T/rep1.img" || fail "vm1 (async): the replica differs from the source"
cmp "$T/vm2.img" "$T/rep2.img" || fail "vm2 (sync): the replica differs from the source"
# The workload reached the images (the replicas are not equal to
# untouched sources): the last write, the trim inside it, the zeros.
for r in rep1 rep2; do
  qemu-io -f raw -r -c "read -P 0 30M 4k" -c "read -P 0x7b 30724k 1020k" \
    -c "read -P 0 1M 3M" "$T/$r.img" >/dev/null || fail "$r lacks the last qemu-io commands"
done
pass "after a random workload and down, both replicas (async, sync) equal their sources"

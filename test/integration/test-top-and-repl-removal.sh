#!/bin/bash
# vaioctl top shows live per-disk figures from the filters' stats while I/O
# runs, each filter's gauges under its class (cache and replication both
# publish dirty_bytes), SIOC's entitlement, and no wrapped rate across a
# swap (the new process counts from zero); apply refuses to remove a replication filter whose replica is
# unreachable with writes not yet shipped (nothing changes), and does it
# with --force.
. "$(dirname "$0")/lib.sh"
start_replica 32M
repl_config "$T/c1.yaml" top "    sioc: { sioc-datastore: state/ds.seg }
$REPL_POLICY"
repl_config "$T/c2.yaml" top "    sioc: { sioc-datastore: state/ds.seg }"
repl_config "$T/c1b.yaml" top "    sioc: { sioc-datastore: state/ds.seg }
    replication: { repl-target: \"nbd+unix:///?socket=$T/rep.sock\", repl-rpo: 20s }"
TEST_CONFIGS+=("$T/c1.yaml")
"$VAIOCTL" up "$T/c1.yaml" >/dev/null

fio --name=t --ioengine=nbd --uri="$(sock_uri vm1)" --rw=randrw --bs=4k --iodepth=4 \
  --runtime=3 --time_based=1 --size=8M --output=/dev/null 2>/dev/null &
fio=$!
sleep 0.5
"$VAIOCTL" top "$T/c1.yaml" --iterations 2 --interval 500 --json > "$T/top.json"
wait "$fio"
tail -1 "$T/top.json" | jq -e '.[0].iops > 0 and .[0].mib_s > 0 and .[0].latency_p99_us > 0' >/dev/null ||
  fail "top shows no I/O: $(tail -1 "$T/top.json")"
tail -1 "$T/top.json" | jq -e '.[0].filters | (.caching | has("hit_ratio") and has("dirty_bytes"))
  and (.replication | has("lag_us") and has("dirty_bytes")) and (.sioc | has("entitlement-iops"))' >/dev/null ||
  fail "top lacks a cache, replication or SIOC figure: $(tail -1 "$T/top.json")"
pass "top: $(tail -1 "$T/top.json" | jq -c '.[0] | {iops, mib_s, latency_p99_us, hit_ratio: .filters.caching.hit_ratio,
  cache_dirty: .filters.caching.dirty_bytes, repl_dirty: .filters.replication.dirty_bytes,
  lag_us: .filters.replication.lag_us, entitlement: .filters.sioc["entitlement-iops"]}')"
out=$("$VAIOCTL" top "$T/c1.yaml" --iterations 1 --interval 200)
grep "^vm1/disk0 " <<<"$out" | grep -q "replication.dirty_bytes=.* caching.dirty_bytes=.* sioc.entitlement-iops=" ||
  fail "top text view: $out"
pass "top text view names each figure by class"

# A known rate: fio writes 200 4 KiB blocks a second.  Each interval's
# IOPS is ops over the time measured between its two samples, so it is
# near 200 and MiB/s is IOPS x 4 KiB, whatever the interval.
fio --name=r --ioengine=nbd --uri="$(sock_uri vm1)" --rw=randwrite --bs=4k --iodepth=1 \
  --rate_iops=200 --runtime=4 --time_based=1 --size=8M --output=/dev/null 2>/dev/null &
fio=$!
sleep 0.7
"$VAIOCTL" top "$T/c1.yaml" --iterations 3 --interval 700 --json > "$T/top-rate.json"
wait "$fio"
jq -s -e 'all(.[]; .[0] | .iops >= 150 and .iops <= 250 and .interval_s >= 0.7 and .interval_s < 1.5
  and (.mib_s * 1048576 / 4096 - .iops | fabs) < 0.01)' "$T/top-rate.json" >/dev/null ||
  fail "top's rate for a 200 IOPS writer: $(jq -c '.[0] | {iops, mib_s, interval_s}' "$T/top-rate.json" | tr '\n' ' ')"
pass "top for a 200 IOPS writer: $(jq -c '.[0] | [.iops, .interval_s]' "$T/top-rate.json" | tr '\n' ' ')"

# Idle: no I/O in the interval is a rate of 0, and no lookup is no hit
# ratio (null), not a ratio of 0.
"$VAIOCTL" top "$T/c1.yaml" --iterations 1 --interval 300 --json > "$T/top-idle.json"
jq -e '.[0] | .iops == 0 and .mib_s == 0 and .restarted == false
  and (.filters.caching | has("hit_ratio") and .hit_ratio == null)' "$T/top-idle.json" >/dev/null ||
  fail "top while idle: $(cat "$T/top-idle.json")"
pass "top while idle: iops 0, hit_ratio null"

# On a terminal each table replaces the last (home + clear); into a pipe
# they follow one another with no escape codes.
script -qec "$VAIOCTL top $T/c1.yaml --iterations 3 --interval 100" /dev/null > "$T/top-tty.txt"
[ "$(grep -o $'\033\\[H\033\\[2J' "$T/top-tty.txt" | wc -l)" = 3 ] ||
  fail "top on a tty does not redraw: $(cat -v "$T/top-tty.txt")"
out=$("$VAIOCTL" top "$T/c1.yaml" --iterations 3 --interval 100)
[ "$(grep -c '^vaioctl top ' <<<"$out")" = 3 ] && ! grep -q $'\033' <<<"$out" ||
  fail "top into a pipe: $(cat -v <<<"$out")"
pass "top redraws on a terminal, appends into a pipe"

# A swap while top runs: the interval across it shows no rate, never the
# new counters minus the old ones.
"$VAIOCTL" top "$T/c1.yaml" --iterations 6 --interval 300 --json > "$T/top-swap.json" &
top=$!
sleep 0.4
out=$("$VAIOCTL" apply "$T/c1b.yaml" 2>&1) || fail "apply c1b: $out"
grep -q "swapped chain" <<<"$out" || fail "repl-rpo change did not swap: $out"
wait "$top"
# No I/O runs meanwhile: each interval is either marked restarted, with
# no rate, or counts nothing (apply's own flush is not an I/O op in top).
jq -s -e 'all(.[]; .[0] | if .restarted then .iops == null else .iops == 0 end)' "$T/top-swap.json" >/dev/null ||
  fail "a rate across a swap with no I/O: $(jq -c '.[0] | {iops, restarted}' "$T/top-swap.json" | tr '\n' ' ')"
jq -s -e 'any(.[]; .[0].restarted and .[0].iops == null)' "$T/top-swap.json" >/dev/null ||
  fail "no interval marked restarted: $(jq -c '.[0] | {iops, restarted}' "$T/top-swap.json" | tr '\n' ' ')"
pass "top across a swap: $(jq -c '.[0].iops' "$T/top-swap.json" | tr '\n' ' ')"

# The replica goes away; writes are journaled, not shipped.
kill -9 "$rep"; wait "$rep" 2>/dev/null || true
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x77 0 1M" >/dev/null
for _ in $(seq 100); do
  "$VAIOCTL" status "$T/c1.yaml" --json |
    jq -e '.vms[0].disks[0].chain[0].stats.counters | .replica_connected == 0 and .journal_used_bytes + .dirty_bytes > 0' \
    >/dev/null && break
  sleep 0.05
done
pid=$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")
expect_fail "removing replication with unshipped writes" \
  "refusing to remove replication: the replica is unreachable and writes are not yet shipped" \
  "$VAIOCTL" apply "$T/c2.yaml"
[ "$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")" = "$pid" ] || fail "the refused apply restarted the disk"
out=$("$VAIOCTL" apply "$T/c2.yaml" --force)
grep -q "vm1/disk0: swapped chain (pid $pid -> " <<<"$out" || fail "--force did not swap: $out"
qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x77 0 1M" >/dev/null || fail "data lost across the forced swap"
pass "--force removes it; the VM's own data is intact"

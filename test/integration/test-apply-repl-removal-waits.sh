#!/bin/bash
# vaioctl apply removing a replication filter whose replica is reachable
# but behind: it must wait for the journal to ship, then swap, and the
# replica must end byte-identical to the source.  The replica nbdkit is
# SIGSTOPped so writes stay unshipped (its connection stays up), and
# SIGCONTed while apply is already waiting.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
truncate -s 32M "$T/vm1.img" "$T/rep.img"
nbdkit -f -U "$T/rep.sock" file "$T/rep.img" 2>/dev/null &
rep=$!
# A stopped replica must not outlive the test.
trap 'kill -CONT $rep 2>/dev/null || true; kill $rep 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 100); do [ -S "$T/rep.sock" ] && break; sleep 0.05; done
config () {
  cat > "$1" <<YAML
cluster: replwait
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/replication/vaio-replication.yaml, $B/caching/vaio-cache.yaml ]
policies:
  - name: p
    caching: { cache-size: 8M, cache-mode: write-through }
$2
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}
config "$T/c1.yaml" "    replication: { repl-target: \"nbd+unix:///?socket=$T/rep.sock\" }"
config "$T/c2.yaml" ""
TEST_CONFIGS+=("$T/c1.yaml")
"$VAIOCTL" up "$T/c1.yaml" >/dev/null
pidfile=$T/state/host1/vms/vm1/disk0/nbdkit.pid

# backlog: "CONNECTED UNSHIPPED" from the replication filter's stats.
backlog () {
  "$VAIOCTL" status "$T/c1.yaml" --json |
    jq -r '.vms[0].disks[0].chain[0].stats.counters // empty |
           "\(.replica_connected) \(.journal_used_bytes + .dirty_bytes)"'
}
for _ in $(seq 200); do [ "$(backlog)" = "1 0" ] && break; sleep 0.05; done
[ "$(backlog)" = "1 0" ] || fail "replica not connected and in sync at start: $(backlog)"

kill -STOP "$rep"
head -c 4M /dev/urandom > "$T/data"
nbdcopy "$T/data" "$(sock_uri vm1)" || fail "write while the replica is stopped"
# The stats are published as the filter goes: wait for them to show it.
for _ in $(seq 100); do
  read -r conn unshipped <<<"$(backlog)"
  [ "$conn" = 1 ] && [ "$unshipped" -gt 0 ] && break
  sleep 0.05
done
[ "$conn" = 1 ] && [ "$unshipped" -gt 0 ] ||
  fail "expected a connected replica with unshipped writes, got: $conn $unshipped"
pass "replica stopped: $unshipped bytes unshipped, connection up"

pid=$(cat "$pidfile")
t0=$SECONDS
"$VAIOCTL" apply "$T/c2.yaml" > "$T/apply.out" 2>&1 &
apply=$!
sleep 1.5
alive "$apply" || fail "apply did not wait for the journal: $(cat "$T/apply.out")"
[ "$(cat "$pidfile")" = "$pid" ] || fail "the old chain was dropped while writes were unshipped"
[ "$(backlog | cut -d' ' -f2)" -gt 0 ] || fail "the backlog drained with the replica stopped"
pass "apply waits, old chain (pid $pid) still serving"
kill -CONT "$rep"
wait "$apply" || fail "apply failed: $(cat "$T/apply.out")"
grep -q "vm1/disk0: swapped chain (pid $pid -> " "$T/apply.out" ||
  fail "apply did not swap: $(cat "$T/apply.out")"
pass "after SIGCONT apply swapped in $((SECONDS - t0)) s: $(grep vm1/disk0 "$T/apply.out")"

"$VAIOCTL" down "$T/c2.yaml" >/dev/null
cmp <(head -c 4M "$T/vm1.img") "$T/data" || fail "source lacks the data"
cmp "$T/vm1.img" "$T/rep.img" || fail "replica differs from the source after the swap"
pass "replica is byte-identical to the source"

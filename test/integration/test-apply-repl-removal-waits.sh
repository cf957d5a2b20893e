#!/bin/bash
# vaioctl apply removing a replication filter whose replica is reachable
# but behind: it must wait for the journal to ship, then swap, and the
# replica must end byte-identical to the source.  The replica nbdkit is
# SIGSTOPped so writes stay unshipped (its connection stays up), and
# SIGCONTed while apply is already waiting.
. "$(dirname "$0")/lib.sh"
start_replica 32M
repl_config "$T/c1.yaml" replwait "$REPL_POLICY"
repl_config "$T/c2.yaml" replwait ""
TEST_CONFIGS+=("$T/c1.yaml")
"$VAIOCTL" up "$T/c1.yaml" >/dev/null
pidfile=$T/state/host1/vms/vm1/disk0/nbdkit.pid

wait_repl_in_sync "$T/c1.yaml"

kill -STOP "$rep"
head -c 4M /dev/urandom > "$T/data"
nbdcopy "$T/data" "$(sock_uri vm1)" || fail "write while the replica is stopped"
# The stats are published as the filter goes: wait for them to show it.
for _ in $(seq 100); do
  read -r conn unshipped <<<"$(repl_backlog "$T/c1.yaml")"
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
[ "$(repl_backlog "$T/c1.yaml" | cut -d' ' -f2)" -gt 0 ] || fail "the backlog drained with the replica stopped"
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

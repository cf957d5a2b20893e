#!/bin/bash
# vaioctl apply removing a replication filter whose replica is reachable
# but far behind: the replica catches up BEFORE the disk is paused, with
# the guest's I/O running; if it does not within --timeout the swap is
# refused with nothing stopped (same pid, I/O never held).  The replica
# nbdkit is SIGSTOPped so writes stay unshipped, its connection up.
. "$(dirname "$0")/lib.sh"
start_replica 32M
repl_config "$T/c1.yaml" predrain "$REPL_POLICY"
repl_config "$T/c2.yaml" predrain ""
TEST_CONFIGS+=("$T/c1.yaml")
"$VAIOCTL" up "$T/c1.yaml" >/dev/null
pidfile=$T/state/host1/vms/vm1/disk0/nbdkit.pid
wait_repl_in_sync "$T/c1.yaml"

kill -STOP "$rep"
head -c 8M /dev/urandom > "$T/data"
nbdcopy "$T/data" "$(sock_uri vm1)" || fail "write while the replica is stopped"
# The stats are published as the filter goes: wait for them to show it.
for _ in $(seq 100); do
  read -r conn unshipped <<<"$(repl_backlog "$T/c1.yaml")"
  [ "$conn" = 1 ] && [ "$unshipped" -gt $((1024 * 1024)) ] && break
  sleep 0.05
done
[ "$conn" = 1 ] && [ "$unshipped" -gt $((1024 * 1024)) ] ||
  fail "expected a connected replica more than 1 MiB behind, got: $conn $unshipped"

pid=$(cat "$pidfile")
"$VAIOCTL" apply "$T/c2.yaml" --timeout 3 > "$T/apply.out" 2>&1 &
apply=$!
sleep 1
alive "$apply" || fail "apply did not wait for the replica: $(cat "$T/apply.out")"
# While apply waits, the guest's I/O is not held.
timeout 2 qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x11 20M 64k" -c "read -P 0x11 20M 64k" >/dev/null ||
  fail "guest I/O is held while apply waits for the replica"
pass "guest I/O runs while apply waits for the replica to catch up"
rc=0; wait "$apply" || rc=$?
[ "$rc" -ne 0 ] || fail "apply succeeded with the replica stopped: $(cat "$T/apply.out")"
grep -Eq "vaioctl: vm1/disk0: swap refused before pausing: the replica is still [0-9]+ bytes behind \(connected\) after 3 s; use --force to drop what it has not received; nothing was stopped, the old chain \(pid $pid\) serves on" "$T/apply.out" ||
  fail "unexpected refusal: $(cat "$T/apply.out")"
grep -q "I/O held" "$T/apply.out" && fail "the refused swap held I/O: $(cat "$T/apply.out")"
[ "$(cat "$pidfile")" = "$pid" ] || fail "the refused swap replaced the chain"
pass "refused before pausing: $(grep refused "$T/apply.out")"

kill -CONT "$rep"
out=$("$VAIOCTL" apply "$T/c2.yaml" 2>&1) || fail "apply after SIGCONT: $out"
grep -q "vm1/disk0: swapped chain (pid $pid -> " <<<"$out" || fail "apply did not swap: $out"
"$VAIOCTL" down "$T/c2.yaml" >/dev/null
cmp "$T/vm1.img" "$T/rep.img" || fail "replica differs from the source after the swap"
pass "with the replica back, the swap goes through; replica byte-identical: $(grep swapped <<<"$out")"

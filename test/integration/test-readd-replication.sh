#!/bin/bash
# Replication removed, writes made without it, replication added back:
# the journal and bitmap left behind say nothing about those writes, so
# the start that re-adds replication sets them aside and the replica gets
# a full initial sync.  Through apply (remove, write, add) and through
# down/edit/up.  The replica must end byte-identical to the source.
. "$(dirname "$0")/lib.sh"
start_replica 16M
repl_config "$T/repl.yaml" readd "$REPL_POLICY"
repl_config "$T/none.yaml" readd ""
# Without replication, and a chain that cannot start (its cache file
# cannot be created): the swap to it rolls back.
sed "s|cache-mode: write-through|cache-mode: write-through, cache-file: $T/no-such-dir/cache.img|" \
  "$T/none.yaml" > "$T/broken.yaml"
TEST_CONFIGS+=("$T/repl.yaml")
S=$T/state/host1/vms/vm1/disk0

# Wait until the replication filter has shipped everything (journal,
# dirty regions, initial sync).
caught_up () {
  for _ in $(seq 300); do
    "$VAIOCTL" status "$T/repl.yaml" --json |
      jq -e '.vms[0].disks[0].chain[] | select(.class == "replication") | .stats.counters |
        .replica_connected == 1 and .journal_used_bytes == 0 and .dirty_bytes == 0
        and .resync_done_bytes == .resync_total_bytes' >/dev/null && return 0
    sleep 0.1
  done
  fail "replication did not catch up: $("$VAIOCTL" status "$T/repl.yaml" --json | jq -c '.vms[0].disks[0].chain')"
}
same_as_replica () { # WHAT
  local out
  out=$("$VAIOCTL" down "$T/repl.yaml" 2>&1)
  # A chain started by apply's swap must stop on SIGTERM like any other.
  grep -q "stopped (pid [0-9]*), flushed" <<<"$out" && ! grep -q "killed" <<<"$out" ||
    fail "$1: down did not stop the disk cleanly: $out"
  cmp "$T/vm1.img" "$T/rep.img" || fail "$1: the replica differs from the source"
  qemu-io -f raw -r "$T/rep.img" -c "read -P 0xbb 0 1M" >/dev/null || fail "$1: the replica lacks B"
  pass "$1: the replica equals the source (B included)"
}

# Through apply.
"$VAIOCTL" up "$T/repl.yaml" >/dev/null
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0xaa 0 1M" >/dev/null
caught_up
out=$("$VAIOCTL" apply "$T/none.yaml" 2>&1) || fail "apply none: $out"
grep -q "swapped chain" <<<"$out" || fail "removing replication did not swap: $out"
[ -d "$S/replication" ] || fail "the replication state is gone already"
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0xbb 0 1M" >/dev/null
out=$("$VAIOCTL" apply "$T/repl.yaml" 2>&1) || fail "apply repl: $out"
grep -q "swapped chain" <<<"$out" || fail "re-adding replication did not swap: $out"
caught_up
same_as_replica "apply: remove, write, re-add"
grep -q "vm1/disk0: replication state set aside ($S/replication -> $S/replication.stale-[0-9-]*): the last chain started on this disk ran without replication" <<<"$out" ||
  fail "re-adding replication did not say it set its state aside: $out"

# Through down/edit/up.
"$VAIOCTL" up "$T/repl.yaml" >/dev/null
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0xaa 2M 1M" >/dev/null
caught_up
"$VAIOCTL" down "$T/repl.yaml" >/dev/null
"$VAIOCTL" up "$T/none.yaml" >/dev/null
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0xbb 2M 1M" >/dev/null
"$VAIOCTL" down "$T/none.yaml" >/dev/null
out=$("$VAIOCTL" up "$T/repl.yaml" 2>&1) || fail "up repl: $out"
caught_up
same_as_replica "down/edit/up: remove, write, re-add"
grep -q "replication state set aside" <<<"$out" || fail "up did not say it set the stale state aside: $out"
qemu-io -f raw -r "$T/rep.img" -c "read -P 0xbb 2M 1M" >/dev/null || fail "the replica lacks the second B"

# Unchanged classes keep their state: a plain restart does not resync.
"$VAIOCTL" up "$T/repl.yaml" >/dev/null
n=$(ls -d "$S"/replication.stale-* | wc -l)
"$VAIOCTL" down "$T/repl.yaml" >/dev/null
out=$("$VAIOCTL" up "$T/repl.yaml" 2>&1)
grep -q "set aside" <<<"$out" && fail "a restart with the same classes set state aside: $out"
[ "$(ls -d "$S"/replication.stale-* | wc -l)" = "$n" ] || fail "state set aside on a plain restart"
pass "a restart with the same chain keeps its replication state"

# A swap to a chain without replication that fails to start rolls back
# to the chain with replication: its state is still current (the failed
# chain served nothing), so it is not set aside and nothing resyncs.
caught_up
out=$("$VAIOCTL" apply "$T/broken.yaml" --timeout 3 2>&1) && fail "apply to a broken chain succeeded: $out"
grep -q "vm1/disk0: rolled back to the previous chain" <<<"$out" || fail "no rollback: $out"
grep -q "set aside" <<<"$out" && fail "the rollback set current state aside: $out"
grep -q "^class replication$" "$S/chain-classes" || fail "the failed start's record was kept: $(cat "$S/chain-classes")"
caught_up
pass "a failed swap's rollback keeps the replication state"

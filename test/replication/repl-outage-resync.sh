#!/bin/bash
# Replica outage under load: the journal (small here) overflows, the
# filter switches to the persisted dirty bitmap without failing a single
# write, and when the replica is back the dirty regions are resynchronised
# (progress in stats) and journaling resumes.  Then a kill -9 in the middle
# of a second resync: the bitmap survives and the resync completes.
. "$(dirname "$0")/lib.sh"

truncate -s 32M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock"
target=$(unix_uri "$T/rep.sock")
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-journal-size=256K repl-granularity=64K repl-rpo=1s
uri=$(unix_uri "$T/src.sock")
wait_in_sync "$T/state" 30
[ "$(stat_value "$T/state" over_rpo)" = 0 ] || fail "over RPO while in sync"

# Outage (the replica dies): 4 MiB of writes into a 256 KiB journal.  qemu-io must succeed.
kill9 "$REPLICA_PID"
qemu-io -f raw -t writeback -c "write -P 0x11 0 2M" -c "write -P 0x22 16M 2M" \
  -c flush "$uri" >/dev/null || fail "a write failed during the outage"
wait_stat "$T/state" tracking 1 5
[ "$(stat_value "$T/state" journal_overflows)" -ge 1 ] || fail "no overflow counted"
wait_stat_min "$T/state" dirty_bytes $((4 << 20)) 5
wait_stat "$T/state" replica_connected 0 5
# Lag grows past the 1 s RPO while the replica is away.
wait_stat "$T/state" over_rpo 1 10

# Replica back: resync, then journaling again.
start_replica "$T/rep.img" "$T/rep.sock"
wait_in_sync "$T/state" 60
[ "$(stat_value "$T/state" resync_done_bytes)" -ge $((4 << 20)) ] ||
  fail "resync progress not reported"
wait_stat "$T/state" over_rpo 0 5
qemu-io -f raw -t writeback -c "write -P 0x33 1M 64k" "$uri" >/dev/null
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs after resync"

# Second outage, then a crash while the bitmap is dirty.
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-journal-size=256K repl-granularity=64K
kill9 "$REPLICA_PID"
qemu-io -f raw -t writeback -c "write -P 0x44 4M 3M" "$uri" >/dev/null ||
  fail "a write failed during the second outage"
wait_stat "$T/state" tracking 1 5
kill9 "$SOURCE_PID"
start_replica "$T/rep.img" "$T/rep.sock"
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-journal-size=256K repl-granularity=64K
wait_in_sync "$T/state" 60
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs after crash + resync"
echo "ok: outage absorbed by the bitmap, resync converged"

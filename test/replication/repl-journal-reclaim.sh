#!/bin/bash
# The journal is a ring: while the replica keeps up, checkpoints (replica
# flush, new tail, fdatasync by the journal sync thread) free its space,
# so a workload many times the journal's size never overflows it.  A
# clean shutdown leaves the tail at the head: a restart on the
# same state directory has nothing to replay.
. "$(dirname "$0")/lib.sh"

truncate -s 32M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock"
start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")" \
  repl-mode=async repl-journal-size=1M
wait_in_sync "$T/state" 30
uri=$(unix_uri "$T/src.sock")

# About 16 MiB of writes, 16 times the journal, at a rate the replica
# carries easily.
fio --name=w --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k-64k \
  --iodepth=4 --size=32M --rate=4m --runtime=4 --time_based=1 \
  --randrepeat=0 --output=/dev/null || fail "fio failed"

shipped=$(stat_value "$T/state" shipped_bytes)
[ "$shipped" -ge $(( 8 * 1024 * 1024 )) ] ||
  fail "only $shipped bytes shipped: the workload did not run"
[ "$(stat_value "$T/state" journal_overflows)" = 0 ] ||
  fail "a 1 MiB journal overflowed although the replica kept up"
[ "$(stat_value "$T/state" tracking)" = 0 ] ||
  fail "the filter left journaling for change tracking"

stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"

start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")" \
  repl-mode=async repl-journal-size=1M
wait_stat "$T/state" tracking 0 30
replayed=$(stat_value "$T/state" replayed_records)
[ "$replayed" = 0 ] ||
  fail "restart after a clean stop replayed $replayed records (durable tail behind the head)"
echo "ok: 16 MiB through a 1 MiB journal, no overflow, nothing to replay after a clean stop"

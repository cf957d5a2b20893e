#!/bin/bash
# barrier_waits counts the records that had to wait for the replica to
# acknowledge an earlier record before they could be sent: a write that
# arrived after another completed on the source must not be in flight
# with it (write order).  The replica is slowed (20 ms a write), so:
#   - QD1 writes, each sent before the last one is on the replica, each
#     wait: one replica round trip per record;
#   - with the source slowed more (100 ms a write), each refill write of
#     a QD16 stream is ready long after the write it followed reached the
#     replica: (almost) none waits.
. "$(dirname "$0")/lib.sh"

truncate -s 16M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock" --filter=delay delay-write=20ms
target=$(unix_uri "$T/rep.sock")
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-mode=async repl-journal-size=16M
wait_in_sync "$T/state" 30

# counts: "RECORDS WAITS" so far, on the running source.
counts () {
  echo "$(stat_value "$T/state" shipped_records) $(stat_value "$T/state" barrier_waits)"
}

# write_and_count QD N: N 4k random writes at queue depth QD, until they
# are on the replica; prints "RECORDS WAITS" for them.
write_and_count () {
  local rec0 w0 rec1 w1
  read -r rec0 w0 <<<"$(counts)"
  fio --name=w --ioengine=nbd --uri="$(unix_uri "$T/src.sock")" \
    --rw=randwrite --bs=4k --iodepth="$1" --iodepth_batch_submit="$1" \
    --number_ios="$2" --size=16M --randrepeat=0 --output=/dev/null ||
    fail "fio (QD$1) failed"
  wait_in_sync "$T/state" 60
  read -r rec1 w1 <<<"$(counts)"
  echo "$((rec1 - rec0)) $((w1 - w0))"
}

read -r records waits <<<"$(write_and_count 1 100)"
echo "QD1, replica 20 ms: $records records, $waits waited for a barrier"
[ "$records" = 100 ] || fail "QD1: $records records shipped, not 100"
# The first may find the one before it acknowledged; a machine stalled
# for 20 ms between two writes may let a few more through.
[ "$waits" -ge 90 ] && [ "$waits" -le 100 ] ||
  fail "QD1: $waits of 100 records waited for a barrier (expected 90-100)"

stop_pid "$SOURCE_PID"
SOURCE_FILTERS=(--filter=delay)
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-mode=async repl-journal-size=16M delay-write=100ms
wait_in_sync "$T/state" 30
read -r records waits <<<"$(write_and_count 16 320)"
echo "QD16, source 100 ms: $records records, $waits waited for a barrier"
[ "$records" = 320 ] || fail "QD16: $records records shipped, not 320"
[ "$waits" -le 32 ] ||
  fail "QD16: $waits of 320 records waited for a barrier, though each was ready 100 ms after the one it followed"

stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
echo "ok: barrier_waits counts the records that waited for a replica round trip"

#!/bin/bash
# Writes arriving while an outage resync runs: the journal overflows
# while the replica is down, the replica comes back (slowed by the delay
# filter so that the bitmap resync takes seconds), and fio writes random
# 4k-64k blocks all over the disk while the dirty regions are copied.  A
# region copied before a write lands on it must be copied again: after
# the resync converges and a clean stop, the replica equals the source.
. "$(dirname "$0")/lib.sh"

SLOW=(--filter=delay delay-write=100ms)
# Source writes slowed too: a write marks its bits before it reaches the
# source, and a copy of the region in that window reads the old data.
SOURCE_FILTERS=(--filter=delay)
truncate -s 32M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock" "${SLOW[@]}"
start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")" \
  repl-journal-size=256K repl-granularity=64K delay-write=50ms
uri=$(unix_uri "$T/src.sock")
wait_in_sync "$T/state" 30

# Outage: 12 MiB into a 256 KiB journal, so the filter tracks a bitmap.
kill9 "$REPLICA_PID"
qemu-io -f raw -t writeback -c "write -P 0x5a 0 12M" -c flush "$uri" \
  >/dev/null || fail "a write failed during the outage"
wait_stat "$T/state" tracking 1 5
wait_stat_min "$T/state" dirty_bytes $((12 << 20)) 5

# Replica back: the resync starts; fio writes while it runs.
start_replica "$T/rep.img" "$T/rep.sock" "${SLOW[@]}"
wait_stat_min "$T/state" resync_done_bytes 1 10
done0=$(stat_value "$T/state" resync_done_bytes)
fio --name=w --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k-64k \
  --iodepth=8 --size=32M --runtime=4 --time_based=1 --randrepeat=0 \
  --output=/dev/null &
fio_pid=$!
PIDS+=("$fio_pid")
# Overlap: while fio runs, the filter is still tracking and the resync
# still progresses (gauges are published every 100 ms).
overlap=0
while kill -0 "$fio_pid" 2>/dev/null; do
  tracking=$(stat_value "$T/state" tracking)
  done_now=$(stat_value "$T/state" resync_done_bytes)
  if kill -0 "$fio_pid" 2>/dev/null && [ "$tracking" = 1 ] &&
    [ "${done_now:-0}" -gt "$done0" ]; then
    overlap=$((overlap + 1))
  fi
  sleep 0.2
done
wait "$fio_pid" || fail "fio failed (a write failed during the resync)"
[ "$overlap" -ge 3 ] ||
  fail "fio's writes did not overlap the resync ($overlap samples): the test proves nothing"
echo "fio wrote during the resync ($overlap samples with tracking=1 and progress)"

wait_in_sync "$T/state" 90
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs after a resync with concurrent writes"
echo "ok: resync with concurrent writes converged, replica identical"

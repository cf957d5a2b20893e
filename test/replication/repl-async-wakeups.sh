#!/bin/bash
# No lost wake-up: in async mode a writer wakes the shipper only when its
# entry is the next one to go and its barrier is acknowledged (state_end);
# every other entry goes out with that one or after an acknowledgement.
# A wrong rule leaves ready entries until the shipper's 50 ms poll
# timeout, so the median lag of a light, concurrent write stream shows it
# (tens of milliseconds instead of a fraction of one).
. "$(dirname "$0")/lib.sh"

truncate -s 16M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock"
start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")" \
  repl-mode=async repl-journal-size=16M
wait_in_sync "$T/state" 30

# QD4, so that writes complete out of order and entries wait for barriers.
fio --name=w --ioengine=nbd --uri="$(unix_uri "$T/src.sock")" --rw=randwrite \
  --bs=4k --iodepth=4 --rate_iops=400 --size=16M --runtime=3 --time_based=1 \
  --randrepeat=0 --output=/dev/null || fail "fio failed"
wait_stat_min "$T/state" shipped_records 1000 10
wait_in_sync "$T/state" 30
p50=$(stat_value "$T/state" lag_p50_us)
echo "lag p50 ${p50} us over $(stat_value "$T/state" shipped_records) records"
[ -n "$p50" ] && [ "$p50" -lt 16384 ] ||
  fail "median replication lag ${p50} us: entries waited for the shipper's poll timeout"
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
echo "ok: the shipper was woken for every entry it could send"

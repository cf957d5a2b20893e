#!/bin/bash
# A replica that crashes loses what it acknowledged but had not flushed.
# The source keeps every record in its journal until a checkpoint (a
# replica flush) has made it durable there, and sends those records
# again, in order, when the replica is back.  The replica here holds
# writes in nbdkit's cache filter (write-back) until a flush, so kill -9
# loses them; checkpoints are an hour apart so none makes them durable
# first.
. "$(dirname "$0")/lib.sh"

truncate -s 8M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock" --filter=cache cache=writeback
target=$(unix_uri "$T/rep.sock")
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-mode=async repl-journal-size=8M repl-checkpoint=1h
wait_in_sync "$T/state" 30

# Four writes, no flush: acknowledged by the replica, not durable there.
"$PY" - "$(unix_uri "$T/src.sock")" <<'PYEOF'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for i in range(4):
    h.pwrite(bytes([0x41 + i]) * 65536, i << 20)
h.shutdown()
PYEOF
wait_stat_min "$T/state" shipped_records 4 10
wait_stat "$T/state" lag_us 0 10

kill9 "$REPLICA_PID"
# The premise: the replica's crash really lost the writes.
if qemu-io -f raw -r -c "read -P 0x41 0 64k" "$T/rep.img" | grep -q "read 65536"; then
  fail "setup: the replica held the writes before its crash (no loss to recover)"
fi

start_replica "$T/rep.img" "$T/rep.sock" --filter=cache cache=writeback
wait_stat_min "$T/state" reconnects 1 20
wait_stat "$T/state" lag_us 0 20
# A clean shutdown ends with a checkpoint: the replica flushes.
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" ||
  fail "replica lost writes it had acknowledged before its crash"
for i in 0 1 2 3; do
  qemu-io -f raw -r -c "read -P $((0x41 + i)) $((i << 20)) 64k" "$T/rep.img" |
    grep -q "read 65536" || fail "write $i missing on the replica"
done
echo "ok: writes the crashed replica had not flushed were sent again"

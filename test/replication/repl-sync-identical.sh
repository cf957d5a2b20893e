#!/bin/bash
# Sync mode: every acknowledged write is already on the replica at the
# moment of the ack (read back from the replica image right after each
# write); after a random workload and a clean shutdown the replica is
# byte-identical.
. "$(dirname "$0")/lib.sh"

truncate -s 4M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock" --filter=log logfile="$T/rep-requests.log"
start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")" \
  repl-mode=sync repl-journal-size=8M
uri=$(unix_uri "$T/src.sock")

"$PY" "$REPLTEST" sync "$uri" "$T/rep.img" 400 || fail "sync property violated"
fio --name=w --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k-32k \
  --iodepth=8 --size=4M --runtime=2 --time_based=1 --randrepeat=0 \
  --output=/dev/null || fail "fio failed"
[ "$(stat_value "$T/state" sync_mode)" = 1 ] || fail "stats do not say sync"
# qemu-io's default writethrough mode sends FUA writes: the replica must
# receive them as FUA writes too (durable on both sides at the ack).
qemu-io -f raw -c "write -P 0x42 512k 8k" "$uri" >/dev/null || fail "qemu-io failed"
grep -q 'Write id=.* offset=0x80000 count=0x2000 fua=1' "$T/rep-requests.log" ||
  fail "the replica did not get the FUA write as FUA"

stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
echo "ok: sync mode replica identical"

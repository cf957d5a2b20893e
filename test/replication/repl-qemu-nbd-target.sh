#!/bin/bash
# Any NBD server as the replica: qemu-nbd (export over a Unix socket)
# receives writes, zeros and trims, and converges byte-identical.
. "$(dirname "$0")/lib.sh"

truncate -s 8M "$T/src.img" "$T/rep.img"
qemu-nbd -f raw -k "$T/rep.sock" -t --cache=writeback "$T/rep.img" \
  2>>"$T/replica.log" &
PIDS+=("$!")
wait_socket "$T/rep.sock"
start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")"
uri=$(unix_uri "$T/src.sock")
wait_in_sync "$T/state" 30
qemu-io -f raw -t writeback -c "write -P 0x21 0 1M" -c "write -z 256k 64k" \
  -c "discard 512k 128k" -c "write -P 0x22 7M 1M" -c flush "$uri" >/dev/null ||
  fail "qemu-io failed"
fio --name=w --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k-16k \
  --iodepth=8 --size=8M --runtime=1 --time_based=1 --randrepeat=0 \
  --output=/dev/null || fail "fio failed"
wait_in_sync "$T/state" 30
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
echo "ok: qemu-nbd replica identical"

#!/bin/bash
# qemu-storage-daemon as the replica (an NBD export of a raw file over a
# Unix socket, named "disk"): an async random workload of writes, zeros
# and trims, a clean stop of both, and the replica is byte-identical.
. "$(dirname "$0")/lib.sh"

truncate -s 16M "$T/src.img" "$T/rep.img"
qemu-storage-daemon \
  --blockdev "driver=file,node-name=f0,filename=$T/rep.img" \
  --nbd-server "addr.type=unix,addr.path=$T/rep.sock" \
  --export type=nbd,id=e0,node-name=f0,name=disk,writable=on \
  2>>"$T/replica.log" &
QSD_PID=$!
PIDS+=("$QSD_PID")
wait_socket "$T/rep.sock"
start_source "$T/src.img" "$T/src.sock" "$T/state" \
  "nbd+unix:///disk?socket=$T/rep.sock" repl-mode=async repl-journal-size=64M
uri=$(unix_uri "$T/src.sock")
wait_in_sync "$T/state" 30

ship_workload "$uri" 9M 0x5d

stop_pid "$SOURCE_PID"
stop_pid "$QSD_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
qemu-io -f raw -r -c "read -P 0x5d 9M 64k" "$T/rep.img" | grep -q 'read 65536' ||
  fail "replica lacks the last write"
echo "ok: qemu-storage-daemon replica identical"

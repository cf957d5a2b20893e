#!/bin/bash
# A replica reached by a plain nbd://127.0.0.1:PORT URI (nbdkit on a TCP
# port): an async random workload of writes, zeros and trims, a clean
# stop, and the replica is byte-identical.
. "$(dirname "$0")/lib.sh"

truncate -s 16M "$T/src.img" "$T/rep.img"
port=$(free_port)
# nbdkit writes its pid file once it accepts connections.
nbdkit -f -i 127.0.0.1 -p "$port" -P "$T/rep.pid" file "$T/rep.img" \
  2>>"$T/replica.log" &
REPLICA_PID=$!
PIDS+=("$REPLICA_PID")
for _ in $(seq 100); do [ -s "$T/rep.pid" ] && break; sleep 0.1; done
[ -s "$T/rep.pid" ] || fail "the replica never listened on port $port"
start_source "$T/src.img" "$T/src.sock" "$T/state" "nbd://127.0.0.1:$port/" \
  repl-mode=async repl-journal-size=64M
uri=$(unix_uri "$T/src.sock")
wait_in_sync "$T/state" 30
[ "$(stat_value "$T/state" replica_connected)" = 1 ] || fail "replica not connected"

ship_workload "$uri" 12M 0x6e

stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
qemu-io -f raw -r -c "read -P 0x6e 12M 64k" "$T/rep.img" | grep -q 'read 65536' ||
  fail "replica lacks the last write"
echo "ok: nbd://127.0.0.1:$port replica identical"

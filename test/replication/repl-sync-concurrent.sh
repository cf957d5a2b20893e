#!/bin/bash
# Sync mode under concurrency: sixteen writes in flight (nbdkit runs them
# on its worker threads at once).  A writer drives the replica connection itself when it is free
# and hands over to the shipper thread when it is not; either way, once
# every write is acknowledged the replica already holds all of them (it
# is compared with the source before any shutdown), and each block holds
# its last acknowledged write.
. "$(dirname "$0")/lib.sh"

truncate -s 8M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock" --filter=delay delay-write=0.2ms
start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")" \
  repl-mode=sync repl-journal-size=16M
wait_in_sync "$T/state" 30
uri=$(unix_uri "$T/src.sock")

# One client: the check below needs one order of acknowledgements.
"$PY" "$REPLTEST" writer "$uri" "$T/log" 1200 1 16 || fail "writer failed"

# Every write is acknowledged, so in sync mode every one is on the
# replica now, while the source still runs.
cmp "$T/src.img" "$T/rep.img" || fail "an acknowledged write is not on the replica"
"$PY" "$REPLTEST" verify "$T/rep.img" "$T/log" || fail "replica block wrong"
[ "$(stat_value "$T/state" shipped_records)" -ge 1200 ] ||
  fail "fewer records shipped than writes acknowledged"
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source after stop"
echo "ok: sync mode, QD16: every acknowledged write on the replica"

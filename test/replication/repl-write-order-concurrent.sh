#!/bin/bash
# Write order under concurrency: with 8 writes in flight (and flushes
# among them) writes reach the replica in any order the source could
# have completed them in, never one issued after another completed
# without that other.  The replica, sampled at random moments while it
# lags, always holds a state the source went through.
. "$(dirname "$0")/lib.sh"

truncate -s 16M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock" --filter=delay delay-write=1ms
start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")" \
  repl-journal-size=32M
# The first (full) sync must finish first: it copies in any order.
wait_in_sync "$T/state" 30
"$PY" "$REPLTEST" causal "$(unix_uri "$T/src.sock")" "$T/rep.img" 3000 8 \
  "$REPLICA_PID" ||
  fail "replica showed a state the source never went through"
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
echo "ok: write order kept with 8 writes in flight"

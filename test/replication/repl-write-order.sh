#!/bin/bash
# Write-order fidelity: while QD1 writes run, the replica sampled at random
# moments always equals the source as it was after some write (a prefix of
# the write stream).  The replica is slowed down so that it lags.
. "$(dirname "$0")/lib.sh"

truncate -s 1M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock" --filter=delay delay-write=1ms
start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")" \
  repl-journal-size=8M
# The first (full) sync must finish first: it copies in any order.
wait_in_sync "$T/state" 30
"$PY" "$REPLTEST" prefix "$(unix_uri "$T/src.sock")" "$T/rep.img" 1500 ||
  fail "replica was not a prefix state"
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
echo "ok: write order kept"

#!/bin/bash
# Crash safety: KILL_TRIALS times (default 20), kill -9 the source server at
# a random moment of a logged write workload, QD1 or QD8 (the replica is
# slowed so that the journal holds unshipped records), restart it, shut it down
# cleanly: the replica must equal the source, and every block must hold
# its last acknowledged write (or the one write that was in flight).
. "$(dirname "$0")/lib.sh"

trials=${KILL_TRIALS:-20}
# Slow source writes too (below the filter): kills then often land
# between the journal append and the source write, the window that the
# journal replay at restart must close.
SOURCE_FILTERS=(--filter=delay)
truncate -s 4M "$T/src.img" "$T/rep.img"
# One worker thread on the replica: nbdkit 1.32 aborts (assertion
# `sock >= 0' in raw_send_socket) when one worker's reply fails because
# the client died and another worker then sends on the closed socket,
# which every kill -9 here invites.
start_replica "$T/rep.img" "$T/rep.sock" --threads=1 --filter=delay \
  delay-write=2ms
target=$(unix_uri "$T/rep.sock")
logs=()
replayed=0

for trial in $(seq "$trials"); do
  rm -f "$T/state/stats"
  start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
    repl-journal-size=8M delay-write=3ms
  log=$T/writes.$trial
  logs+=("$log")
  # Odd trials at QD1, even ones with 8 writes in flight: journal
  # records are then written in parallel, and a kill can leave holes.
  "$PY" "$REPLTEST" writer "$(unix_uri "$T/src.sock")" "$log" 100000 \
    "$trial" $(( trial % 2 ? 1 : 8 )) 2>/dev/null &
  writer=$!
  # Let writes flow (the server may still be replaying), then kill at a
  # random moment.
  for i in $(seq 100); do
    grep -q '^A ' "$log" 2>/dev/null && break
    sleep 0.1
  done
  # A write was acked, so recovery (after_fork) is over: count what it
  # replayed.
  replayed=$(( replayed + $(stat_value "$T/state" replayed_records) ))
  sleep "0.$(( RANDOM % 5 + 1 ))"
  kill9 "$SOURCE_PID"
  wait "$writer" 2>/dev/null || true
  grep -q '^A ' "$log" || fail "trial $trial: no write was acknowledged"
done

# The crashes did leave unshipped records behind (the path under test).
[ "$replayed" -gt 0 ] || fail "no trial left journal records to replay"

# Restart once more: recovery replays and ships what the last crash left.
SOURCE_FILTERS=()
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-journal-size=8M
wait_in_sync "$T/state" 60
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
"$PY" "$REPLTEST" verify "$T/src.img" "${logs[@]}" || fail "lost writes"
echo "ok: $trials kill -9 trials converged ($replayed records replayed), nothing lost"

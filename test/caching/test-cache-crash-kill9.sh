#!/bin/bash
# kill -9 of nbdkit under a write-back load, 20 times at random moments
# (destaging runs concurrently: the dirty watermarks are low).  After each
# crash a new server on the same cache must return every write that was
# flushed or FUA-acknowledged, and no stale or torn data.  Every other
# trial the checking server is itself killed, so the next trial starts
# from a crashed cache again.  At the end a clean shutdown destages
# everything and the backing image alone must hold exactly what was read.
# Trials alternate the cache's I/O mode (O_DIRECT and page cache), and the
# checking server uses the other one: a cache written in one mode opens
# in the other.
. "$VAIO_SRC/test/caching/lib.sh"

TRIALS=${CRASH_TRIALS:-20}
truncate -s 8M "$TMP/disk.img"
sock=$TMP/sock
args=(file "$TMP/disk.img" cache-state-dir="$TMP/state" cache-size=4M
      cache-mode=write-back cache-dirty-high=20 cache-dirty-low=5)

recovered=0
for trial in $(seq "$TRIALS"); do
  : > "$TMP/journal"
  if [ $((trial % 2)) = 1 ]; then direct=true undirect=false; else direct=false undirect=true; fi
  start_server "$sock" "${args[@]}" cache-direct=$direct
  $PY "$HERE/crash-ops.py" write "$(uri_of "$sock")" "$TMP/journal" "$trial" &
  writer=$!
  # Let the load get going (bounded), then kill at a random moment.
  for _ in $(seq 200); do
    [ "$(wc -l < "$TMP/journal")" -ge 20 ] && break
    sleep 0.05
  done
  sleep "0.$((RANDOM % 5))$((RANDOM % 10))"
  kill -9 "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  wait "$writer" || { echo "writer failed" >&2; exit 1; }

  start_server "$sock" "${args[@]}" cache-direct=$undirect
  dirty=$("$STATS_GET" "$TMP/state/stats" dirty_bytes)
  [ "$dirty" -gt 0 ] && recovered=$((recovered + 1))
  echo -n "trial $trial: recovered $dirty dirty bytes; "
  $PY "$HERE/crash-ops.py" verify "$(uri_of "$sock")" "$TMP/journal" "$TMP/state.json"
  if [ $((trial % 2)) = 1 ]; then
    kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  else
    stop_server
  fi
done

# The test means something only if crashes left dirty data to recover.
[ "$recovered" -ge $((TRIALS / 2)) ] ||
  { echo "only $recovered of $TRIALS crashes left dirty data" >&2; exit 1; }

# Clean shutdown destages everything: the backing image is complete.
start_server "$sock" "${args[@]}"
stop_server
nbdkit -U - file "$TMP/disk.img" \
  --run "$PY $HERE/crash-ops.py verify \"\$uri\" $TMP/journal $TMP/state.json exact"

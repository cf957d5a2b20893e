#!/bin/bash
# Warm restart: after a clean stop, a restarted server hits on what was
# cached.  The hit ratio of a working set after the restart must equal
# the one before it (100%: the set fits), and the first, cold pass must
# miss every time (so the test can tell a warm cache from a cold one).
. "$VAIO_SRC/test/caching/lib.sh"

sock=$TMP/sock
uri=$(uri_of "$sock")
stats=$TMP/state/stats
head -c 32M /dev/urandom > "$TMP/disk.img"
args=(file "$TMP/disk.img" cache-state-dir="$TMP/state" cache-size=64M)

get () { "$STATS_GET" "$stats" "$1"; }
pass () { $PY "$HERE/read-set.py" "$uri" "$TMP/disk.img" 7 300 >/dev/null; }
# ratio H0 M0: hit ratio (percent) since counters were H0/M0.
ratio () {
  local h m
  h=$(($(get hits) - $1)); m=$(($(get misses) - $2))
  [ $((h + m)) -eq 300 ] || { echo "expected 300 reads, counted $((h + m))" >&2; exit 1; }
  echo $((h * 100 / (h + m)))
}

start_server "$sock" "${args[@]}"
cold=$(pass; ratio 0 0)
h1=$(get hits); m1=$(get misses)
before=$(pass; ratio "$h1" "$m1")
stop_server
ls -l "$TMP/state" | grep -q -- '-rw------- .* cache.img' ||
  { echo "cache file is not owner-only" >&2; ls -l "$TMP/state" >&2; exit 1; }

start_server "$sock" "${args[@]}"
after=$(pass; ratio 0 0)
stop_server
echo "hit ratio: cold $cold%, before restart $before%, after restart $after%"
[ "$cold" -eq 0 ] || { echo "cold pass should miss" >&2; exit 1; }
[ "$before" -eq 100 ] || { echo "second pass should hit" >&2; exit 1; }
[ "$after" -eq "$before" ] || { echo "warm restart lost the cache" >&2; exit 1; }

#!/bin/bash
# Eviction is scan resistant: a hot set of 10 blocks, read twice, stays
# cached through a one-pass scan of 200 other blocks in a 31-block cache
# (the scan is in random order, so the sequential bypass is not what
# saves it).  The control: the scan itself mostly misses.
. "$VAIO_SRC/test/caching/lib.sh"

sock=$TMP/sock
uri=$(uri_of "$sock")
head -c 16M /dev/urandom > "$TMP/disk.img"
start_server "$sock" file "$TMP/disk.img" cache-state-dir="$TMP/state" cache-size=2M
get () { "$STATS_GET" "$TMP/state/stats" "$1"; }
reads () { $PY "$HERE/read-set.py" "$uri" "$TMP/disk.img" "$1" "$2" >/dev/null; }

# Hot set: 10 blocks chosen by seed 1; scan: 200 blocks chosen by seed 2,
# minus any that happen to be hot.
reads 1 10
reads 1 10
h0=$(get hits)
reads 2 200
scan_hits=$(($(get hits) - h0))
h1=$(get hits)
reads 1 10
hot_hits=$(($(get hits) - h1))
stop_server
echo "scan of 200 blocks: $scan_hits hits; hot set afterwards: $hot_hits/10 hits"
[ "$scan_hits" -le 20 ] || { echo "the scan should mostly miss" >&2; exit 1; }
[ "$hot_hits" -eq 10 ] || { echo "the scan flushed the hot set" >&2; exit 1; }

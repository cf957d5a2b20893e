#!/bin/bash
# On a slow backing image (nbdkit's delay filter, 300 ms per read) a
# cache hit does not touch the backing: 8 hits take less than one
# backing read, while the 8 cold reads took 8 backing reads.
. "$VAIO_SRC/test/caching/lib.sh"

sock=$TMP/sock
uri=$(uri_of "$sock")
head -c 8M /dev/urandom > "$TMP/disk.img"
start_server "$sock" file "$TMP/disk.img" cache-state-dir="$TMP/state" \
  cache-size=4M --filter=delay rdelay=300ms

cold=$($PY "$HERE/read-set.py" "$uri" "$TMP/disk.img" 3 8)
hot=$($PY "$HERE/read-set.py" "$uri" "$TMP/disk.img" 3 8)
hits=$("$STATS_GET" "$TMP/state/stats" hits)
stop_server
echo "8 reads: cold ${cold} ms, hot ${hot} ms, hits $hits"
[ "$cold" -ge 2400 ] || { echo "cold reads were not delayed: bad test setup" >&2; exit 1; }
[ "$hits" -eq 8 ] || { echo "expected 8 hits" >&2; exit 1; }
[ "$hot" -lt 300 ] || { echo "hits took as long as a backing read" >&2; exit 1; }

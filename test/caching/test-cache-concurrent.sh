#!/bin/bash
# Four clients at once, each a random mixed workload on its own quarter of
# one disk, through one tiny shared cache (15 blocks: constant eviction,
# fills and destaging racing across connections and worker threads).
# Every read matches the reference; at the end (destage-on-close) the
# backing image equals the reference.
. "$VAIO_SRC/test/caching/lib.sh"

sock=$TMP/sock
for mode in write-back write-through; do
  head -c 16M /dev/urandom > "$TMP/disk.img"
  cp "$TMP/disk.img" "$TMP/ref.img"
  rm -rf "$TMP/state"
  start_server "$sock" file "$TMP/disk.img" cache-state-dir="$TMP/state" \
    cache-size=1M cache-mode=$mode cache-seq-cutoff=256K \
    cache-dirty-high=40 cache-dirty-low=20
  pids=()
  for q in 0 1 2 3; do
    $PY "$HERE/random-ops.py" "$(uri_of "$sock")" "$TMP/ref.img" $((q + 10)) 800 \
      $((q * 4194304)) 4194304 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  stop_server
  cmp "$TMP/disk.img" "$TMP/ref.img"
  echo "$mode: 4 concurrent clients, backing image equals the reference"
done

#!/bin/bash
# Random mixed read/write/trim/zero/flush/FUA workload through vaio-cache,
# compared byte for byte with the same ops on a plain reference file, in
# each cache mode.  The cache is tiny (15 blocks) so eviction, fills of
# partial blocks, destaging and the sequential bypass all happen.  Half
# way, the server is restarted (warm cache; in write-back with dirty data
# kept over the restart, then destaged by the background destager).  At the end the backing image itself must equal
# the reference (destage-on-close).  Every mode runs with an O_DIRECT
# cache (io_uring) and a buffered one (plain syscalls).
. "$VAIO_SRC/test/caching/lib.sh"

for mode in write-through write-back write-around; do
for direct in true false; do
  d=$TMP/$mode-$direct
  mkdir -p "$d"
  # Not a multiple of the cache block: the last block is partial.
  head -c $((8 * 1048576 + 1234)) /dev/urandom > "$d/disk.img"
  cp "$d/disk.img" "$d/ref.img"
  common=(file "$d/disk.img" cache-state-dir="$d/state" cache-size=1M
          cache-mode=$mode cache-seq-cutoff=256K cache-dirty-high=40
          cache-dirty-low=20 cache-direct=$direct)

  # First half: no background destaging, no destage at close, so in
  # write-back dirty blocks are still in the cache at the restart.
  nbdkit -U - --filter="$FILTER" "${common[@]}" cache-destage-on-close=false \
    cache-dirty-high=100 \
    --run "$PY $HERE/random-ops.py \"\$uri\" $d/ref.img 1 1200"
  if [ $mode = write-back ] && cmp -s "$d/disk.img" "$d/ref.img"; then
    echo "write-back, cache-direct=$direct: expected dirty blocks kept in the cache, none were" >&2
    exit 1
  fi
  nbdkit -U - --filter="$FILTER" "${common[@]}" \
    --run "$PY $HERE/random-ops.py \"\$uri\" $d/ref.img 2 1200"
  cmp "$d/disk.img" "$d/ref.img"
  echo "$mode, cache-direct=$direct: backing image equals the reference"
done
done

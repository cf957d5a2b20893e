#!/bin/bash
# Corrupted or foreign cache metadata gives a clear error (when the cache
# may hold dirty data) or a clean discard (when it held none), never
# wrong data.  A torn copy of a metadata record (one of the two copies
# bad) falls back to the other copy and loses nothing.
. "$VAIO_SRC/test/caching/lib.sh"

sock=$TMP/sock
uri=$(uri_of "$sock")
cache=$TMP/state/cache.img
args=(file "$TMP/disk.img" cache-state-dir="$TMP/state" cache-size=4M
      cache-mode=write-back cache-dirty-high=100)

qio () { qemu-io -t writeback -f raw "$@" "$uri" >/dev/null; }

# corrupt OFFSET: flip one byte of the cache file.
corrupt () {
  local b
  b=$(od -An -tu1 -j "$1" -N1 "$cache" | tr -d ' ')
  printf "$(printf '\\%03o' $(((b ^ 0x5a) & 255)))" |
    dd of="$cache" bs=1 seek="$1" conv=notrunc status=none
}
MD0=(8192 12288) # the two copies of metadata block 0
SB=(0 4096)      # the two copies of the superblock
seq_of () { od -An -tu8 -j $(($1 + 24)) -N8 "$cache" | tr -d ' '; }

# fresh_dirty: a cache holding two dirty blocks (flushed), then kill -9.
fresh_dirty () {
  rm -rf "$TMP/state"; truncate -s 0 "$TMP/disk.img"; truncate -s 8M "$TMP/disk.img"
  start_server "$sock" "${args[@]}"
  qio -c "write -P 0x5a 0 64k" -c "write -P 0x5b 1M 64k" -c flush
  kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
}

# expect_refusal PATTERN: the server must refuse to start, saying PATTERN,
# and leave the backing image untouched.
expect_refusal () {
  cp "$TMP/disk.img" "$TMP/before.img"
  rm -f "$sock"
  if timeout 20 nbdkit -f -U "$sock" --filter="$FILTER" "$@" \
       2> "$TMP/err" </dev/null; then
    echo "nbdkit started on a corrupt cache" >&2; exit 1
  fi
  grep -q -- "$PATTERN" "$TMP/err" ||
    { echo "error does not say '$PATTERN':" >&2; cat "$TMP/err" >&2; exit 1; }
  grep -q "$cache" "$TMP/err" ||
    { echo "error does not name the cache file" >&2; exit 1; }
  cmp "$TMP/disk.img" "$TMP/before.img"
  echo "refused: $(grep -o 'vaio-cache: cache.*' "$TMP/err" | head -1)"
}

# 1. Dirty data, metadata block 0 corrupt in both copies: refuse.
fresh_dirty
corrupt "${MD0[0]}"; corrupt $((MD0[1] + 100))
PATTERN="metadata block 0 corrupt" expect_refusal "${args[@]}"

# 2. Dirty data, superblock corrupt in both copies: refuse.
fresh_dirty
corrupt $((SB[0] + 60)); corrupt $((SB[1] + 60))
PATTERN="superblock corrupt" expect_refusal "${args[@]}"

# 3. Dirty data, cache of another disk (size, then disk id): refuse.
fresh_dirty
truncate -s 16M "$TMP/disk.img"
PATTERN="another size" expect_refusal "${args[@]}"
truncate -s 8M "$TMP/disk.img"
PATTERN="another disk" expect_refusal "${args[@]}" cache-disk-id=other

# 4. A torn metadata write (the newest copy of block 0 bad) falls back
#    to the previous copy: the write flushed before it is all there, the
#    write whose flush was "torn" is either wholly there or wholly not.
fresh_dirty
start_server "$sock" "${args[@]}"
qio -c "write -P 0x5c 2M 64k" -c flush
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
s0=$(seq_of "${MD0[0]}"); s1=$(seq_of "${MD0[1]}")
if [ "$s0" -gt "$s1" ]; then corrupt $((MD0[0] + 300)); else corrupt $((MD0[1] + 300)); fi
start_server "$sock" "${args[@]}"
qemu-io -f raw -c "read -P 0x5a 0 64k" -c "read -P 0x5b 1M 64k" "$uri" >/dev/null
qemu-io -f raw -c "read -P 0x5c 2M 64k" "$uri" | grep -q "Pattern verification failed" &&
  qemu-io -f raw -c "read -P 0 2M 64k" "$uri" | grep -q "Pattern verification failed" &&
  { echo "torn metadata: block at 2M is neither old nor new" >&2; exit 1; }
stop_server
echo "torn copy: fell back to the previous durable metadata"

# 5. Clean shutdown with everything destaged, then corrupt metadata: the
#    cache is discarded, the data comes from the backing image.
fresh_dirty
start_server "$sock" "${args[@]}"
stop_server # destage-on-close: backing complete, cache clean, no dirty
corrupt "${MD0[0]}"; corrupt "${MD0[1]}"
start_server "$sock" "${args[@]}" -v 2> "$TMP/log"
qemu-io -f raw -c "read -P 0x5a 0 64k" -c "read -P 0x5b 1M 64k" \
  -c "read -P 0 64k 960k" "$uri" >/dev/null
stop_server
grep -q "held no dirty data: discarding it" "$TMP/log" ||
  { echo "no discard message" >&2; exit 1; }
echo "clean corrupt cache discarded, data intact"

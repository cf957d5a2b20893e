#!/bin/bash
# Bad parameters give a clear error naming the parameter, and nbdkit does
# not start.  A plain command line with only cache-file= (no state dir)
# works; files the filter creates are owner-only.
. "$VAIO_SRC/test/caching/lib.sh"

truncate -s 4M "$TMP/disk.img"

# refuse WHAT PARAMS...: nbdkit must fail and stderr must mention WHAT.
refuse () {
  local what=$1; shift
  if nbdkit -U - --filter="$FILTER" file "$TMP/disk.img" "$@" --run true \
       2> "$TMP/err"; then
    echo "accepted: $*" >&2; exit 1
  fi
  grep -q -- "$what" "$TMP/err" ||
    { echo "error for '$*' does not mention $what:" >&2; cat "$TMP/err" >&2; exit 1; }
}

st=cache-state-dir=$TMP/st
refuse "cache-mode=fast" "$st" cache-mode=fast
refuse "cache-block-size=3000" "$st" cache-block-size=3000
refuse "cache-block-size=8M" "$st" cache-block-size=8M
refuse "cache-size=12Q" "$st" cache-size=12Q
refuse "cache-size=0" "$st" cache-size=0
refuse "cache-dirty-high=101" "$st" cache-dirty-high=101
refuse "cache-dirty-low=60" "$st" cache-dirty-low=60 cache-dirty-high=50
refuse "cache-destage-on-close=maybe" "$st" cache-destage-on-close=maybe
refuse "cache-direct=sometimes" "$st" cache-direct=sometimes
refuse "cache-seq-cutoff=-1" "$st" cache-seq-cutoff=-1
refuse "cache-state-dir=" # no cache file and no state dir
refuse "$TMP/nodev" cache-device="$TMP/nodev"
refuse "cache-size=65536 is too small" cache-file="$TMP/tiny.img" cache-size=64K
echo "bad parameters refused with clear errors"

# A plain command line: cache-file only, no stats, data round trip.
nbdkit -U - --filter="$FILTER" file "$TMP/disk.img" cache-file="$TMP/c.img" \
  cache-size=2M cache-mode=write-back \
  --run 'qemu-io -t writeback -f raw -c "write -P 0x33 64k 8k" -c "read -P 0x33 64k 8k" "$uri"' >/dev/null
qemu-io -f raw -c "read -P 0x33 64k 8k" "$TMP/disk.img" | grep -q "Pattern verification failed" &&
  { echo "write-back data not destaged at close" >&2; exit 1; }
[ "$(stat -c %a "$TMP/c.img")" = 600 ] || { echo "cache file not 0600" >&2; exit 1; }
nbdkit -U - --filter="$FILTER" file "$TMP/disk.img" "$st" --run true
[ "$(stat -c %a "$TMP/st")" = 700 ] || { echo "state dir not 0700" >&2; exit 1; }
[ "$(stat -c %a "$TMP/st/cache.img")" = 600 ] || { echo "cache.img not 0600" >&2; exit 1; }
echo "plain command line works; files are owner-only"

# cache-device= on an existing, pre-sized target (here a file: the same
# code path as a block device except for the size ioctl) is used whole,
# never created or resized.
truncate -s 3M "$TMP/dev.img"
nbdkit -U - --filter="$FILTER" file "$TMP/disk.img" cache-device="$TMP/dev.img" \
  cache-mode=write-back \
  --run 'qemu-io -t writeback -f raw -c "write -P 0x44 1M 8k" -c "read -P 0x44 1M 8k" "$uri"' >/dev/null
[ "$(stat -c %s "$TMP/dev.img")" = 3145728 ] || { echo "cache device resized" >&2; exit 1; }
qemu-io -f raw -c "read -P 0x44 1M 8k" "$TMP/disk.img" | grep -q "Pattern verification failed" &&
  { echo "cache-device: data not destaged at close" >&2; exit 1; }
refuse "cache-device=$TMP/none" cache-device="$TMP/none"
echo "cache-device works on an existing target"

#!/bin/bash
# cache-direct=auto (the default) opens a block device O_DIRECT and a
# cache file through the page cache; true and false force either.  Data
# written through the cache on a loop device reads back after a restart.
. "$VAIO_SRC/test/caching/lib.sh"

truncate -s 8M "$TMP/disk.img"
truncate -s 8M "$TMP/dev.img"
loop=$(losetup -f --show "$TMP/dev.img")
trap 'losetup -d "$loop"; cleanup' EXIT

# mode_of PARAMS...: the I/O mode the filter chose, from its debug line.
mode_of () {
  nbdkit -v -U - --filter="$FILTER" file "$TMP/disk.img" "$@" --run true \
    2> "$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
  sed -n 's/.*vaio-cache: .*: \(O_DIRECT\|buffered (page cache)\)$/\1/p' "$TMP/err"
}

expect () {
  local want=$1; shift
  local got
  got=$(mode_of "$@")
  [ "$got" = "$want" ] || { echo "$*: expected $want, got '$got'" >&2; exit 1; }
  echo "$*: $got"
}

expect "buffered (page cache)" cache-file="$TMP/c1.img" cache-size=2M
expect "O_DIRECT" cache-file="$TMP/c2.img" cache-size=2M cache-direct=true
expect "buffered (page cache)" cache-file="$TMP/c3.img" cache-size=2M cache-direct=false
expect "O_DIRECT" cache-device="$loop"
expect "buffered (page cache)" cache-device="$loop" cache-direct=false
expect "O_DIRECT" cache-device="$loop" cache-direct=auto

# Write-back through the O_DIRECT device cache, kill -9 after a flush,
# and the restarted cache still returns the data (then destages it).
sock=$TMP/sock
start_server "$sock" file "$TMP/disk.img" cache-device="$loop" \
  cache-mode=write-back cache-destage-on-close=true
qemu-io -f raw -c "write -P 0x5a 1m 192k" -c flush "$(uri_of "$sock")" >/dev/null
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server "$sock" file "$TMP/disk.img" cache-device="$loop" cache-mode=write-back
qemu-io -f raw -c "read -P 0x5a 1m 192k" "$(uri_of "$sock")" | grep -q "Pattern verification failed" &&
  { echo "flushed data lost from the device cache" >&2; exit 1; }
stop_server
qemu-io -f raw -c "read -P 0x5a 1m 192k" "$TMP/disk.img" | grep -q "Pattern verification failed" &&
  { echo "write-back data not destaged to the backing image" >&2; exit 1; }
echo "device cache: flushed writes survive kill -9 and are destaged at stop"

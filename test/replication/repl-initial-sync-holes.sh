#!/bin/bash
# Initial sync of a sparse disk to a new replica that holds garbage: the
# holes are zeroed on the replica with a few merged zero requests (not one
# per 64K chunk), only the chunks holding data are written, the replica
# ends byte-identical and the progress gauges add up to the disk size.
# A replica advertising a smaller maximum request size gets zero requests
# no larger than it.
. "$(dirname "$0")/lib.sh"

size=$((64 << 20))
gran=$((64 << 10))
truncate -s "$size" "$T/src.img"
# 1 MiB of data at a few places (one piece straddles chunk boundaries).
put () { # OFFSET LENGTH (bytes)
  head -c "$2" /dev/urandom |
    dd of="$T/src.img" bs=4k seek="$1" oflag=seek_bytes conv=notrunc \
      status=none
}
put 0 $((256 << 10))
put $((17 << 20)) $((256 << 10))
put $(((40 << 20) + (100 << 10))) $((256 << 10))
put $((size - (256 << 10))) $((256 << 10))
# Chunks holding data: 4 + 4 + 5 (the straddling piece) + 4.
want_write_bytes=$((17 * gran))

# A new replica is not assumed to be zero: it holds non-zero garbage.
head -c "$size" /dev/urandom >"$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock" --filter=log logfile="$T/rep-requests.log"
start_source "$T/src.img" "$T/src.sock" "$T/state" "$(unix_uri "$T/rep.sock")" \
  repl-granularity=64K
wait_in_sync "$T/state" 60
[ "$(stat_value "$T/state" resync_done_bytes)" = "$size" ] ||
  fail "resync_done_bytes is not the disk size"
[ "$(stat_value "$T/state" resync_total_bytes)" = "$size" ] ||
  fail "resync_total_bytes is not the disk size"
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"

# count_requests LOG: sets zeros, writes, write_bytes, max_zero (requests
# as the replica received them, one line each).
count_requests () {
  zeros=$(grep -c ' Zero id=' "$1" || true)
  writes=$(grep -c ' Write id=' "$1" || true)
  write_bytes=$(sum_counts "$1" Write | awk '{ s += $1 } END { print s + 0 }')
  max_zero=$(sum_counts "$1" Zero | sort -n | tail -1)
  echo "replica got $writes writes ($write_bytes bytes) and $zeros zero" \
    "requests (largest $max_zero bytes)"
}
sum_counts () { # LOG ACTION: the count of each request, in decimal
  grep " $2 id=" "$1" | sed -n 's/.* count=\(0x[0-9a-f]*\).*/\1/p' |
    while read -r c; do echo $((c)); done
}

count_requests "$T/rep-requests.log"
[ "$zeros" -ge 1 ] || fail "the garbage in the holes was never zeroed"
[ "$zeros" -lt 20 ] || fail "$zeros zero requests for 3 holes (not merged)"
[ "$write_bytes" = "$want_write_bytes" ] ||
  fail "writes carried $write_bytes bytes, the data chunks are $want_write_bytes"

# Another new replica, advertising a 4 MiB maximum request size: the holes
# (16.75, 23.06 and 23.38 MiB) take 5 + 6 + 6 zero requests.  nbdkit lets
# larger zero requests through even with the error policy: the log is
# what checks the size.
head -c "$size" /dev/urandom >"$T/rep2.img"
start_replica "$T/rep2.img" "$T/rep2.sock" --filter=log \
  --filter=blocksize-policy logfile="$T/rep2-requests.log" \
  blocksize-maximum=4M blocksize-error-policy=error
start_source "$T/src.img" "$T/src.sock" "$T/state2" \
  "$(unix_uri "$T/rep2.sock")" repl-granularity=64K
wait_in_sync "$T/state2" 60
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep2.img" || fail "replica 2 differs from source"
count_requests "$T/rep2-requests.log"
[ "$max_zero" -le $((4 << 20)) ] || fail "a zero request exceeds the 4M maximum"
[ "$zeros" = 17 ] || fail "$zeros zero requests with a 4M maximum, want 17"
[ "$write_bytes" = "$want_write_bytes" ] || fail "replica 2: writes carried $write_bytes bytes"
echo "ok: initial sync zeroed the holes with few merged requests"

#!/bin/bash
# Bad parameters and a bad settings file each stop nbdkit with an error
# naming the culprit, and harm nothing; a corrupt datastore segment is
# named at error level and the disk runs uncoordinated (limits only); a
# valid segment next to them still works, and so does a plain command
# line.
source "$(dirname "$0")/lib.sh"

# expect_fail PATTERN ARGS...: nbdkit must refuse to start and say PATTERN.
expect_fail () {
  local pat=$1; shift
  if nbdkit -U - --filter="$SIOC_FILTER" memory 1M "$@" --run true \
      > "$T/out" 2>&1; then
    fail "nbdkit started with: $*"
  fi
  grep -qF -- "$pat" "$T/out" || fail "error for '$*' lacks '$pat': $(cat "$T/out")"
}

expect_fail "sioc-limit-iops: 'abc'" sioc-limit-iops=abc
expect_fail "sioc-limit-iops: '-5'" sioc-limit-iops=-5
expect_fail "sioc-limit-mbps: '1.5'" sioc-limit-mbps=1.5
expect_fail "sioc-reservation: '99999999'" sioc-reservation=99999999
expect_fail "sioc-shares: '0'" sioc-shares=0
expect_fail "sioc-shares: 'medium'" sioc-shares=medium
expect_fail "sioc-shares: '10001' is not low, normal, high or a number from 1 to 10000" sioc-shares=10001
expect_fail "sioc-latency-threshold: '30'" sioc-latency-threshold=30
expect_fail "sioc-latency-threshold: '20s'" sioc-latency-threshold=20s
expect_fail "sioc-reservation=500 is above sioc-limit-iops=100" \
  sioc-limit-iops=100 sioc-reservation=500
expect_fail "unknown parameter 'sioc-bogus'" sioc-bogus=1
expect_fail "sioc-datastore: empty path" sioc-datastore=

mkdir -m 0700 "$T/st"
echo "sioc-shares=huge" > "$T/st/settings"
expect_fail "$T/st/settings:1: sioc-shares: 'huge'" sioc-state-dir="$T/st"
rm "$T/st/settings"

# A valid segment, created by a first server; owner-only files.
nbdkit -U - --filter="$SIOC_FILTER" memory 1M sioc-datastore="$T/good.seg" \
  sioc-state-dir="$T/new" --run 'nbdinfo "$uri" > /dev/null'
[ "$(stat -c %a "$T/good.seg")" = 600 ] || fail "segment mode $(stat -c %a "$T/good.seg")"
[ "$(stat -c %a "$T/new")" = 700 ] || fail "state dir mode $(stat -c %a "$T/new")"
[ "$(stat -c %a "$T/new/stats")" = 600 ] || fail "stats mode $(stat -c %a "$T/new/stats")"

corrupt () { # NAME OFFSET BYTES
  cp "$T/good.seg" "$T/$1.seg"
  printf "$3" | dd of="$T/$1.seg" bs=1 seek="$2" conv=notrunc status=none
}
# A corrupt segment does not stop the disk (one bad write must not keep
# every later disk on the datastore from starting): it serves I/O, right
# bytes, with its limits, says at error level what is wrong with which
# file, and publishes uncoordinated=2 and slot -1.
NO_SLOT=18446744073709551615
expect_uncoordinated () { # NAME MESSAGE
  local name=$1 msg=$2 iops
  nbdkit -f -U "$T/$name.sock" --filter="$SIOC_FILTER" memory 64M \
    sioc-datastore="$T/$name.seg" sioc-state-dir="$T/st-$name" \
    sioc-limit-iops=100 2> "$T/$name.log" &
  SERVER_PIDS+=($!)
  wait_socket "$T/$name.sock"
  grep -F -- "error: vaio-sioc: warning: sioc-datastore: $msg" "$T/$name.log" |
    grep -q "this disk runs uncoordinated, limits only" || fail "no error naming $name.seg and '$msg': $(cat "$T/$name.log")"
  nbdsh -u "nbd+unix:///?socket=$T/$name.sock" -c '
buf = bytes(range(256)) * 16
h.pwrite(buf, 8192)
assert h.pread(4096, 8192) == buf
' || fail "I/O on the disk beside $name.seg"
  [ "$(counter uncoordinated "st-$name")" = 2 ] ||
    fail "uncoordinated=$(counter uncoordinated "st-$name") beside $name.seg, want 2"
  [ "$(counter slot "st-$name")" = $NO_SLOT ] || fail "slot $(counter slot "st-$name") beside $name.seg"
  fio --name=t --ioengine=nbd --uri="nbd+unix:///?socket=$T/$name.sock" \
    --rw=randread --bs=4k --iodepth=4 --runtime=2 --time_based=1 \
    --size=64M --output-format=json --output="$T/$name.json" > /dev/null 2>&1
  iops=$(fio_iops "$T/$name.json")
  awk -v i="$iops" 'BEGIN { exit !(i >= 50 && i <= 110) }' ||
    fail "limit 100 IOPS beside $name.seg: delivered $iops"
  echo "$name.seg: uncoordinated, I/O served, $iops IOPS at limit 100"
}
corrupt magic 0 'XXXX'
expect_uncoordinated magic \
  "$T/magic.seg: not a vaio-sioc datastore segment (bad magic)"
corrupt version 8 '\143'
expect_uncoordinated version "$T/version.seg: datastore segment version 99"
# Flip the byte at 24 (header timestamp): a change whatever it held.
b=$(od -An -tu1 -j24 -N1 "$T/good.seg" | tr -d ' ')
corrupt crc 24 "$(printf '\\%03o' $(( b ^ 255 )))"
expect_uncoordinated crc \
  "$T/crc.seg: datastore segment header checksum mismatch (corrupt)"
cp "$T/good.seg" "$T/short.seg"; truncate -s 1000 "$T/short.seg"
expect_uncoordinated short "$T/short.seg: datastore segment is 1000 bytes"
: > "$T/empty.seg"
expect_uncoordinated empty "$T/empty.seg: too short"
# Error level once, not every retry.
[ "$(grep -c 'runs uncoordinated' "$T/magic.log")" = 1 ] || fail "the warning repeats"
for f in magic version crc short empty; do
  "$SIOC_INSPECT" segment "$T/$f.seg" > /dev/null 2>&1 &&
    fail "reader accepted corrupt $f.seg"
done
# The segment made valid again is taken up within about a second.
cp "$T/good.seg" "$T/magic.seg.new"; mv "$T/magic.seg.new" "$T/magic.seg"
for i in $(seq 30); do
  [ "$(counter uncoordinated st-magic)" = 0 ] && break
  sleep 0.1
done
[ "$(counter uncoordinated st-magic)" = 0 ] && [ "$(counter slot st-magic)" != $NO_SLOT ] ||
  fail "a valid segment again was not taken up: uncoordinated=$(counter uncoordinated st-magic)"
# A segment path that cannot be used at all (a directory) is this disk's
# configuration mistake: nbdkit refuses to start.
mkdir "$T/dir.seg"
expect_fail "$T/dir.seg: Is a directory" sioc-datastore="$T/dir.seg"

# The good segment and a plain command line still work.
nbdkit -U - --filter="$SIOC_FILTER" memory 1M sioc-datastore="$T/good.seg" \
  --run 'nbdinfo "$uri" > /dev/null' || fail "valid segment refused"
nbdkit -U - --filter="$SIOC_FILTER" memory 1M sioc-limit-iops=1000 \
  --run 'nbdinfo "$uri" > /dev/null' || fail "plain command line failed"
echo "bad input refused with clear errors"

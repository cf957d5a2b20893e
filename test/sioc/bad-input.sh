#!/bin/bash
# Bad parameters, a bad settings file and a corrupt datastore segment each
# stop nbdkit with an error naming the culprit, and harm nothing; a valid
# segment next to them still works, and so does a plain command line.
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
corrupt magic 0 'XXXX'
expect_fail "$T/magic.seg: not a vaio-sioc datastore segment (bad magic)" \
  sioc-datastore="$T/magic.seg"
corrupt version 8 '\143'
expect_fail "$T/version.seg: datastore segment version 99" \
  sioc-datastore="$T/version.seg"
# Flip the byte at 24 (header timestamp): a change whatever it held.
b=$(od -An -tu1 -j24 -N1 "$T/good.seg" | tr -d ' ')
corrupt crc 24 "$(printf '\\%03o' $(( b ^ 255 )))"
expect_fail "$T/crc.seg: datastore segment header checksum mismatch (corrupt)" \
  sioc-datastore="$T/crc.seg"
cp "$T/good.seg" "$T/short.seg"; truncate -s 1000 "$T/short.seg"
expect_fail "$T/short.seg: datastore segment is 1000 bytes" \
  sioc-datastore="$T/short.seg"
: > "$T/empty.seg"
expect_fail "$T/empty.seg: too short" sioc-datastore="$T/empty.seg"
for f in magic version crc short empty; do
  "$SIOC_INSPECT" segment "$T/$f.seg" > /dev/null 2>&1 &&
    fail "reader accepted corrupt $f.seg"
done

# The good segment and a plain command line still work.
nbdkit -U - --filter="$SIOC_FILTER" memory 1M sioc-datastore="$T/good.seg" \
  --run 'nbdinfo "$uri" > /dev/null' || fail "valid segment refused"
nbdkit -U - --filter="$SIOC_FILTER" memory 1M sioc-limit-iops=1000 \
  --run 'nbdinfo "$uri" > /dev/null' || fail "plain command line failed"
echo "bad input refused with clear errors"

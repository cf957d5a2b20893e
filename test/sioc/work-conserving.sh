#!/bin/bash
# A lone busy disk with no limit is not throttled, even on a datastore
# whose latency is above the threshold and with an idle peer in the
# segment: the filter reports zero throttled time and never judges the
# datastore congested, and the disk delivers at least 85% of the same
# datastore without vaio-sioc (best of two runs each, interleaved, as the
# host is shared and noisy).
source "$(dirname "$0")/lib.sh"

start_datastore 4ms
# Baseline: the nbd plugin straight to the datastore, no filter.
nbdkit -f -U "$T/bare.sock" nbd socket="$T/ds.sock" 2> "$T/bare.log" &
SERVER_PIDS+=($!)
wait_socket "$T/bare.sock"
start_vm lone sioc-shares=low
start_vm idle sioc-shares=high
for i in 1 2; do
  fio_start bare "$T/bare$i.json" randread 4k 16 1 2; wait $FIO_PID
  fio_start lone "$T/lone$i.json" randread 4k 16 1 2; wait $FIO_PID
done
best () { for f in "$@"; do fio_iops "$f"; done | sort -g | tail -1; }
bare=$(best "$T/bare1.json" "$T/bare2.json")
lone=$(best "$T/lone1.json" "$T/lone2.json")
echo "lone disk: $lone IOPS with vaio-sioc, $bare without ($(ratio "$lone" "$bare")x)"
awk -v l="$lone" -v b="$bare" 'BEGIN { exit !(l >= 0.85 * b) }' ||
  fail "lone disk delivered $lone IOPS, $bare without the filter"
[ "$(counter throttled-ns lone)" = 0 ] ||
  fail "lone disk was throttled for $(counter throttled-ns lone) ns"
lat=$(counter backend-latency-us lone)
[ "$(counter congested lone)" = 0 ] || fail "lone disk judged congested"
[ "$lat" -gt 30000 ] || fail "datastore latency $lat us: the test did not load it past the threshold"

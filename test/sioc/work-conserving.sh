#!/bin/bash
# A lone busy disk with no limit is not throttled, even on a datastore
# whose latency is above the threshold and with an idle peer in the
# segment: it delivers at least 90% of the same datastore without
# vaio-sioc, and the filter reports zero throttled time.
source "$(dirname "$0")/lib.sh"

start_datastore 2ms
# Baseline: the nbd plugin straight to the datastore, no filter.
nbdkit -f -U "$T/bare.sock" nbd socket="$T/ds.sock" 2> "$T/bare.log" &
SERVER_PIDS+=($!)
wait_socket "$T/bare.sock"
fio_start bare "$T/bare.json" randread 4k 16 1 4; wait $FIO_PID

start_vm lone sioc-shares=low
start_vm idle sioc-shares=high
fio_start lone "$T/lone.json" randread 4k 16 1 4; wait $FIO_PID
bare=$(fio_iops "$T/bare.json"); lone=$(fio_iops "$T/lone.json")
echo "lone disk: $lone IOPS with vaio-sioc, $bare without ($(ratio "$lone" "$bare")x)"
awk -v l="$lone" -v b="$bare" 'BEGIN { exit !(l >= 0.9 * b) }' ||
  fail "lone disk delivered $lone IOPS, $bare without the filter"
[ "$(counter throttled-ns lone)" = 0 ] ||
  fail "lone disk was throttled for $(counter throttled-ns lone) ns"
lat=$(counter datastore-latency-us lone)
[ "$lat" -gt 30000 ] || fail "datastore latency $lat us: test did not congest it"

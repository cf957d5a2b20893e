#!/bin/bash
# A disk with low shares and a reservation gets its reservation while a
# heavy neighbour with 4x the shares (and twice the queue depth) runs on
# the congested datastore.  By shares alone it would get 1/5 of ~240 IOPS
# (~48); with sioc-reservation=120 it must get 120 (at least -10%), and the
# neighbour keeps running (on a host this busy the datastore's capacity
# varies, so only "not starved" is asserted for it).
source "$(dirname "$0")/lib.sh"

R=120
start_datastore 4ms
start_vm small sioc-shares=low sioc-reservation=$R
start_vm heavy sioc-shares=high
fio_start small "$T/s.json" randread 4k 16 3 6; fs=$FIO_PID
fio_start heavy "$T/h.json" randread 4k 32 3 6; fh=$FIO_PID
wait $fs $fh
s=$(fio_iops "$T/s.json"); h=$(fio_iops "$T/h.json")
echo "reservation $R: small got $s IOPS, heavy neighbour $h IOPS"
awk -v s="$s" -v r=$R 'BEGIN { exit !(s >= 0.9 * r) }' ||
  fail "reserved disk got $s IOPS, reservation $R"
awk -v h="$h" 'BEGIN { exit !(h >= 10) }' ||
  fail "neighbour starved: $h IOPS"

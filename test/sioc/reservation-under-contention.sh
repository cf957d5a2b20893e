#!/bin/bash
# A disk with low shares and a reservation gets its reservation while a
# heavy neighbour with 4x the shares (and twice the queue depth) runs on
# the congested datastore.  The numbers are chosen so that the three
# possible outcomes differ clearly.  The datastore does ~230 IOPS (one
# request at a time, 4 ms each), ~190-210 once under control (the
# capacity estimate keeps its latency near the threshold); nbdkit serves
# each connection with 16 threads, so the neighbour's QD32 counts as
# QD16 and without control the two split it about evenly (~115:115).
# By shares alone (500:2000) the small disk would get 1/5 (~37-46, with
# the neighbour at ~150-185).  With sioc-reservation=60 it must get its
# 60 (-10%/+25%) and the neighbour the rest (~130-170, more than 1.5x
# the small disk): neither an even split nor shares alone pass.  (A
# larger reservation leaves the neighbour too little margin over 1.5x
# when the host is busy and the capacity estimate low.)  And control
# must have been active (congested, or the neighbour held).
source "$(dirname "$0")/lib.sh"

R=60
start_datastore 4ms
start_vm small sioc-shares=low sioc-reservation=$R
start_vm heavy sioc-shares=high
fio_start small "$T/s.json" randread 4k 16 3 8; fs=$FIO_PID
fio_start heavy "$T/h.json" randread 4k 32 3 8; fh=$FIO_PID
wait $fs $fh
s=$(fio_iops "$T/s.json"); h=$(fio_iops "$T/h.json")
cong=$(counter congested heavy); held=$(counter throttled-ns heavy)
echo "reservation $R: small got $s IOPS, heavy neighbour $h IOPS" \
  "(ratio $(ratio "$h" "$s")); heavy congested=$cong throttled-ns=$held," \
  "small entitlement $(counter entitlement-iops small)" \
  "reservation in force $(counter reservation-effective-iops small)"
[ "$cong" = 1 ] || [ "$held" -gt 0 ] ||
  fail "no control was active: the neighbour was never congested nor held"
awk -v s="$s" -v r=$R 'BEGIN { exit !(s >= 0.9 * r && s <= 1.25 * r) }' ||
  fail "reserved disk got $s IOPS, reservation $R (want $R -10%/+25%)"
awk -v h="$h" -v s="$s" 'BEGIN { exit !(h > 1.5 * s) }' ||
  fail "neighbour got $h IOPS, not above 1.5x the small disk's $s"

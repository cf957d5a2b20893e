#!/bin/bash
# A disk limited to N IOPS delivers N +- 5% over a 10 s run, measured by
# fio and by the filter's own admission count over the same window.  The
# backing (2 ms per request, QD16: ~8000 IOPS possible) is far above the
# limit, so the limit is what binds, not the CPU.
source "$(dirname "$0")/lib.sh"

N=400
truncate -s 256M "$T/disk.img"
mkdir -m 0700 "$T/vm"
nbdkit -f -U "$T/vm.sock" --filter="$SIOC_FILTER" --filter=delay \
  file "$T/disk.img" delay-read=2ms delay-write=2ms \
  sioc-limit-iops=$N sioc-state-dir="$T/vm" 2> "$T/vm.log" &
SERVER_PIDS+=($!)
wait_socket "$T/vm.sock"

fio --name=limit --ioengine=nbd --uri="nbd+unix:///?socket=$T/vm.sock" \
  --rw=randrw --bs=4k --iodepth=16 --ramp_time=1 --runtime=10 \
  --time_based=1 --size=256M --norandommap=1 --randrepeat=0 \
  --output-format=json --output="$T/fio.json" > /dev/null 2>&1 &
fio_pid=$!
sleep 2
admitted=$(rate admitted-units vm 8)
wait $fio_pid
iops=$(fio_iops "$T/fio.json")
echo "limit $N IOPS: fio delivered $iops IOPS, filter admitted $admitted/s"
within "$iops" $N 5 || fail "fio delivered $iops IOPS, limit $N (+-5%)"
within "$admitted" $N 5 || fail "filter admitted $admitted/s, limit $N (+-5%)"
[ "$(counter throttled-ns vm)" -gt 0 ] || fail "throttled-ns not counted"
# What vaioctl shows: IOPS, latency percentiles, the disk's delivered rate.
st=$("$SIOC_INSPECT" stats "$T/vm/stats")
ops=$(echo "$st" | awk -F= '$1 == "read-ops" || $1 == "write-ops" { n += $2 } END { print n }')
p50=$(echo "$st" | sed -n 's/^p50-us=//p'); p99=$(echo "$st" | sed -n 's/^p99-us=//p')
echo "published: $ops ops, p50 ${p50}us, p99 ${p99}us"
[ "$ops" -ge $(( N * 9 )) ] || fail "stats file counted $ops ops"
# 16 queued at 400/s wait ~40 ms each: the guest-visible p50 shows it.
[ "$p50" -ge 16384 ] && [ "$p99" -ge "$p50" ] || fail "latency p50 $p50 p99 $p99"
[ "$(counter limit-iops vm)" = $N ] || fail "limit-iops gauge $(counter limit-iops vm)"

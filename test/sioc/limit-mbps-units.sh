#!/bin/bash
# sioc-limit-mbps caps bandwidth (MiB/s) +- 5%, and large I/Os are charged
# in 32 KiB units: 128 KiB requests under sioc-limit-iops=200 run at 50/s.
# 10 s runs, as the limit-accuracy tests.
source "$(dirname "$0")/lib.sh"

truncate -s 256M "$T/disk.img"
serve () {
  nbdkit -f -U "$T/vm.sock" --filter="$SIOC_FILTER" --filter=delay \
    file "$T/disk.img" delay-read=1ms delay-write=1ms "$@" \
    2> "$T/vm.log" &
  server=$!
  SERVER_PIDS+=($server)
  wait_socket "$T/vm.sock"
}
run_fio () { # BS OUT
  fio --name=t --ioengine=nbd --uri="nbd+unix:///?socket=$T/vm.sock" \
    --rw=randread --bs="$1" --iodepth=8 --ramp_time=1 --runtime=10 \
    --time_based=1 --size=256M --norandommap=1 --randrepeat=0 \
    --output-format=json --output="$2" > /dev/null 2>&1
}
stop () { kill "$server"; wait "$server" || true; rm -f "$T/vm.sock"; }

serve sioc-limit-mbps=8
run_fio 64k "$T/bw.json"
stop
mibps=$(jq -r '.jobs[0].read.bw_bytes / 1048576' "$T/bw.json")
echo "limit 8 MiB/s: delivered $mibps MiB/s"
within "$mibps" 8 5 || fail "delivered $mibps MiB/s, limit 8 (+-5%)"

serve sioc-limit-iops=200
run_fio 128k "$T/units.json"
stop
iops=$(fio_iops "$T/units.json")
echo "limit 200 IOPS with 128 KiB requests (4 units each): $iops IOPS"
within "$iops" 50 5 || fail "128 KiB at 200 units/s gave $iops IOPS, want 50 (+-5%)"

#!/bin/bash
# Two VMs with shares normal (1000) and high (2000) contending for a
# congested datastore get their throughput in that ratio +- 10%.  Without
# vaio-sioc this datastore splits about 1:1 (see the bench), so the ratio
# is the filter's doing.  Both use sioc-latency-threshold=auto: the leader
# must learn a threshold (the lowest latency at 90% of peak throughput) and
# still find the datastore congested; the other tests use the 30ms default.
source "$(dirname "$0")/lib.sh"

start_datastore 4ms
start_vm a sioc-shares=normal sioc-latency-threshold=auto
start_vm b sioc-shares=high sioc-latency-threshold=auto
fio_start a "$T/a.json" randread 4k 16 3 6; fa=$FIO_PID
fio_start b "$T/b.json" randread 4k 16 3 6; fb=$FIO_PID
wait $fa $fb
a=$(fio_iops "$T/a.json"); b=$(fio_iops "$T/b.json")
r=$(ratio "$b" "$a")
thr=$(counter latency-threshold-us a)
echo "shares 1000:2000 -> $a : $b IOPS, ratio $r (auto threshold learned: $thr us," \
  "congested now: $(counter congested a), throttled $(counter throttled-ns a) ns)"
[ "$(counter congested a)" = 1 ] || [ "$(counter throttled-ns a)" -gt 0 ] ||
  fail "datastore never judged congested"
within "$r" 2 10 || fail "ratio $r, want 2.0 +- 10%"
[ "$thr" != 30000 ] && [ "$thr" -ge 100 ] && [ "$thr" -le 10000000 ] ||
  fail "auto threshold not learned: $thr us"

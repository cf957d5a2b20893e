#!/bin/bash
# Three VMs with shares low:normal:high (500:1000:2000) on a congested
# datastore get 1:2:4 of its throughput, each ratio +- 10%.
source "$(dirname "$0")/lib.sh"

start_datastore 4ms
start_vm a sioc-shares=low
start_vm b sioc-shares=normal
start_vm c sioc-shares=high
fio_start a "$T/a.json" randread 4k 16 3 7; fa=$FIO_PID
fio_start b "$T/b.json" randread 4k 16 3 7; fb=$FIO_PID
fio_start c "$T/c.json" randread 4k 16 3 7; fc=$FIO_PID
wait $fa $fb $fc
a=$(fio_iops "$T/a.json"); b=$(fio_iops "$T/b.json"); c=$(fio_iops "$T/c.json")
rba=$(ratio "$b" "$a"); rcb=$(ratio "$c" "$b"); rca=$(ratio "$c" "$a")
echo "shares 500:1000:2000 -> $a : $b : $c IOPS (b/a $rba, c/b $rcb, c/a $rca)"
within "$rba" 2 10 || fail "normal/low ratio $rba, want 2.0 +- 10%"
within "$rcb" 2 10 || fail "high/normal ratio $rcb, want 2.0 +- 10%"
within "$rca" 4 10 || fail "high/low ratio $rca, want 4.0 +- 10%"

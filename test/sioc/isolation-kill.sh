#!/bin/bash
# kill -9 one VM's nbdkit (the segment's leader, the hardest case) while
# three VMs contend: the other two keep running without an error, their
# entitlement grows to take its share within 1 s, and their throughput
# after the kill is well above their throughput before it.
source "$(dirname "$0")/lib.sh"

now_ms () { echo $(( $(date +%s%N) / 1000000 )); }
rate () { # VM SECONDS: admitted units per second over the next SECONDS
  local a0 a1
  a0=$(counter admitted-units "$1"); sleep "$2"; a1=$(counter admitted-units "$1")
  awk -v a="$a0" -v b="$a1" -v s="$2" 'BEGIN { printf "%.1f", (b - a) / s }'
}

start_datastore 2ms
start_vm a; start_vm b; start_vm c     # a holds slot 0: the leader
"$SIOC_INSPECT" segment "$T/datastore.seg" | grep -q '^slot=0 .*name=a ' ||
  fail "vm a did not take slot 0"
fio_start a "$T/a.json" randread 4k 16 0 9
fio_start b "$T/b.json" randread 4k 16 0 9; fb=$FIO_PID
fio_start c "$T/c.json" randread 4k 16 0 9; fc=$FIO_PID
sleep 2.5
[ "$(counter congested b)" = 1 ] || fail "datastore not congested with 3 VMs"
eb=$(counter entitlement-iops b); ec=$(counter entitlement-iops c)
before=$(rate b 1.5)

kill -9 "${VM_PID[a]}"
t0=$(now_ms)
reclaimed=
for i in $(seq 40); do
  nb=$(counter entitlement-iops b); nc=$(counter entitlement-iops c)
  if awk -v nb="$nb" -v nc="$nc" -v eb="$eb" -v ec="$ec" \
      'BEGIN { exit !(nb >= 1.3 * eb && nc >= 1.3 * ec) }'; then
    reclaimed=$(( $(now_ms) - t0 )); break
  fi
  sleep 0.05
done
[ -n "$reclaimed" ] || fail "entitlement stayed at b=$nb c=$nc (was $eb, $ec) for 2s"
echo "killed the leader: b ${eb}->${nb}, c ${ec}->${nc} IOPS entitled after ${reclaimed} ms"
[ "$reclaimed" -le 1000 ] || fail "share reclaimed after $reclaimed ms, want <= 1000"

sleep 0.5
after=$(rate b 1.5)
echo "vm b delivered $before/s before, $after/s after"
awk -v a="$after" -v b="$before" 'BEGIN { exit !(a >= 1.25 * b) }' ||
  fail "vm b throughput $before -> $after: share not reclaimed"
"$SIOC_INSPECT" segment "$T/datastore.seg" | grep -q '^slot=0 state=stale' ||
  fail "dead VM's slot not seen as stale"
wait $fb || fail "fio on vm b failed after its neighbour died"
wait $fc || fail "fio on vm c failed after its neighbour died"
kill -0 "${VM_PID[b]}" && kill -0 "${VM_PID[c]}" || fail "a survivor died"

#!/bin/bash
# kill -9 one VM's nbdkit (the segment's leader, the hardest case) while
# three VMs contend: the other two keep running without an error, their
# entitlement grows to take its share within 1 s, and their throughput
# after the kill is well above their throughput before it.
source "$(dirname "$0")/lib.sh"


start_datastore 4ms
start_vm a; start_vm b; start_vm c     # a holds slot 0: the leader
"$SIOC_INSPECT" segment "$T/datastore.seg" | grep -q '^slot=0 .*name=a ' ||
  fail "vm a did not take slot 0"
fio_start a "$T/a.json" randread 4k 16 0 12
fio_start b "$T/b.json" randread 4k 16 0 12; fb=$FIO_PID
fio_start c "$T/c.json" randread 4k 16 0 12; fc=$FIO_PID
# Wait (bounded) for the three to settle under congestion control.
for i in $(seq 50); do
  [ "$(counter congested b)" = 1 ] && [ "$(counter entitlement-iops b)" -gt 0 ] &&
    [ "$(counter entitlement-iops c)" -gt 0 ] && break
  sleep 0.1
done
[ "$(counter congested b)" = 1 ] || fail "datastore not congested with 3 VMs"
sleep 1
before=$(rate admitted-units b 1.5)
eb=$(counter entitlement-iops b); ec=$(counter entitlement-iops c)

# Waiters poll in-process from just before the kill: their time is an
# upper bound on the time from kill to reclaimed entitlement.
# Target for both: 1.3x the larger of the two entitlements before the
# kill (each should get 1.5x: a third of the capacity becomes a half).
base=$(( eb > ec ? eb : ec ))
want_b=$(( base * 13 / 10 )); want_c=$want_b
[ "$(counter entitlement-iops b)" -lt $want_b ] && [ "$(counter entitlement-iops c)" -lt $want_c ] ||
  fail "entitlements not steady before the kill (b $eb, c $ec)"
"$SIOC_INSPECT" wait-ge "$T/b/stats" entitlement-iops $want_b 3000 > "$T/wb" & wb=$!
"$SIOC_INSPECT" wait-ge "$T/c/stats" entitlement-iops $want_c 3000 > "$T/wc" & wc=$!
kill -9 "${VM_PID[a]}"
wait $wb || fail "vm b entitlement never reached $want_b (was $eb)"
wait $wc || fail "vm c entitlement never reached $want_c (was $ec)"
reclaimed=$(sort -n "$T/wb" "$T/wc" | tail -1)
echo "killed the leader: b ${eb}->$(counter entitlement-iops b), c ${ec}->$(counter entitlement-iops c) IOPS entitled within ${reclaimed} ms"
[ "$reclaimed" -le 1000 ] || fail "share reclaimed after $reclaimed ms, want <= 1000"

sleep 0.5
after=$(rate admitted-units b 1.5)
echo "vm b delivered $before/s before, $after/s after"
awk -v a="$after" -v b="$before" 'BEGIN { exit !(a >= 1.25 * b) }' ||
  fail "vm b throughput $before -> $after: share not reclaimed"
"$SIOC_INSPECT" segment "$T/datastore.seg" | grep -q '^slot=0 state=stale' ||
  fail "dead VM's slot not seen as stale"
wait $fb || fail "fio on vm b failed after its neighbour died"
wait $fc || fail "fio on vm c failed after its neighbour died"
kill -0 "${VM_PID[b]}" && kill -0 "${VM_PID[c]}" || fail "a survivor died"

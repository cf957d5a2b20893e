#!/bin/bash
# A VM whose nbdkit stalls (SIGSTOP) stops heartbeating: its peer stops
# sharing with it within 1 s (no congestion control for a lone disk) and
# never waits on it; when it resumes (SIGCONT) it rejoins the segment.
source "$(dirname "$0")/lib.sh"

now_ms () { echo $(( $(date +%s%N) / 1000000 )); }

start_datastore 4ms
start_vm a; start_vm b
fio_start a "$T/a.json" randread 4k 16 0 10
fio_start b "$T/b.json" randread 4k 16 0 10; fb=$FIO_PID
for i in $(seq 50); do
  [ "$(counter congested b)" = 1 ] && break; sleep 0.1
done
[ "$(counter congested b)" = 1 ] || fail "datastore not congested with 2 VMs"

kill -STOP "${VM_PID[a]}"
t0=$(now_ms); freed=
for i in $(seq 40); do
  if [ "$(counter congested b)" = 0 ] && [ "$(counter entitlement-iops b)" = 0 ]; then
    freed=$(( $(now_ms) - t0 )); break
  fi
  sleep 0.05
done
[ -n "$freed" ] || fail "vm b still sharing with a stopped peer after 2s"
echo "stalled peer dropped after ${freed} ms"
[ "$freed" -le 1000 ] || fail "stalled peer dropped after $freed ms, want <= 1000"
"$SIOC_INSPECT" segment "$T/datastore.seg" | grep -q '^slot=0 state=stale' ||
  fail "stopped VM's slot not seen as stale"

kill -CONT "${VM_PID[a]}"
back=
for i in $(seq 40); do
  if "$SIOC_INSPECT" segment "$T/datastore.seg" | grep -q '^slot=0 state=live'; then
    back=1; break
  fi
  sleep 0.05
done
[ -n "$back" ] || fail "resumed VM did not rejoin its slot"
wait $fb || fail "fio on vm b failed"

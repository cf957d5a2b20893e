#!/bin/bash
# A disk that finds its datastore's segment full (64 live disks) runs
# uncoordinated, says so at nbdkit error level naming the segment, and
# publishes slot -1 (as the unsigned gauge: 18446744073709551615), as
# does a disk without a datastore, and uncoordinated=1 (segment full);
# it claims the first slot that frees.
source "$(dirname "$0")/lib.sh"

NO_SLOT=18446744073709551615
start_datastore 1ms
declare -A fake_pid # slot -> pid
for i in $(seq 64); do
  "$SIOC_INSPECT" fake-peer "$T/datastore.seg" 0 0 1000 > "$T/fake$i" &
  SERVER_PIDS+=($!); pids[i]=$!
done
for i in $(seq 100); do
  [ "$("$SIOC_INSPECT" segment "$T/datastore.seg" | grep -c 'state=live')" = 64 ] && break
  sleep 0.1
done
for i in $(seq 64); do fake_pid[$(cat "$T/fake$i")]=${pids[i]}; done
start_vm late
"$SIOC_INSPECT" wait-ge "$T/late/stats" slot 0 2000 > /dev/null ||
  fail "no slot gauge published"
[ "$(counter slot late)" = $NO_SLOT ] || fail "slot gauge $(counter slot late) with a full segment"
[ "$(counter uncoordinated late)" = 1 ] || fail "uncoordinated=$(counter uncoordinated late) with a full segment, want 1"
grep -q "error: vaio-sioc: warning: datastore segment $T/datastore.seg is full" "$T/late.log" ||
  { cat "$T/late.log" >&2; fail "no error-level warning naming the full segment"; }
[ "$(grep -c 'is full' "$T/late.log")" = 1 ] || fail "the warning repeats every tick"
# I/O still flows, uncoordinated.
nbdsh -u "$(vm_uri late)" -c 'h.pread(4096, 0)' || fail "I/O on the uncoordinated disk"
# A slot frees (its owner dies): the disk claims it.
kill -9 "${fake_pid[10]}"
for i in $(seq 50); do
  [ "$(counter slot late)" != $NO_SLOT ] && break
  sleep 0.1
done
[ "$(counter slot late)" = 10 ] || fail "slot $(counter slot late) after slot 10 freed"
[ "$(counter uncoordinated late)" = 0 ] || fail "uncoordinated=$(counter uncoordinated late) holding slot 10"
# No datastore: no slot either.
nbdkit -f -U "$T/solo.sock" --filter="$SIOC_FILTER" memory 1M \
  sioc-state-dir="$T/solo" 2> "$T/solo.log" &
SERVER_PIDS+=($!)
wait_socket "$T/solo.sock"
for i in $(seq 50); do [ -f "$T/solo/stats" ] && break; sleep 0.1; done
[ "$(counter slot solo)" = $NO_SLOT ] || fail "slot gauge $(counter slot solo) without a datastore"
echo "full segment: warned once, slot -1, took slot 10 when it freed; no datastore: slot -1"

#!/bin/bash
# Per-VM failure domains: kill -9 one VM's nbdkit and the other VM's disk
# keeps serving; status reports the dead disk; `up` restarts only it, and
# what was written before the crash (flushed) is still there.
. "$(dirname "$0")/lib.sh"
two_vm_config "$T/c.yaml"
"$VAIOCTL" up "$T/c.yaml" >/dev/null

qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x31 0 1M" -c flush >/dev/null
pid1=$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")
pid2=$(cat "$T/state/host1/vms/vm2/disk0/nbdkit.pid")
kill -9 "$pid1"
for _ in $(seq 100); do alive "$pid1" || break; sleep 0.05; done

qemu-io -f raw "$(sock_uri vm2)" -c "write -P 0x32 0 2M" -c "read -P 0x32 0 2M" >/dev/null ||
  fail "vm2 stopped serving when vm1 died"
qemu-io -f raw "$(sock_uri vm1)" -c "read 0 4k" >/dev/null 2>&1 &&
  fail "vm1 still answers after kill -9"
pass "vm2 serves after vm1's nbdkit was killed"

rc=0
"$VAIOCTL" status "$T/c.yaml" --json > "$T/s.json" || rc=$?
[ "$rc" -eq 1 ] || fail "status exit $rc with a dead disk, want 1"
[ "$(jq -r '.vms[0].disks[0].state' "$T/s.json")" = dead ] || fail "vm1 not reported dead"
[ "$(jq -r '.vms[1].disks[0].state' "$T/s.json")" = running ] || fail "vm2 not running"
pass "status reports vm1 dead, vm2 running (exit 1)"

out=$("$VAIOCTL" up "$T/c.yaml")
grep -q "vm2/disk0: already running (pid $pid2)" <<<"$out" || fail "vm2 restarted: $out"
grep -q "vm1/disk0: serving" <<<"$out" || fail "vm1 not restarted: $out"
qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x31 0 1M" >/dev/null || fail "vm1 data lost"
pass "up restarted only vm1; its flushed data survived"

#!/bin/bash
# vaioctl up serves each VM disk through its chain: bytes written through
# the exported disk are read back, and after down they are in the image.
. "$(dirname "$0")/lib.sh"
two_vm_config "$T/c.yaml"

"$VAIOCTL" validate "$T/c.yaml"
"$VAIOCTL" up "$T/c.yaml"

# Per-VM directories are private; sockets live inside them.
for vm in vm1 vm2; do
  mode=$(stat -c %a "$T/state/host1/vms/$vm")
  [ "$mode" = 700 ] || fail "$vm dir mode $mode, want 700"
  [ -S "$T/state/host1/vms/$vm/disk0.sock" ] || fail "$vm socket missing"
done
pass "per-VM directories are 0700 and hold the sockets"

qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x11 0 1M" -c "write -P 0x12 5M 64k" >/dev/null
qemu-io -f raw "$(sock_uri vm2)" -c "write -P 0x22 1M 2M" >/dev/null
qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x11 0 1M" -c "read -P 0x12 5M 64k" \
  -c "read -P 0 1M 4M" | grep -q "read 65536/65536" || fail "vm1 read-back"
qemu-io -f raw "$(sock_uri vm2)" -c "read -P 0x22 1M 2M" -c "read -P 0 0 1M" >/dev/null ||
  fail "vm2 read-back"
pass "data written through both chains reads back"

# The chain really is the policy: vm1 runs cache then rate, vm2 cache only.
"$VAIOCTL" status "$T/c.yaml" --json > "$T/status.json"
[ "$(jq -r '.vms[0].disks[0].chain | map(.filter) | join(",")' "$T/status.json")" = \
  "nbdkit-cache,nbdkit-rate" ] || fail "vm1 chain: $(cat "$T/status.json")"
[ "$(jq -r '.vms[1].disks[0].chain | map(.filter) | join(",")' "$T/status.json")" = \
  "nbdkit-cache" ] || fail "vm2 chain"
[ "$(jq -r '[.vms[].disks[].state] | join(",")' "$T/status.json")" = "running,running" ] ||
  fail "states"
[ "$(jq -r '[.vms[].disks[].compliance] | join(",")' "$T/status.json")" = "compliant,compliant" ] ||
  fail "compliance"
pid1=$(jq -r '.vms[0].disks[0].pid' "$T/status.json")
pid2=$(jq -r '.vms[1].disks[0].pid' "$T/status.json")
# Each process's --filter= arguments, in argv order, are exactly the pause
# filter then the policy's filters in class order (caching, then sioc).
filters_of () { tr '\0' '\n' < "/proc/$1/cmdline" | sed -n 's/^--filter=//p' | paste -sd' '; }
so () { sed -n 's/^path: *//p' "$MAN/$1.yaml"; }
want1="pause $(so nbdkit-cache) $(so nbdkit-rate)"
[ "$(filters_of "$pid1")" = "$want1" ] || fail "vm1 nbdkit --filter= args: $(filters_of "$pid1"), want $want1"
[ "$(filters_of "$pid2")" = "pause $(so nbdkit-cache)" ] || fail "vm2 nbdkit --filter= args: $(filters_of "$pid2")"
pass "status --json shows both chains running, compliant, in class order"

"$VAIOCTL" status "$T/c.yaml" | grep -q "nbdkit-cache -> nbdkit-rate -> file" || fail "text view"

"$VAIOCTL" down "$T/c.yaml"
[ ! -e "$T/state/host1/vms/vm1/disk0.sock" ] || fail "socket left after down"
alive "$pid1" && fail "nbdkit still running after down"
cmp <(head -c 1M "$T/vm1.img") <(head -c 1M /dev/zero | tr '\0' '\021') ||
  fail "vm1 image lacks the written bytes"
cmp <(tail -c +$((1048576 + 1)) "$T/vm2.img" | head -c 2M) <(head -c 2M /dev/zero | tr '\0' '\042') ||
  fail "vm2 image lacks the written bytes"
pass "after down the backing images hold every byte written"

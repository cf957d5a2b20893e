#!/bin/bash
# configs/demo.yaml brought up with vaioctl, in a scratch copy made by
# scripts/demo-setup (what `make demo` runs): vm1 through encryption ->
# replication -> caching -> sioc, vm2 through caching -> sioc.  Random data
# written through each exported disk reads back through the chain; after
# down the bytes are where they belong (vm2's image holds them, vm1's image
# decrypts to them with QEMU's LUKS driver and its replica is identical);
# brought up again, a reader through the same chains sees them.
. "$(dirname "$0")/lib.sh"
D=$T/demo
"$VAIO_SRC/scripts/demo-setup" "$D" "$VAIO_BUILD" >/dev/null
cfg=$D/demo.yaml
grep -q "10899\|\.\./" "$cfg" && fail "demo config still has a fixed port or a relative build path"

nbdkit -f -U "$D/replica.sock" file "$D/images/vm1-replica.img" 2>"$T/replica.log" &
rep=$!
TEST_CONFIGS+=("$cfg")
trap 'cleanup_demo' EXIT
cleanup_demo () {
  "$VAIOCTL" down "$cfg" --timeout 5 >/dev/null 2>&1 || true
  kill "$rep" 2>/dev/null || true
  cleanup
}
for _ in $(seq 100); do [ -S "$D/replica.sock" ] && break; sleep 0.05; done

"$VAIOCTL" validate "$cfg" >/dev/null
"$VAIOCTL" up "$cfg" >/dev/null
uri () { echo "nbd+unix:///?socket=$D/state/host1/vms/$1/disk0.sock"; }

"$VAIOCTL" status "$cfg" --json > "$T/s.json"
[ "$(jq -r '[.vms[].disks[0].chain | map(.filter) | join(",")] | join(" ")' "$T/s.json")" = \
  "vaio-crypt,vaio-replication,vaio-cache,vaio-sioc vaio-cache,vaio-sioc" ] ||
  fail "chains: $(jq -c '[.vms[].disks[0].chain | map(.filter)]' "$T/s.json")"
[ "$(jq -r '[.vms[].disks[0] | .state + "/" + .compliance] | join(" ")' "$T/s.json")" = \
  "running/compliant running/compliant" ] || fail "states: $(jq -c '[.vms[].disks[0]]' "$T/s.json")"
pass "demo.yaml is up: both VMs running their policies' chains, compliant"

# 6 MiB of random data per VM at offset 1 MiB (nothing else written).
M=1048576
head -c $((6 * M)) /dev/urandom > "$T/vm1.data"
head -c $((6 * M)) /dev/urandom > "$T/vm2.data"
slice () { tail -c +$((M + 1)) "$1" | head -c $((6 * M)); }
read_back () { # VM: the written range as a reader through the chain sees it
  nbdcopy "$(uri "$1")" "$T/$1.read"
  cmp <(slice "$T/$1.read") "$T/$1.data" || fail "$1: $2 differs from what was written"
}
for vm in vm1 vm2; do
  qemu-io -f raw -t writeback "$(uri $vm)" -c "write -q -s $T/$vm.data $M $((6 * M))" -c flush ||
    fail "$vm: write through the chain"
  read_back $vm "read-back through the chain"
done
pass "random data written through both chains reads back through them"

"$VAIOCTL" down "$cfg" >/dev/null
cmp <(slice "$D/images/vm2-disk0.img") "$T/vm2.data" || fail "vm2's image lacks the data"
pass "after down, vm2's image holds the data"
# vaio-crypt drops the passphrase file's final newline; QEMU's secret
# object reads the file as it is.
printf %s "$(cat "$D/secrets/vm1.passphrase")" > "$T/pw"
qemu-img convert --object "secret,id=s0,file=$T/pw" --image-opts \
  "driver=luks,key-secret=s0,file.filename=$D/images/vm1-disk0.img" -O raw "$T/vm1.plain"
cmp <(slice "$T/vm1.plain") "$T/vm1.data" || fail "vm1's image does not decrypt to the data"
cmp <(slice "$D/images/vm1-disk0.img") "$T/vm1.data" >/dev/null 2>&1 && fail "vm1's image holds plaintext"
cmp "$D/images/vm1-disk0.img" "$D/images/vm1-replica.img" || fail "vm1's replica differs from its image"
pass "vm1's image is ciphertext that QEMU's LUKS driver reads as the data; its replica is identical"

"$VAIOCTL" up "$cfg" >/dev/null
for vm in vm1 vm2; do read_back $vm "a fresh reader through the chain"; done
"$VAIOCTL" down "$cfg" >/dev/null
for vm in vm1 vm2; do
  [ ! -e "$D/state/host1/vms/$vm/disk0.sock" ] || fail "$vm socket left after down"
done
pass "brought up again, the chains serve the same bytes; torn down cleanly"

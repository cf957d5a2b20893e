#!/bin/bash
# vaioctl apply changes only what differs: an unchanged disk keeps its
# process; a changed disk is swapped under a live client (qemu-io with
# reconnect-delay, QEMU's own NBD client) with no I/O error and no lost
# write; unsafe changes are refused before anything stops.
. "$(dirname "$0")/lib.sh"
two_vm_config "$T/c.yaml"
# Add the encryption class to the host so a policy can name it.
sed -i "s|      - $MAN/nbdkit-rate.yaml|&\n      - $MAN/nbdkit-luks.yaml|" "$T/c.yaml"
"$VAIOCTL" up "$T/c.yaml" >/dev/null
pid1=$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")
pid2=$(cat "$T/state/host1/vms/vm2/disk0/nbdkit.pid")

# New config: vm2 moves from silver (cache) to gold (cache + rate).
sed 's/        policy: silver/        policy: gold/' "$T/c.yaml" > "$T/c2.yaml"

out=$("$VAIOCTL" apply "$T/c2.yaml" --dry-run)
grep -q "vm1/disk0: unchanged (pid $pid1)" <<<"$out" || fail "dry-run vm1: $out"
grep -q "vm2/disk0: swap chain: keep caching; add sioc" <<<"$out" || fail "dry-run vm2: $out"
[ "$(cat "$T/state/host1/vms/vm2/disk0/nbdkit.pid")" = "$pid2" ] || fail "dry-run changed vm2"
pass "--dry-run prints the plan and changes nothing"

# A client that rides through the swap, as a QEMU guest would.
opts="driver=raw,file.driver=nbd,file.server.type=unix"
opts="$opts,file.server.path=$T/state/host1/vms/vm2/disk0.sock,file.reconnect-delay=30"
cmds=()
for i in $(seq 0 39); do
  cmds+=(-c "write -P $((i + 1)) $((i * 256))k 256k" -c "sleep 25")
done
qemu-io -t writeback --image-opts "$opts" "${cmds[@]}" -c flush > "$T/qio.log" 2>&1 &
qio=$!
sleep 0.3
"$VAIOCTL" apply "$T/c2.yaml" > "$T/apply.out"
alive "$qio" || fail "the client finished before the swap: the test proves nothing"
wait "$qio" || fail "qemu-io failed across the swap: $(grep -i -m3 'fail\|error' "$T/qio.log")"
! grep -qi "error\|failed" "$T/qio.log" || fail "client saw an error: $(cat "$T/qio.log")"
grep -q "vm1/disk0: unchanged (pid $pid1)" "$T/apply.out" || fail "vm1 touched: $(cat "$T/apply.out")"
grep -Eq "vm2/disk0: swapped chain \(pid $pid2 -> [0-9]+\); I/O held [0-9]+ ms" "$T/apply.out" ||
  fail "vm2 not swapped: $(cat "$T/apply.out")"
pass "$(grep vm2 "$T/apply.out")"

for i in $(seq 0 39); do
  qemu-io -f raw -r "$T/vm2.img" -c "read -P $((i + 1)) $((i * 256))k 256k" >/dev/null ||
    fail "write $i (pattern $((i + 1))) lost across the swap"
done
pass "all 40 writes issued across the swap are in the image"

"$VAIOCTL" status "$T/c2.yaml" --json > "$T/s.json"
[ "$(jq -r '.vms[1].disks[0].chain | map(.filter) | join(",")' "$T/s.json")" = \
  "nbdkit-cache,nbdkit-rate" ] || fail "vm2 chain after apply"
[ "$(jq -r '[.vms[].disks[].compliance] | join(",")' "$T/s.json")" = "compliant,compliant" ] ||
  fail "compliance after apply"
out=$("$VAIOCTL" apply "$T/c2.yaml")
[ "$(grep -c unchanged <<<"$out")" = 2 ] || fail "second apply not a no-op: $out"
pass "status shows the new chain, compliant; applying again changes nothing"

# Adding encryption to a disk that holds data is refused before any stop.
printf 'pw' > "$T/pw"; chmod 600 "$T/pw"
cat >> "$T/c2.yaml" <<YAML
YAML
sed -e 's/        policy: silver/        policy: gold/' \
    -e "s|  - name: silver|  - name: sealed\n    encryption:\n      passphrase: +$T/pw\n    caching: {}\n  - name: silver|" \
    -e 's/        policy: gold$/        policy: sealed/' "$T/c.yaml" > "$T/c3.yaml"
pid2b=$(cat "$T/state/host1/vms/vm2/disk0/nbdkit.pid")
expect_fail "adding encryption to a disk holding data" "refusing to add encryption on a disk that holds data" \
  "$VAIOCTL" apply "$T/c3.yaml"
[ "$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")" = "$pid1" ] || fail "vm1 restarted"
[ "$(cat "$T/state/host1/vms/vm2/disk0/nbdkit.pid")" = "$pid2b" ] || fail "vm2 restarted"
pass "refused apply left both disks running untouched"

# A VM removed from the config is stopped by apply; the other is left.
awk '/^  - name: vm2/ { skip = 1 } !skip' "$T/c2.yaml" > "$T/c4.yaml"
grep -q "name: vm2" "$T/c4.yaml" && fail "c4 still has vm2"
pid2c=$(cat "$T/state/host1/vms/vm2/disk0/nbdkit.pid")
out=$("$VAIOCTL" apply "$T/c4.yaml")
grep -q "vm2/disk0: stopped (no longer in the config; pid $pid2c), flushed" <<<"$out" || fail "vm2 not stopped: $out"
grep -q "vm1/disk0: unchanged (pid $pid1)" <<<"$out" || fail "vm1 touched: $out"
alive "$pid2c" && fail "vm2's nbdkit still running"
pass "a VM removed from the config is stopped; the other keeps running"

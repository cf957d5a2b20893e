#!/bin/bash
# A client that reconnects while `vaioctl apply` swaps a disk's chain is
# not refused: the swap puts a new listening socket at the disk's path
# before it stops the old chain, and the new nbdkit gets it by socket
# activation.  (QEMU tries to reconnect at once when the connection
# drops, then only after a second; refused, the guest would wait that
# second.)  A wrapper makes the new nbdkit take 1.5 s to start, so the
# client below certainly connects while no nbdkit serves the disk.
. "$(dirname "$0")/lib.sh"
truncate -s 16M "$T/vm1.img"
config () { # FILE RATE
  cat > "$1" <<YAML
cluster: reconnect
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $MAN/nbdkit-rate.yaml ]
policies:
  - name: p
    sioc: { rate: $2 }
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}
config "$T/a.yaml" 100M
config "$T/b.yaml" 200M
TEST_CONFIGS+=("$T/a.yaml")
d=$T/state/host1/vms/vm1/disk0
uri=$(sock_uri vm1)

"$VAIOCTL" up "$T/a.yaml" >/dev/null
old=$(cat "$d/nbdkit.pid")
qemu-io -f raw "$uri" -c "write -P 0x77 0 1M" >/dev/null

mkdir -p "$T/bin"
printf '#!/bin/sh\nexec /bin/sh -c '"'"'sleep 1.5; exec %s "$@"'"'"' sh "$@"\n' \
  "$(command -v nbdkit)" > "$T/bin/nbdkit"
chmod +x "$T/bin/nbdkit"
PATH=$T/bin:$PATH "$VAIOCTL" apply "$T/b.yaml" > "$T/apply.out" 2>&1 &
apply_pid=$!
for _ in $(seq 200); do alive "$old" || break; sleep 0.02; done
alive "$old" && fail "the old chain (pid $old) was not stopped"
new=$(cat "$d/nbdkit.pid" 2>/dev/null || true)
if [ -n "$new" ] && [ "$new" != "$old" ] && alive "$new"; then
  fail "the new chain (pid $new) already runs: the window was missed"
fi
# No nbdkit serves the disk now: this connects into the new socket's
# backlog and is answered once the new chain runs.
t0=$(date +%s%N)
size=$(nbdinfo --size "$uri" 2>&1) || fail "a client connecting during the swap was refused: $size"
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$size" = $((16 << 20)) ] || fail "size during the swap: $size"
wait "$apply_pid" || fail "apply failed: $(cat "$T/apply.out")"
grep -Eq "vm1/disk0: swapped chain \(pid $old -> [0-9]+\)" "$T/apply.out" || fail "apply: $(cat "$T/apply.out")"
pass "a client connecting during the swap waited $waited ms and was served: $(cat "$T/apply.out")"

qemu-io -f raw "$uri" -c "read -P 0x77 0 1M" >/dev/null || fail "data after the swap"
st=$("$VAIOCTL" status "$T/b.yaml" --json | jq -r '.vms[0].disks[0] | "\(.state) \(.compliance)"')
[ "$st" = "running compliant" ] || fail "status after the swap: $st"
# down must still find (and flush) the nbdkit behind the handed-over socket.
out=$("$VAIOCTL" down "$T/b.yaml" 2>&1) || fail "down: $out"
grep -q "vm1/disk0: stopped (pid [0-9]*), flushed" <<<"$out" || fail "down: $out"
pass "the new chain serves the data, is compliant, and down flushes it: $out"

#!/bin/bash
# The quiesce step of a swap is bounded and never leaves a disk paused:
# a flush that does not complete within --timeout aborts the swap and
# resumes the old chain; an apply interrupted (SIGINT) while the disk is
# paused resumes it before it exits; a cache whose stats cannot be read
# is not assumed clean: removing it is refused unless --force.
# nbdkit's delay filter (delay-open) stands in for a filter that hangs:
# the flush goes over a new side connection, whose open it delays.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
so=$(nbdkit --dump-config | sed -n 's/^filterdir=//p')/nbdkit-delay-filter.so
[ -f "$so" ] || fail "nbdkit's delay filter not found at $so"
cat > "$T/nbdkit-delay.yaml" <<YAML
name: nbdkit-delay
class: sioc
vendor: nbdkit
version: 1
path: $so
sha256: $(sha256sum "$so" | cut -d' ' -f1)
parameters:
  - name: delay-open
    type: string
    required: false
    description: delay of each new connection
YAML
truncate -s 16M "$T/vm1.img"
config () { # FILE DELAY CACHING-LINE
  cat > "$1" <<YAML
cluster: q
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $T/nbdkit-delay.yaml, $B/caching/vaio-cache.yaml ]
policies:
  - name: p
    sioc: { delay-open: $2 }
$3
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}
cache="    caching: { cache-size: 4M, cache-mode: write-through }"
config "$T/q1.yaml" 2 "$cache"
config "$T/q2.yaml" 1 "$cache"
config "$T/q3.yaml" 2 ""
TEST_CONFIGS+=("$T/q1.yaml")
pidf=$T/state/host1/vms/vm1/disk0/nbdkit.pid
"$VAIOCTL" up "$T/q1.yaml" >/dev/null
pid=$(cat "$pidf")
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x33 0 64k" >/dev/null

# Flush over a connection that opens only after 2 s; --timeout 1.
t0=$(date +%s%N)
rc=0
"$VAIOCTL" apply "$T/q2.yaml" --timeout 1 > "$T/a1.out" 2>&1 || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" -ne 0 ] || fail "a swap whose flush hangs succeeded: $(cat "$T/a1.out")"
grep -Eq "vm1/disk0: swap aborted at flush \(timed out\) after I/O was held [0-9]+ ms; old chain still serving" "$T/a1.out" ||
  fail "flush timeout not reported: $(cat "$T/a1.out")"
[ "$ms" -lt 1900 ] || fail "apply held the disk ${ms} ms with --timeout 1"
[ "$(cat "$pidf")" = "$pid" ] || fail "the old chain was stopped"
timeout 10 qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x33 0 64k" >/dev/null ||
  fail "disk not serving after the aborted swap (still paused?)"
pass "a hung flush aborts the swap after ${ms} ms; the old chain (pid $pid) serves"

# SIGINT while paused (the flush is waiting for its connection).
"$VAIOCTL" apply "$T/q2.yaml" --timeout 20 > "$T/a2.out" 2>&1 &
ap=$!
sleep 0.8
kill -INT "$ap"
rc=0
wait "$ap" || rc=$?
[ "$rc" -ne 0 ] || fail "interrupted apply exited 0"
grep -q "vaioctl: interrupted: disk resumed" "$T/a2.out" || fail "no resume on SIGINT: $(cat "$T/a2.out")"
[ "$(cat "$pidf")" = "$pid" ] || fail "the old chain was stopped"
timeout 10 qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x33 0 64k" >/dev/null ||
  fail "disk left paused by an interrupted apply"
pass "an apply interrupted while the disk is paused resumes it"

# A cache whose stats are unreadable is not clean.
printf 'XXXXXXXX' | dd of="$T/state/host1/vms/vm1/disk0/caching/stats" conv=notrunc status=none
expect_fail "removing a cache whose stats are unreadable" \
  "vm1/disk0: refusing to remove caching: cannot read its stats ($T/state/host1/vms/vm1/disk0/caching/stats) to tell whether it holds dirty data; use --force" \
  "$VAIOCTL" apply "$T/q3.yaml" --timeout 10
[ "$(cat "$pidf")" = "$pid" ] || fail "the refused apply stopped the disk"
out=$("$VAIOCTL" apply "$T/q3.yaml" --timeout 10 --force 2>&1) || fail "--force: $out"
grep -Eq "vm1/disk0: swapped chain \(pid $pid -> [0-9]+\)" <<<"$out" || fail "--force did not swap: $out"
timeout 10 qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x33 0 64k" >/dev/null || fail "data lost"
pass "--force removes it (write-through: the data is in the image)"

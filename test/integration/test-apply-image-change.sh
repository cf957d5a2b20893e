#!/bin/bash
# Changing a disk's image, socket or port in the config is not a chain
# swap: a swap keeps the guest's connection, so the guest would be given
# another disk behind the same socket (or wait on the old socket).  apply
# refuses it, naming both values and saying to bring the disk down and
# up; nothing changes (same pid, same image served).
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
truncate -s 16M "$T/vm1.img" "$T/other.img"
config () { # FILE DISK-KEYS
  cat > "$1" <<YAML
cluster: image
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/caching/vaio-cache.yaml ]
policies:
  - name: p
    caching: { cache-size: 8M, cache-mode: write-through }
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, policy: p, $2 } ]
YAML
}
config "$T/c1.yaml" "image: vm1.img"
config "$T/image.yaml" "image: other.img"
config "$T/sock.yaml" "image: vm1.img, socket: state/other.sock"
TEST_CONFIGS+=("$T/c1.yaml")
pidf=$T/state/host1/vms/vm1/disk0/nbdkit.pid
"$VAIOCTL" up "$T/c1.yaml" >/dev/null
pid=$(cat "$pidf")
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x42 0 64k" >/dev/null

expect_fail "apply changing the image" \
  "vm1/disk0: refusing to change the disk's image ($T/vm1.img -> $T/other.img) by a swap: its guest would be given another disk behind the same socket; to change a disk's image, bring it down, edit, and up" \
  "$VAIOCTL" apply "$T/image.yaml"
expect_fail "apply changing the socket" \
  "vm1/disk0: refusing to change the disk's socket or port (unix $(sock_uri vm1 | sed 's/.*socket=//') -> $T/state/other.sock) by a swap" \
  "$VAIOCTL" apply "$T/sock.yaml"
[ "$(cat "$pidf")" = "$pid" ] || fail "a refused apply replaced the chain"
qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x42 0 64k" >/dev/null || fail "the disk no longer serves vm1.img"
qemu-io -f raw -r "$T/other.img" -c "read -P 0 0 64k" >/dev/null || fail "other.img was written"
pass "image and socket changes refused; pid $pid still serves vm1.img"

# down, edit, up is how: then the other image is served, and the cache
# of the old image (clean, warm with its blocks) is set aside.
"$VAIOCTL" down "$T/c1.yaml" >/dev/null
out=$("$VAIOCTL" up "$T/image.yaml" 2>&1) || fail "up image.yaml: $out"
qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0 0 64k" >/dev/null || fail "down/up did not serve other.img (stale cache?)"
grep -q "vm1/disk0: caching state set aside .*: the last chain started on this disk served another image ($T/vm1.img)" <<<"$out" ||
  fail "the old image's cache was not said to be set aside: $out"
pass "down + up serves the new image, the old image's cache set aside"

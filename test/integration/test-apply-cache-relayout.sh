#!/bin/bash
# vaioctl apply changing vaio-cache's cache-size: the cache file is laid
# out for one size, and vaio-cache refuses it for another.  The swap
# destages the write-back cache first, then starts the new chain on an
# empty cache: no acknowledged write is lost, the disk keeps serving.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
truncate -s 32M "$T/vm1.img"
config () { # FILE CACHE-SIZE
  cat > "$1" <<YAML
cluster: relayout
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/caching/vaio-cache.yaml ]
policies:
  - name: p
    caching: { cache-size: $2, cache-mode: write-back }
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}
config "$T/small.yaml" 8M
config "$T/big.yaml" 16M
TEST_CONFIGS+=("$T/small.yaml")
pidf=$T/state/host1/vms/vm1/disk0/nbdkit.pid
cache=$T/state/host1/vms/vm1/disk0/caching/cache.img

"$VAIOCTL" up "$T/small.yaml" >/dev/null
pid=$(cat "$pidf")
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x6b 0 1M" -c "write -P 0x3c 8M 512k" >/dev/null
[ "$(stat -c %s "$cache")" -lt $((16 * 1024 * 1024)) ] || fail "the 8M cache file is not smaller than 16M"

out=$("$VAIOCTL" apply "$T/big.yaml" --dry-run 2>&1)
grep -q "change cache-size: 8M -> 16M" <<<"$out" || fail "dry-run does not name the change: $out"
out=$("$VAIOCTL" apply "$T/big.yaml" 2>&1) || fail "apply failed: $out"
grep -qF "vm1/disk0: cache-size changed: the cache ($cache) was destaged and starts empty" <<<"$out" ||
  fail "apply did not empty the re-laid-out cache: $out"
grep -Eq "vm1/disk0: swapped chain \(pid $pid -> [0-9]+\)" <<<"$out" || fail "not swapped: $out"
pass "cache-size 8M -> 16M swapped: $(grep swapped <<<"$out")"

qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x6b 0 1M" -c "read -P 0x3c 8M 512k" >/dev/null ||
  fail "data not readable through the new chain"
qemu-io -f raw -r "$T/vm1.img" -c "read -P 0x6b 0 1M" -c "read -P 0x3c 8M 512k" >/dev/null ||
  fail "the image does not hold the destaged writes"
[ "$(stat -c %s "$cache")" -ge $((16 * 1024 * 1024)) ] || fail "the new cache is not 16M"
st=$("$VAIOCTL" status "$T/big.yaml" --json | jq -r '.vms[0].disks[0] | "\(.state) \(.compliance)"')
[ "$st" = "running compliant" ] || fail "status after the swap: $st"
pass "the writes are in the image and read back through the 16M cache; $st"

#!/bin/bash
# A cache moved to another file is a cache the writes made meanwhile
# bypassed.  down/edit/up from cache file A to B and back to A: A, though
# cleanly destaged, holds blocks older than the image, so the start sets
# it aside and the guest reads the newest data.  apply moving a
# write-back cache from A to B destages A first (its dirty blocks reach
# the image before B serves) and empties it.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
truncate -s 16M "$T/vm1.img"
mkdir -p -m 0700 "$T/caches"
config () { # FILE CACHE-FILE
  cat > "$1" <<YAML
cluster: moved
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/caching/vaio-cache.yaml ]
policies:
  - name: p
    caching: { cache-size: 8M, cache-mode: write-back, cache-file: $2, cache-dirty-high: 90, cache-dirty-low: 80 }
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}
config "$T/a.yaml" "$T/caches/a.img"
config "$T/b.yaml" "$T/caches/b.img"
TEST_CONFIGS+=("$T/a.yaml")
io () { qemu-io -f raw "$(sock_uri vm1)" "$@" >/dev/null; }

# down/edit/up: aa through A, bb through B, back to A.
"$VAIOCTL" up "$T/a.yaml" >/dev/null
io -c "write -P 0xaa 0 1M" -c "read -P 0xaa 0 1M"
"$VAIOCTL" down "$T/a.yaml" >/dev/null
"$VAIOCTL" up "$T/b.yaml" >/dev/null
io -c "write -P 0xbb 0 1M"
"$VAIOCTL" down "$T/b.yaml" >/dev/null
cmp -n 1M "$T/vm1.img" <(head -c 1M /dev/zero | tr '\0' '\273') ||
  fail "down did not destage B's bb into the image"
out=$("$VAIOCTL" up "$T/a.yaml" 2>&1) || fail "up a: $out"
io -c "read -P 0xbb 0 1M" || fail "down/edit/up A -> B -> A: the guest reads A's stale aa"
grep -qF "vm1/disk0: stale cache $T/caches/a.img set aside: the last chain started on this disk cached in $T/caches/b.img, not here" <<<"$out" ||
  fail "returning to cache A did not say it set A aside and why: $out"
pass "down/edit/up A -> B -> A: A set aside, the guest reads bb"

# apply A -> B with dirty blocks in A: destaged before B serves.
io -c "write -P 0xcc 2M 1M"
dirty=$(jq -r '.vms[0].disks[0].chain[] | select(.class == "caching") | .stats.counters.dirty_bytes' \
  <<<"$("$VAIOCTL" status "$T/a.yaml" --json || true)")
[ "${dirty:-0}" -gt 0 ] || fail "setup: cache A holds no dirty bytes ($dirty)"
out=$("$VAIOCTL" apply "$T/b.yaml" 2>&1) || fail "apply a -> b: $out"
grep -q "swapped chain" <<<"$out" || fail "moving the cache did not swap: $out"
grep -qF "cache-file changed: the cache ($T/caches/a.img) was destaged and starts empty" <<<"$out" ||
  fail "apply did not say it destaged A: $out"
[ ! -e "$T/caches/a.img" ] || fail "A left in place after the move"
io -c "read -P 0xcc 2M 1M" -c "read -P 0xbb 0 1M" || fail "apply A -> B: the guest lost A's dirty cc"
"$VAIOCTL" down "$T/b.yaml" >/dev/null
cmp -n 1M "$T/vm1.img" <(head -c 1M /dev/zero | tr '\0' '\273') || fail "bb not in the image"
cmp -i 2M:0 -n 1M "$T/vm1.img" <(head -c 1M /dev/zero | tr '\0' '\314') || fail "cc not in the image"
pass "apply A -> B destages A first ($dirty bytes dirty at the swap); the image holds every write"

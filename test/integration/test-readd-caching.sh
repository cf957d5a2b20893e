#!/bin/bash
# Caching removed, writes made without it, caching added back: a cache
# stopped cleanly trusts every block it holds, older than the image now,
# so the start that re-adds caching sets it aside (it starts empty) and
# the guest reads the newest data.  Through apply and through
# down/edit/up.  A cache that may hold dirty data is never set aside nor
# bypassed: starting without it is refused, nothing starts.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
truncate -s 16M "$T/vm1.img"
config () { # FILE CACHING-LINE
  cat > "$1" <<YAML
cluster: readd
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/caching/vaio-cache.yaml, $B/sioc/vaio-sioc.yaml ]
policies:
  - name: p
    sioc: { sioc-datastore: state/ds.seg }
$2
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}
config "$T/wt.yaml" "    caching: { cache-size: 8M, cache-mode: write-through }"
config "$T/wb.yaml" "    caching: { cache-size: 8M, cache-mode: write-back }"
config "$T/wbkeep.yaml" "    caching: { cache-size: 8M, cache-mode: write-back, cache-destage-on-close: false }"
config "$T/none.yaml" ""
TEST_CONFIGS+=("$T/wt.yaml")
S=$T/state/host1/vms/vm1/disk0
io () { qemu-io -f raw "$(sock_uri vm1)" "$@" >/dev/null; }

# down/edit/up: aa through the cache, bb without it, the cache back.
"$VAIOCTL" up "$T/wt.yaml" >/dev/null
io -c "write -P 0xaa 0 1M" -c "read -P 0xaa 0 1M"
"$VAIOCTL" down "$T/wt.yaml" >/dev/null
"$VAIOCTL" up "$T/none.yaml" >/dev/null
io -c "write -P 0xbb 0 1M"
"$VAIOCTL" down "$T/none.yaml" >/dev/null
out=$("$VAIOCTL" up "$T/wt.yaml" 2>&1) || fail "up wt: $out"
io -c "read -P 0xbb 0 1M" || fail "down/edit/up: the guest reads the stale cache, not bb"
grep -q "vm1/disk0: caching state set aside ($S/caching -> $S/caching.stale-[0-9-]*): the last chain started on this disk ran without caching" <<<"$out" ||
  fail "re-adding caching did not say it set the stale cache aside: $out"
pass "down/edit/up: the re-added cache starts empty, the guest reads bb"

# apply: the cache stopped cleanly, a chain without it started by apply,
# then apply adds caching back to the running disk (a swap).
io -c "write -P 0xaa 2M 1M" -c "read -P 0xaa 2M 1M"
"$VAIOCTL" down "$T/wt.yaml" >/dev/null
out=$("$VAIOCTL" apply "$T/none.yaml" 2>&1) || fail "apply none: $out"
grep -q "vm1/disk0: started" <<<"$out" || fail "apply did not start the disk: $out"
io -c "write -P 0xbb 2M 1M"
out=$("$VAIOCTL" apply "$T/wt.yaml" 2>&1) || fail "apply wt: $out"
grep -q "swapped chain" <<<"$out" || fail "adding caching did not swap: $out"
io -c "read -P 0xbb 2M 1M" || fail "apply: the guest reads the stale cache, not bb"
grep -q "caching state set aside" <<<"$out" || fail "apply did not say it set the stale cache aside: $out"
pass "apply: the re-added cache starts empty, the guest reads bb"

# apply removing a write-back cache destages it: the cache left behind
# holds no dirty data (its nbdkit was killed, its metadata says so), so
# the chain without it starts, and the cache added back starts empty.
out=$("$VAIOCTL" apply "$T/wb.yaml" 2>&1) || fail "apply wb: $out"
io -c "write -P 0xaa 4M 1M"
out=$("$VAIOCTL" apply "$T/none.yaml" 2>&1) || fail "apply none (destage): $out"
io -c "read -P 0xaa 4M 1M" -c "write -P 0xbb 4M 1M"
out=$("$VAIOCTL" apply "$T/wb.yaml" 2>&1) || fail "apply wb again: $out"
grep -q "caching state set aside" <<<"$out" || fail "apply did not set the destaged cache aside: $out"
io -c "read -P 0xbb 4M 1M" -c "read -P 0xbb 0 1M" -c "read -P 0xbb 2M 1M" ||
  fail "apply remove/add write-back: stale data"
pass "apply: a destaged write-back cache removed and re-added serves bb"

# A disk running without a chain-classes record (started before it was
# kept): its running record says what runs, so a swap that keeps caching
# keeps its cache.
rm "$S/chain-classes"
out=$("$VAIOCTL" apply "$T/wt.yaml" 2>&1) || fail "apply wb -> wt without a record: $out"
grep -q "swapped chain" <<<"$out" || fail "cache-mode change did not swap: $out"
grep -q "set aside" <<<"$out" && fail "a swap keeping caching set its cache aside: $out"
grep -q "^class caching$" "$S/chain-classes" || fail "no record after the swap"
io -c "read -P 0xbb 4M 1M"
out=$("$VAIOCTL" apply "$T/wb.yaml" 2>&1) || fail "apply back to wb: $out"
pass "without a record, the running record vouches for the running chain's cache"

# A cache holding dirty data at a clean stop (no destage on close): a
# chain without caching would read the older image: refused.
"$VAIOCTL" down "$T/wb.yaml" >/dev/null
"$VAIOCTL" up "$T/wbkeep.yaml" >/dev/null
io -c "write -P 0xcc 6M 1M"
"$VAIOCTL" down "$T/wbkeep.yaml" >/dev/null
qemu-io -f raw -r "$T/vm1.img" -c "read -P 0xcc 6M 1M" >/dev/null 2>&1 &&
  fail "setup: the write reached the image, the cache holds nothing dirty"
expect_fail "up without caching over a dirty cache" \
  "vm1/disk0: refusing to start without caching: the cache $S/caching/cache.img holds 16 dirty blocks (its last shutdown did not destage them)" \
  "$VAIOCTL" up "$T/none.yaml"
[ -e "$S/nbdkit.pid" ] && fail "the refused up started something"
expect_fail "apply without caching over a dirty cache" \
  "bring the disk up with its caching policy so the cache destages" \
  "$VAIOCTL" apply "$T/none.yaml"
[ -e "$S/nbdkit.pid" ] && fail "the refused apply started something"
# Without a record of the last chain, the dirty cache may be older than
# the image or hold its newest writes: neither destaged nor discarded.
mv "$S/chain-classes" "$T/chain-classes"
expect_fail "up with caching over a dirty cache of unknown standing" \
  "vm1/disk0: refusing to start with caching: the cache $S/caching/cache.img may be stale (no record says which filters the last chain on this disk had (chain-classes is missing), so writes may have bypassed it), but holds 16 dirty blocks" \
  "$VAIOCTL" up "$T/wb.yaml"
[ -e "$S/caching/cache.img" ] || fail "the refused up moved the dirty cache"
mv "$T/chain-classes" "$S/chain-classes"
out=$("$VAIOCTL" up "$T/wb.yaml" 2>&1) || fail "up wb over its own dirty cache: $out"
grep -q "set aside" <<<"$out" && fail "the dirty cache of the same chain was set aside: $out"
io -c "read -P 0xcc 6M 1M" || fail "the dirty cache's data is lost"
pass "the dirty cache is used by the chain that has it"

# A write-back cache killed with dirty blocks: the same refusal (its
# metadata's dirty entries), until a chain with the cache destages it.
io -c "write -P 0xdd 8M 1M"
kill -9 "$(cat "$S/nbdkit.pid")"
for _ in $(seq 100); do [ -e "/proc/$(cat "$S/nbdkit.pid")" ] || break; sleep 0.05; done
expect_fail "up without caching over a killed dirty cache" \
  "dirty blocks (its nbdkit was killed)" \
  "$VAIOCTL" up "$T/none.yaml"
"$VAIOCTL" up "$T/wb.yaml" >/dev/null
"$VAIOCTL" down "$T/wb.yaml" >/dev/null
out=$("$VAIOCTL" up "$T/none.yaml" 2>&1) || fail "up none after the destage: $out"
io -c "read -P 0xdd 8M 1M" -c "read -P 0xcc 6M 1M" || fail "destaged data missing from the image"
pass "after a destaging down, the chain without caching starts and reads every write"

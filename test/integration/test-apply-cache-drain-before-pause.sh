#!/bin/bash
# vaioctl apply removing a write-back cache whose destage is slow (the
# SIOC limit below the cache throttles it): the cache destages BEFORE
# the pause, with the guest's I/O running; if it cannot get down to a
# small remainder within --timeout the swap is refused with nothing
# stopped.  With the limit lifted (a live change), the same removal goes
# through, and every write is in the image.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
truncate -s 32M "$T/vm1.img"
config () { # FILE LIMIT CACHING-LINE
  cat > "$1" <<YAML
cluster: cachedrain
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/caching/vaio-cache.yaml, $B/sioc/vaio-sioc.yaml ]
policies:
  - name: p
    sioc: { sioc-datastore: state/ds.seg, sioc-limit-iops: $2 }
$3
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}
cache="    caching: { cache-size: 16M, cache-mode: write-back, cache-dirty-high: 90, cache-dirty-low: 80 }"
config "$T/slow.yaml" 10 "$cache"
config "$T/fast.yaml" 0 "$cache"
config "$T/slow-none.yaml" 10 ""
config "$T/none.yaml" 0 ""
TEST_CONFIGS+=("$T/slow.yaml")
pidf=$T/state/host1/vms/vm1/disk0/nbdkit.pid
S=$T/state/host1/vms/vm1/disk0
"$VAIOCTL" up "$T/slow.yaml" >/dev/null
pid=$(cat "$pidf")
head -c 6M /dev/urandom > "$T/data"
nbdcopy "$T/data" "$(sock_uri vm1)" || fail "write through the cache"
dirty () { jq -r '.vms[0].disks[0].chain[] | select(.class == "caching") | .stats.counters.dirty_bytes' \
  <<<"$("$VAIOCTL" status "$T/slow.yaml" --json || true)"; }
[ "$(dirty)" -gt $((2 * 1024 * 1024)) ] || fail "setup: the cache holds only $(dirty) dirty bytes"

"$VAIOCTL" apply "$T/slow-none.yaml" --timeout 4 > "$T/apply.out" 2>&1 &
apply=$!
sleep 0.5
timeout 2 qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0 20M 64k" >/dev/null ||
  fail "guest I/O is held while the cache destages"
rc=0; wait "$apply" || rc=$?
[ "$rc" -ne 0 ] || fail "apply succeeded with a throttled destage: $(cat "$T/apply.out")"
grep -Eq "vaioctl: vm1/disk0: swap refused before pausing: the cache being removed or re-laid out still holds [0-9]+ dirty bytes after 4 s of destaging; nothing was stopped, the old chain \(pid $pid\) serves on" "$T/apply.out" ||
  fail "unexpected refusal: $(cat "$T/apply.out")"
grep -q "I/O held" "$T/apply.out" && fail "the refused swap held I/O: $(cat "$T/apply.out")"
[ "$(cat "$pidf")" = "$pid" ] || fail "the refused swap replaced the chain"
[ -e "$S/caching/drain" ] && fail "the refused swap left the cache draining"
pass "refused before pausing, guest I/O running: $(grep -o 'still holds [0-9]* dirty bytes' "$T/apply.out")"

out=$("$VAIOCTL" apply "$T/fast.yaml" 2>&1) || fail "lifting the limit: $out"
grep -q "changed live" <<<"$out" || fail "the limit change was not live: $out"
out=$("$VAIOCTL" apply "$T/none.yaml" 2>&1) || fail "apply none: $out"
grep -q "vm1/disk0: swapped chain (pid $pid -> " <<<"$out" || fail "no swap: $out"
"$VAIOCTL" down "$T/none.yaml" >/dev/null
cmp <(head -c 6M "$T/vm1.img") "$T/data" || fail "the image lacks writes the cache held"
pass "with the limit lifted the removal destages and swaps: $(grep swapped <<<"$out")"

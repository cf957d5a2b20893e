#!/bin/bash
# vaioctl apply changes live parameters (vaio-sioc limits and shares)
# without restarting the disk: it writes the filter's settings file, the
# filter applies it (its published limit changes), the pid stays, status
# stays compliant; a restart starts from the config, not a stale file.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
truncate -s 16M "$T/vm1.img"
config () {
  cat > "$1" <<YAML
cluster: live
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/sioc/vaio-sioc.yaml, $B/caching/vaio-cache.yaml ]
policies:
  - name: p
    sioc: { sioc-datastore: state/ds.seg, sioc-limit-iops: $2, sioc-shares: $3 }
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}
config "$T/c1.yaml" 100 normal
TEST_CONFIGS+=("$T/c1.yaml")
"$VAIOCTL" up "$T/c1.yaml" >/dev/null
pid=$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")
sioc_counter () {
  "$VAIOCTL" status "$T/c1.yaml" --json | jq -r ".vms[0].disks[0].chain[0].stats.counters[\"$1\"]"
}
for _ in $(seq 100); do [ "$(sioc_counter limit-iops)" = 100 ] && break; sleep 0.05; done
[ "$(sioc_counter limit-iops)" = 100 ] || fail "initial limit not published"

config "$T/c2.yaml" 300 high
"$VAIOCTL" apply "$T/c2.yaml" --dry-run | grep -q "change live parameters without a restart: sioc-limit-iops=300 sioc-shares=high" ||
  fail "dry-run: $("$VAIOCTL" apply "$T/c2.yaml" --dry-run)"
out=$("$VAIOCTL" apply "$T/c2.yaml")
grep -q "vm1/disk0: changed live (pid $pid unchanged): sioc-limit-iops=300 sioc-shares=high" <<<"$out" ||
  fail "apply: $out"
[ "$(stat -c %a "$T/state/host1/vms/vm1/disk0/sioc/settings")" = 600 ] || fail "settings file mode"
for _ in $(seq 40); do [ "$(sioc_counter limit-iops)" = 300 ] && break; sleep 0.05; done
[ "$(sioc_counter limit-iops)" = 300 ] || fail "filter did not apply the new limit"
[ "$(sioc_counter shares)" = 2000 ] || fail "filter did not apply the new shares"
[ "$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")" = "$pid" ] || fail "disk restarted"
pass "limit 100 -> 300 and shares normal -> high applied live; pid $pid unchanged"

"$VAIOCTL" status "$T/c2.yaml" --json | jq -e '.vms[0].disks[0].compliance == "compliant"' >/dev/null ||
  fail "not compliant after a live change"
"$VAIOCTL" apply "$T/c2.yaml" | grep -q "vm1/disk0: unchanged (pid $pid)" || fail "second apply not a no-op"
pass "status compliant; applying again changes nothing"

# The views' JSON: the VM view names the disk's socket; the host view
# lists each host's filters as vSphere does, not the cluster view again.
"$VAIOCTL" status "$T/c2.yaml" --view vm --json |
  jq -e --arg s "$T/state/host1/vms/vm1/disk0.sock" '.vms[0].disks[0].socket == $s' >/dev/null ||
  fail "vm view socket: $("$VAIOCTL" status "$T/c2.yaml" --view vm --json | jq -c '.vms[0].disks[0]')"
hv=$("$VAIOCTL" status "$T/c2.yaml" --view host --json)
[ "$(jq -c '[.hosts[0].name, [.hosts[0].filters[] | [.Name, .Vendor, .Version, .Type]]]' <<<"$hv")" = \
  '["host1",[["vaio-cache","vaio-nbd","0.1.0","caching"],["vaio-sioc","vaio-nbd","0.1.0","sioc"]]]' ] ||
  fail "host view JSON: $hv"
[ "$hv" != "$("$VAIOCTL" status "$T/c2.yaml" --view cluster --json)" ] || fail "host view JSON = cluster view JSON"
pass "status JSON: the VM view has the socket; the host view lists Name, Vendor, Version, Type per host"

# A live value the filter refuses (vaioctl cannot type-check shares):
# apply fails and says so, the filter keeps its settings, the settings
# file and the running record are the old ones again.
config "$T/c2bad.yaml" 400 lots
rc=0
"$VAIOCTL" apply "$T/c2bad.yaml" > "$T/apply-bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "apply of a refused live value succeeded: $(cat "$T/apply-bad.out")"
grep -q "vm1/disk0: vaio-sioc refused the new sioc settings and keeps the old ones" "$T/apply-bad.out" ||
  fail "refusal not reported: $(cat "$T/apply-bad.out")"
grep -q "changed live" "$T/apply-bad.out" && fail "a refused change was reported as made"
grep -q "sioc-shares=lots" "$T/state/host1/vms/vm1/disk0/nbdkit.log" ||
  grep -q "sioc-shares: 'lots'" "$T/state/host1/vms/vm1/disk0/nbdkit.log" ||
  fail "the filter's log does not name the bad value"
grep -qx "sioc-shares=high" "$T/state/host1/vms/vm1/disk0/sioc/settings" ||
  fail "old settings not restored: $(cat "$T/state/host1/vms/vm1/disk0/sioc/settings")"
sleep 0.3
[ "$(sioc_counter limit-iops)" = 300 ] || fail "the refused file changed the limit"
[ "$(sioc_counter shares)" = 2000 ] || fail "the refused file changed the shares"
[ "$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")" = "$pid" ] || fail "disk restarted"
"$VAIOCTL" status "$T/c2.yaml" --json | jq -e '.vms[0].disks[0].compliance == "compliant"' >/dev/null ||
  fail "the running record no longer matches the settings in force"
"$VAIOCTL" status "$T/c2bad.yaml" --json > "$T/sbad.json" || true
[ "$(jq -r '.vms[0].disks[0].compliance' "$T/sbad.json")" = noncompliant ] ||
  fail "a refused live change shows compliant: $(jq -c '.vms[0].disks[0]' "$T/sbad.json")"
[ "$(jq -r '.vms[0].disks[0].compliance_detail' "$T/sbad.json")" = \
  "running sioc-limit-iops is 300, the policy wants 400; run vaioctl apply" ] ||
  fail "compliance reason: $(jq -r '.vms[0].disks[0].compliance_detail' "$T/sbad.json")"
pass "a refused live value fails apply; the filter, its settings file and the record keep the old ones; status says which setting differs"

# A restart starts from the config: the settings file of the old process
# is removed, so a later config value is not overridden by it.
"$VAIOCTL" down "$T/c2.yaml" >/dev/null
config "$T/c3.yaml" 50 low
"$VAIOCTL" up "$T/c3.yaml" >/dev/null
[ ! -e "$T/state/host1/vms/vm1/disk0/sioc/settings" ] || fail "stale settings file survived a restart"
for _ in $(seq 100); do [ "$(sioc_counter limit-iops)" = 50 ] && break; sleep 0.05; done
[ "$(sioc_counter limit-iops)" = 50 ] || fail "restarted disk does not use the config's limit"
pass "a restarted disk takes its limits from the config, not a stale settings file"

# Adding a filter is not a live change: it swaps the chain.
sed 's/    sioc: { sioc-datastore: state\/ds.seg, sioc-limit-iops: 50, sioc-shares: low }/&\n    caching: { cache-size: 4M }/' \
  "$T/c3.yaml" > "$T/c4.yaml"
out=$("$VAIOCTL" apply "$T/c4.yaml" --dry-run)
grep -q "vm1/disk0: swap chain: add caching; keep sioc; set cache-size=4M; set cache-state-dir=$T/state/host1/vms/vm1/disk0/caching;$" <<<"$out" ||
  fail "adding caching is not a swap, or dry-run lacks its settings: $out"
pass "adding a filter is planned as a swap, not a live change"

# A swap whose new chain cannot start rolls back: the old chain serves
# again on the same socket, and status says the disk is not compliant
# (the running record describes the old chain, not the config).
sed 's/    caching: { cache-size: 4M }/    caching: { cache-size: 4K }/' "$T/c4.yaml" > "$T/c5.yaml"
qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x5a 0 64k" >/dev/null
rc=0
"$VAIOCTL" apply "$T/c5.yaml" > "$T/apply5.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "apply of an unstartable chain succeeded: $(cat "$T/apply5.out")"
grep -q "rolled back to the previous chain" "$T/apply5.out" || fail "no rollback: $(cat "$T/apply5.out")"
qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x5a 0 64k" >/dev/null || fail "disk not served after rollback"
"$VAIOCTL" status "$T/c5.yaml" --json > "$T/s5.json" || true
[ "$(jq -r '.vms[0].disks[0].state' "$T/s5.json")" = running ] || fail "not running after rollback"
[ "$(jq -r '.vms[0].disks[0].compliance' "$T/s5.json")" = noncompliant ] ||
  fail "status after rollback: $(jq -c '.vms[0].disks[0]' "$T/s5.json")"
pass "a chain that cannot start rolls back; the disk serves its data and status says noncompliant"
"$VAIOCTL" apply "$T/c4.yaml" | grep -q "swapped chain" || fail "c4 not applied"
out=$("$VAIOCTL" apply "$T/c3.yaml" --dry-run)
grep -q "vm1/disk0: swap chain: remove caching (vaio-cache); keep sioc; unset cache-size; unset cache-state-dir;$" <<<"$out" ||
  fail "dry-run of a removal: $out"
pass "--dry-run names each setting set or unset"

# Live parameters added, reordered and removed (issue 6): the other words
# are compared in order, live keys by value; the pid stays and the limit
# the filter publishes follows.  A removed key goes back to the manifest
# default (sioc-limit-iops: 0, no limit), written into the settings file.
"$VAIOCTL" down "$T/c5.yaml" >/dev/null
sioc_policy () {
  sed "s|^    sioc: .*|    sioc: { $2 }|" "$T/c1.yaml" > "$1"
}
sioc_policy "$T/k1.yaml" "sioc-datastore: state/ds.seg, sioc-shares: normal"
"$VAIOCTL" up "$T/k1.yaml" >/dev/null
pid=$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")
for _ in $(seq 100); do [ "$(sioc_counter limit-iops)" = 0 ] && break; sleep 0.05; done
[ "$(sioc_counter limit-iops)" = 0 ] || fail "k1: a limit without sioc-limit-iops"

sioc_policy "$T/k2.yaml" "sioc-datastore: state/ds.seg, sioc-shares: normal, sioc-limit-iops: 500"
out=$("$VAIOCTL" apply "$T/k2.yaml")
grep -qx "vm1/disk0: changed live (pid $pid unchanged): sioc-limit-iops=500" <<<"$out" ||
  fail "adding a live key: $out"
for _ in $(seq 40); do [ "$(sioc_counter limit-iops)" = 500 ] && break; sleep 0.05; done
[ "$(sioc_counter limit-iops)" = 500 ] || fail "added limit not in force"
[ "$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")" = "$pid" ] || fail "adding a live key restarted the disk"
pass "a live key absent before is added without a restart (limit 500 in force, pid $pid)"

sioc_policy "$T/k3.yaml" "sioc-limit-iops: 250, sioc-datastore: state/ds.seg, sioc-shares: high"
out=$("$VAIOCTL" apply "$T/k3.yaml")
grep -qx "vm1/disk0: changed live (pid $pid unchanged): sioc-limit-iops=250 sioc-shares=high" <<<"$out" ||
  fail "reordering + changing live keys: $out"
for _ in $(seq 40); do [ "$(sioc_counter limit-iops)" = 250 ] && break; sleep 0.05; done
[ "$(sioc_counter limit-iops)" = 250 ] || fail "reordered limit not in force"
[ "$(sioc_counter shares)" = 2000 ] || fail "reordered shares not in force"
sioc_policy "$T/k3b.yaml" "sioc-shares: high, sioc-datastore: state/ds.seg, sioc-limit-iops: 250"
out=$("$VAIOCTL" apply "$T/k3b.yaml")
grep -qx "vm1/disk0: changed live (pid $pid unchanged): none (only their order differs)" <<<"$out" ||
  fail "reordering only: $out"
[ "$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")" = "$pid" ] || fail "reordering keys restarted the disk"
"$VAIOCTL" status "$T/k3b.yaml" --json | jq -e '.vms[0].disks[0].compliance == "compliant"' >/dev/null ||
  fail "not compliant after reordering"
pass "reordered live keys change nothing but the record; pid $pid"

sioc_policy "$T/k4.yaml" "sioc-datastore: state/ds.seg, sioc-shares: high"
out=$("$VAIOCTL" apply "$T/k4.yaml" --dry-run)
grep -qx "vm1/disk0: change live parameters without a restart: sioc-limit-iops removed (back to its default 0)" <<<"$out" ||
  fail "dry-run of a removed key: $out"
out=$("$VAIOCTL" apply "$T/k4.yaml")
grep -qx "vm1/disk0: changed live (pid $pid unchanged): sioc-limit-iops removed (back to its default 0)" <<<"$out" ||
  fail "removing a live key: $out"
grep -qx "sioc-limit-iops=0" "$T/state/host1/vms/vm1/disk0/sioc/settings" ||
  fail "removed key not written as its default: $(cat "$T/state/host1/vms/vm1/disk0/sioc/settings")"
grep -qx "sioc-latency-threshold=30ms" "$T/state/host1/vms/vm1/disk0/sioc/settings" ||
  fail "settings file lacks the filter's other live defaults"
for _ in $(seq 40); do [ "$(sioc_counter limit-iops)" = 0 ] && break; sleep 0.05; done
[ "$(sioc_counter limit-iops)" = 0 ] || fail "removed limit still in force: $(sioc_counter limit-iops)"
[ "$(sioc_counter shares)" = 2000 ] || fail "shares lost when the limit was removed"
[ "$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")" = "$pid" ] || fail "removing a live key restarted the disk"
pass "a removed live key goes back to its manifest default without a restart (no limit, pid $pid)"
TEST_CONFIGS+=("$T/k4.yaml")
sioc_policy "$T/k5.yaml" "sioc-datastore: state/ds2.seg, sioc-shares: high"
out=$("$VAIOCTL" apply "$T/k5.yaml" --dry-run)
grep -qx "vm1/disk0: swap chain: keep sioc; change sioc-datastore: $T/state/ds.seg -> $T/state/ds2.seg;" <<<"$out" ||
  fail "dry-run of a changed setting: $out"
pass "--dry-run names a changed setting with both values"

#!/bin/bash
# A filter's .so altered after its disks started: status still shows
# every disk, the ones using that filter as out of compliance; up and
# validate refuse (validate with every other error of the config in the
# same run); down and host maintenance --stop-disks still stop the disks.
. "$(dirname "$0")/lib.sh"
mkdir "$T/pkg"
cp /usr/lib/x86_64-linux-gnu/nbdkit/filters/nbdkit-rate-filter.so "$T/pkg/rate.so"
sed "s|^path: .*|path: $T/pkg/rate.so|" "$MAN/nbdkit-rate.yaml" > "$T/pkg/rate.yaml"
two_vm_config "$T/c.yaml"
sed -i "s|      - $MAN/nbdkit-rate.yaml|      - $T/pkg/rate.yaml|" "$T/c.yaml"
grep -q "$T/pkg/rate.yaml" "$T/c.yaml" || fail "config does not use the copied rate filter"
"$VAIOCTL" up "$T/c.yaml" >/dev/null
pid1=$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")
pid2=$(cat "$T/state/host1/vms/vm2/disk0/nbdkit.pid")

printf 'x' >> "$T/pkg/rate.so" # the package no longer matches its manifest

rc=0
"$VAIOCTL" status "$T/c.yaml" --json > "$T/s.json" 2> "$T/s.err" || rc=$?
[ "$rc" = 1 ] || fail "status exited $rc: $(cat "$T/s.err")"
grep -q "integrity check failed for $T/pkg/rate.so" "$T/s.err" || fail "status stderr: $(cat "$T/s.err")"
[ "$(jq -r '[.vms[].disks[].state] | join(",")' "$T/s.json")" = running,running ] ||
  fail "status states: $(cat "$T/s.json")"
[ "$(jq -r '[.vms[].disks[].compliance] | join(",")' "$T/s.json")" = noncompliant,compliant ] ||
  fail "status compliance: $(jq -c '[.vms[].disks[] | {compliance, compliance_detail}]' "$T/s.json")"
jq -r '.vms[0].disks[0].compliance_detail' "$T/s.json" |
  grep -q "^sioc filter nbdkit-rate fails its integrity check: .*sha256 is" ||
  fail "compliance detail: $(jq -r '.vms[0].disks[0].compliance_detail' "$T/s.json")"
out=$("$VAIOCTL" status "$T/c.yaml" 2>/dev/null) || true # exits 1: noncompliant
grep -q "^             sioc filter nbdkit-rate fails its integrity check" <<<"$out" ||
  fail "text view: $out"
pass "status shows vm1 (uses the altered filter) noncompliant, vm2 compliant"

# top, like status, reads only stats: it goes on for every disk.
out=$("$VAIOCTL" top "$T/c.yaml" --iterations 1 --interval 100 --json 2>"$T/top.err") ||
  fail "top refused with an altered filter: $(cat "$T/top.err")"
[ "$(jq -r 'map(.disk) | join(",")' <<<"$out")" = vm1,vm2 ] || fail "top: $out"
pass "top still shows both disks"

# Commands that start chains refuse; validate reports every error at once.
expect_fail "up with an altered filter" "integrity check failed" "$VAIOCTL" up "$T/c.yaml"
sed 's/      rate: 10G/      rate: 10GiB/' "$T/c.yaml" > "$T/c2.yaml"
rc=0
out=$("$VAIOCTL" validate "$T/c2.yaml" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "validate exited $rc: $out"
grep -q "integrity check failed for $T/pkg/rate.so" <<<"$out" || fail "validate: no integrity error: $out"
grep -q "c2.yaml:[0-9]*:[0-9]*: bad size '10GiB' for 'rate'" <<<"$out" ||
  fail "validate hid the other error behind the integrity one: $out"
pass "validate reports the integrity failure and the bad size in one run"

out=$("$VAIOCTL" down "$T/c.yaml" --vm vm1 2>/dev/null)
[ "$out" = "vm1/disk0: stopped (pid $pid1), flushed" ] || fail "down vm1: $out"
alive "$pid1" && fail "vm1's nbdkit still runs after down"
out=$("$VAIOCTL" host maintenance host1 on --stop-disks -c "$T/c.yaml" 2>/dev/null) ||
  fail "maintenance --stop-disks failed: $out"
grep -q "vm2/disk0: stopped (pid $pid2), flushed" <<<"$out" || fail "maintenance: $out"
grep -q "host host1: maintenance mode on" <<<"$out" || fail "maintenance: $out"
alive "$pid2" && fail "vm2's nbdkit still runs after maintenance --stop-disks"
pass "down and host maintenance --stop-disks stop the disks despite the altered filter"

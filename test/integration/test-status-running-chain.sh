#!/bin/bash
# vaioctl status shows a running disk's chain as it runs (from the record
# `up` wrote, checked against the process's own --filter= arguments), not
# as the config's policy plans it now; when they differ it shows the
# policy's chain as planned_chain and the disk out of compliance.
. "$(dirname "$0")/lib.sh"
two_vm_config "$T/c.yaml"
"$VAIOCTL" up "$T/c.yaml" >/dev/null
pid1=$(cat "$T/state/host1/vms/vm1/disk0/nbdkit.pid")
chain () { jq -r ".vms[0].disks[0].$1 | if . == null then \"null\" else map(.filter) | join(\",\") end" "$2"; }

"$VAIOCTL" status "$T/c.yaml" --json > "$T/s1.json"
[ "$(chain chain "$T/s1.json")" = nbdkit-cache,nbdkit-rate ] || fail "vm1 chain: $(cat "$T/s1.json")"
[ "$(chain planned_chain "$T/s1.json")" = null ] || fail "planned_chain shown for a compliant disk"
[ "$(jq -r '.vms[0].disks[0] | .chain_source + " " + .compliance' "$T/s1.json")" = "running compliant" ] ||
  fail "vm1: $(jq -c '.vms[0].disks[0]' "$T/s1.json")"
pass "a running disk's chain comes from what runs, compliant"

# The policy changes in the config but is not applied: the disk still
# runs cache -> rate; the policy now plans cache only.
sed '/^    sioc:$/,/^      rate: 10G$/d' "$T/c.yaml" > "$T/c2.yaml"
grep -q rate: "$T/c2.yaml" && fail "c2.yaml still sets rate"
rc=0
"$VAIOCTL" status "$T/c2.yaml" --json > "$T/s2.json" || rc=$?
[ "$rc" = 1 ] || fail "status of a drifted disk exited $rc"
[ "$(chain chain "$T/s2.json")" = nbdkit-cache,nbdkit-rate ] ||
  fail "chain shown is not the running one: $(jq -c '.vms[0].disks[0]' "$T/s2.json")"
[ "$(chain planned_chain "$T/s2.json")" = nbdkit-cache ] ||
  fail "planned_chain: $(jq -c '.vms[0].disks[0]' "$T/s2.json")"
[ "$(jq -r '.vms[0].disks[0].compliance' "$T/s2.json")" = noncompliant ] || fail "drifted disk compliant"
[ "$(jq -r '.vms[0].disks[0].chain | map(.class) | join(",")' "$T/s2.json")" = caching,sioc ] ||
  fail "running chain's classes: $(jq -c '.vms[0].disks[0].chain' "$T/s2.json")"
[ "$(jq -r '.vms[1].disks[0] | .compliance + " " + (.planned_chain == null | tostring)' "$T/s2.json")" = \
  "compliant true" ] || fail "vm2 (unchanged policy): $(jq -c '.vms[1].disks[0]' "$T/s2.json")"
out=$("$VAIOCTL" status "$T/c2.yaml" --view vm) || true
grep -q "^  disk0 .* noncompliant *nbdkit-cache -> nbdkit-rate -> file$" <<<"$out" || fail "text view: $out"
grep -q "planned by the policy: nbdkit-cache -> file$" <<<"$out" || fail "text view lacks the plan: $out"
pass "policy changed, not applied: running chain shown, planned_chain beside it, noncompliant"

# A running record that does not describe the process (filters swapped
# in it) is caught against /proc/PID/cmdline.
rec=$T/state/host1/vms/vm1/disk0/running
cp "$rec" "$T/running.orig"
awk '/^argv --filter=.*cache/ { c = $0; next } /^argv --filter=.*rate/ { print; print c; next } { print }' \
  "$T/running.orig" > "$rec"
! cmp -s "$rec" "$T/running.orig" || fail "record not altered"
rc=0
"$VAIOCTL" status "$T/c.yaml" --json > "$T/s3.json" || rc=$?
[ "$rc" = 1 ] || fail "status exited $rc with a record that lies"
jq -r '.vms[0].disks[0].compliance + ": " + .vms[0].disks[0].compliance_detail' "$T/s3.json" |
  grep -q "^noncompliant: nbdkit (pid $pid1) runs --filter=pause --filter=[^ ]*nbdkit-cache-filter.so --filter=[^ ]*nbdkit-rate-filter.so but its running record says --filter=pause --filter=[^ ]*nbdkit-rate-filter.so --filter=[^ ]*nbdkit-cache-filter.so$" ||
  fail "record/process mismatch not reported: $(jq -c '.vms[0].disks[0]' "$T/s3.json")"
cp "$T/running.orig" "$rec"
"$VAIOCTL" status "$T/c.yaml" --json >/dev/null || fail "restored record still noncompliant"
pass "a record that does not match /proc/$pid1/cmdline makes the disk noncompliant"

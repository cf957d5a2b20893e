#!/bin/bash
# nbdkit's cache filter (no state parameter in its manifest) keeps its
# cache file in $TMPDIR: vaioctl points TMPDIR at the disk's caching
# state dir, in the process it starts and in the line `plan` prints.
. "$(dirname "$0")/lib.sh"
two_vm_config "$T/c.yaml"
state=$T/state/host1/vms/vm1/disk0

"$VAIOCTL" plan "$T/c.yaml" --vm vm1 | grep -q "^TMPDIR=$state/caching nbdkit -f " ||
  fail "plan line: $("$VAIOCTL" plan "$T/c.yaml" --vm vm1)"
pass "plan prints TMPDIR=$state/caching before nbdkit"

"$VAIOCTL" up "$T/c.yaml" >/dev/null
pid=$(cat "$state/nbdkit.pid")
tr '\0' '\n' < "/proc/$pid/environ" | grep -qx "TMPDIR=$state/caching" ||
  fail "nbdkit's environment: $(tr '\0' '\n' < "/proc/$pid/environ" | grep TMPDIR || echo no TMPDIR)"
# The cache file (created and unlinked at once) is open in that directory.
ls -l "/proc/$pid/fd" | grep -q " $state/caching/.* (deleted)" ||
  fail "no cache file in $state/caching: $(ls -l "/proc/$pid/fd")"
ls -l "/proc/$pid/fd" | grep -q " /var/tmp/" && fail "a file in /var/tmp"
pass "nbdkit (pid $pid) has TMPDIR=$state/caching and its cache file there"

# The record says so; down and up again keep it.
grep -qx "env TMPDIR=$state/caching" "$state/running" || fail "running record: $(cat "$state/running")"
nbdsh -u "$(sock_uri vm1)" -c 'h.pwrite(b"x" * 4096, 0); assert h.pread(4096, 0) == b"x" * 4096'
pass "the disk serves through the cache"

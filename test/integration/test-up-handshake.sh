#!/bin/bash
# `up` reports a disk as serving only when an NBD client completes the
# handshake, not when nbdkit merely listens: vaio-crypt with a wrong
# passphrase refuses every handshake while nbdkit listens on.  up must
# fail with the reason and nbdkit's own words, and leave no nbdkit behind.
. "$(dirname "$0")/lib.sh"
. "$VAIO_SRC/test/integration/crypt-config.sh"
crypt_config "$T/bad.yaml" "$T/wrong"
d=$T/state/host1/vms/vm1/disk0

"$VAIOCTL" validate "$T/bad.yaml" >/dev/null
rc=0
t0=$(date +%s%N)
out=$("$VAIOCTL" up "$T/bad.yaml" --timeout 2 2>&1) || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" = 1 ] || fail "up exited $rc for a chain that refuses handshakes: $out"
! grep -q "serving" <<<"$out" || fail "up claims the disk serves: $out"
grep -Eq "^vm1/disk0: failed: nbdkit \(pid [0-9]+\) does not serve: NBD handshake failed" <<<"$out" ||
  fail "no clear failure line: $out"
grep -q "vm1/disk0: nbdkit: .*no LUKS keyslot opens with this key" <<<"$out" ||
  fail "the log tail with nbdkit's reason is missing: $out"
[ "$ms" -lt 8000 ] || fail "up took $ms ms with --timeout 2"
pass "up fails: $(grep -m1 'failed:' <<<"$out")"

pid=$(sed -nE 's/.*nbdkit \(pid ([0-9]+)\) does not serve.*/\1/p' <<<"$out" | head -1)
alive "$pid" && fail "up left the refusing nbdkit (pid $pid) running"
[ ! -e "$d/running" ] || fail "a running record was written for a failed disk"
[ ! -e "$T/state/host1/vms/vm1/disk0.sock" ] || fail "the failed disk's socket is left"
"$VAIOCTL" status "$T/bad.yaml" --json > "$T/s.json" || true
[ "$(jq -r '.vms[0].disks[0].state' "$T/s.json")" = stopped ] ||
  fail "status after the failed up: $(cat "$T/s.json")"
pass "the refusing nbdkit (pid $pid) was killed; status says stopped"

# The same chain with the right passphrase serves, and up says so.
crypt_config "$T/good.yaml" "$T/right"
out=$("$VAIOCTL" up "$T/good.yaml" --timeout 10)
grep -Eq "^vm1/disk0: serving nbd\+unix:.*\(pid [0-9]+\)$" <<<"$out" || fail "good up: $out"
nbdsh -u "nbd+unix:///?socket=$T/state/host1/vms/vm1/disk0.sock" \
  -c 'h.pwrite(b"\x5a" * 4096, 0); h.flush(); assert h.pread(4096, 0) == b"\x5a" * 4096' ||
  fail "the good chain does not read back"
pass "with the right passphrase: $out"

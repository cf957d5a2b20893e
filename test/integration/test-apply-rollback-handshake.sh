#!/bin/bash
# `vaioctl apply` swaps a disk's chain and checks the new chain serves with
# a real NBD handshake: a new chain that listens but refuses every client
# (vaio-crypt given a wrong passphrase file) fails the swap, and the old
# chain is started again, serving the same bytes.
. "$(dirname "$0")/lib.sh"
. "$VAIO_SRC/test/integration/crypt-config.sh"
crypt_config "$T/good.yaml" "$T/right"
sock=$T/state/host1/vms/vm1/disk0.sock
d=$T/state/host1/vms/vm1/disk0

"$VAIOCTL" up "$T/good.yaml" >/dev/null
nbdsh -u "nbd+unix:///?socket=$sock" -c 'h.pwrite(b"\xa5" * 65536, 0); h.flush()'
pid0=$(cat "$d/nbdkit.pid")

crypt_config "$T/bad.yaml" "$T/wrong"
rc=0
out=$("$VAIOCTL" apply "$T/bad.yaml" --timeout 3 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "apply exited $rc for a chain that refuses handshakes: $out"
! grep -q "swapped chain" <<<"$out" || fail "apply reports the swap as done: $out"
grep -Eq "vm1/disk0: failed: nbdkit \(pid [0-9]+\) does not serve: NBD handshake failed" <<<"$out" ||
  fail "no handshake failure reported: $out"
grep -q "vm1/disk0: rolled back to the previous chain" <<<"$out" || fail "no rollback: $out"
pass "apply fails the swap: $(grep -m1 'does not serve' <<<"$out" | cut -c1-120)"

bad=$(sed -nE 's/.*nbdkit \(pid ([0-9]+)\) does not serve.*/\1/p' <<<"$out" | head -1)
alive "$bad" && fail "the refusing new chain (pid $bad) still runs"
pid1=$(cat "$d/nbdkit.pid")
alive "$pid1" || fail "no nbdkit serves the disk after the rollback"
[ "$pid1" != "$pid0" ] || fail "the old nbdkit was never stopped: the swap was not tried"
tr '\0' '\n' < "/proc/$pid1/cmdline" | grep -qx "crypt-passphrase-file=$T/right" ||
  fail "the restarted chain is not the old one: $(tr '\0' ' ' < "/proc/$pid1/cmdline")"
nbdsh -u "nbd+unix:///?socket=$sock" -c 'assert h.pread(65536, 0) == b"\xa5" * 65536' ||
  fail "the rolled-back chain does not read the data back"
"$VAIOCTL" status "$T/good.yaml" --json > "$T/s.json" ||
  fail "status against the old config: $(cat "$T/s.json")"
[ "$(jq -r '.vms[0].disks[0].compliance' "$T/s.json")" = compliant ] ||
  fail "the running record is not the old chain's"
pass "the old chain (pid $pid1) serves the same bytes and matches the old config"

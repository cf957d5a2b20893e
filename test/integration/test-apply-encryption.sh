#!/bin/bash
# vaioctl apply and encryption: adding vaio-crypt to a freshly formatted
# disk (a LUKS header, nothing after it) is allowed; once the disk holds
# data, removing encryption or moving it (first <-> last, i.e.
# allow-cleartext-filters) is refused before anything stops, unless
# --allow-encryption-change.
. "$(dirname "$0")/lib.sh"
B=$VAIO_BUILD/nbdkit-filters
printf 'pw' > "$T/pw"; chmod 600 "$T/pw"
"$B/encryption/vaio-crypt" format "$T/vm1.img" --size 16M --passphrase-file "$T/pw" >/dev/null
config () { # FILE POLICY-LINES
  cat > "$1" <<YAML
cluster: enc
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $B/encryption/vaio-crypt.yaml, $B/caching/vaio-cache.yaml ]
policies:
  - name: p
    caching: { cache-size: 4M, cache-mode: write-through }
$2
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: p } ]
YAML
}
config "$T/plain.yaml" ""
config "$T/first.yaml" "    encryption: { crypt-passphrase-file: pw }"
config "$T/last.yaml" "    encryption: { crypt-passphrase-file: pw }
    allow-cleartext-filters: true"
TEST_CONFIGS+=("$T/plain.yaml")
pidf=$T/state/host1/vms/vm1/disk0/nbdkit.pid

"$VAIOCTL" up "$T/plain.yaml" >/dev/null
pid=$(cat "$pidf")
out=$("$VAIOCTL" apply "$T/first.yaml" 2>&1) || fail "adding encryption to a formatted empty disk: $out"
grep -Eq "vm1/disk0: swapped chain \(pid $pid -> [0-9]+\)" <<<"$out" || fail "not swapped: $out"
pass "encryption added to a disk holding only a LUKS header"

qemu-io -f raw "$(sock_uri vm1)" -c "write -P 0x5a 0 64k" >/dev/null
pid=$(cat "$pidf")
expect_fail "moving encryption first -> last on a disk holding data" \
  "vm1/disk0: refusing to move encryption from first to last of the chain on a disk that holds data" \
  "$VAIOCTL" apply "$T/last.yaml"
expect_fail "removing encryption from a disk holding data" \
  "vm1/disk0: refusing to remove encryption on a disk that holds data" \
  "$VAIOCTL" apply "$T/plain.yaml"
[ "$(cat "$pidf")" = "$pid" ] || fail "a refused apply restarted the disk"
qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x5a 0 64k" >/dev/null || fail "data unreadable after refusals"
pass "refused applies left the disk running (pid $pid) with its data"

out=$("$VAIOCTL" apply "$T/last.yaml" --allow-encryption-change --dry-run 2>&1)
grep -qx "vm1/disk0: swap chain: keep caching; keep encryption; move encryption first -> last;" <<<"$out" ||
  fail "dry-run does not say encryption moves: $out"
out=$("$VAIOCTL" apply "$T/last.yaml" --allow-encryption-change 2>&1) || fail "override refused: $out"
grep -Eq "vm1/disk0: swapped chain \(pid $pid -> [0-9]+\)" <<<"$out" || fail "override did not swap: $out"
[ "$("$VAIOCTL" status "$T/last.yaml" --json | jq -r '.vms[0].disks[0].chain | map(.class) | join(",")')" = \
  caching,encryption ] || fail "encryption not last after the override"
grep -qF "vm1/disk0: encryption's place in the chain changed: the cache ($T/state/host1/vms/vm1/disk0/caching/cache.img) was destaged and starts empty" <<<"$out" ||
  fail "the override kept the cache that held ciphertext: $out"
# The cache held ciphertext in front of encryption; kept, it would now be
# served to the guest as cleartext.  Emptied, the data reads back.
qemu-io -f raw "$(sock_uri vm1)" -c "read -P 0x5a 0 64k" >/dev/null ||
  fail "data unreadable after moving encryption"
pass "--allow-encryption-change moves encryption last; the emptied cache serves the data"

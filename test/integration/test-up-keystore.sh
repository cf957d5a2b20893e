#!/bin/bash
# vaioctl up with an encryption policy naming a key store and a key id
# (the disk key wrapped by a KEK, not a passphrase): the disk serves,
# bytes written through it read back, and after down the image holds
# only ciphertext, which the same KEK decrypts to those bytes.
. "$(dirname "$0")/lib.sh"
CLI=$VAIO_BUILD/nbdkit-filters/encryption/vaio-crypt
"$CLI" keystore-create --keystore "$T/ks" --key-id kek-1 >/dev/null
"$CLI" format "$T/vm1.img" --size 16M --pbkdf2-iter 1000 \
  --keystore "$T/ks" --key-id kek-1 >/dev/null
cat > "$T/c.yaml" <<YAML
cluster: ks
hosts:
  - name: host1
    state-dir: state/host1
    filters: [ $VAIO_BUILD/nbdkit-filters/encryption/vaio-crypt.yaml ]
policies:
  - name: wrapped
    encryption: { crypt-keystore: ks, crypt-key-id: kek-1 }
vms:
  - name: vm1
    host: host1
    disks: [ { name: disk0, image: vm1.img, policy: wrapped } ]
YAML
TEST_CONFIGS+=("$T/c.yaml")

# 1 MiB of a plaintext marker line, then 1 MiB of random bytes.
{ yes 'vaio plaintext marker 3f1c' || true; } | head -c 1M > "$T/data"
head -c 1M /dev/urandom >> "$T/data"
out=$("$VAIOCTL" up "$T/c.yaml" --timeout 10) || fail "up: $out"
grep -Eq "^vm1/disk0: serving nbd\+unix:.*\(pid [0-9]+\)$" <<<"$out" || fail "up: $out"
[ "$("$VAIOCTL" status "$T/c.yaml" --json | jq -r '.vms[0].disks[0].chain | map(.class) | join(",")')" = \
  encryption ] || fail "the chain is not encryption: $("$VAIOCTL" status "$T/c.yaml")"
nbdcopy "$T/data" "$(sock_uri vm1)"
nbdcopy "$(sock_uri vm1)" "$T/out"
cmp "$T/data" <(head -c 2M "$T/out") || fail "the served disk reads back other bytes"
pass "up with crypt-keystore + crypt-key-id serves; 2 MiB read back"

"$VAIOCTL" down "$T/c.yaml" >/dev/null
[ ! -e "$T/state/host1/vms/vm1/disk0.sock" ] || fail "socket left after down"
! grep -qF 'vaio plaintext marker 3f1c' "$T/vm1.img" || fail "the image holds the plaintext"
# The payload follows the 2 MiB LUKS header.
cmp -s <(tail -c +$((2 * 1048576 + 1)) "$T/vm1.img" | head -c 2M) "$T/data" &&
  fail "the image's payload is the plaintext"
timeout 60 nbdkit -U - --filter="$VAIO_BUILD/nbdkit-filters/encryption/nbdkit-vaio-crypt-filter.so" \
  file "$T/vm1.img" crypt-keystore="$T/ks" crypt-key-id=kek-1 \
  --run 'nbdcopy "$uri" '"$T/out2"
cmp "$T/data" <(head -c 2M "$T/out2") || fail "after down, the KEK decrypts other bytes"
pass "after down the image holds ciphertext only; the KEK decrypts it to what was written"

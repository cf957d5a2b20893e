#!/bin/bash
# The VMware-style key store: a disk key wrapped by a KEK named by id.
# Shallow rekey (rotate to a new KEK) keeps the data and the ciphertext,
# the old KEK stops opening the disk, and a server running during the
# rotation keeps serving new connections.
source "$(dirname "$0")/lib.sh"

ks=$T/kms
img=$T/v.img
head -c 1M /dev/urandom > "$T/data"
"$CLI" keystore-create --keystore "$ks" --key-id kek-2026 >/dev/null
"$CLI" keystore-create --keystore "$ks" --key-id kek-2027 >/dev/null
[ "$(stat -c %a "$ks")" = 700 ] || fail "key store dir not 0700"
[ "$(stat -c %a "$ks/kek-2026.kek")" = 600 ] || fail "KEK file not 0600"
if "$CLI" keystore-create --keystore "$ks" --key-id kek-2026 2>/dev/null; then
  fail "keystore-create overwrote a KEK"
fi

"$CLI" format "$img" --size 1M --pbkdf2-iter 1000 --keystore "$ks" --key-id kek-2026 >/dev/null
serve "$img" crypt-keystore="$ks" crypt-key-id=kek-2026 -- 'nbdcopy '"$T/data"' "$uri"'
cipher_before=$(tail -c 1M "$img" | sha256sum)

# Rotate while a server is running; it must keep accepting connections.
cat > "$T/during.sh" <<SH
set -e
nbdcopy "\$1" "$T/out1"
"$CLI" rotate "$img" --keystore "$ks" --key-id kek-2026 --new-key-id kek-2027 \
  --pbkdf2-iter 1000 > "$T/rotate.out"
nbdcopy "\$1" "$T/out2"
SH
serve "$img" crypt-keystore="$ks" crypt-key-id=kek-2026 -- 'bash '"$T/during.sh"' "$uri"'
grep -q "keyslot 1 added, keyslot 0 removed" "$T/rotate.out" || fail "rotate: $(cat "$T/rotate.out")"
cmp "$T/data" "$T/out1" || fail "before rotation: wrong data"
cmp "$T/data" "$T/out2" || fail "during rotation: wrong data on a new connection"
[ "$(tail -c 1M "$img" | sha256sum)" = "$cipher_before" ] || fail "payload rewritten"

serve "$img" crypt-keystore="$ks" crypt-key-id=kek-2027 -- 'nbdcopy "$uri" '"$T/out3"
cmp "$T/data" "$T/out3" || fail "new KEK opens different data"
# The retired KEK is refused because no keyslot opens with it (not for
# some other reason), and the client's write changes nothing.
sum=$(sha256sum < "$img")
if serve "$img" crypt-keystore="$ks" crypt-key-id=kek-2026 -- \
     'nbdsh -u "$uri" -c "h.pwrite(b\"x\" * 512, 0)"' 2>/dev/null; then
  fail "the retired KEK still opens the disk"
fi
grep -qF "crypt-keystore=$ks key id 'kek-2026': no LUKS keyslot opens with this key" "$T/nbdkit.log" ||
  fail "retired KEK: not refused for its keyslot: $(cat "$T/nbdkit.log")"
[ "$(sha256sum < "$img")" = "$sum" ] || fail "retired KEK: the image changed"
# A KEK readable by others is refused, naming the file.
chmod 644 "$ks/kek-2027.kek"
if serve "$img" crypt-keystore="$ks" crypt-key-id=kek-2027 -- 'nbdinfo "$uri"' 2>/dev/null; then
  fail "a world-readable KEK was used"
fi
grep -q "kek-2027.kek is accessible by group or others" "$T/nbdkit.log" ||
  fail "no clear error: $(cat "$T/nbdkit.log")"
echo "ok: key store, shallow rekey, live rotation"

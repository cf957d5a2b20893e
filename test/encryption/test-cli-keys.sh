#!/bin/bash
# vaio-crypt add-key / remove-key / dump, with passphrase files, key files
# and fds: keys change without re-encrypting (data identical afterwards),
# a removed key no longer opens, the last key is never removed, and an
# existing LUKS header is not overwritten without --force.
source "$(dirname "$0")/lib.sh"

img=$T/v.img
printf 'first passphrase\n' > "$T/pw"      # trailing newline: ignored
printf 'first passphrase' > "$T/pw-bare"
head -c 64 /dev/urandom > "$T/key"
head -c 1M /dev/urandom > "$T/data"

"$CLI" --help | grep -q "keystore-create" || fail "--help lacks keystore-create"
"$CLI" format "$img" --size 1M --pbkdf2-iter 1000 --passphrase-file "$T/pw" >/dev/null
[ "$(stat -c %a "$img")" = 600 ] || fail "new image is not mode 0600"
serve "$img" crypt-passphrase-file="$T/pw-bare" -- 'nbdcopy '"$T/data"' "$uri"'
cipher_before=$(tail -c 1M "$img" | sha256sum)
# The passphrase from an inherited fd (its trailing newline ignored, as
# in a file) opens the image and serves the data.
serve "$img" crypt-passphrase-fd=3 -- 'nbdcopy "$uri" '"$T/out" 3< "$T/pw"
cmp "$T/data" "$T/out" || fail "crypt-passphrase-fd opens different data"

# Add a key file (old key from an fd), then open with it.
"$CLI" add-key "$img" --passphrase-fd 3 --new-key-file "$T/key" \
  --pbkdf2-iter 1000 3< "$T/pw" | grep -q "added keyslot 1" || fail "add-key"
serve "$img" crypt-key-file="$T/key" -- 'nbdcopy "$uri" '"$T/out"
cmp "$T/data" "$T/out" || fail "key file opens different data"
"$CLI" dump "$img" | grep -q "Key Slot 1: ENABLED" || fail "dump: slot 1"

# Remove the passphrase's slot: it stops working, the key file still works.
"$CLI" remove-key "$img" --passphrase-file "$T/pw" | grep -q "removed keyslot 0" ||
  fail "remove-key"
# Refused because no keyslot opens with it (not for some other reason),
# and the client's write changes nothing.
sum=$(sha256sum < "$img")
if serve "$img" crypt-passphrase-file="$T/pw" -- \
     'nbdsh -u "$uri" -c "h.pwrite(b\"x\" * 512, 0)"' 2>/dev/null; then
  fail "removed passphrase still opens the image"
fi
grep -qF "crypt-passphrase-file=$T/pw: no LUKS keyslot opens with this key" "$T/nbdkit.log" ||
  fail "removed passphrase: not refused for its keyslot: $(cat "$T/nbdkit.log")"
[ "$(sha256sum < "$img")" = "$sum" ] || fail "removed passphrase: the image changed"
# (The key fd is closed once read: the --run command must not inherit it.)
serve "$img" crypt-key-fd=3 -- \
  'test ! -e /proc/self/fd/3 && nbdcopy "$uri" '"$T/out" 3< "$T/key"
cmp "$T/data" "$T/out" || fail "data changed by key management"
[ "$(tail -c 1M "$img" | sha256sum)" = "$cipher_before" ] ||
  fail "the payload was rewritten (rekey must be shallow)"
cryptsetup luksDump "$img" | grep -q "^Key Slot 0: DISABLED" || fail "cryptsetup: slot 0"
cryptsetup luksDump "$img" | grep -q "^Key Slot 1: ENABLED" || fail "cryptsetup: slot 1"

# The last key cannot be removed; format will not destroy a LUKS header.
if "$CLI" remove-key "$img" --key-file "$T/key" 2>"$T/err"; then
  fail "removed the last keyslot"
fi
grep -q "the last one" "$T/err" || fail "no clear error: $(cat "$T/err")"
if "$CLI" format "$img" --pbkdf2-iter 1000 --passphrase-file "$T/pw" 2>"$T/err"; then
  fail "format overwrote a LUKS header without --force"
fi
grep -q "already has a LUKS header" "$T/err" || fail "format: $(cat "$T/err")"
if "$CLI" format "$img" --size 1M --pbkdf2-iter 1000 --passphrase-file "$T/pw" 2>/dev/null; then
  fail "format --size replaced an existing file"
fi
# A wrong key for add-key: refused, image unchanged.
sum=$(sha256sum < "$img")
if "$CLI" add-key "$img" --passphrase-file "$T/pw" --new-key-file "$T/key" \
     --pbkdf2-iter 1000 2>"$T/err"; then
  fail "add-key with a wrong key succeeded"
fi
grep -q "no LUKS keyslot opens" "$T/err" || fail "add-key: $(cat "$T/err")"
[ "$(sha256sum < "$img")" = "$sum" ] || fail "failed add-key modified the image"
# Format an existing file in place, key from an fd: the payload is what
# follows the 2 MiB header.
truncate -s 3M "$T/inplace.img"
"$CLI" format "$T/inplace.img" --pbkdf2-iter 1000 --passphrase-fd 4 4< "$T/pw" >/dev/null
serve "$T/inplace.img" crypt-passphrase-file="$T/pw" -- 'nbdinfo --size "$uri" > '"$T/size"
[ "$(cat "$T/size")" = 1048576 ] || fail "in-place format: size $(cat "$T/size")"
echo "ok: add-key, remove-key, dump, refusals, format in place"

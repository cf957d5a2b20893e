#!/bin/bash
# An image made by `vaio-crypt format` (512- and 256-bit keys) is accepted
# by cryptsetup (luksDump, and it unlocks our keyslot), decrypts byte for byte with QEMU and with
# nbdkit's own luks filter, and QEMU's and nbdkit luks's writes read back
# through vaio-crypt.
source "$(dirname "$0")/lib.sh"

printf 'vaio made this' > "$T/pw"
head -c 2M /dev/urandom > "$T/a"

for bits in 512 256; do
  img=$T/v-$bits.img
  "$CLI" format "$img" --size 2M --key-size "$bits" --pbkdf2-iter 1000 \
    --passphrase-file "$T/pw" > "$T/format.out"
  dump=$(cryptsetup luksDump "$img") || fail "cryptsetup rejects the header"
  grep -q "^Key Slot 0: ENABLED" <<< "$dump" || fail "cryptsetup: slot 0 not enabled"
  grep -q "MK bits:.*$bits" <<< "$dump" || fail "cryptsetup: MK bits not $bits"
  # cryptsetup itself derives the key, decrypts our keyslot and checks the
  # master key digest (no device-mapper needed for --test-passphrase).
  cryptsetup open --test-passphrase --key-file "$T/pw" "$img" ||
    fail "cryptsetup does not open our keyslot"
  uuid=$(cryptsetup luksUUID "$img")
  grep -q "uuid $uuid" "$T/format.out" || fail "uuid differs from cryptsetup's"

  serve "$img" crypt-passphrase-file="$T/pw" -- 'nbdcopy '"$T/a"' "$uri"'
  qemu_luks_to_raw "$img" "$T/pw" "$T/out"
  cmp "$T/a" "$T/out" || fail "$bits: QEMU decrypts different bytes"
  timeout 60 nbdkit -U - file "$img" --filter=luks passphrase=+"$T/pw" \
    --run 'nbdcopy "$uri" '"$T/out2"
  cmp "$T/a" "$T/out2" || fail "$bits: nbdkit luks filter decrypts different bytes"

  # QEMU writes into our image; vaio-crypt reads it.
  qemu-io --object "secret,id=s0,file=$T/pw" \
    --image-opts "driver=luks,key-secret=s0,file.filename=$img" \
    -c 'write -P 0x3c 4096 8192' > /dev/null
  serve "$img" crypt-passphrase-file="$T/pw" -- 'nbdcopy "$uri" '"$T/out3"
  cmp -s <(head -c 4096 "$T/a") <(head -c 4096 "$T/out3") || fail "$bits: head changed"
  cmp -s <(head -c 8192 /dev/zero | tr '\0' '\074') \
         <(tail -c +4097 "$T/out3" | head -c 8192) || fail "$bits: QEMU's write not seen"
  cmp -s <(tail -c +12289 "$T/a") <(tail -c +12289 "$T/out3") || fail "$bits: tail changed"

  # nbdkit's luks filter writes the whole disk; vaio-crypt reads it.
  head -c 2M /dev/urandom > "$T/c"
  timeout 60 nbdkit -U - file "$img" --filter=luks passphrase=+"$T/pw" \
    --run 'nbdcopy '"$T/c"' "$uri"'
  serve "$img" crypt-passphrase-file="$T/pw" -- 'nbdcopy "$uri" '"$T/out4"
  cmp "$T/c" "$T/out4" || fail "$bits: vaio-crypt reads other bytes than nbdkit luks wrote"
  echo "ok: $bits-bit vaio-crypt image opens with cryptsetup, QEMU, nbdkit luks; their writes read back"
done

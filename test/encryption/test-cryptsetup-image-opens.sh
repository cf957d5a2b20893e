#!/bin/bash
# Images formatted by cryptsetup (LUKS1, sha512 + 256-bit and sha1 +
# 512-bit) open through vaio-crypt, including a keyslot cryptsetup added;
# what vaio-crypt writes, QEMU decrypts byte for byte; a keyslot that
# vaio-crypt adds is accepted by cryptsetup.
source "$(dirname "$0")/lib.sh"

printf 'cryptsetup key' > "$T/pw"
head -c 64 /dev/urandom > "$T/key2"
head -c 32 /dev/urandom > "$T/key3"
head -c 1M /dev/urandom > "$T/data"

for variant in "sha512 256" "sha1 512"; do
  set -- $variant
  img=$T/cs-$1-$2.img
  truncate -s 3M "$img"
  cryptsetup luksFormat --type luks1 --batch-mode --pbkdf-force-iterations 1000 \
    --hash "$1" --key-size "$2" --key-file "$T/pw" "$img"
  cryptsetup luksAddKey --batch-mode --pbkdf-force-iterations 1000 \
    --key-file "$T/pw" "$img" "$T/key2"
  serve "$img" crypt-key-file="$T/key2" -- \
    'nbdinfo --size "$uri" > '"$T/size"'; nbdcopy '"$T/data"' "$uri"'
  [ "$(cat "$T/size")" = $((1024 * 1024)) ] || fail "$variant: size $(cat "$T/size")"
  qemu_luks_to_raw "$img" "$T/pw" "$T/out"
  cmp "$T/data" "$T/out" || fail "$variant: QEMU decrypts different bytes"
  # vaio-crypt adds a slot; cryptsetup must unlock with it.
  "$CLI" add-key "$img" --key-file "$T/pw" --new-key-file "$T/key3" \
    --pbkdf2-iter 1000 > /dev/null
  cryptsetup open --test-passphrase --key-file "$T/key3" "$img" ||
    fail "$variant: cryptsetup rejects a keyslot vaio-crypt added"
  serve "$img" crypt-key-file="$T/key3" -- 'nbdcopy "$uri" '"$T/out2"
  cmp "$T/data" "$T/out2" || fail "$variant: new slot opens different data"
  echo "ok: cryptsetup $variant image"
done

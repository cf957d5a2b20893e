#!/bin/bash
# Truncated or corrupted LUKS headers: a clear error naming the problem,
# never data, and the image is left as it was.
source "$(dirname "$0")/lib.sh"

printf 'pw' > "$T/pw"
"$CLI" format "$T/good.img" --size 1M --pbkdf2-iter 1000 --passphrase-file "$T/pw" >/dev/null

check () {   # NAME EXPECTED-MESSAGE: $T/bad.img must be refused
  local name=$1 want=$2 sum
  sum=$(sha256sum < "$T/bad.img")
  if serve "$T/bad.img" crypt-passphrase-file="$T/pw" -- \
       'nbdcopy "$uri" '"$T/out" 2>/dev/null; then
    fail "$name: data was served"
  fi
  grep -q "$want" "$T/nbdkit.log" ||
    fail "$name: expected '$want' in: $(cat "$T/nbdkit.log")"
  [ "$(sha256sum < "$T/bad.img")" = "$sum" ] || fail "$name: image modified"
  # The CLI gives the same verdict.
  if "$CLI" add-key "$T/bad.img" --passphrase-file "$T/pw" \
       --new-passphrase-file "$T/pw" --pbkdf2-iter 1000 2>"$T/cli.err"; then
    fail "$name: vaio-crypt add-key accepted it"
  fi
  [ "$(sha256sum < "$T/bad.img")" = "$sum" ] || fail "$name: image modified by CLI"
  echo "ok: $name: $(grep -o "$want" "$T/nbdkit.log" | head -1)"
}

cp "$T/good.img" "$T/bad.img"; truncate -s 1M "$T/bad.img"
check "truncated image" "beyond the end of the image"
cp "$T/good.img" "$T/bad.img"; truncate -s 300 "$T/bad.img"
check "truncated header" "too small for a LUKS header"
cp "$T/good.img" "$T/bad.img"; printf 'XXXX' | dd of="$T/bad.img" conv=notrunc status=none
check "bad magic" "not a LUKS image"
cp "$T/good.img" "$T/bad.img"
printf '\x00\x00\x00\x30' | dd of="$T/bad.img" bs=1 seek=108 conv=notrunc status=none
check "bad key size" "key size 48 bytes"
cp "$T/good.img" "$T/bad.img"
printf '\xff' | dd of="$T/bad.img" bs=1 seek=$((8 * 512 + 777)) conv=notrunc status=none
check "damaged key material" "corrupt key material"
cp "$T/good.img" "$T/bad.img"
printf '\x12\x34\x56\x78' | dd of="$T/bad.img" bs=1 seek=$((208 + 48)) conv=notrunc status=none
check "bad keyslot state" "keyslot 1 has invalid state"

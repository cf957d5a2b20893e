#!/bin/bash
# An image made by `qemu-img create -f luks` (aes-256-xts and aes-128-xts)
# reads and writes through vaio-crypt byte for byte, both ways.
source "$(dirname "$0")/lib.sh"

printf 'qemu made this' > "$T/pw"
head -c 3M /dev/urandom > "$T/a"
head -c 3M /dev/urandom > "$T/b"

# QEMU's PBKDF2 benchmark makes each create take seconds: run both at once.
qemu_luks_create "$T/q-aes-256.img" "$T/pw" 3M cipher-alg=aes-256 &
c1=$!
qemu_luks_create "$T/q-aes-128.img" "$T/pw" 3M cipher-alg=aes-128 &
c2=$!
wait "$c1" || fail "qemu-img create (aes-256)"
wait "$c2" || fail "qemu-img create (aes-128)"

for alg in aes-256 aes-128; do
  img=$T/q-$alg.img
  # QEMU encrypts a, vaio-crypt must decrypt it.
  qemu-img convert -n -f raw "$T/a" --object "secret,id=s0,file=$T/pw" \
    --target-image-opts "driver=luks,key-secret=s0,file.filename=$img"
  serve "$img" crypt-passphrase-file="$T/pw" -- \
    'nbdinfo --size "$uri" > '"$T/size"'; nbdcopy "$uri" '"$T/out"
  [ "$(cat "$T/size")" = $((3 * 1024 * 1024)) ] ||
    fail "$alg: size $(cat "$T/size"), expected 3 MiB"
  cmp "$T/a" "$T/out" || fail "$alg: vaio-crypt read differs from what QEMU wrote"
  # vaio-crypt encrypts b, QEMU must decrypt it.
  serve "$img" crypt-passphrase-file="$T/pw" -- 'nbdcopy '"$T/b"' "$uri"'
  qemu_luks_to_raw "$img" "$T/pw" "$T/out"
  cmp "$T/b" "$T/out" || fail "$alg: QEMU read differs from what vaio-crypt wrote"
  echo "ok: $alg qemu image interoperates both ways"
done

#!/bin/bash
# A wrong passphrase or key file: every client is refused with a clear
# error, the image is not modified by a single byte, and the wrong secret
# never appears in nbdkit's output.
source "$(dirname "$0")/lib.sh"

printf 'the right one' > "$T/pw"
printf 'Wr0ngPassphrase' > "$T/bad"
head -c 100 /dev/urandom > "$T/badkey"
img=$T/v.img
"$CLI" format "$img" --size 1M --pbkdf2-iter 1000 --passphrase-file "$T/pw" >/dev/null
sum=$(sha256sum < "$img")

for src in crypt-passphrase-file="$T/bad" crypt-key-file="$T/badkey"; do
  # The client tries to read and to write; both must fail.
  if serve "$img" "$src" -- \
       'nbdsh -u "$uri" -c "h.pwrite(b\"x\" * 512, 0)"' 2>"$T/client.err"; then
    fail "$src: a client connected and wrote with the wrong key"
  fi
  # Refused by the server (not failing for some other reason).
  grep -q "handshake" "$T/client.err" ||
    fail "$src: client failed for another reason: $(cat "$T/client.err")"
  grep -q "no LUKS keyslot opens with this key" "$T/nbdkit.log" ||
    fail "$src: no clear error in nbdkit's log: $(cat "$T/nbdkit.log")"
  grep -q "Wr0ngPassphrase" "$T/nbdkit.log" "$T/client.err" &&
    fail "$src: the passphrase leaked into a message"
  [ "$(sha256sum < "$img")" = "$sum" ] || fail "$src: the image changed"
done

# The right key still opens it (the refusals did no harm).
serve "$img" crypt-passphrase-file="$T/pw" -- 'nbdinfo --size "$uri" > '"$T/size"
[ "$(cat "$T/size")" = 1048576 ] || fail "right key: wrong size"
echo "ok: wrong keys refused, image untouched"

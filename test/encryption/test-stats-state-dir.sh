#!/bin/bash
# With crypt-state-dir the filter publishes the common stats file there
# (owner-only) and counts its I/O; without it, it works the same.
source "$(dirname "$0")/lib.sh"

printf 'pw' > "$T/pw"
"$CLI" format "$T/v.img" --size 1M --pbkdf2-iter 1000 --passphrase-file "$T/pw" >/dev/null
mkdir -m 700 "$T/state"
serve "$T/v.img" crypt-passphrase-file="$T/pw" crypt-state-dir="$T/state" -- \
  'nbdsh -u "$uri" -c "h.pwrite(b\"a\" * 4096, 0); assert h.pread(4096, 0) == b\"a\" * 4096"'
[ -f "$T/state/stats" ] || fail "no stats file"
[ "$(stat -c %a "$T/state/stats")" = 600 ] || fail "stats file not 0600"
[ "$(head -c 8 "$T/state/stats")" = VAIOSTAT ] || fail "stats magic"
grep -a -q "sectors-encrypted" "$T/state/stats" || fail "counter names missing"
grep -a -q "encryption" "$T/state/stats" || fail "class missing"
# Counters: the body follows the header; the write op counter (op 1)
# must be non-zero.  Read it through od at the layout's offset.
hdr=$(( 8 + 4*4 + 8 + 8 + 32 + 32 + 48*32 + 48 + 4 + 4 ))
write_ops=$(od -An -t u8 -j $(( hdr + 8 + (4*8 + 32*8) )) -N 8 "$T/state/stats" | tr -d ' ')
[ "$write_ops" -ge 1 ] || fail "write ops counter is $write_ops"
echo "ok: stats published in crypt-state-dir"

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
# Counters: the body follows the header (struct vaio_stats_header, 1696
# bytes): a heartbeat, then per op {ops, bytes, errors, latency sum,
# 32 buckets}.  One read and one write of 4096 bytes were made.
hdr=$(( 8 + 4*4 + 8 + 8 + 32 + 32 + 48*32 + 48 + 4 + 4 ))
op_size=$(( 4*8 + 32*8 ))
u64 () { od -An -t u8 -j "$1" -N 8 "$T/state/stats" | tr -d ' '; }
[ "$(u64 $(( hdr + 8 )))" = 1 ] || fail "read ops: $(u64 $(( hdr + 8 )))"
[ "$(u64 $(( hdr + 8 + 8 )))" = 4096 ] || fail "read bytes"
[ "$(u64 $(( hdr + 8 + op_size )))" = 1 ] || fail "write ops"
[ "$(u64 $(( hdr + 8 + op_size + 8 )))" = 4096 ] || fail "write bytes"
# Class counters follow the 5 ops: sectors-encrypted, sectors-decrypted.
counters=$(( hdr + 8 + 5 * op_size ))
[ "$(u64 "$counters")" = 8 ] || fail "sectors-encrypted: $(u64 "$counters")"
[ "$(u64 $(( counters + 8 )))" = 8 ] || fail "sectors-decrypted"
echo "ok: stats published in crypt-state-dir"

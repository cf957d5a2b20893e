#!/bin/bash
# A corrupted journal is never shipped as wrong data.  Records written
# while the replica is down are damaged after a crash: a payload byte is
# detected by its checksum, reported (with the range), and that range is
# resynchronised from the source; the replica converges exactly.  A
# corrupted journal header stops the server with an error naming the file.
. "$(dirname "$0")/lib.sh"

truncate -s 8M "$T/src.img" "$T/rep.img"
start_replica "$T/rep.img" "$T/rep.sock"
target=$(unix_uri "$T/rep.sock")
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-journal-size=8M
uri=$(unix_uri "$T/src.sock")
wait_in_sync "$T/state" 30

kill9 "$REPLICA_PID"
qemu-io -f raw -t writeback -c "write -P 0x61 0 64k" -c "write -P 0x62 1M 64k" \
  -c "write -P 0x63 2M 64k" "$uri" >/dev/null || fail "qemu-io failed"
kill9 "$SOURCE_PID"

# Flip one payload byte of the second write record after the tail.
"$PY" - "$T/state/journal" <<'PYEOF'
import struct, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    hdr = f.read(64)
    tail_pos = struct.unpack_from("<Q", hdr, 32)[0]
    pos, writes = tail_pos, 0
    while True:
        f.seek(pos)
        rec = f.read(64)
        vt, = struct.unpack_from("<I", rec, 4)
        data_len, = struct.unpack_from("<I", rec, 36)
        if vt >> 16 == 1:
            writes += 1
            if writes == 2:
                f.seek(pos + 64 + 1000)
                b = f.read(1)
                f.seek(pos + 64 + 1000)
                f.write(bytes([b[0] ^ 0xff]))
                break
        pos += 64 + (data_len + 63) // 64 * 64
PYEOF

start_replica "$T/rep.img" "$T/rep.sock"
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-journal-size=8M
wait_in_sync "$T/state" 30
[ "$(stat_value "$T/state" corrupt_records)" = 1 ] || fail "corruption not counted"
grep -q "payload checksum mismatch" "$T/source.log" || fail "corruption not reported"
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs from source"
qemu-io -f raw -r -c "read -P 0x62 1M 64k" "$T/rep.img" | grep -q "read 65536" ||
  fail "the corrupted record's range was not resynchronised"

# A damaged header on the journal's last record (its magic, a bad
# checksum), with no flush after it: nothing later proves the loss, but a
# kill cannot leave such a header, so the whole disk is resynchronised
# instead of the record being taken for the end of the journal.
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-journal-size=8M
wait_in_sync "$T/state" 30
kill9 "$REPLICA_PID"
"$PY" - "$uri" <<'PYEOF'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for i, b in enumerate((0x71, 0x72, 0x73)):
    h.pwrite(bytes([b]) * 65536, (3 + i) << 20)
h.shutdown()
PYEOF
kill9 "$SOURCE_PID"
"$PY" - "$T/state/journal" <<'PYEOF'
import struct, sys, zlib
path = sys.argv[1]
with open(path, "r+b") as f:
    hdr = f.read(64)
    pos, = struct.unpack_from("<Q", hdr, 32)
    last = None
    while True:
        f.seek(pos)
        rec = f.read(64)
        magic, vt = struct.unpack_from("<II", rec, 0)
        if magic != 0x31524a56 or struct.unpack_from("<I", rec, 60)[0] != zlib.crc32(rec[:60]):
            break
        data_len, = struct.unpack_from("<I", rec, 36)
        if vt >> 16 == 1:
            last = pos
        pos += 64 + (data_len + 63) // 64 * 64
    assert last is not None, "no write record in the journal"
    f.seek(last + 8)
    b = f.read(1)
    f.seek(last + 8)
    f.write(bytes([b[0] ^ 0x01]))
PYEOF
start_replica "$T/rep.img" "$T/rep.sock"
start_source "$T/src.img" "$T/src.sock" "$T/state" "$target" \
  repl-journal-size=8M
wait_in_sync "$T/state" 30
grep -q "is unreadable (checksum); the whole disk will be resynchronised" \
  "$T/source.log" || fail "a damaged last record header was not reported"
[ "$(stat_value "$T/state" corrupt_records)" -ge 1 ] ||
  fail "a damaged last record header was not counted"
stop_pid "$SOURCE_PID"
cmp "$T/src.img" "$T/rep.img" || fail "replica differs after a damaged last record"
qemu-io -f raw -r -c "read -P 0x73 5M 64k" "$T/rep.img" | grep -q "read 65536" ||
  fail "the damaged last record's write is missing on the replica"

# A corrupted journal header: refuse to start, name the file.
rm -f "$T/src.sock"
printf '\xff' | dd of="$T/state/journal" bs=1 seek=40 conv=notrunc status=none
rc=0
out=$(timeout 60 nbdkit -f -U "$T/src.sock" --filter="$FILTER" file "$T/src.img" \
        repl-target="$target" repl-state-dir="$T/state" 2>&1) || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "started on a corrupt journal header"
grep -qF "$T/state/journal: journal header checksum mismatch" <<<"$out" ||
  fail "unclear error: $out"
echo "ok: corrupt record resynchronised, damaged last record header made a full resync, corrupt header refused"

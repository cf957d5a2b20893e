#!/bin/bash
# Sectors past 2 TiB, whose number needs more than 32 bits (the high half
# of the plain64 IV): on a sparse 3 TiB image made by QEMU, what QEMU
# writes there reads back byte for byte through vaio-crypt, and what
# vaio-crypt writes there reads back byte for byte with QEMU.  One window
# is at 2.5 TiB, one straddles sector 2^32 (at 2 TiB).
source "$(dirname "$0")/lib.sh"

# Not a skip: a machine whose temporary filesystem cannot hold the test
# image fails it, saying why (set TMPDIR to an ext4 or XFS directory).
if ! truncate -s 3T "$T/probe" 2>/dev/null; then
  echo "FAIL: the filesystem under $T refuses a 3 TiB sparse file (set TMPDIR)" >&2
  exit 1
fi
rm -f "$T/probe"

printf 'far out' > "$T/pw"
img=$T/q.img
qemu_luks_create "$img" "$T/pw" 3T
tib=$((1024 * 1024 * 1024 * 1024))

# pread/pwrite 64 KiB at an offset through the served disk.
cat > "$T/rw.py" <<'PY'
import sys, nbd
uri, op, off, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
h = nbd.NBD(); h.connect_uri(uri)
assert h.get_size() == 3 * 1024**4, "size %d" % h.get_size()
if op == "read":
    open(path, "wb").write(h.pread(65536, off))
else:
    h.pwrite(open(path, "rb").read(), off); h.flush()
h.shutdown()
PY
# QEMU's view of the 64 KiB at an offset of the decrypted disk.
qemu_window () {
  qemu-img convert --object "secret,id=s0,file=$T/pw" --image-opts \
    "driver=raw,offset=$1,size=65536,file.driver=luks,file.key-secret=s0,file.file.driver=file,file.file.filename=$img" \
    -O raw "$2"
}

for off in $((5 * tib / 2)) $((2 * tib - 32768)); do
  head -c 64K /dev/urandom > "$T/a"
  head -c 64K /dev/urandom > "$T/b"
  # QEMU writes a, vaio-crypt must read a.
  qemu-io --object "secret,id=s0,file=$T/pw" \
    --image-opts "driver=luks,key-secret=s0,file.filename=$img" \
    -c "write -s $T/a $off 64k" > /dev/null || fail "qemu-io write at $off"
  serve "$img" crypt-passphrase-file="$T/pw" -- \
    '/usr/bin/python3 '"$T/rw.py"' "$uri" read '"$off $T/out"
  cmp "$T/a" "$T/out" || fail "offset $off: vaio-crypt reads other bytes than QEMU wrote"
  # vaio-crypt writes b, QEMU must read b.
  serve "$img" crypt-passphrase-file="$T/pw" -- \
    '/usr/bin/python3 '"$T/rw.py"' "$uri" write '"$off $T/b"
  rm -f "$T/out"
  qemu_window "$off" "$T/out"
  cmp "$T/b" "$T/out" || fail "offset $off: QEMU reads other bytes than vaio-crypt wrote"
  echo "ok: offset $off (sector $((off / 512))) interoperates both ways"
done
# Still sparse: nothing wrote the 3 TiB out.
kib=$(du -k "$img" | cut -f1)
[ "$kib" -lt 65536 ] || fail "the image is not sparse: $kib KiB used"

#!/bin/bash
# Errors from the layer below (nbdkit's error filter injecting EIO into
# reads and writes) reach the client as EIO: no crash, no garbage, no
# partial write, and the server keeps serving once the errors stop.
source "$(dirname "$0")/lib.sh"

printf 'pw' > "$T/pw"
img=$T/v.img
"$CLI" format "$img" --size 1M --pbkdf2-iter 1000 --passphrase-file "$T/pw" >/dev/null
head -c 1M /dev/urandom > "$T/data"
serve "$img" crypt-passphrase-file="$T/pw" -- 'nbdcopy '"$T/data"' "$uri"'

cat > "$T/errors.py" <<'PY'
import errno, os, sys, nbd
uri, trigger, data_path = sys.argv[1:4]
data = open(data_path, "rb").read()
h = nbd.NBD(); h.connect_uri(uri)
assert h.pread(8192, 4096) == data[4096:12288]
open(trigger, "w").close()           # from now on the layer below fails
def expect_eio(what, fn):
    try:
        fn()
    except nbd.Error as e:
        assert e.errno in (errno.EIO, "EIO"), "%s: errno %s" % (what, e.errno)
        return
    raise AssertionError("%s succeeded while the disk fails" % what)
expect_eio("aligned read", lambda: h.pread(4096, 0))
expect_eio("unaligned read", lambda: h.pread(100, 7))
expect_eio("aligned write", lambda: h.pwrite(b"z" * 4096, 0))
expect_eio("read-modify-write", lambda: h.pwrite(b"z" * 100, 50))
os.unlink(trigger)                   # the disk recovers
assert h.pread(len(data), 0) == data, "data changed by failed requests"
g = nbd.NBD(); g.connect_uri(uri)    # and new clients are served
assert g.pread(512, 0) == data[:512]
print("ok: lower-layer EIO reported, nothing written, server alive")
PY
timeout 60 nbdkit -U - --filter="$FILTER" --filter=error file "$img" \
  crypt-passphrase-file="$T/pw" error=EIO \
  error-pread-rate=100% error-pread-file="$T/fail" \
  error-pwrite-rate=100% error-pwrite-file="$T/fail" \
  --run '/usr/bin/python3 '"$T/errors.py"' "$uri" '"$T/fail $T/data" 2>"$T/nbdkit.log" ||
  { cat "$T/nbdkit.log" >&2; fail "lower-layer error handling"; }

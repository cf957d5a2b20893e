#!/usr/bin/python3
"""random-ops.py URI REFFILE SEED NOPS [START LENGTH]

A random mixed workload (reads, writes, trims, zeroes, flushes, FUA writes,
sequential runs, aligned and unaligned, within and across cache blocks)
sent through NBD to URI and applied to the plain file REFFILE.  Every read
is compared byte for byte with the reference; at the end the whole disk is.
With START and LENGTH (multiples of 64 KiB) the ops stay in that region,
so several copies can run at once on disjoint regions of one disk.
Exits 1 on the first difference, naming the op, offset and length.
"""
import os
import random
import sys

import nbd

uri, ref, seed, nops = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
h = nbd.NBD()
h.connect_uri(uri)
disk_size = h.get_size()
fd = os.open(ref, os.O_RDWR)
assert os.fstat(fd).st_size == disk_size, "reference and disk differ in size"
base_off = int(sys.argv[5]) if len(sys.argv) > 5 else 0
size = int(sys.argv[6]) if len(sys.argv) > 6 else disk_size - base_off
rng = random.Random(seed)
hot = max(size // 8, 65536)


def pick_range():
    base = hot if rng.random() < 0.6 else size
    kind = rng.random()
    if kind < 0.4:
        off = rng.randrange(base // 4096) * 4096
        n = 4096 * rng.randint(1, 4)
    elif kind < 0.7:
        off = rng.randrange(base - 1)
        n = rng.randint(1, 9000)
    else:
        off = rng.randrange(base // 65536) * 65536
        n = 65536 * rng.randint(1, 3)
    return off, max(1, min(n, size - off))


def check(what, off, n):
    off += base_off
    got = h.pread(n, off)
    want = os.pread(fd, n, off)
    if got != want:
        bad = next(i for i in range(n) if got[i] != want[i])
        sys.exit("MISMATCH after %s: read at %d len %d differs at byte %d "
                 "(got %02x want %02x)" % (what, off, n, off + bad, got[bad],
                                           want[bad]))


def write(off, n, flags=0):
    off += base_off
    buf = rng.randbytes(n)
    h.pwrite(buf, off, flags)
    os.pwrite(fd, buf, off)


last = "start"
for i in range(nops):
    op = rng.choices(["read", "write", "fua", "trim", "zero", "flush", "seq"],
                     weights=[40, 30, 5, 6, 8, 4, 3])[0]
    off, n = pick_range()
    if op == "read":
        check(last, off, n)
    elif op == "write":
        write(off, n)
    elif op == "fua":
        write(off, n, nbd.CMD_FLAG_FUA)
    elif op == "trim":
        h.trim(n, base_off + off)
        os.pwrite(fd, bytes(n), base_off + off)
    elif op == "zero":
        h.zero(n, base_off + off,
               nbd.CMD_FLAG_NO_HOLE if rng.random() < 0.5 else 0)
        os.pwrite(fd, bytes(n), base_off + off)
    elif op == "flush":
        h.flush()
    else:
        # A sequential run long enough to pass the bypass cutoff.
        start = rng.randrange(size // 65536) * 65536
        writing = rng.random() < 0.5
        for k in range(16):
            o = start + k * 65536
            if o + 65536 > size:
                break
            if writing:
                write(o, 65536)
            else:
                check(last, o, 65536)
    last = "op %d (%s at %d len %d)" % (i, op, off, n)

h.flush()
for off in range(0, size, 1 << 20):
    check("the whole run", off, min(1 << 20, size - off))
h.shutdown()
print("random-ops: %d ops compared equal" % nops)

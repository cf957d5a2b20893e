#!/usr/bin/python3
"""read-set.py URI REFFILE SEED COUNT

Read one 4 KiB piece from each of COUNT distinct cache blocks (64 KiB),
chosen by SEED, in random order, comparing each with REFFILE.  Prints the
elapsed milliseconds.
"""
import os
import random
import sys
import time

import nbd

uri, ref, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
h = nbd.NBD()
h.connect_uri(uri)
size = h.get_size()
fd = os.open(ref, os.O_RDONLY)
rng = random.Random(seed)
blocks = rng.sample(range(size // 65536), count)
offsets = [b * 65536 + rng.randrange(16) * 4096 for b in blocks]
random.Random(time.time_ns()).shuffle(offsets)
t0 = time.monotonic()
for off in offsets:
    if h.pread(4096, off) != os.pread(fd, 4096, off):
        sys.exit("read at %d differs from the reference" % off)
print(int((time.monotonic() - t0) * 1000))
h.shutdown()

#!/usr/bin/python3
"""crash-ops.py: writer and checker for the kill -9 crash test.

  crash-ops.py write URI JOURNAL SEED
      Write tagged 4 KiB units at random (runs of 1..8 units, some FUA,
      a flush every few writes) until the server dies.  Every write is
      journaled before it is sent; "D id" after a FUA write is acknowledged,
      "F id" after a flush completes that followed write id.

  crash-ops.py verify URI JOURNAL STATE [exact]
      Read every unit back.  A unit must hold the newest write that was
      durable (covered by a completed flush, or acknowledged with FUA), or
      a write to it issued after that one; never older data, never a torn
      or foreign unit.  STATE (JSON unit -> id) is the content at the start
      of the trial and is rewritten with what was read.  With "exact",
      every unit must equal STATE (the journal is ignored).
"""
import json
import os
import random
import struct
import sys

import nbd

UNIT = 4096


def tag(u, wid):
    return struct.pack("<QQ", u, wid) * (UNIT // 16)


def untag(u, data):
    if data == bytes(UNIT):
        return 0
    uu, wid = struct.unpack_from("<QQ", data)
    if uu != u or data != tag(uu, wid):
        sys.exit("unit %d: torn or foreign content (claims unit %d id %d)"
                 % (u, uu, wid))
    return wid


def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def write(uri, journal, seed):
    h = connect(uri)
    units = h.get_size() // UNIT
    rng = random.Random(seed)
    j = open(journal, "a", buffering=1)
    wid = int(seed) * 1000000
    while True:
        wid += 1
        u0 = rng.randrange(units)
        n = min(rng.randint(1, 8), units - u0)
        j.write("W %d %d %d\n" % (wid, u0, n))
        fua = rng.random() < 0.1
        buf = b"".join(tag(u, wid) for u in range(u0, u0 + n))
        h.pwrite(buf, u0 * UNIT, nbd.CMD_FLAG_FUA if fua else 0)
        if fua:
            j.write("D %d\n" % wid)
        if rng.random() < 0.1:
            h.flush()
            j.write("F %d\n" % wid)


def read_all(h):
    size = h.get_size()
    seen = {}
    for off in range(0, size, 1 << 20):
        data = h.pread(min(1 << 20, size - off), off)
        for k in range(len(data) // UNIT):
            u = off // UNIT + k
            seen[u] = untag(u, data[k * UNIT:(k + 1) * UNIT])
    return seen


def verify(uri, journal, state_path, exact):
    base = {}
    if os.path.exists(state_path):
        base = {int(k): v for k, v in json.load(open(state_path)).items()}
    h = connect(uri)
    seen = read_all(h)
    h.shutdown()
    if exact:
        bad = [u for u in seen if seen[u] != base.get(u, 0)]
        if bad:
            sys.exit("unit %d: has id %d, expected %d (%d units differ)"
                     % (bad[0], seen[bad[0]], base.get(bad[0], 0), len(bad)))
        print("crash-ops: all %d units exact" % len(seen))
        return
    writes = {}  # unit -> [ids in order]
    durable = {}  # unit -> newest durable id
    flushed_upto = 0
    fua = set()
    order = []
    for line in open(journal):
        f = line.split()
        if f[0] == "W" and len(f) == 4:
            wid, u0, n = int(f[1]), int(f[2]), int(f[3])
            order.append((wid, u0, n))
        elif f[0] == "D" and len(f) == 2:
            fua.add(int(f[1]))
        elif f[0] == "F" and len(f) == 2:
            flushed_upto = max(flushed_upto, int(f[1]))
    for wid, u0, n in order:
        for u in range(u0, u0 + n):
            writes.setdefault(u, []).append(wid)
            if wid <= flushed_upto or wid in fua:
                durable[u] = wid
    nflushed = 0
    for u, got in seen.items():
        d = durable.get(u, base.get(u, 0))
        allowed = {d} | {w for w in writes.get(u, []) if w > d}
        if u in durable:
            nflushed += 1
        if got not in allowed:
            sys.exit("unit %d: LOST OR STALE: has id %d, newest durable is "
                     "%d, allowed %s" % (u, got, d, sorted(allowed)[:5]))
    json.dump(seen, open(state_path, "w"))
    print("crash-ops: %d writes journaled, %d units with durable writes "
          "all present" % (len(order), nflushed))
    if not order:
        sys.exit("no writes were made: the trial tested nothing")


if sys.argv[1] == "write":
    try:
        write(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    except nbd.Error:
        pass  # the server was killed: expected
elif sys.argv[1] == "verify":
    verify(sys.argv[2], sys.argv[3], sys.argv[4],
           len(sys.argv) > 5 and sys.argv[5] == "exact")
else:
    sys.exit("usage: crash-ops.py write|verify ...")

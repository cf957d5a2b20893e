#!/usr/bin/env python3
"""Workload generators and checkers for the replication integration tests.

Every 4 KiB block written carries its write's index and block number, so
a disk image tells which write last touched each block.

  repltest.py prefix URI REPLICA_IMG N   QD1 writes; sample the replica at
                                         random moments: each sample must
                                         equal the source after some write
  repltest.py causal URI REPLICA_IMG N QD REPLICA_PID
                                         QD writes in flight, each on its
                                         own block, flushes among them;
                                         the replica sampled meanwhile
                                         must hold every write that had
                                         completed before any write it
                                         holds was issued (the replica
                                         server is frozen to sample it)
  repltest.py sync URI REPLICA_IMG N     QD1 writes: once a write is acked
                                         the replica already holds it
  repltest.py writer URI LOG N SEED [QD] random writes/zeros of 4-64 KiB,
                                         QD (default 1) in flight, never
                                         overlapping, logged before ("B")
                                         and after ("A") each ack; runs
                                         until done or killed
  repltest.py verify IMG LOG...          every block holds its last acked
                                         write, or one that was in flight
"""
import os
import random
import struct
import sys

import nbd

BS = 4096


def pattern(index, block):
    return struct.pack("<QQ", index, block) * (BS // 16)


def decode(data, block):
    """Index of the write that produced this block; 0 for zeros."""
    if data == bytes(BS):
        return 0
    index, b = struct.unpack_from("<QQ", data)
    if b != block or data != pattern(index, block):
        raise SystemExit(f"block {block}: torn or foreign content")
    return index


def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def read_image(path, nblocks, torn_ok=False):
    """Which write each block holds; with torn_ok a block caught half
    written (the replica server writing it as we read) is None."""
    with open(path, "rb") as f:
        data = f.read(nblocks * BS)
    state = []
    for i in range(nblocks):
        try:
            state.append(decode(data[i * BS:(i + 1) * BS], i))
        except SystemExit:
            if not torn_ok:
                raise
            state.append(None)
    return state


def read_snapshot(path, nblocks):
    """The image as it was at one instant, although the replica server
    writes to it while we read: one read of the file is not atomic (a
    reader preempted halfway sees early blocks before a write and late
    ones after a later write, or a block half written).  Two reads that
    agree block for block, with no block half written, are: writes only
    move a block forward, so no block changed between the end of the
    first read and the start of the second.  A block that stays torn
    across 1000 reads is a real fault: reported."""
    last = read_image(path, nblocks, torn_ok=True)
    for _ in range(1000):
        state = read_image(path, nblocks, torn_ok=True)
        if state == last and None not in state:
            return state
        last = state
    if None in last:
        raise SystemExit(f"{path}: block {last.index(None)}: torn or "
                         f"foreign content")
    raise SystemExit(f"{path}: no two reads agreed; cannot sample it")


def cmd_prefix(uri, replica, n):
    h = connect(uri)
    nblocks = h.get_size() // BS
    rng = random.Random(1)
    history = {}  # block -> list of write indexes, ascending
    samples = behind = 0
    next_sample = rng.randint(1, 20)
    for i in range(1, n + 1):
        b = rng.randrange(nblocks)
        h.pwrite(pattern(i, b), b * BS)
        history.setdefault(b, []).append(i)
        if i < next_sample:
            continue
        next_sample = i + rng.randint(1, 20)
        state = read_snapshot(replica, nblocks)
        m = max(state)
        for blk in range(nblocks):
            want = max([w for w in history.get(blk, []) if w <= m], default=0)
            if state[blk] != want:
                raise SystemExit(
                    f"sample after write {i}: replica is not the source "
                    f"after any write (block {blk} has write {state[blk]}, "
                    f"the source after write {m} had {want})")
        samples += 1
        behind += m < i
    h.shutdown()
    print(f"prefix: {samples} samples, all prefix states "
          f"({behind} behind the source)")
    if samples < 10:
        raise SystemExit("too few samples")


def stopped(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")


def cmd_snapshots(replica, nblocks, out, pid):
    """Sample until killed: freeze the replica server (SIGSTOP, so its
    image is one instant), read which write each block holds (a block's
    first 16 bytes: the final cmp checks the bytes), let it go on; one
    line of held write indexes per sample."""
    import signal
    import time
    with open(out, "w", buffering=1) as f:
        while True:
            os.kill(pid, signal.SIGSTOP)
            try:
                while not stopped(pid):
                    time.sleep(0.0005)
                with open(replica, "rb") as img:
                    data = img.read(nblocks * BS)
            finally:
                os.kill(pid, signal.SIGCONT)
            held = sorted({struct.unpack_from("<Q", data, b * BS)[0]
                           for b in range(nblocks)} - {0})
            f.write(" ".join(map(str, held)) + "\n")
            time.sleep(0.005)


def cmd_causal(uri, replica, n, qd, pid):
    """Concurrent writes may land on the replica in any order, except
    that a write issued after another completed must not be there
    without it: any other state is one the source never went through,
    not even at a crash.  Every write has its own block (so a sampled
    block tells whether that write is there), a logical clock records
    when each was issued and completed, and another process samples the
    replica meanwhile."""
    import subprocess
    import tempfile
    h = connect(uri)
    nblocks = h.get_size() // BS
    if n > nblocks:
        raise SystemExit(f"causal: {n} writes need {n} blocks")
    rng = random.Random(3)
    blocks = rng.sample(range(nblocks), n)
    issued, done = {}, {}
    clock = 0
    out = tempfile.NamedTemporaryFile(prefix="causal.", delete=False).name
    sampler = subprocess.Popen([sys.executable, __file__, "snapshots",
                                replica, str(nblocks), out, str(pid)])
    inflight = {}  # cookie -> write index (0: a flush)
    i = 1
    while i <= n or inflight:
        if i <= n and len(inflight) < qd:
            clock += 1
            if rng.random() < 0.02:
                inflight[h.aio_flush()] = 0
                continue
            b = blocks[i - 1]
            issued[i] = clock
            buf = nbd.Buffer.from_bytearray(bytearray(pattern(i, b)))
            inflight[h.aio_pwrite(buf, b * BS)] = i
            i += 1
            continue
        h.poll(-1)
        for c in [c for c in inflight if h.aio_command_completed(c)]:
            clock += 1
            w = inflight.pop(c)
            if w:
                done[w] = clock
    h.shutdown()
    # The replica catches up after the last acknowledgement: the samples
    # that matter most come now.  Sample until it holds every write.
    import time
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(out) as f:
            lines = f.read().split("\n")[:-1]
        if lines and len(lines[-1].split()) == n:
            break
        time.sleep(0.05)
    sampler.terminate()
    sampler.wait()
    os.kill(pid, __import__("signal").SIGCONT)  # if it died mid-sample
    with open(out) as f:
        lines = f.read().split("\n")[:-1]  # the last may be cut short
    os.unlink(out)

    order = sorted(done, key=done.get)  # writes by completion
    samples = behind = 0
    for k, line in enumerate(lines):
        held = {int(w) for w in line.split()}
        if not held:
            continue
        samples += 1
        latest = max(issued[w] for w in held)
        missing = [w for w in order if done[w] < latest and w not in held]
        if missing:
            w = missing[0]
            raise SystemExit(
                f"sample {k}: the replica holds a write issued at clock "
                f"{latest} but not write {w}, completed at {done[w]} before "
                f"it: a state the source never went through")
        behind += len(held) < n
    print(f"causal: {samples} samples at QD{qd}, each a state the source "
          f"went through ({behind} behind the source)")
    if behind < 10:
        raise SystemExit("too few samples caught the replica behind")


def cmd_sync(uri, replica, n):
    h = connect(uri)
    nblocks = h.get_size() // BS
    rng = random.Random(2)
    fd = os.open(replica, os.O_RDONLY)
    for i in range(1, n + 1):
        b = rng.randrange(nblocks)
        h.pwrite(pattern(i, b), b * BS)
        got = decode(os.pread(fd, BS, b * BS), b)
        if got != i:
            raise SystemExit(f"sync: write {i} acked but the replica block "
                             f"{b} holds write {got}")
    os.close(fd)
    h.shutdown()
    print(f"sync: {n} writes, each on the replica when acked")


def cmd_writer(uri, log, n, seed, qd=1):
    """QD ops in flight at once (libnbd's asynchronous calls), never two
    overlapping, so each block's outcome is that of one op."""
    rng = random.Random(seed)
    first = seed * 1000000 + 1
    with open(log, "a", buffering=1) as f:
        h = connect(uri)
        nblocks = h.get_size() // BS
        inflight = {}  # cookie -> (index, first block, count)
        i = first
        while i < first + n or inflight:
            if i < first + n and len(inflight) < qd:
                count = rng.randint(1, 16)
                b = rng.randrange(nblocks - count)
                if any(b < ob + oc and ob < b + count
                       for _, ob, oc in inflight.values()):
                    continue
                kind = "Z" if rng.random() < 0.1 else "W"
                f.write(f"B {i} {kind} {b} {count}\n")
                if kind == "Z":
                    c = h.aio_zero(count * BS, b * BS)
                else:
                    buf = nbd.Buffer.from_bytearray(bytearray(
                        b"".join(pattern(i, b + k) for k in range(count))))
                    c = h.aio_pwrite(buf, b * BS)
                inflight[c] = (i, b, count)
                i += 1
                continue
            h.poll(-1)
            for c in [c for c in inflight if h.aio_command_completed(c)]:
                f.write(f"A {inflight.pop(c)[0]}\n")
    h.shutdown()


def cmd_verify(img, logs):
    nblocks = os.path.getsize(img) // BS
    acked = [0] * nblocks       # value of the last acked op per block
    maybe = [set() for _ in range(nblocks)]  # unacked ops per block
    for log in logs:
        pending = {}  # index -> (value, first block, count), not yet acked
        with open(log) as f:
            for line in f:
                p = line.split()
                if len(p) == 5 and p[0] == "B":
                    i, kind, b, count = int(p[1]), p[2], int(p[3]), int(p[4])
                    pending[i] = (0 if kind == "Z" else i, b, count)
                elif len(p) == 2 and p[0] == "A" and int(p[1]) in pending:
                    val, b, count = pending.pop(int(p[1]))
                    for k in range(b, b + count):
                        acked[k] = val
                        maybe[k].clear()
        # Killed in flight: each may or may not have landed.
        for val, b, count in pending.values():
            for k in range(b, b + count):
                maybe[k].add(val)
    state = read_image(img, nblocks)
    for blk in range(nblocks):
        if state[blk] != acked[blk] and state[blk] not in maybe[blk]:
            raise SystemExit(f"{img}: block {blk} holds write {state[blk]}, "
                             f"expected the acked write {acked[blk]}")
    print(f"verify: {img}: every block holds its last acknowledged write")


def main():
    c = sys.argv[1]
    a = sys.argv[2:]
    if c == "prefix":
        cmd_prefix(a[0], a[1], int(a[2]))
    elif c == "sync":
        cmd_sync(a[0], a[1], int(a[2]))
    elif c == "snapshots":
        cmd_snapshots(a[0], int(a[1]), a[2], int(a[3]))
    elif c == "causal":
        cmd_causal(a[0], a[1], int(a[2]), int(a[3]), int(a[4]))
    elif c == "writer":
        cmd_writer(a[0], a[1], int(a[2]), int(a[3]),
                   int(a[4]) if len(a) > 4 else 1)
    elif c == "verify":
        cmd_verify(a[0], a[1:])
    else:
        raise SystemExit(f"unknown command {c}")


if __name__ == "__main__":
    main()

/* vaio-replication: the write path bookkeeping and the queue of journal
 * entries waiting for the replica.  See repl.h for the data flow.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repl.h"

#define SYNC_WAIT_MAX_NS (30ull * 1000000000ull)
#define LAG_WINDOW_NS    (10ull * 1000000000ull)

static uint64_t
realtime_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Set while a wake-up is pending in the eventfd: writers skip the
 * syscall then.  The shipper reads the eventfd, then clears it, then
 * looks at the queue (see state_wake_consumed).
 */
static bool wake_pending;

void
state_wake_shipper (void)
{
  uint64_t one = 1;

  if (__atomic_exchange_n (&wake_pending, true, __ATOMIC_ACQ_REL))
    return;
  if (repl.wake_fd >= 0 && write (repl.wake_fd, &one, sizeof one) == -1)
    {
      /* EAGAIN: the counter is already non-zero, the shipper will wake. */
    }
}

/* Drain the eventfd, then clear the flag.  The other order loses
 * wake-ups for good: a writer that sets the flag and writes between the
 * clear and the read has its write read away with the flag left set, so
 * every later writer skips the syscall.  In this order a writer that
 * finds the flag still set has queued its work before the caller looks.
 */
void
state_wake_consumed (void)
{
  uint64_t junk;

  if (read (repl.wake_fd, &junk, sizeof junk) == -1)
    {
      /* EAGAIN: nothing pending */
    }
  __atomic_store_n (&wake_pending, false, __ATOMIC_RELEASE);
}

/* ---- The entry queue (a ring indexed by sequence number) ---- */

struct repl_entry *
state_entry_locked (uint64_t seq)
{
  if (seq < repl.base_seq || seq - repl.base_seq >= repl.ring_n)
    return NULL;
  return &repl.ring[(repl.ring_start + (seq - repl.base_seq))
                    & (repl.ring_cap - 1)];
}

/* Room for need entries in the ring (its capacity stays a power of two). */
static int
ring_reserve_locked (uint64_t need)
{
  uint64_t cap = repl.ring_cap ? repl.ring_cap : 1024;
  struct repl_entry *ring;

  if (need <= repl.ring_cap)
    return 0;
  while (cap < need)
    cap *= 2;
  ring = malloc (cap * sizeof *ring);
  if (ring == NULL)
    return -1;
  for (uint64_t i = 0; i < repl.ring_n; i++)
    ring[i] = repl.ring[(repl.ring_start + i) & (repl.ring_cap - 1)];
  free (repl.ring);
  repl.ring = ring;
  repl.ring_cap = cap;
  repl.ring_start = 0;
  return 0;
}

static int
push_entry_locked (const struct repl_entry *e)
{
  if (ring_reserve_locked (repl.ring_n + 1) == -1)
    return -1;
  if (repl.ring_n == 0)
    repl.base_seq = e->seq;
  repl.ring[(repl.ring_start + repl.ring_n) & (repl.ring_cap - 1)] = *e;
  repl.ring_n++;
  return 0;
}

/* In sync mode the replica can acknowledge an entry before its source
 * write is done: it stays queued until then (done_prefix counts on it).
 */
void
state_pop_acked_locked (void)
{
  while (repl.ring_n > 0 && repl.ring[repl.ring_start].state == E_ACKED
         && repl.ring[repl.ring_start].done)
    {
      repl.ring_start = (repl.ring_start + 1) & (repl.ring_cap - 1);
      repl.ring_n--;
      repl.base_seq++;
    }
  if (repl.ship_seq < repl.base_seq)
    repl.ship_seq = repl.base_seq;
}

/* The queue entry of journal record r at ring position pos, in the
 * state a new reservation starts in (not yet written, source not done).
 */
static struct repl_entry
entry_of_record (const struct jrnl_rec *r, uint64_t pos)
{
  return (struct repl_entry){ .seq = r->seq,
                              .offset = r->offset,
                              .barrier = r->barrier,
                              .pos = pos,
                              .t_mono_ns = vaio_stats_now_ns (),
                              .length = r->length,
                              .data_len = r->data_len,
                              .type = (uint8_t)r->type,
                              .state = E_LOCAL };
}

/* The queue entry of a complete record read back from the journal (at
 * recovery, or queued again after a reconnect): done, ready to send.
 */
static struct repl_entry
entry_from_record (const struct jrnl_rec *r, uint64_t pos)
{
  struct repl_entry e = entry_of_record (r, pos);

  e.state = E_READY;
  e.done = true;
  return e;
}

/* ---- Records the replica acknowledged but may not hold after a crash:
 * only a checkpoint (a replica flush, then the journal tail moves) makes
 * them durable there, so every record from the tail to base_seq is still
 * in the journal and owed to the replica until the next checkpoint. ---- */

static int
mark_unflushed (void *opaque, const struct jrnl_rec *r, uint64_t pos,
                const void *data)
{
  if (r->type != JRNL_FLUSH)
    bmap_mark (repl.bmap, r->offset, r->length);
  return 0;
}

/* The journal is about to be reset: the bitmap takes over the owed
 * records' ranges too (resync flushes the replica before it forgets a
 * bit).
 */
static void
mark_unflushed_locked (void)
{
  if (repl.base_seq > repl.jrnl->tail_seq
      && jrnl_walk_from_tail (repl.jrnl, repl.base_seq, mark_unflushed, NULL)
             == -1)
    {
      nbdkit_error ("vaio-replication: %s: reading records the replica has "
                    "not flushed: %m; the whole disk will be resynchronised",
                    repl.jrnl->path);
      bmap_mark_all (repl.bmap);
    }
}

struct owed
{
  struct repl_entry *v;
  uint64_t n;
};

static int
collect_unflushed (void *opaque, const struct jrnl_rec *r, uint64_t pos,
                   const void *data)
{
  struct owed *o = opaque;

  o->v[o->n++] = entry_from_record (r, pos);
  return 0;
}

/* The connection to the replica is gone: a replica that crashed lost
 * what it had not flushed.  Queue the owed records again, in order and
 * ahead of the rest, so they are sent again before anything newer.  If
 * a source write failed since the last checkpoint, the journal may hold
 * bytes the source does not: the bitmap copies the source's instead.
 */
void
state_requeue_unflushed_locked (void)
{
  uint64_t n = repl.base_seq - repl.jrnl->tail_seq;
  struct owed o = { 0 };

  if (repl.track != TRACK_JOURNAL || repl.base_seq <= repl.jrnl->tail_seq)
    return;
  if (repl.last_failed_seq >= repl.jrnl->tail_seq)
    {
      state_go_tracking_locked ("a failed source write is not flushed on the "
                                "replica");
      return;
    }
  o.v = malloc (n * sizeof *o.v);
  if (o.v == NULL || ring_reserve_locked (repl.ring_n + n) == -1
      || jrnl_walk_from_tail (repl.jrnl, repl.base_seq, collect_unflushed, &o)
             == -1
      || o.n != n)
    {
      free (o.v);
      state_go_tracking_locked ("records the replica has not flushed cannot "
                                "be queued again");
      return;
    }
  for (uint64_t i = n; i-- > 0;)
    {
      repl.ring_start = (repl.ring_start - 1) & (repl.ring_cap - 1);
      repl.ring[repl.ring_start] = o.v[i];
    }
  repl.ring_n += n;
  repl.base_seq = repl.ship_seq = repl.jrnl->tail_seq;
  free (o.v);
}

/* ---- Lag statistics ---- */

static unsigned
lag_bucket (uint64_t lag_ns)
{
  uint64_t us = lag_ns / 1000;
  unsigned b = 0;

  while (us > 1 && b < LAG_BUCKETS - 1)
    {
      us >>= 1;
      b++;
    }
  return b;
}

void
lag_record_locked (uint64_t lag_ns)
{
  uint64_t now = vaio_stats_now_ns ();

  if (now - repl.lag_window_start_ns > LAG_WINDOW_NS)
    {
      memcpy (repl.lag_hist[1], repl.lag_hist[0], sizeof repl.lag_hist[0]);
      memset (repl.lag_hist[0], 0, sizeof repl.lag_hist[0]);
      repl.lag_window_start_ns = now;
    }
  repl.lag_hist[0][lag_bucket (lag_ns)]++;
}

static uint64_t
current_lag_ns_locked (void)
{
  uint64_t now = vaio_stats_now_ns ();

  if (repl.track == TRACK_BITMAP)
    return now - repl.tracking_since_ns;
  if (repl.ring_n == 0)
    return 0;
  return now - repl.ring[repl.ring_start].t_mono_ns;
}

void
state_publish_locked (void)
{
  uint64_t hist[VAIO_STATS_LAT_BUCKETS] = { 0 };
  uint64_t lag = current_lag_ns_locked ();
  struct vaio_stats *s = repl.stats;

  if (s == NULL)
    return;
  for (unsigned i = 0; i < LAG_BUCKETS && i < VAIO_STATS_LAT_BUCKETS; i++)
    hist[i] = repl.lag_hist[0][i] + repl.lag_hist[1][i];
  vaio_stats_set (s, RC_LAG_US, lag / 1000);
  vaio_stats_set (s, RC_LAG_P50_US,
                  (uint64_t)vaio_stats_percentile_us (hist, 0.50));
  vaio_stats_set (s, RC_LAG_P99_US,
                  (uint64_t)vaio_stats_percentile_us (hist, 0.99));
  vaio_stats_set (s, RC_OVER_RPO, lag > repl.rpo_ns);
  vaio_stats_set (s, RC_JOURNAL_USED, repl.jrnl ? repl.jrnl->used : 0);
  vaio_stats_set (s, RC_TRACKING, repl.track == TRACK_BITMAP);
  vaio_stats_set (s, RC_DIRTY_BYTES,
                  repl.bmap ? (repl.bmap->n_dirty + repl.bmap->n_copying)
                                  * repl.granularity
                            : 0);
  vaio_stats_set (s, RC_CONNECTED, repl.connected);
  vaio_stats_set (s, RC_RESYNC_DONE, repl.resync_done_bytes);
  vaio_stats_set (s, RC_RESYNC_TOTAL,
                  repl.resync_done_bytes
                      + (repl.bmap ? (repl.bmap->n_dirty + repl.bmap->n_copying)
                                         * repl.granularity
                                   : 0));
}

/* ---- Switching to change tracking ---- */

/* The journal cannot take more (the replica is away or too slow) or
 * cannot be written: every range it still holds, and every write now in
 * flight, goes into the persisted bitmap, and the journal is emptied.
 * The replica is resynchronised from the bitmap when it is reachable.
 */
void
state_go_tracking_locked (const char *why)
{
  char err[512];

  nbdkit_debug ("vaio-replication: switching to change tracking: %s", why);
  for (uint64_t i = 0; i < repl.ring_n; i++)
    {
      const struct repl_entry *e
          = &repl.ring[(repl.ring_start + i) & (repl.ring_cap - 1)];
      /* Acknowledged ones too: not flushed on the replica yet. */
      if (e->type != JRNL_FLUSH)
        bmap_mark (repl.bmap, e->offset, e->length);
    }
  for (unsigned i = 0; i < repl.infl_cap; i++)
    if (repl.infl[i].in_use)
      {
        repl.infl[i].tracked = true;
        bmap_mark (repl.bmap, repl.infl[i].offset, repl.infl[i].length);
      }
  if (repl.track == TRACK_JOURNAL)
    mark_unflushed_locked ();
  if (bmap_persist (repl.bmap, true, err, sizeof err) == -1)
    nbdkit_error ("vaio-replication: %s", err);
  if (jrnl_reset (repl.jrnl, err, sizeof err) == -1)
    nbdkit_error ("vaio-replication: %s", err);
  repl.ring_n = 0;
  repl.base_seq = repl.ship_seq = repl.jrnl->head_seq;
  repl.done_prefix = repl.jrnl->head_seq - 1;
  if (repl.track != TRACK_BITMAP)
    {
      repl.track = TRACK_BITMAP;
      repl.tracking_since_ns = vaio_stats_now_ns ();
      /* A new resync: its progress (done of done + dirty) counts from
       * zero, not from what earlier resyncs of this process copied.
       */
      repl.resync_done_bytes = 0;
      vaio_stats_add (repl.stats, RC_OVERFLOWS, 1);
    }
  pthread_cond_broadcast (&repl.cond);
  pthread_cond_broadcast (&repl.range_cond);
}

/* ---- Range lock: overlapping writes reach the source in journal
 * order, so that replaying the journal reproduces the source. ---- */

static bool
overlaps_locked (uint64_t offset, uint64_t length)
{
  for (unsigned i = 0; i < repl.infl_cap; i++)
    {
      const struct repl_inflight *f = &repl.infl[i];
      if (f->in_use && offset < f->offset + f->length
          && f->offset < offset + length)
        return true;
    }
  return false;
}

static int
alloc_slot_locked (uint64_t offset, uint64_t length)
{
  unsigned i;

  for (i = 0; i < repl.infl_cap; i++)
    if (!repl.infl[i].in_use)
      break;
  if (i == repl.infl_cap)
    {
      unsigned cap = repl.infl_cap ? repl.infl_cap * 2 : 64;
      struct repl_inflight *p = realloc (repl.infl, cap * sizeof *p);

      if (p == NULL)
        return -1;
      memset (p + repl.infl_cap, 0, (cap - repl.infl_cap) * sizeof *p);
      repl.infl = p;
      repl.infl_cap = cap;
    }
  repl.infl[i] = (struct repl_inflight){ .offset = offset,
                                         .length = length,
                                         .in_use = true };
  return (int)i;
}

/* Reserve the journal record for r and queue its entry. */
static int
reserve_locked (struct jrnl_rec *r, bool fua, struct jrnl_slot *js)
{
  struct repl_entry e;
  int rc;

  r->barrier
      = r->type == JRNL_FLUSH ? repl.jrnl->head_seq - 1 : repl.local_done_max;
  r->committed = repl.done_prefix;
  rc = jrnl_reserve (repl.jrnl, r, js);
  if (rc != 0)
    {
      state_go_tracking_locked ("journal full");
      return -1;
    }
  e = entry_of_record (r, js->pos);
  e.fua = fua;
  if (push_entry_locked (&e) == -1)
    {
      /* The record is reserved but we cannot queue it: let the bitmap
       * carry it (go_tracking marks in-flight ranges and drops the
       * reservation).
       */
      state_go_tracking_locked ("out of memory");
      return -1;
    }
  return 0;
}

/* Write a reserved record, outside the lock.  On failure the bitmap
 * takes over: go_tracking marks every in-flight range, ours included.
 */
static int
write_record (struct repl_op *op, const struct jrnl_rec *r, const void *buf,
              const struct jrnl_slot *js)
{
  if (jrnl_write (repl.jrnl, r, buf, js) == 0)
    return 0;
  nbdkit_error ("vaio-replication: %s: appending to journal: %m",
                repl.jrnl->path);
  pthread_mutex_lock (&repl.lock);
  if (op->slot >= 0)
    repl.infl[op->slot].seq = 0;
  if (repl.track == TRACK_JOURNAL)
    state_go_tracking_locked ("journal write failed");
  pthread_mutex_unlock (&repl.lock);
  op->seq = 0;
  return -1;
}

/* Sync mode: the record is written, so the replica may get it now,
 * while the source write runs (a crash replays the journal onto the
 * source, so the replica is never ahead of what the source will hold).
 * The writer sends it itself when the connection is free; else the
 * shipper thread does.
 */
static void
ready_early (struct repl_op *op)
{
  struct repl_entry *e;

  pthread_mutex_lock (&repl.lock);
  e = state_entry_locked (op->seq);
  if (e != NULL && e->state == E_LOCAL)
    e->state = E_READY;
  pthread_mutex_unlock (&repl.lock);
  if (!shipper_send_now ())
    state_wake_shipper ();
}

static void
wait_range_locked (uint64_t offset, uint64_t length)
{
  while (overlaps_locked (offset, length))
    {
      repl.range_waiters++;
      pthread_cond_wait (&repl.range_cond, &repl.lock);
      repl.range_waiters--;
    }
}

/* Mark the bitmap for an untracked write (tracking mode): the bit must
 * be durable before the source changes.
 */
static int
track_locked (int slot, uint64_t offset, uint32_t count, int *err)
{
  char msg[512];

  repl.infl[slot].tracked = true;
  if (bmap_mark (repl.bmap, offset, count) > 0
      && bmap_persist (repl.bmap, true, msg, sizeof msg) == -1)
    {
      repl.infl[slot].in_use = false;
      if (repl.range_waiters > 0)
        pthread_cond_broadcast (&repl.range_cond);
      nbdkit_error ("vaio-replication: %s", msg);
      *err = EIO;
      return -1;
    }
  return 0;
}

int
state_begin (uint32_t type, const void *buf, uint32_t count, uint64_t offset,
             bool fua, struct repl_op *op, int *err)
{
  struct jrnl_rec r = { .type = type,
                        .timestamp_ns = realtime_ns (),
                        .offset = offset,
                        .length = count,
                        .data_len = type == JRNL_WRITE ? count : 0 };
  struct jrnl_slot js;
  int slot;

  /* The checksum needs no lock: compute it before taking one. */
  r.data_crc = r.data_len ? jrnl_data_crc (buf, r.data_len) : 0;
  op->seq = 0;
  pthread_mutex_lock (&repl.lock);
  wait_range_locked (offset, count);
  slot = alloc_slot_locked (offset, count);
  if (slot == -1)
    {
      pthread_mutex_unlock (&repl.lock);
      nbdkit_error ("vaio-replication: out of memory");
      *err = ENOMEM;
      return -1;
    }
  op->slot = slot;
  if (repl.track == TRACK_JOURNAL && reserve_locked (&r, fua, &js) == 0)
    repl.infl[slot].seq = op->seq = r.seq;
  else if (track_locked (slot, offset, count, err) == -1)
    {
      pthread_mutex_unlock (&repl.lock);
      return -1;
    }
  pthread_mutex_unlock (&repl.lock);

  if (op->seq == 0 || write_record (op, &r, buf, &js) == -1)
    return 0;
  if (fua && jrnl_sync (repl.jrnl) == -1)
    {
      *err = errno;
      nbdkit_error ("vaio-replication: %s: fdatasync: %m", repl.jrnl->path);
      state_end (op, false);
      return -1;
    }
  if (repl.mode == REPL_SYNC)
    ready_early (op);
  return 0;
}

/* Entries below base_seq are gone from the queue: all done. */
static void
advance_done_locked (void)
{
  struct repl_entry *e;

  if (repl.done_prefix + 1 < repl.base_seq)
    repl.done_prefix = repl.base_seq - 1;
  while ((e = state_entry_locked (repl.done_prefix + 1)) != NULL && e->done)
    repl.done_prefix++;
}

/* The entry's source operation finished (ok or not).  Returns whether
 * the shipper has something new.
 */
static bool
entry_done_locked (struct repl_entry *e, bool ok)
{
  e->done = true;
  if (!ok && e->seq > repl.last_failed_seq)
    repl.last_failed_seq = e->seq;
  if (e->state == E_LOCAL)
    {
      e->state = E_READY;
      e->failed = !ok;
      return true;
    }
  if (!ok)
    {
      /* Sync mode sent it before the source failed: the replica may hold
       * bytes the source does not.  Let a resync copy the source's.
       */
      bmap_mark (repl.bmap, e->offset, e->length);
      state_go_tracking_locked ("a source write failed after shipping");
      return false;
    }
  /* Acked by the replica before the source was done: pop it now. */
  if (e->state == E_ACKED)
    state_pop_acked_locked ();
  return false;
}

void
state_end (struct repl_op *op, bool ok)
{
  struct repl_entry *e;
  bool wake = false;

  pthread_mutex_lock (&repl.lock);
  if (op->slot >= 0)
    {
      struct repl_inflight *f = &repl.infl[op->slot];
      if (f->tracked)
        /* A resync pass may have copied this range before the source
         * changed: copy it again.
         */
        bmap_mark (repl.bmap, f->offset, f->length);
      f->in_use = false;
      if (repl.range_waiters > 0)
        pthread_cond_broadcast (&repl.range_cond);
    }
  e = op->seq ? state_entry_locked (op->seq) : NULL;
  /* The shipper sends in sequence order from ship_seq, and stops at the
   * first entry that is not ready or whose barrier is not acknowledged.
   * Only an entry that lifts that stop gives it anything new to do; any
   * other ready entry goes out with the one that does, or after an
   * acknowledgement that wakes the shipper anyway.  Under load most
   * writes wait for a barrier in flight, and waking the shipper for each
   * cost a context switch per write.
   */
  if (e != NULL)
    wake = entry_done_locked (e, ok) && e->seq == repl.ship_seq
           && e->barrier < repl.base_seq;
  if (op->seq > repl.local_done_max)
    repl.local_done_max = op->seq;
  advance_done_locked ();
  pthread_mutex_unlock (&repl.lock);
  if (wake)
    state_wake_shipper ();
}

int
state_flush_begin (struct repl_op *op, int *err)
{
  struct jrnl_rec r = { .type = JRNL_FLUSH, .timestamp_ns = realtime_ns () };
  struct jrnl_slot js;

  pthread_mutex_lock (&repl.lock);
  op->slot = -1;
  op->seq = 0;
  /* A flush record is a barrier: everything before it reaches the
   * replica, then the replica flushes, then anything after it is sent.
   */
  if (repl.track == TRACK_JOURNAL && reserve_locked (&r, false, &js) == 0)
    op->seq = r.seq;
  pthread_mutex_unlock (&repl.lock);

  if (op->seq != 0)
    write_record (op, &r, NULL, &js);
  if (jrnl_sync (repl.jrnl) == -1)
    {
      *err = errno;
      nbdkit_error ("vaio-replication: %s: fdatasync: %m", repl.jrnl->path);
      state_end (op, false);
      return -1;
    }
  if (op->seq != 0 && repl.mode == REPL_SYNC)
    ready_early (op);
  return 0;
}

/* May a sync writer of entry seq return?  Like DRBD protocol C while
 * connected; a disconnected replica does not block the VM (the journal
 * or the bitmap keeps the write).
 */
bool
state_replicated_locked (uint64_t seq)
{
  struct repl_entry *e;

  if (!repl.connected || repl.stopping || repl.track != TRACK_JOURNAL)
    return true;
  e = state_entry_locked (seq);
  return e == NULL || e->state == E_ACKED;
}

void
state_wait_replicated (const struct repl_op *op)
{
  uint64_t deadline = vaio_stats_now_ns () + SYNC_WAIT_MAX_NS;
  struct timespec ts;

  if (op->seq == 0)
    return;
  /* The fast way: drive the connection until the replica answers. */
  if (shipper_wait_acked (op->seq, deadline))
    return;
  clock_gettime (CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)(SYNC_WAIT_MAX_NS / 1000000000ull);
  pthread_mutex_lock (&repl.lock);
  repl.cond_waiters++;
  while (!state_replicated_locked (op->seq) && vaio_stats_now_ns () < deadline)
    pthread_cond_timedwait (&repl.cond, &repl.lock, &ts);
  repl.cond_waiters--;
  pthread_mutex_unlock (&repl.lock);
}

/* ---- Recovery: replay the journal onto the source ---- */

struct recover_ctx
{
  uint64_t replayed;
  uint64_t corrupt;
  uint64_t orphans;
  int err;
};

static int
recover_rec (void *opaque, const struct jrnl_rec *r, uint64_t pos,
             const void *data)
{
  struct recover_ctx *c = opaque;
  nbdkit_next *next = repl.shared;
  struct repl_entry e = entry_from_record (r, pos);
  int rc = 0;

  /* The record may have reached the journal but not the source before
   * the crash: apply it again, in order, so the source holds everything
   * the replica will get.
   */
  if (r->type == JRNL_WRITE)
    rc = next->pwrite (next, data, r->length, r->offset, 0, &c->err);
  else if (r->type == JRNL_ZERO || r->type == JRNL_TRIM)
    rc = next->zero (next, r->length, r->offset, NBDKIT_FLAG_MAY_TRIM, &c->err);
  if (rc == -1)
    {
      nbdkit_error ("vaio-replication: replaying journal record %llu onto "
                    "the source failed",
                    (unsigned long long)r->seq);
      return -1;
    }
  c->replayed++;
  if (r->seq > repl.local_done_max)
    repl.local_done_max = r->seq;
  return push_entry_locked (&e);
}

static int
recover_bad (void *opaque, const struct jrnl_rec *r, uint64_t pos,
             const void *data)
{
  struct recover_ctx *c = opaque;
  struct repl_entry e = { .seq = r->seq,
                          .pos = pos,
                          .type = JRNL_FLUSH,
                          .state = E_ACKED,
                          .done = true };

  nbdkit_error ("vaio-replication: %s: record %llu (offset %llu, %u bytes) "
                "at %llu: payload checksum mismatch; that range will be "
                "resynchronised from the source",
                repl.jrnl->path, (unsigned long long)r->seq,
                (unsigned long long)r->offset, r->length,
                (unsigned long long)pos);
  c->corrupt++;
  bmap_mark (repl.bmap, r->offset, r->length);
  return push_entry_locked (&e);
}

/* A record written while an earlier one was still unwritten when the
 * process died (see journal.h): its writer may have changed the source,
 * so its range is resynchronised; it is not replayed (the journal ends
 * at the hole).
 */
static int
recover_orphan (void *opaque, const struct jrnl_rec *r, uint64_t pos,
                const void *data)
{
  struct recover_ctx *c = opaque;

  c->orphans++;
  bmap_mark (repl.bmap, r->offset, r->length);
  return 0;
}

int
state_recover (char *err, size_t errlen)
{
  struct recover_ctx c = { 0 };
  bool lost = false;
  int rc;

  pthread_mutex_lock (&repl.lock);
  repl.base_seq = repl.ship_seq = repl.jrnl->tail_seq;
  repl.local_done_max = repl.jrnl->tail_seq - 1;
  rc = jrnl_scan (repl.jrnl, recover_rec, recover_bad, recover_orphan, &c,
                  &lost, err, errlen);
  if (rc == 0 && c.replayed > 0
      && repl.shared->flush (repl.shared, 0, &c.err) == -1)
    {
      snprintf (err, errlen, "flushing the source after journal replay");
      rc = -1;
    }
  if (rc == 0)
    {
      if (lost)
        {
          nbdkit_error ("vaio-replication: %s: the record at sequence %llu "
                        "or a later one is unreadable (checksum); the whole "
                        "disk will be resynchronised from the source",
                        repl.jrnl->path,
                        (unsigned long long)repl.jrnl->head_seq);
          c.corrupt++;
          bmap_mark_all (repl.bmap);
        }
      repl.recovered_corrupt = c.corrupt;
      repl.recovered_replayed = c.replayed;
      nbdkit_debug ("vaio-replication: recovery replayed %llu records, "
                    "%llu corrupt, %llu written after an unwritten one "
                    "(resynchronised)",
                    (unsigned long long)c.replayed,
                    (unsigned long long)c.corrupt,
                    (unsigned long long)c.orphans);
      repl.track = TRACK_JOURNAL;
      repl.done_prefix = repl.jrnl->head_seq - 1;
      /* Orphans (even flush records, which dirty nothing) force a journal
       * reset: new records must not reuse their sequence numbers.
       */
      if (!bmap_is_clean (repl.bmap) || c.orphans > 0)
        state_go_tracking_locked ("dirty regions to resynchronise");
      state_publish_locked ();
    }
  pthread_mutex_unlock (&repl.lock);
  return rc;
}

int
state_init (void)
{
  return 0;
}

void
state_free (void)
{
  repl.ring_n = 0;
  free (repl.ring);
  repl.ring = NULL;
  free (repl.infl);
  repl.infl = NULL;
}

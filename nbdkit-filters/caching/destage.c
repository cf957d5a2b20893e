/* vaio-cache: the background destager.
 *
 * Copies dirty blocks from the cache to the backing image, in block
 * order, in batches: write the batch, flush the backing image, and only
 * then mark the blocks clean and persist that.  A crash at any point
 * leaves the blocks dirty in durable metadata with their data intact
 * (their slots cannot be reused until "clean" is durable), so the next
 * start destages them again: a block torn in the backing image by a
 * crash mid-destage is always rewritten whole.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nbdkit-filter.h>

#include "uring.h"
#include "vcache.h"

#define BATCH 32

/* The destager thread; started in after_fork, joined in cleanup. */
static pthread_t destager;
static bool destager_running;

struct item
{
  uint32_t slot;
  uint64_t block;
  uint64_t wseq;
  bool done;
};

static int
by_block (const void *a, const void *b)
{
  const struct item *x = a, *y = b;

  return x->block < y->block ? -1 : x->block > y->block;
}

/* `vaioctl apply` creates <state-dir>/drain before it removes this
 * filter from a running disk's chain: the cache is about to go away, so
 * every dirty block must reach the backing image first, not just those
 * above the low watermark.  Checked at most once per destager wakeup.
 */
static bool
drain_requested (const struct vcache *c)
{
  char path[4096];

  if (c->cfg.state_dir == NULL)
    return false;
  snprintf (path, sizeof path, "%s/drain", c->cfg.state_dir);
  return access (path, F_OK) == 0;
}

/* Should the destager run now?  Hysteresis between the watermarks, or
 * everything when a drain was requested.  Called with lock held.
 */
static bool
want_destage (struct vcache *c)
{
  uint64_t pct100 = c->dirty_count * 100;
  uint64_t n = c->geom.n_slots;

  c->draining = drain_requested (c);
  if (c->draining)
    return c->dirty_count > 0;

  if (pct100 > (uint64_t)c->cfg.dirty_high * n)
    c->destage_active = true;
  else if (pct100 <= (uint64_t)c->cfg.dirty_low * n)
    c->destage_active = false;
  return c->destage_active && c->dirty_count > 0;
}

/* Pick up to limit dirty slots.  Called with lock held. */
static unsigned
collect (struct vcache *c, struct item *items, unsigned limit, uint32_t *cursor)
{
  unsigned n = 0;

  for (uint32_t k = 0; k < c->geom.n_slots && n < limit; k++)
    {
      uint32_t s = (*cursor + k) % c->geom.n_slots;
      struct vcache_slot *sl = &c->slots[s];

      /* Not pinned: dirty slots are never evicted, and one trimmed and
       * reused meanwhile is noticed under its stripe lock (destage_one).
       */
      if ((sl->flags & (SLOT_VALID | SLOT_DIRTY)) == (SLOT_VALID | SLOT_DIRTY))
        items[n++] = (struct item){ .slot = s, .block = sl->block };
    }
  *cursor = (*cursor + c->geom.n_slots / 8 + 1) % c->geom.n_slots;
  return n;
}

static pthread_rwlock_t *
stripe_of (struct vcache *c, uint64_t block)
{
  return &c->stripes[(block * 0x9E3779B97F4A7C15ULL) >> 54];
}

/* Copy one block to the backing image, holding its stripe shared so no
 * write can change it (or send older data to the backing) meanwhile.
 */
static int
destage_one (struct vcache *c, struct item *it)
{
  pthread_rwlock_t *st = stripe_of (c, it->block);
  uint32_t blen = block_len (c, it->block);
  char *buf = uring_bounce ();
  bool still;
  int err = 0, r = -1;

  if (buf == NULL)
    return -1;
  pthread_rwlock_rdlock (st);
  pthread_mutex_lock (&c->lock);
  still = c->slots[it->slot].block == it->block
          && (c->slots[it->slot].flags & SLOT_DIRTY);
  it->wseq = c->slots[it->slot].wseq;
  pthread_mutex_unlock (&c->lock);
  if (!still)
    goto out;
  r = io_cache_read (c, it->slot, 0, blen, buf);
  if (r)
    {
      errno = r;
      nbdkit_error ("vaio-cache: destage: reading block %" PRIu64 ": %m",
                    it->block);
      r = -1;
      goto out;
    }
  r = c->shared->pwrite (c->shared, buf, blen, it->block * c->geom.block_size,
                         0, &err);
  if (r == -1)
    nbdkit_error ("vaio-cache: destage: writing block %" PRIu64 ": %s",
                  it->block, strerror (err));
  else
    it->done = true;
out:
  pthread_rwlock_unlock (st);
  return r;
}

/* One batch of at most limit (<= BATCH) blocks.  Returns blocks
 * destaged, 0 if none were dirty, -1 on error.
 */
static int
destage_batch (struct vcache *c, unsigned limit, uint32_t *cursor)
{
  struct item items[BATCH];
  unsigned n, done = 0;
  uint64_t bytes = 0;
  int err = 0, failed = 0;

  pthread_mutex_lock (&c->lock);
  n = collect (c, items, limit, cursor);
  pthread_mutex_unlock (&c->lock);
  if (n == 0)
    return 0;
  qsort (items, n, sizeof items[0], by_block);
  for (unsigned i = 0; i < n; i++)
    if (destage_one (c, &items[i]) == -1)
      failed = 1;
  /* The backing copy must be durable before the cache calls it clean. */
  if (c->shared->can_flush (c->shared) == 1
      && c->shared->flush (c->shared, 0, &err) == -1)
    {
      nbdkit_error ("vaio-cache: destage: flushing backing: %s",
                    strerror (err));
      failed = 1;
      for (unsigned i = 0; i < n; i++)
        items[i].done = false;
    }
  pthread_mutex_lock (&c->lock);
  for (unsigned i = 0; i < n; i++)
    {
      struct vcache_slot *sl = &c->slots[items[i].slot];

      if (items[i].done && sl->block == items[i].block
          && (sl->flags & SLOT_DIRTY) && sl->wseq == items[i].wseq)
        {
          sl->flags &= ~SLOT_DIRTY;
          c->dirty_count--;
          slot_mark_md (c, items[i].slot);
          bytes += block_len (c, items[i].block);
          done++;
        }
    }
  pthread_mutex_unlock (&c->lock);
  __atomic_add_fetch (&c->destaged_total, bytes, __ATOMIC_RELAXED);
  if (c->stats)
    vaio_stats_add (c->stats, ST_DESTAGED_BYTES, bytes);
  if (done && store_persist (c, false) == -1)
    failed = 1;
  io_publish_stats (c);
  return failed ? -1 : (int)(done ? done : n);
}

/* Publish the destage rate once a second or so. */
static void
update_rate (struct vcache *c, uint64_t *last_ns, uint64_t *last_bytes)
{
  uint64_t now = vaio_stats_now_ns ();
  uint64_t total = __atomic_load_n (&c->destaged_total, __ATOMIC_RELAXED);

  if (now - *last_ns < 1000000000ULL)
    return;
  if (c->stats)
    vaio_stats_set (c->stats, ST_DESTAGE_RATE,
                    (total - *last_bytes) * 1000000000ULL / (now - *last_ns));
  *last_ns = now;
  *last_bytes = total;
}

static void *
destage_thread (void *arg)
{
  struct vcache *c = arg;
  uint32_t cursor = 0;
  uint64_t over, last_ns = vaio_stats_now_ns (), last_bytes = 0;

  pthread_mutex_lock (&c->lock);
  while (!c->destage_stop)
    {
      update_rate (c, &last_ns, &last_bytes);
      if (!want_destage (c))
        {
          struct timespec ts;

          clock_gettime (CLOCK_REALTIME, &ts);
          ts.tv_sec += 1;
          pthread_cond_timedwait (&c->destage_cond, &c->lock, &ts);
          continue;
        }
      /* Destage down to the low watermark, not below: dirty blocks
       * absorb rewrites for free.
       */
      over = c->draining
                 ? c->dirty_count
                 : c->dirty_count
                       - (uint64_t)c->cfg.dirty_low * c->geom.n_slots / 100;
      pthread_mutex_unlock (&c->lock);
      if (destage_batch (c, over < BATCH ? (unsigned)over : BATCH, &cursor)
          == -1)
        {
          /* The backing image is failing: back off, keep the data. */
          struct timespec pause = { .tv_sec = 1 };
          nanosleep (&pause, NULL);
        }
      pthread_mutex_lock (&c->lock);
    }
  pthread_mutex_unlock (&c->lock);
  return NULL;
}

void
destage_kick (struct vcache *c)
{
  uint64_t dirty = __atomic_load_n (&c->dirty_count, __ATOMIC_RELAXED);

  if (dirty * 100 > (uint64_t)c->cfg.dirty_high * c->geom.n_slots)
    pthread_cond_signal (&c->destage_cond);
}

int
destage_start (struct vcache *c)
{
  int r;

  c->destage_stop = false;
  r = pthread_create (&destager, NULL, destage_thread, c);
  if (r)
    {
      errno = r;
      nbdkit_error ("vaio-cache: cannot start the destager: %m");
      return -1;
    }
  destager_running = true;
  return 0;
}

void
destage_stop (struct vcache *c)
{
  if (!destager_running)
    return;
  pthread_mutex_lock (&c->lock);
  c->destage_stop = true;
  pthread_cond_signal (&c->destage_cond);
  pthread_mutex_unlock (&c->lock);
  pthread_join (destager, NULL);
  destager_running = false;
}

/* Destage everything (clean shutdown).  0 when nothing is dirty. */
int
destage_all (struct vcache *c)
{
  uint32_t cursor = 0;
  unsigned errors = 0;

  for (;;)
    {
      int r = destage_batch (c, BATCH, &cursor);

      if (r == 0)
        return 0;
      if (r == -1 && ++errors > 3)
        return -1;
    }
}

/* vaio-replication: bitmap-driven resynchronisation.
 *
 * In tracking mode the shipper copies dirty regions from the source to
 * the replica in batches: take up to BATCH_RANGES runs of dirty bits
 * (they move to the bitmap's `copying` set, still dirty in the file),
 * copy each run, flush the replica, then forget the bits.  A run is one
 * chunk the source holds data in (one write), or consecutive chunks the
 * source reports as holes or zeros, up to the zero request limit (one
 * zero request): an initial sync of a sparse disk sends a few large zero
 * requests, not one per chunk.  A new replica may hold old data, so holes
 * are always zeroed.  A write that lands meanwhile marks its bits dirty
 * again, so they are copied again.  When the bitmap is clean and no
 * tracked write is in flight, new writes go back to the journal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "repl.h"

#define BATCH_RANGES 64
#define MAX_ZERO     (64ull << 20) /* bytes in one zero request */

/* Bits [first, first + count) of the bitmap, copied by one request. */
struct range
{
  uint64_t first;
  uint64_t count;
  bool zero; /* the source reads as zeros there: one zero request */
};

struct resync
{
  struct range ranges[BATCH_RANGES]; /* taken in this batch */
  unsigned n_ranges;
  unsigned completed;
  bool flushing;
  uint64_t cursor;
  uint64_t gen; /* connection the batch runs on */
  struct ship_conn *sc;
};

struct resync *
resync_new (void)
{
  return calloc (1, sizeof (struct resync));
}

void
resync_free (struct resync *rs)
{
  free (rs);
}

struct copy_cmd
{
  struct resync *rs;
  uint64_t gen;
  void *buf;
};

static void
copy_free (void *user_data)
{
  struct copy_cmd *c = user_data;

  free (c->buf);
  free (c);
}

static int
copy_done (void *user_data, int *error)
{
  struct copy_cmd *c = user_data;

  if (c->gen != c->rs->sc->gen)
    return 1;
  c->rs->sc->inflight--;
  if (*error != 0)
    c->rs->sc->broken = true;
  else
    c->rs->completed++;
  return 1;
}

/* Bytes of the disk covered by bits [first, first + count). */
static uint64_t
range_bytes (uint64_t first, uint64_t count)
{
  uint64_t off = first * repl.granularity;
  uint64_t end = (first + count) * repl.granularity;

  return (end > repl.disk_size ? repl.disk_size : end) - off;
}

static int
flush_done (void *user_data, int *error)
{
  struct copy_cmd *c = user_data;
  struct resync *rs = c->rs;
  char err[512];
  int r;

  if (c->gen != rs->sc->gen)
    return 1;
  rs->sc->inflight--;
  rs->flushing = false;
  if (*error != 0)
    {
      rs->sc->broken = true;
      return 1;
    }
  pthread_mutex_lock (&repl.lock);
  for (unsigned i = 0; i < rs->n_ranges; i++)
    {
      struct range *g = &rs->ranges[i];
      for (uint64_t bit = g->first; bit < g->first + g->count; bit++)
        bmap_done (repl.bmap, bit);
      repl.resync_done_bytes += range_bytes (g->first, g->count);
    }
  r = bmap_persist (repl.bmap, false, err, sizeof err);
  pthread_mutex_unlock (&repl.lock);
  if (r == -1)
    nbdkit_error ("vaio-replication: %s", err);
  rs->n_ranges = rs->completed = 0;
  return 1;
}

/* How many bytes from off (at most len) does the source read as zeros?
 * Asks the source's extents until one is not a zero extent.
 */
static uint64_t
source_zero_bytes (uint64_t off, uint64_t len)
{
  nbdkit_next *next = repl.shared;
  uint64_t pos = off, end = off + len;
  bool more = true;

  if (next->can_extents (next) != 1)
    return 0;
  while (more && pos < end)
    {
      uint32_t count
          = (uint32_t)(end - pos > UINT32_MAX ? UINT32_MAX : end - pos);
      struct nbdkit_extents *ext = nbdkit_extents_new (pos, end);
      uint64_t start = pos;
      int err;

      if (ext == NULL)
        break;
      if (next->extents (next, count, pos, 0, ext, &err) == -1)
        more = false;
      for (size_t i = 0; more && i < nbdkit_extents_count (ext); i++)
        {
          struct nbdkit_extent e = nbdkit_get_extent (ext, i);
          if (e.offset != pos || !(e.type & NBDKIT_EXTENT_ZERO))
            more = false;
          else
            pos = e.offset + e.length;
        }
      nbdkit_extents_free (ext);
      if (pos == start)
        break; /* no progress */
    }
  return (pos > end ? end : pos) - off;
}

/* How many of the chunks [first, first + count) does the source read as
 * zeros, counted from first?  A chunk only partly zero does not count.
 */
static uint64_t
source_zero_chunks (uint64_t first, uint64_t count)
{
  uint64_t off = first * repl.granularity;
  uint64_t len = range_bytes (first, count);
  uint64_t z = source_zero_bytes (off, len);

  return z == len ? count : z / repl.granularity;
}

/* Bytes in one zero request on this connection: MAX_ZERO, or less if the
 * replica advertises a smaller maximum request size; whole chunks.
 */
static uint64_t
max_zero_bits (struct ship_conn *sc)
{
  int64_t server_max = nbd_get_block_size (sc->nbd, LIBNBD_SIZE_MAXIMUM);
  uint64_t max = MAX_ZERO;

  if (server_max > 0 && (uint64_t)server_max < max)
    max = (uint64_t)server_max;
  return max / repl.granularity > 0 ? max / repl.granularity : 1;
}

static int
issue_zero (struct resync *rs, const struct range *g)
{
  struct ship_conn *sc = rs->sc;
  struct copy_cmd *c = calloc (1, sizeof *c);
  nbd_completion_callback cb
      = { .callback = copy_done, .user_data = c, .free = copy_free };

  if (c == NULL)
    return -1;
  c->rs = rs;
  c->gen = sc->gen;
  if (nbd_aio_zero (sc->nbd, range_bytes (g->first, g->count),
                    g->first * repl.granularity, cb, 0)
      == -1)
    {
      sc->broken = true;
      return -1;
    }
  sc->inflight++;
  return 0;
}

static int
issue_write (struct resync *rs, const struct range *g)
{
  struct ship_conn *sc = rs->sc;
  uint64_t off = g->first * repl.granularity;
  uint32_t len = (uint32_t)range_bytes (g->first, g->count);
  struct copy_cmd *c = calloc (1, sizeof *c);
  nbd_completion_callback cb
      = { .callback = copy_done, .user_data = c, .free = copy_free };
  int err = 0;

  if (c == NULL)
    return -1;
  c->rs = rs;
  c->gen = sc->gen;
  c->buf = malloc (len);
  if (c->buf == NULL
      || repl.shared->pread (repl.shared, c->buf, len, off, 0, &err) == -1)
    {
      copy_free (c);
      return -1;
    }
  if (nbd_aio_pwrite (sc->nbd, c->buf, len, off, cb, 0) == -1)
    {
      sc->broken = true;
      return -1;
    }
  sc->inflight++;
  return 0;
}

static void
issue_flush (struct resync *rs)
{
  struct copy_cmd *c = calloc (1, sizeof *c);

  if (c == NULL)
    return;
  c->rs = rs;
  c->gen = rs->sc->gen;
  if (!rs->sc->can_flush)
    {
      int zero = 0;
      rs->sc->inflight++;
      rs->flushing = true;
      flush_done (c, &zero);
      copy_free (c);
      return;
    }
  if (nbd_aio_flush (rs->sc->nbd,
                     (nbd_completion_callback){ .callback = flush_done,
                                                .user_data = c,
                                                .free = copy_free },
                     0)
      == -1)
    {
      rs->sc->broken = true;
      return;
    }
  rs->sc->inflight++;
  rs->flushing = true;
}

static bool
tracked_write_inflight_locked (void)
{
  for (unsigned i = 0; i < repl.infl_cap; i++)
    if (repl.infl[i].in_use && repl.infl[i].tracked)
      return true;
  return false;
}

static void
maybe_back_to_journal_locked (void)
{
  if (repl.track == TRACK_BITMAP && bmap_is_clean (repl.bmap)
      && !tracked_write_inflight_locked ())
    {
      nbdkit_debug ("vaio-replication: resync complete, journaling again");
      repl.track = TRACK_JOURNAL;
      repl.base_seq = repl.ship_seq = repl.jrnl->head_seq;
      state_publish_locked ();
      pthread_cond_broadcast (&repl.cond);
    }
}

/* Take the next dirty bit; -1 if none.  The search wraps round to the
 * start of the disk only between batches: a batch takes each bit once
 * (two copies of one chunk in flight together could land in either
 * order).
 */
static int64_t
take_next_locked (struct resync *rs)
{
  int64_t bit = bmap_next_dirty (repl.bmap, rs->cursor);

  if (bit == -1 && rs->cursor > 0 && rs->n_ranges == 0)
    bit = bmap_next_dirty (repl.bmap, 0);
  if (bit == -1)
    return -1;
  bmap_take (repl.bmap, (uint64_t)bit);
  rs->cursor = (uint64_t)bit + 1;
  return bit;
}

/* Take the dirty bits from `from` on, up to max of them, while they are
 * consecutive; returns how many were taken.
 */
static uint64_t
take_run_locked (struct resync *rs, uint64_t from, uint64_t max)
{
  uint64_t n = 0;

  while (n < max
         && bmap_next_dirty (repl.bmap, from + n) == (int64_t)(from + n))
    bmap_take (repl.bmap, from + n++);
  rs->cursor = from + n;
  return n;
}

/* Give back taken bits (dirty again); the search resumes at first. */
static void
untake_locked (struct resync *rs, uint64_t first, uint64_t count)
{
  for (uint64_t bit = first; bit < first + count; bit++)
    bmap_untake (repl.bmap, bit);
  rs->cursor = first;
}

/* The chunk at g->first is a hole on the source: take the dirty chunks
 * after it, up to the zero request limit, and keep those the source
 * still reads as zeros.  The source is looked at after the take: a write
 * landing later marks its chunks dirty again, so they are copied again.
 */
static void
extend_hole (struct resync *rs, struct range *g)
{
  uint64_t from = g->first + 1, n, z;

  pthread_mutex_lock (&repl.lock);
  n = take_run_locked (rs, from, max_zero_bits (rs->sc) - 1);
  pthread_mutex_unlock (&repl.lock);
  if (n == 0)
    return;
  z = source_zero_chunks (from, n);
  if (z < n)
    {
      pthread_mutex_lock (&repl.lock);
      untake_locked (rs, from + z, n - z);
      pthread_mutex_unlock (&repl.lock);
    }
  g->count += z;
}

/* Take the next run of dirty chunks into g: a data chunk (copied by a
 * write) or a run of hole chunks (one zero request).  False if none.
 */
static bool
take_range (struct resync *rs, struct range *g)
{
  int64_t bit;

  pthread_mutex_lock (&repl.lock);
  bit = repl.track == TRACK_BITMAP ? take_next_locked (rs) : -1;
  if (bit == -1 && rs->n_ranges == 0)
    maybe_back_to_journal_locked ();
  pthread_mutex_unlock (&repl.lock);
  if (bit == -1)
    return false;
  g->first = (uint64_t)bit;
  g->count = 1;
  g->zero = rs->sc->can_zero && source_zero_chunks (g->first, 1) == 1;
  if (g->zero)
    extend_hole (rs, g);
  return true;
}

void
resync_step (struct resync *rs, struct ship_conn *sc)
{
  rs->sc = sc;
  if (rs->flushing || sc->broken)
    return;
  if (rs->n_ranges > 0 && rs->completed == rs->n_ranges)
    {
      issue_flush (rs);
      return;
    }
  while (!sc->broken && sc->inflight < (int)repl.max_inflight
         && rs->n_ranges < BATCH_RANGES)
    {
      struct range *g = &rs->ranges[rs->n_ranges];

      if (!take_range (rs, g))
        break;
      rs->n_ranges++;
      if ((g->zero ? issue_zero (rs, g) : issue_write (rs, g)) == -1)
        {
          if (!sc->broken)
            nbdkit_error ("vaio-replication: resync: reading the source at "
                          "%llu failed; will retry",
                          (unsigned long long)(g->first * repl.granularity));
          sc->broken = true; /* reconnect puts the batch back */
          return;
        }
    }
  if (rs->n_ranges > 0 && rs->completed == rs->n_ranges)
    issue_flush (rs);
}

void
resync_abort (struct resync *rs)
{
  pthread_mutex_lock (&repl.lock);
  for (unsigned i = 0; i < rs->n_ranges; i++)
    untake_locked (rs, rs->ranges[i].first, rs->ranges[i].count);
  if (rs->n_ranges > 0)
    rs->cursor = rs->ranges[0].first;
  pthread_mutex_unlock (&repl.lock);
  rs->n_ranges = rs->completed = 0;
  rs->flushing = false;
}

/* vaio-replication: bitmap-driven resynchronisation.
 *
 * In tracking mode the shipper copies dirty regions from the source to
 * the replica in batches: take up to BATCH_BITS dirty bits (they move to
 * the bitmap's `copying` set, still dirty in the file), copy each region
 * (a region the source reports as a hole or zeros becomes a cheap zero
 * request), flush the replica, then forget the bits.  A write that lands
 * meanwhile marks its bits dirty again, so they are copied again.  When
 * the bitmap is clean and no tracked write is in flight, new writes go
 * back to the journal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "repl.h"

#define BATCH_BITS 64

struct resync
{
  uint64_t bits[BATCH_BITS]; /* taken in this batch */
  unsigned n_bits;
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
  for (unsigned i = 0; i < rs->n_bits; i++)
    {
      uint64_t off = rs->bits[i] * repl.granularity;
      bmap_done (repl.bmap, rs->bits[i]);
      repl.resync_done_bytes += repl.disk_size - off < repl.granularity
                                    ? repl.disk_size - off
                                    : repl.granularity;
    }
  r = bmap_persist (repl.bmap, false, err, sizeof err);
  pthread_mutex_unlock (&repl.lock);
  if (r == -1)
    nbdkit_error ("vaio-replication: %s", err);
  rs->n_bits = rs->completed = 0;
  return 1;
}

/* Does the source read as zeros over [off, off+len)? */
static bool
source_is_zero (uint64_t off, uint32_t len)
{
  nbdkit_next *next = repl.shared;
  struct nbdkit_extents *ext;
  bool zero = true;
  uint64_t covered = off;
  int err;

  if (next->can_extents (next) != 1)
    return false;
  ext = nbdkit_extents_new (off, off + len);
  if (ext == NULL)
    return false;
  if (next->extents (next, len, off, 0, ext, &err) == -1)
    zero = false;
  for (size_t i = 0; zero && i < nbdkit_extents_count (ext); i++)
    {
      struct nbdkit_extent e = nbdkit_get_extent (ext, i);
      if (e.offset >= off + len)
        break;
      if (!(e.type & NBDKIT_EXTENT_ZERO))
        zero = false;
      covered = e.offset + e.length;
    }
  nbdkit_extents_free (ext);
  return zero && covered >= off + len;
}

static int
issue_copy (struct resync *rs, uint64_t bit)
{
  struct ship_conn *sc = rs->sc;
  uint64_t off = bit * repl.granularity;
  uint32_t len = (uint32_t)(repl.disk_size - off < repl.granularity
                                ? repl.disk_size - off
                                : repl.granularity);
  struct copy_cmd *c = calloc (1, sizeof *c);
  nbd_completion_callback cb
      = { .callback = copy_done, .user_data = c, .free = copy_free };
  int err = 0;
  int64_t r;

  if (c == NULL)
    return -1;
  c->rs = rs;
  c->gen = sc->gen;
  if (sc->can_zero && source_is_zero (off, len))
    r = nbd_aio_zero (sc->nbd, len, off, cb, 0);
  else
    {
      c->buf = malloc (len);
      if (c->buf == NULL
          || repl.shared->pread (repl.shared, c->buf, len, off, 0, &err) == -1)
        {
          copy_free (c);
          return -1;
        }
      r = nbd_aio_pwrite (sc->nbd, c->buf, len, off, cb, 0);
    }
  if (r == -1)
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

/* Take the next dirty bit, wrapping round once; -1 if none. */
static int64_t
take_next_locked (struct resync *rs)
{
  int64_t bit = bmap_next_dirty (repl.bmap, rs->cursor);

  if (bit == -1 && rs->cursor > 0)
    bit = bmap_next_dirty (repl.bmap, 0);
  if (bit == -1)
    return -1;
  bmap_take (repl.bmap, (uint64_t)bit);
  rs->cursor = (uint64_t)bit + 1;
  return bit;
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

void
resync_step (struct resync *rs, struct ship_conn *sc)
{
  rs->sc = sc;
  if (rs->flushing || sc->broken)
    return;
  if (rs->n_bits > 0 && rs->completed == rs->n_bits)
    {
      issue_flush (rs);
      return;
    }
  while (!sc->broken && sc->inflight < (int)repl.max_inflight
         && rs->n_bits < BATCH_BITS)
    {
      int64_t bit;

      pthread_mutex_lock (&repl.lock);
      bit = repl.track == TRACK_BITMAP ? take_next_locked (rs) : -1;
      if (bit == -1 && rs->n_bits == 0)
        maybe_back_to_journal_locked ();
      pthread_mutex_unlock (&repl.lock);
      if (bit == -1)
        break;
      rs->bits[rs->n_bits++] = (uint64_t)bit;
      if (issue_copy (rs, (uint64_t)bit) == -1)
        {
          if (!sc->broken)
            nbdkit_error ("vaio-replication: resync: reading the source at "
                          "%llu failed; will retry",
                          (unsigned long long)(bit * repl.granularity));
          sc->broken = true; /* reconnect puts the batch back */
          return;
        }
    }
  if (rs->n_bits > 0 && rs->completed == rs->n_bits)
    issue_flush (rs);
}

void
resync_abort (struct resync *rs)
{
  pthread_mutex_lock (&repl.lock);
  for (unsigned i = 0; i < rs->n_bits; i++)
    bmap_untake (repl.bmap, rs->bits[i]);
  pthread_mutex_unlock (&repl.lock);
  rs->n_bits = rs->completed = 0;
  rs->flushing = false;
}

/* vaio-cache: the per-block I/O paths (read, write, zero, trim, flush).
 *
 * Requests are split into cache blocks by cache.c; every function here
 * works on one block under that block's stripe lock (see vcache.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "uring.h"
#include "vcache.h"

uint32_t
block_len (const struct vcache *c, uint64_t block)
{
  uint64_t start = block * c->geom.block_size;
  uint64_t left = c->backing_size - start;

  return left < c->geom.block_size ? (uint32_t)left : c->geom.block_size;
}

static pthread_rwlock_t *
stripe (struct vcache *c, uint64_t block)
{
  return &c->stripes[(block * 0x9E3779B97F4A7C15ULL) >> 54];
}

static uint64_t
slot_offset (const struct vcache *c, uint32_t s)
{
  return c->geom.data_offset + (uint64_t)s * c->geom.block_size;
}

static void
count (struct vcache *c, unsigned idx, uint64_t delta)
{
  if (c->stats)
    vaio_stats_add (c->stats, idx, delta);
}

void
io_publish_stats (struct vcache *c)
{
  uint64_t h, m, dirty, cached;

  if (c->stats == NULL)
    return;
  h = __atomic_load_n (&c->hits, __ATOMIC_RELAXED);
  m = __atomic_load_n (&c->misses, __ATOMIC_RELAXED);
  dirty = __atomic_load_n (&c->dirty_count, __ATOMIC_RELAXED);
  cached = __atomic_load_n (&c->map.count, __ATOMIC_RELAXED);
  vaio_stats_set (c->stats, ST_HIT_RATIO_PERMILLE,
                  h + m ? h * 1000 / (h + m) : 0);
  vaio_stats_set (c->stats, ST_DIRTY_BYTES, dirty * c->geom.block_size);
  vaio_stats_set (c->stats, ST_CACHED_BYTES, cached * c->geom.block_size);
}

static void
count_hit (struct vcache *c, bool hit)
{
  __atomic_add_fetch (hit ? &c->hits : &c->misses, 1, __ATOMIC_RELAXED);
  count (c, hit ? ST_HITS : ST_MISSES, 1);
}

/* --- cache device I/O on part of a slot, 4K-aligned for O_DIRECT --- */

int
io_cache_read (struct vcache *c, uint32_t s, uint32_t off, uint32_t len,
               char *dst)
{
  uint32_t start = off & ~(uint32_t)(URING_ALIGN - 1);
  uint32_t end = (off + len + URING_ALIGN - 1) & ~(uint32_t)(URING_ALIGN - 1);
  char *bounce;
  int r;

  /* A buffered cache (cache-direct=false, or O_DIRECT refused) needs no
   * alignment: the ring reads into the caller's buffer directly.
   */
  if (!c->direct)
    return uring_pread (c->fd, dst, len, slot_offset (c, s) + off);
  bounce = uring_bounce ();
  if (bounce == NULL)
    return errno;
  r = uring_pread (c->fd, bounce, end - start, slot_offset (c, s) + start);
  if (r == 0)
    memcpy (dst, bounce + (off - start), len);
  return r;
}

static int
cache_write (struct vcache *c, uint32_t s, uint32_t off, uint32_t len,
             const char *src)
{
  uint32_t start = off & ~(uint32_t)(URING_ALIGN - 1);
  uint32_t end = (off + len + URING_ALIGN - 1) & ~(uint32_t)(URING_ALIGN - 1);
  char *bounce;
  int r;

  /* Buffered: straight from the caller's buffer.  io_uring hands a
   * buffered ext4 write to an io-wq worker thread (it cannot do it without
   * blocking); the cache keeps its I/O on the ring all the same.
   */
  if (!c->direct)
    return uring_pwrite (c->fd, src ? src : c->zero_block, len,
                         slot_offset (c, s) + off);
  bounce = uring_bounce ();
  if (bounce == NULL)
    return errno;
  if (start != off || end != off + len)
    {
      /* Unaligned: read-modify-write the covering pages. */
      r = uring_pread (c->fd, bounce, end - start, slot_offset (c, s) + start);
      if (r)
        return r;
    }
  if (src)
    memcpy (bounce + (off - start), src, len);
  else
    memset (bounce + (off - start), 0, len);
  return uring_pwrite (c->fd, bounce, end - start, slot_offset (c, s) + start);
}

static int
cache_error (struct vcache *c, int r, const char *what, int *err)
{
  errno = r;
  nbdkit_error ("vaio-cache: %s: cache %s: %m", c->cfg.cache_path, what);
  *err = r;
  return -1;
}

/* --- the in-memory map (lock taken here, never held across I/O) --- */

static int64_t
lookup_pin (struct vcache *c, uint64_t b, bool touch)
{
  uint32_t s;
  int64_t ret = -1;

  pthread_mutex_lock (&c->lock);
  if (blockmap_get (&c->map, b, &s) && (c->slots[s].flags & SLOT_VALID))
    {
      __atomic_add_fetch (&c->slots[s].pins, 1, __ATOMIC_ACQUIRE);
      if (touch)
        evict_touch (&c->q, s);
      ret = s;
    }
  pthread_mutex_unlock (&c->lock);
  return ret;
}

/* No lock needed: pins only go up under the lock, and the evictor (also
 * under the lock) treats any non-zero count as "in use".
 */
static void
unpin (struct vcache *c, uint32_t s)
{
  __atomic_sub_fetch (&c->slots[s].pins, 1, __ATOMIC_RELEASE);
}

static bool
can_evict (void *opaque, uint32_t s)
{
  struct vcache *c = opaque;
  const struct vcache_slot *sl = &c->slots[s];

  return __atomic_load_n (&sl->pins, __ATOMIC_ACQUIRE) == 0
         && sl->flags == SLOT_VALID;
}

/* A slot for block b, pinned and busy (not yet mapped), or -1 when every
 * candidate is dirty or in use.  Dirty blocks are never evicted: they
 * are the only copy of acknowledged writes.
 */
static int64_t
alloc_slot (struct vcache *c, uint64_t b)
{
  int64_t s = -1;

  pthread_mutex_lock (&c->lock);
  if (c->n_free > 0)
    s = c->free_stack[--c->n_free];
  else
    {
      s = evict_victim (&c->q, can_evict, c);
      if (s >= 0)
        {
          blockmap_del (&c->map, c->slots[s].block);
          count (c, ST_EVICTIONS, 1);
        }
    }
  if (s >= 0)
    {
      c->slots[s].block = b;
      c->slots[s].flags = SLOT_BUSY;
      __atomic_store_n (&c->slots[s].pins, 1, __ATOMIC_RELAXED);
    }
  pthread_mutex_unlock (&c->lock);
  return s;
}

/* A fill failed: give the busy slot back. */
static void
unalloc_slot (struct vcache *c, uint32_t s)
{
  pthread_mutex_lock (&c->lock);
  __atomic_store_n (&c->slots[s].pins, 0, __ATOMIC_RELAXED);
  slot_release (c, s);
  pthread_mutex_unlock (&c->lock);
}

static void
set_dirty_locked (struct vcache *c, uint32_t s)
{
  struct vcache_slot *sl = &c->slots[s];

  if (!(sl->flags & SLOT_DIRTY))
    {
      sl->flags |= SLOT_DIRTY;
      sl->epoch = ++c->epoch;
      c->dirty_count++;
      slot_mark_md (c, s);
    }
  sl->wseq++;
}

/* Map a freshly filled slot and unpin it. */
static void
publish (struct vcache *c, uint32_t s, uint64_t b, bool dirty)
{
  pthread_mutex_lock (&c->lock);
  c->slots[s].flags = SLOT_VALID;
  if (dirty)
    set_dirty_locked (c, s);
  blockmap_put (&c->map, b, s);
  evict_insert (&c->q, s, b, false);
  __atomic_sub_fetch (&c->slots[s].pins, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock (&c->lock);
  if (dirty)
    destage_kick (c);
}

static void
mark_dirty (struct vcache *c, uint32_t s)
{
  pthread_mutex_lock (&c->lock);
  set_dirty_locked (c, s);
  pthread_mutex_unlock (&c->lock);
  destage_kick (c);
}

/* Drop a mapped slot we hold pinned (trim, or a failed clean update). */
static void
invalidate (struct vcache *c, uint32_t s)
{
  struct vcache_slot *sl;

  pthread_mutex_lock (&c->lock);
  sl = &c->slots[s];
  blockmap_del (&c->map, sl->block);
  evict_remove (&c->q, s);
  if (sl->flags & SLOT_DIRTY)
    {
      c->dirty_count--;
      slot_mark_md (c, s);
    }
  __atomic_sub_fetch (&sl->pins, 1, __ATOMIC_RELEASE);
  slot_release (c, s);
  pthread_mutex_unlock (&c->lock);
}

/* --- read --- */

static int
read_hit (struct vcache *c, uint32_t s, uint32_t off, uint32_t len, char *dst,
          int *err)
{
  int r = io_cache_read (c, s, off, len, dst);

  unpin (c, s);
  if (r)
    return cache_error (c, r, "read", err);
  count_hit (c, true);
  return 0;
}

/* Miss with the stripe held exclusively: read the whole block from the
 * backing image, keep it in the cache, copy out the part asked for.
 */
static int
fill (struct vcache *c, nbdkit_next *next, uint64_t b, uint32_t off,
      uint32_t len, char *dst, int *err)
{
  uint32_t blen = block_len (c, b);
  char *buf = uring_bounce ();
  int64_t s = alloc_slot (c, b);
  int r;

  if (s < 0)
    return next->pread (next, dst, len, b * c->geom.block_size + off, 0, err);
  if (buf == NULL)
    {
      unalloc_slot (c, s);
      return cache_error (c, errno, "ring", err);
    }
  if (next->pread (next, buf, blen, b * c->geom.block_size, 0, err) == -1)
    {
      unalloc_slot (c, s);
      return -1;
    }
  memset (buf + blen, 0, c->geom.block_size - blen);
  memcpy (dst, buf + off, len);
  r = uring_pwrite (c->fd, buf, c->geom.block_size, slot_offset (c, s));
  if (r)
    {
      /* The data read is good; only caching it failed. */
      nbdkit_debug ("vaio-cache: fill of block %" PRIu64 " failed: %s", b,
                    strerror (r));
      unalloc_slot (c, s);
      return 0;
    }
  publish (c, s, b, false);
  return 0;
}

int
io_read_block (struct vcache *c, nbdkit_next *next, uint64_t b, uint32_t off,
               uint32_t len, char *dst, bool bypass, int *err)
{
  pthread_rwlock_t *st = stripe (c, b);
  int64_t s;
  int r;

  pthread_rwlock_rdlock (st);
  s = lookup_pin (c, b, true);
  if (s >= 0)
    {
      r = read_hit (c, s, off, len, dst, err);
      pthread_rwlock_unlock (st);
      return r;
    }
  if (bypass)
    {
      /* Uncached blocks cannot be dirty: the backing image is current. */
      r = next->pread (next, dst, len, b * c->geom.block_size + off, 0, err);
      pthread_rwlock_unlock (st);
      count_hit (c, false);
      count (c, ST_BYPASSED, 1);
      return r;
    }
  pthread_rwlock_unlock (st);

  pthread_rwlock_wrlock (st);
  s = lookup_pin (c, b, true); /* someone may have filled it meanwhile */
  if (s >= 0)
    r = read_hit (c, s, off, len, dst, err);
  else
    {
      count_hit (c, false);
      r = fill (c, next, b, off, len, dst, err);
    }
  pthread_rwlock_unlock (st);
  return r;
}

/* --- write and zero --- */

/* Send a write or zero of part of block b to the backing image. */
static int
backing_write (struct vcache *c, nbdkit_next *next, uint64_t b, uint32_t off,
               uint32_t len, const char *src, bool zero, uint32_t zero_flags,
               int *err)
{
  uint64_t pos = b * c->geom.block_size + off;

  if (zero)
    return next->zero (next, len, pos, zero_flags, err);
  return next->pwrite (next, src, len, pos, 0, err);
}

/* Write-back miss: allocate, fill the rest of the block if the write is
 * partial, write the block to the cache and mark it dirty.  1 if done,
 * 0 if there was no slot (caller writes through), -1 on error.
 */
static int
write_back_miss (struct vcache *c, nbdkit_next *next, uint64_t b, uint32_t off,
                 uint32_t len, const char *src, int *err)
{
  uint32_t blen = block_len (c, b);
  char *buf = uring_bounce ();
  int64_t s;
  int r;

  if (buf == NULL)
    return cache_error (c, errno, "ring", err);
  s = alloc_slot (c, b);
  if (s < 0)
    return 0;
  if (off != 0 || len != blen)
    {
      if (next->pread (next, buf, blen, b * c->geom.block_size, 0, err) == -1)
        {
          unalloc_slot (c, s);
          return -1;
        }
      memset (buf + blen, 0, c->geom.block_size - blen);
    }
  else if (blen < c->geom.block_size)
    memset (buf + blen, 0, c->geom.block_size - blen);
  if (src)
    memcpy (buf + off, src, len);
  else
    memset (buf + off, 0, len);
  r = uring_pwrite (c->fd, buf, c->geom.block_size, slot_offset (c, s));
  if (r)
    {
      unalloc_slot (c, s);
      return cache_error (c, r, "write", err);
    }
  publish (c, s, b, true);
  return 1;
}

/* Write-through miss of a whole block: cache it clean after the backing
 * write succeeded.  Failing to cache is not an error.
 */
static void
write_through_alloc (struct vcache *c, uint64_t b, const char *src)
{
  uint32_t blen = block_len (c, b);
  char *buf = uring_bounce ();
  int64_t s;

  if (buf == NULL || (s = alloc_slot (c, b)) < 0)
    return;
  if (src)
    memcpy (buf, src, blen);
  else
    memset (buf, 0, blen);
  memset (buf + blen, 0, c->geom.block_size - blen);
  if (uring_pwrite (c->fd, buf, c->geom.block_size, slot_offset (c, s)))
    unalloc_slot (c, s);
  else
    publish (c, s, b, false);
}

static int
write_hit (struct vcache *c, nbdkit_next *next, uint32_t s, uint64_t b,
           uint32_t off, uint32_t len, const char *src, bool zero,
           uint32_t zero_flags, bool cache_only, int *err)
{
  int r;

  if (cache_only)
    {
      /* The cache is the newest copy: update it, keep it dirty. */
      r = cache_write (c, s, off, len, src);
      if (r)
        {
          unpin (c, s);
          return cache_error (c, r, "write", err);
        }
      mark_dirty (c, s);
      unpin (c, s);
      return 0;
    }
  /* Clean block: backing first, then the cached copy. */
  if (backing_write (c, next, b, off, len, src, zero, zero_flags, err) == -1)
    {
      invalidate (c, s); /* the backing range is now undefined */
      return -1;
    }
  r = cache_write (c, s, off, len, src);
  if (r)
    invalidate (c, s); /* stale copy must go */
  else
    unpin (c, s);
  return 0;
}

int
io_write_block (struct vcache *c, nbdkit_next *next, uint64_t b, uint32_t off,
                uint32_t len, const char *src, bool zero, uint32_t zero_flags,
                bool bypass, int *err)
{
  pthread_rwlock_t *st = stripe (c, b);
  bool wb = c->cfg.mode == MODE_WRITE_BACK && !bypass;
  int64_t s;
  int r;

  if (zero)
    src = NULL;
  pthread_rwlock_wrlock (st);
  s = lookup_pin (c, b, true);
  if (s >= 0)
    {
      bool dirty;

      pthread_mutex_lock (&c->lock);
      dirty = c->slots[s].flags & SLOT_DIRTY;
      pthread_mutex_unlock (&c->lock);
      r = write_hit (c, next, s, b, off, len, src, zero, zero_flags,
                     dirty || wb, err);
    }
  else if (wb && (r = write_back_miss (c, next, b, off, len, src, err)) != 0)
    r = r < 0 ? -1 : 0;
  else
    {
      r = backing_write (c, next, b, off, len, src, zero, zero_flags, err);
      if (r == 0 && c->cfg.mode == MODE_WRITE_THROUGH && !bypass && off == 0
          && len == block_len (c, b))
        write_through_alloc (c, b, src);
      if (bypass)
        count (c, ST_BYPASSED, 1);
    }
  pthread_rwlock_unlock (st);
  return r;
}

/* --- trim --- */

int
io_trim_block (struct vcache *c, nbdkit_next *next, uint64_t b, uint32_t off,
               uint32_t len, int *err)
{
  pthread_rwlock_t *st = stripe (c, b);
  int64_t s;
  int r = 0;

  pthread_rwlock_wrlock (st);
  s = lookup_pin (c, b, false);
  if (s >= 0)
    {
      bool dirty, whole = off == 0 && len == block_len (c, b);

      pthread_mutex_lock (&c->lock);
      dirty = c->slots[s].flags & SLOT_DIRTY;
      pthread_mutex_unlock (&c->lock);
      if (dirty && !whole)
        {
          /* Keep the rest of the dirty block; the trimmed part reads as
           * zeros, as it does from a file after a hole punch.
           */
          r = cache_write (c, s, off, len, NULL);
          if (r == 0)
            mark_dirty (c, s);
          unpin (c, s);
          if (r)
            r = cache_error (c, r, "write", err);
        }
      else
        invalidate (c, s);
    }
  if (r == 0)
    r = next->trim (next, len, b * c->geom.block_size + off, 0, err);
  pthread_rwlock_unlock (st);
  return r;
}

/* --- flush --- */

int
io_flush (struct vcache *c, nbdkit_next *next, int *err)
{
  if (store_persist (c, false) == -1)
    {
      *err = EIO;
      return -1;
    }
  if (next->can_flush (next) == 1)
    return next->flush (next, 0, err);
  return 0;
}

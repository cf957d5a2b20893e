/* vaio-cache: nbdkit filter of the caching class.  A persistent,
 * crash-safe write-back/write-through/write-around cache of the backing
 * image on a local cache file or block device, I/O through liburing.
 *
 * This file: parameters, lifecycle, and splitting requests into cache
 * blocks.  store.c persists, io.c does per-block I/O, destage.c writes
 * dirty blocks back, evict.c chooses victims.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nbdkit-filter.h>

#include "units.h"
#include "uring.h"
#include "vcache.h"

struct vcache vcache = {
  .fd = -1,
  .cfg = {
    .block_size = 65536,
    .mode = MODE_WRITE_THROUGH,
    .seq_cutoff = 4 * 1024 * 1024,
    .dirty_high = 50,
    .dirty_low = 10,
    .destage_on_close = true,
    .direct = DIRECT_AUTO,
  },
};

/* Set once in after_fork; says whether cleanup has anything to undo. */
static bool cache_ready;

static const struct vaio_stats_counter_def stat_defs[ST_COUNT] = {
  [ST_HITS] = { "hits", VAIO_COUNTER },
  [ST_MISSES] = { "misses", VAIO_COUNTER },
  [ST_HIT_RATIO_PERMILLE] = { "hit_ratio_permille", VAIO_GAUGE },
  [ST_DIRTY_BYTES] = { "dirty_bytes", VAIO_GAUGE },
  [ST_CACHED_BYTES] = { "cached_bytes", VAIO_GAUGE },
  [ST_DESTAGED_BYTES] = { "destaged_bytes", VAIO_COUNTER },
  [ST_BYPASSED] = { "bypassed", VAIO_COUNTER },
  [ST_EVICTIONS] = { "evictions", VAIO_COUNTER },
  [ST_DESTAGE_RATE] = { "destage_bytes_per_sec", VAIO_GAUGE },
};

/* Per connection: sequential-stream detection for the bypass cutoff. */
struct handle
{
  pthread_mutex_t lock; /* guards next_offset and run */
  uint64_t next_offset;
  uint64_t run; /* bytes of the current sequential run */
};

/* --- parameters --- */

static int
bad_param (const char *key, const char *value, const char *what)
{
  nbdkit_error ("vaio-cache: %s=%s: %s", key, value, what);
  return -1;
}

static int
parse_percent (const char *key, const char *value, unsigned *pct)
{
  uint64_t v;

  if (vaio_parse_uint (value, &v) == -1 || v > 100)
    return bad_param (key, value, "expected a percentage 0..100");
  *pct = (unsigned)v;
  return 0;
}

static int
set_path (char **dst, const char *key, const char *value)
{
  free (*dst);
  *dst = nbdkit_absolute_path (value);
  if (*dst == NULL)
    return bad_param (key, value, "bad path");
  return 0;
}

static int
cache_config (nbdkit_next_config *next, nbdkit_backend *nxdata, const char *key,
              const char *value)
{
  struct vcache_config *cfg = &vcache.cfg;
  uint64_t v;
  bool b;

  if (strcmp (key, "cache-file") == 0 || strcmp (key, "cache-device") == 0)
    {
      cfg->is_device = strcmp (key, "cache-device") == 0;
      return set_path (&cfg->cache_path, key, value);
    }
  if (strcmp (key, "cache-state-dir") == 0)
    return set_path (&cfg->state_dir, key, value);
  if (strcmp (key, "cache-size") == 0)
    {
      if (vaio_parse_size (value, &v) == -1 || v == 0)
        return bad_param (key, value, "expected a size like 1G");
      cfg->cache_size = v;
      return 0;
    }
  if (strcmp (key, "cache-block-size") == 0)
    {
      if (vaio_parse_size (value, &v) == -1 || v < 4096 || v > 4194304
          || (v & (v - 1)))
        return bad_param (key, value, "expected a power of two from 4K to 4M");
      cfg->block_size = (uint32_t)v;
      return 0;
    }
  if (strcmp (key, "cache-mode") == 0)
    {
      if (strcmp (value, "write-through") == 0)
        cfg->mode = MODE_WRITE_THROUGH;
      else if (strcmp (value, "write-back") == 0)
        cfg->mode = MODE_WRITE_BACK;
      else if (strcmp (value, "write-around") == 0)
        cfg->mode = MODE_WRITE_AROUND;
      else
        return bad_param (key, value,
                          "expected write-through, write-back or "
                          "write-around");
      return 0;
    }
  if (strcmp (key, "cache-seq-cutoff") == 0)
    {
      if (vaio_parse_size (value, &v) == -1)
        return bad_param (key, value, "expected a size (0 disables)");
      cfg->seq_cutoff = v;
      return 0;
    }
  if (strcmp (key, "cache-dirty-high") == 0)
    return parse_percent (key, value, &cfg->dirty_high);
  if (strcmp (key, "cache-dirty-low") == 0)
    return parse_percent (key, value, &cfg->dirty_low);
  if (strcmp (key, "cache-destage-on-close") == 0)
    {
      if (vaio_parse_bool (value, &b) == -1)
        return bad_param (key, value, "expected true or false");
      cfg->destage_on_close = b;
      return 0;
    }
  if (strcmp (key, "cache-direct") == 0)
    {
      if (strcmp (value, "auto") == 0)
        cfg->direct = DIRECT_AUTO;
      else if (vaio_parse_bool (value, &b) == 0)
        cfg->direct = b ? DIRECT_ON : DIRECT_OFF;
      else
        return bad_param (key, value, "expected auto, true or false");
      return 0;
    }
  if (strcmp (key, "cache-disk-id") == 0)
    {
      if (strlen (value) >= VCACHE_DISK_ID_LEN)
        return bad_param (key, value, "longer than 63 bytes");
      snprintf (cfg->disk_id, sizeof cfg->disk_id, "%s", value);
      return 0;
    }
  return next (nxdata, key, value);
}

static int
make_state_dir (const char *dir)
{
  if (mkdir (dir, 0700) == -1 && errno != EEXIST)
    {
      nbdkit_error ("vaio-cache: cache-state-dir=%s: cannot create: %m", dir);
      return -1;
    }
  return 0;
}

static int
cache_config_complete (nbdkit_next_config_complete *next,
                       nbdkit_backend *nxdata)
{
  struct vcache_config *cfg = &vcache.cfg;
  struct vcache_geom geom;

  if (cfg->dirty_low > cfg->dirty_high)
    {
      nbdkit_error ("vaio-cache: cache-dirty-low=%u is above "
                    "cache-dirty-high=%u",
                    cfg->dirty_low, cfg->dirty_high);
      return -1;
    }
  if (cfg->cache_path == NULL)
    {
      /* The cache persists across restarts: it needs a place to live. */
      if (cfg->state_dir == NULL)
        {
          nbdkit_error ("vaio-cache: give cache-file=, cache-device= or "
                        "cache-state-dir= (the cache is persistent and "
                        "needs a place to live)");
          return -1;
        }
      if (asprintf (&cfg->cache_path, "%s/cache.img", cfg->state_dir) == -1)
        {
          nbdkit_error ("vaio-cache: out of memory");
          return -1;
        }
    }
  if (cfg->is_device && access (cfg->cache_path, R_OK | W_OK) == -1)
    {
      nbdkit_error ("vaio-cache: cache-device=%s: %m", cfg->cache_path);
      return -1;
    }
  if (cfg->cache_size
      && vcache_geometry (cfg->cache_size, cfg->block_size, &geom) == -1)
    {
      nbdkit_error ("vaio-cache: cache-size=%" PRIu64
                    " is too small for one cache block of %" PRIu32 " bytes",
                    cfg->cache_size, cfg->block_size);
      return -1;
    }
  if (cfg->state_dir && make_state_dir (cfg->state_dir) == -1)
    return -1;
  return next (nxdata);
}

#define cache_config_help                                                      \
  "cache-file=PATH | cache-device=DEV  Cache file or block device.\n"          \
  "cache-state-dir=DIR         State dir (stats; default cache file).\n"       \
  "cache-size=SIZE             Cache size (default 256M or existing).\n"       \
  "cache-block-size=SIZE       Cache block size (default 64K).\n"              \
  "cache-mode=write-through|write-back|write-around\n"                         \
  "cache-seq-cutoff=SIZE       Sequential bypass cutoff (default 4M).\n"       \
  "cache-dirty-high=PCT        Start destaging above (default 50).\n"          \
  "cache-dirty-low=PCT         Stop destaging at (default 10).\n"              \
  "cache-destage-on-close=BOOL Destage all at clean shutdown (default "        \
  "true).\n"                                                                   \
  "cache-direct=auto|BOOL      O_DIRECT: auto = on a block device only.\n"     \
  "cache-disk-id=ID            Identity of the cached disk."

/* --- lifecycle --- */

static int
cache_thread_model (void)
{
  return NBDKIT_THREAD_MODEL_PARALLEL;
}

static int
init_locks (struct vcache *c)
{
  pthread_mutex_init (&c->lock, NULL);
  pthread_mutex_init (&c->persist_lock, NULL);
  pthread_cond_init (&c->destage_cond, NULL);
  pthread_rwlockattr_t attr;

  /* Writer preference: a block read in a tight loop must not starve a
   * write or a fill of it.
   */
  pthread_rwlockattr_init (&attr);
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  for (unsigned i = 0; i < VCACHE_STRIPES; i++)
    pthread_rwlock_init (&c->stripes[i], &attr);
  pthread_rwlockattr_destroy (&attr);
  return 0;
}

/* Open the shared backend context the destager writes through, and
 * learn the backing size the cache must match.
 */
static int
open_shared (struct vcache *c, nbdkit_backend *backend)
{
  int64_t size;

  c->shared = nbdkit_next_context_open (backend, 0, "", 1);
  if (c->shared == NULL)
    {
      nbdkit_error ("vaio-cache: cannot open the backing image");
      return -1;
    }
  if (c->shared->prepare (c->shared) == -1)
    return -1;
  size = c->shared->get_size (c->shared);
  if (size == -1)
    return -1;
  if (c->shared->can_write (c->shared) != 1)
    {
      nbdkit_error ("vaio-cache: the backing image is not writable");
      return -1;
    }
  c->shared->can_flush (c->shared);
  c->backing_size = (uint64_t)size;
  c->n_blocks = (c->backing_size + c->cfg.block_size - 1) / c->cfg.block_size;
  return 0;
}

static int
cache_after_fork (nbdkit_backend *backend)
{
  struct vcache *c = &vcache;

  init_locks (c);
  if (uring_global_init (c->cfg.block_size) != 0)
    {
      nbdkit_error ("vaio-cache: cannot create the thread key");
      return -1;
    }
  if (posix_memalign ((void **)&c->zero_block, URING_ALIGN, c->cfg.block_size)
      != 0)
    {
      nbdkit_error ("vaio-cache: out of memory");
      return -1;
    }
  memset (c->zero_block, 0, c->cfg.block_size);
  if (open_shared (c, backend) == -1 || store_open (c) == -1)
    return -1;
  if (c->cfg.state_dir)
    {
      c->stats = vaio_stats_create (c->cfg.state_dir, "vaio-cache", "caching",
                                    stat_defs, ST_COUNT);
      if (c->stats == NULL)
        nbdkit_debug ("vaio-cache: stats not published: %m");
    }
  io_publish_stats (c);
  cache_ready = true;
  return destage_start (c);
}

static void
cache_cleanup (nbdkit_backend *backend)
{
  struct vcache *c = &vcache;

  if (!cache_ready)
    return;
  destage_stop (c);
  if (c->cfg.destage_on_close && destage_all (c) == -1)
    nbdkit_error ("vaio-cache: could not destage everything at close; "
                  "dirty blocks stay in %s and are destaged next start",
                  c->cfg.cache_path);
  if (store_close_clean (c) == -1)
    nbdkit_error ("vaio-cache: clean shutdown of %s failed; the next start "
                  "recovers its dirty blocks as after a crash",
                  c->cfg.cache_path);
  io_publish_stats (c);
  if (c->shared)
    nbdkit_next_context_close (c->shared);
  c->shared = NULL;
  if (c->stats)
    vaio_stats_close (c->stats);
  c->stats = NULL;
  store_free (c);
  uring_global_fini ();
  free (c->zero_block);
  cache_ready = false;
}

static void
cache_unload (void)
{
  free (vcache.cfg.cache_path);
  free (vcache.cfg.state_dir);
}

static void *
cache_open (nbdkit_next_open *next, nbdkit_context *nxdata, int readonly,
            const char *exportname, int is_tls)
{
  struct handle *h;

  if (next (nxdata, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL)
    {
      nbdkit_error ("vaio-cache: out of memory");
      return NULL;
    }
  pthread_mutex_init (&h->lock, NULL);
  return h;
}

static void
cache_close (void *handle)
{
  struct handle *h = handle;

  pthread_mutex_destroy (&h->lock);
  free (h);
}

static int
cache_prepare (nbdkit_next *next, void *handle, int readonly)
{
  int64_t size = next->get_size (next);

  if (size == -1)
    return -1;
  if ((uint64_t)size != vcache.backing_size)
    {
      nbdkit_error ("vaio-cache: this export is %" PRIi64
                    " bytes, the cache was opened for %" PRIu64,
                    size, vcache.backing_size);
      return -1;
    }
  return 0;
}

static int
cache_finalize (nbdkit_next *next, void *handle)
{
  int err = 0;

  /* Keep metadata current for a clean client disconnect. */
  return io_flush (&vcache, next, &err) == -1 ? -1 : 0;
}

/* --- capabilities --- */

static int
cache_can_flush (nbdkit_next *next, void *handle)
{
  next->can_flush (next); /* nbdkit wants it asked before next->flush */
  return 1;
}

static int
cache_can_fua (nbdkit_next *next, void *handle)
{
  /* FUA is implemented here as a full cache flush after the write. */
  return NBDKIT_FUA_NATIVE;
}

static int
cache_can_zero (nbdkit_next *next, void *handle)
{
  int r = next->can_zero (next);

  if (r == -1)
    return -1;
  return r == NBDKIT_ZERO_NONE ? NBDKIT_ZERO_EMULATE : NBDKIT_ZERO_NATIVE;
}

static int
cache_can_fast_zero (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
cache_can_extents (nbdkit_next *next, void *handle)
{
  /* The backing image's extents do not know about dirty cached data. */
  return 0;
}

static int
cache_can_cache (nbdkit_next *next, void *handle)
{
  return NBDKIT_CACHE_NONE;
}

/* --- requests --- */

static bool
is_bypass (struct handle *h, uint32_t count, uint64_t offset)
{
  uint64_t cutoff = vcache.cfg.seq_cutoff;
  bool bypass;

  if (cutoff == 0)
    return false;
  pthread_mutex_lock (&h->lock);
  if (offset == h->next_offset)
    h->run += count;
  else
    h->run = count;
  h->next_offset = offset + count;
  bypass = h->run > cutoff;
  pthread_mutex_unlock (&h->lock);
  return bypass;
}

enum req
{
  REQ_READ,
  REQ_WRITE,
  REQ_ZERO,
  REQ_TRIM
};

/* Split a request at cache block boundaries. */
static int
split (nbdkit_next *next, enum req req, char *buf, uint32_t count,
       uint64_t offset, uint32_t flags, bool bypass, int *err)
{
  struct vcache *c = &vcache;
  uint32_t bs = c->geom.block_size;
  uint32_t zflags = flags & NBDKIT_FLAG_MAY_TRIM;

  while (count > 0)
    {
      uint64_t b = offset / bs;
      uint32_t off = (uint32_t)(offset % bs);
      uint32_t n = bs - off < count ? bs - off : count;
      int r;

      switch (req)
        {
        case REQ_READ:
          r = io_read_block (c, next, b, off, n, buf, bypass, err);
          break;
        case REQ_WRITE:
          r = io_write_block (c, next, b, off, n, buf, false, 0, bypass, err);
          break;
        case REQ_ZERO:
          r = io_write_block (c, next, b, off, n, NULL, true, zflags, bypass,
                              err);
          break;
        default:
          r = io_trim_block (c, next, b, off, n, err);
          break;
        }
      if (r == -1)
        return -1;
      if (buf)
        buf += n;
      offset += n;
      count -= n;
    }
  if (flags & NBDKIT_FLAG_FUA)
    return io_flush (c, next, err);
  return 0;
}

static int
run (nbdkit_next *next, void *handle, enum vaio_stats_op op, enum req req,
     char *buf, uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  bool bypass = req != REQ_TRIM && is_bypass (handle, count, offset);
  int r = split (next, req, buf, count, offset, flags, bypass, err);

  if (vcache.stats)
    {
      vaio_stats_record (vcache.stats, op, count, vaio_stats_now_ns () - t0,
                         r == -1);
      io_publish_stats (&vcache);
    }
  return r;
}

static int
cache_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  return run (next, handle, VAIO_OP_READ, REQ_READ, buf, count, offset, 0, err);
}

static int
cache_pwrite (nbdkit_next *next, void *handle, const void *buf, uint32_t count,
              uint64_t offset, uint32_t flags, int *err)
{
  return run (next, handle, VAIO_OP_WRITE, REQ_WRITE, (char *)buf, count,
              offset, flags, err);
}

static int
cache_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
            uint32_t flags, int *err)
{
  return run (next, handle, VAIO_OP_ZERO, REQ_ZERO, NULL, count, offset, flags,
              err);
}

static int
cache_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
            uint32_t flags, int *err)
{
  return run (next, handle, VAIO_OP_TRIM, REQ_TRIM, NULL, count, offset, flags,
              err);
}

static int
cache_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  int r = io_flush (&vcache, next, err);

  if (vcache.stats)
    vaio_stats_record (vcache.stats, VAIO_OP_FLUSH, 0,
                       vaio_stats_now_ns () - t0, r == -1);
  return r;
}

static struct nbdkit_filter filter = {
  .name = "vaio-cache",
  .longname = "vaio-nbd persistent write-back cache filter",
  .unload = cache_unload,
  .config = cache_config,
  .config_complete = cache_config_complete,
  .config_help = cache_config_help,
  .thread_model = cache_thread_model,
  .after_fork = cache_after_fork,
  .cleanup = cache_cleanup,
  .open = cache_open,
  .close = cache_close,
  .prepare = cache_prepare,
  .finalize = cache_finalize,
  .can_flush = cache_can_flush,
  .can_fua = cache_can_fua,
  .can_zero = cache_can_zero,
  .can_fast_zero = cache_can_fast_zero,
  .can_extents = cache_can_extents,
  .can_cache = cache_can_cache,
  .pread = cache_pread,
  .pwrite = cache_pwrite,
  .zero = cache_zero,
  .trim = cache_trim,
  .flush = cache_flush,
};

NBDKIT_REGISTER_FILTER (filter)

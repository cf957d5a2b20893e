/* vaio-replication: nbdkit filter for journaled continuous replication
 * of a disk to any NBD target.  This file: parameters, lifecycle and the
 * data callbacks.  See repl.h for how a write travels.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <nbdkit-filter.h>

#include "repl.h"
#include "units.h"

#define DEFAULT_RPO_NS        (15ull * 1000000000ull) /* Veeam's default */
#define DEFAULT_CHECKPOINT_NS (1000ull * 1000000ull)
#define DEFAULT_JOURNAL_SIZE  (256ull * 1024 * 1024)
#define DEFAULT_GRANULARITY   (64ull * 1024)
#define DEFAULT_INFLIGHT      64
#define FIRST_CONNECT_WAIT_S  10

struct repl repl = {
  .mode = REPL_ASYNC,
  .rpo_ns = DEFAULT_RPO_NS,
  .checkpoint_ns = DEFAULT_CHECKPOINT_NS,
  .journal_size = DEFAULT_JOURNAL_SIZE,
  .granularity = DEFAULT_GRANULARITY,
  .max_inflight = DEFAULT_INFLIGHT,
  .wake_fd = -1,
  .lock = PTHREAD_MUTEX_INITIALIZER,
  .cond = PTHREAD_COND_INITIALIZER,
  .range_cond = PTHREAD_COND_INITIALIZER,
};

static const struct vaio_stats_counter_def counter_defs[RC_COUNT] = {
  [RC_LAG_US] = { "lag_us", VAIO_GAUGE },
  [RC_LAG_P50_US] = { "lag_p50_us", VAIO_GAUGE },
  [RC_LAG_P99_US] = { "lag_p99_us", VAIO_GAUGE },
  [RC_RPO_US] = { "rpo_us", VAIO_GAUGE },
  [RC_OVER_RPO] = { "over_rpo", VAIO_GAUGE },
  [RC_JOURNAL_USED] = { "journal_used_bytes", VAIO_GAUGE },
  [RC_JOURNAL_SIZE] = { "journal_size_bytes", VAIO_GAUGE },
  [RC_TRACKING] = { "tracking", VAIO_GAUGE },
  [RC_DIRTY_BYTES] = { "dirty_bytes", VAIO_GAUGE },
  [RC_RESYNC_TOTAL] = { "resync_total_bytes", VAIO_GAUGE },
  [RC_RESYNC_DONE] = { "resync_done_bytes", VAIO_GAUGE },
  [RC_CONNECTED] = { "replica_connected", VAIO_GAUGE },
  [RC_SHIPPED_RECORDS] = { "shipped_records", VAIO_COUNTER },
  [RC_SHIPPED_BYTES] = { "shipped_bytes", VAIO_COUNTER },
  [RC_CORRUPT_RECORDS] = { "corrupt_records", VAIO_COUNTER },
  [RC_OVERFLOWS] = { "journal_overflows", VAIO_COUNTER },
  [RC_RECONNECTS] = { "reconnects", VAIO_COUNTER },
  [RC_SYNC_MODE] = { "sync_mode", VAIO_GAUGE },
  [RC_REPLAYED_RECORDS] = { "replayed_records", VAIO_COUNTER },
  [RC_BARRIER_WAITS] = { "barrier_waits", VAIO_COUNTER },
};

/* ---- Parameters ---- */

static int
set_string (char **dst, const char *key, const char *value)
{
  free (*dst);
  *dst = strdup (value);
  if (*dst == NULL)
    {
      nbdkit_error ("%s: %m", key);
      return -1;
    }
  return 0;
}

static int
parse_size_param (const char *key, const char *value, uint64_t *out)
{
  if (vaio_parse_size (value, out) == -1 || *out == 0)
    {
      nbdkit_error ("%s=%s: not a size (like 64M)", key, value);
      return -1;
    }
  return 0;
}

static int
repl_config (nbdkit_next_config *next, nbdkit_backend *nxdata, const char *key,
             const char *value)
{
  uint64_t v;

  if (strcmp (key, "repl-target") == 0)
    return set_string (&repl.target, key, value);
  if (strcmp (key, "repl-state-dir") == 0)
    return set_string (&repl.state_dir, key, value);
  if (strcmp (key, "repl-tls-psk-file") == 0)
    return set_string (&repl.psk_file, key, value);
  if (strcmp (key, "repl-mode") == 0)
    {
      if (strcmp (value, "async") == 0)
        repl.mode = REPL_ASYNC;
      else if (strcmp (value, "sync") == 0)
        repl.mode = REPL_SYNC;
      else
        {
          nbdkit_error ("repl-mode=%s: must be async or sync", value);
          return -1;
        }
      return 0;
    }
  if (strcmp (key, "repl-rpo") == 0)
    {
      if (vaio_parse_duration (value, &repl.rpo_ns) == -1 || repl.rpo_ns == 0)
        {
          nbdkit_error ("repl-rpo=%s: not a duration (like 15s or 500ms)",
                        value);
          return -1;
        }
      return 0;
    }
  if (strcmp (key, "repl-checkpoint") == 0)
    {
      if (vaio_parse_duration (value, &repl.checkpoint_ns) == -1
          || repl.checkpoint_ns == 0)
        {
          nbdkit_error ("repl-checkpoint=%s: not a duration (like 1s or "
                        "500ms)",
                        value);
          return -1;
        }
      return 0;
    }
  if (strcmp (key, "repl-journal-size") == 0)
    {
      if (parse_size_param (key, value, &repl.journal_size) == -1)
        return -1;
      if (repl.journal_size < JRNL_MIN_SIZE)
        {
          nbdkit_error ("repl-journal-size=%s: must be at least %d bytes",
                        value, JRNL_MIN_SIZE);
          return -1;
        }
      return 0;
    }
  if (strcmp (key, "repl-granularity") == 0)
    {
      if (parse_size_param (key, value, &repl.granularity) == -1)
        return -1;
      if ((repl.granularity & (repl.granularity - 1)) != 0
          || repl.granularity < 4096 || repl.granularity > 64 * 1024 * 1024)
        {
          nbdkit_error ("repl-granularity=%s: must be a power of two "
                        "between 4K and 64M",
                        value);
          return -1;
        }
      return 0;
    }
  if (strcmp (key, "repl-max-inflight") == 0)
    {
      if (vaio_parse_uint (value, &v) == -1 || v < 1 || v > 256)
        {
          nbdkit_error ("repl-max-inflight=%s: must be 1 to 256", value);
          return -1;
        }
      repl.max_inflight = (unsigned)v;
      return 0;
    }
  return next (nxdata, key, value);
}

static int
check_psk_file (const char *path)
{
  struct stat st;

  if (stat (path, &st) == -1)
    {
      nbdkit_error ("repl-tls-psk-file=%s: %m", path);
      return -1;
    }
  if (!S_ISREG (st.st_mode) || (st.st_mode & 077) != 0)
    {
      nbdkit_error ("repl-tls-psk-file=%s: must be a regular file readable "
                    "by its owner only (chmod 600)",
                    path);
      return -1;
    }
  return 0;
}

static int
repl_config_complete (nbdkit_next_config_complete *next, nbdkit_backend *nxdata)
{
  if (repl.target == NULL)
    {
      nbdkit_error ("repl-target= is required (the replica's NBD URI)");
      return -1;
    }
  if (strncmp (repl.target, "nbd", 3) != 0
      || strstr (repl.target, "://") == NULL)
    {
      nbdkit_error ("repl-target=%s: not an NBD URI (nbd://, nbds://, "
                    "nbd+unix://, nbds+unix://)",
                    repl.target);
      return -1;
    }
  if (repl.state_dir == NULL)
    {
      nbdkit_error ("repl-state-dir= is required: the journal and the dirty "
                    "bitmap live there");
      return -1;
    }
  if (mkdir (repl.state_dir, 0700) == -1 && errno != EEXIST)
    {
      nbdkit_error ("repl-state-dir=%s: %m", repl.state_dir);
      return -1;
    }
  if (repl.psk_file && check_psk_file (repl.psk_file) == -1)
    return -1;
  if (repl.psk_file && strncmp (repl.target, "nbds", 4) != 0)
    {
      nbdkit_error ("repl-tls-psk-file is set but repl-target=%s is not an "
                    "nbds:// URI",
                    repl.target);
      return -1;
    }
  return next (nxdata);
}

#define repl_config_help                                                       \
  "repl-target=<URI>        (required) replica NBD URI.\n"                     \
  "repl-state-dir=<DIR>     (required) journal, bitmap and stats.\n"           \
  "repl-mode=async|sync     ack before (async) or after (sync) the replica.\n" \
  "repl-rpo=<DURATION>      recovery point objective (default 15s).\n"         \
  "repl-checkpoint=<DURATION> replica flush and journal tail move (default "   \
  "1s).\n"                                                                     \
  "repl-journal-size=<SIZE> journal ring size (default 256M).\n"               \
  "repl-granularity=<SIZE>  dirty bitmap granularity (default 64K).\n"         \
  "repl-max-inflight=<N>    replica requests in flight (default 64).\n"        \
  "repl-tls-psk-file=<FILE> TLS PSK keys file for nbds:// targets."

/* ---- Lifecycle ---- */

static int
open_state (char *err, size_t errlen)
{
  char path[4096];
  uint64_t bad_pages = 0;
  bool created, full_sync;

  snprintf (path, sizeof path, "%s/journal", repl.state_dir);
  repl.jrnl = jrnl_open (path, repl.journal_size, repl.disk_size, &created, err,
                         errlen);
  if (repl.jrnl == NULL)
    return -1;
  snprintf (path, sizeof path, "%s/bitmap", repl.state_dir);
  repl.bmap = bmap_open (path, repl.disk_size, repl.granularity,
                         (uint32_t)crc32 (0, (const Bytef *)repl.target,
                                          (uInt)strlen (repl.target)),
                         &full_sync, &bad_pages, err, errlen);
  if (repl.bmap == NULL)
    return -1;
  if (bad_pages > 0)
    nbdkit_error ("vaio-replication: %s: %llu bitmap page(s) failed their "
                  "checksum; their regions will be resynchronised",
                  path, (unsigned long long)bad_pages);
  if (full_sync)
    nbdkit_debug ("vaio-replication: new replica or new state: initial "
                  "full sync");
  return 0;
}

static int
open_shared (nbdkit_backend *backend)
{
  int64_t size;

  repl.shared = nbdkit_next_context_open (backend, 0, "", 1);
  if (repl.shared == NULL)
    {
      nbdkit_error ("vaio-replication: cannot open a backend context");
      return -1;
    }
  if (repl.shared->prepare (repl.shared) == -1)
    return -1;
  size = repl.shared->get_size (repl.shared);
  if (size == -1)
    return -1;
  repl.disk_size = (uint64_t)size;
  if (repl.shared->can_write (repl.shared) != 1)
    {
      nbdkit_error ("vaio-replication: the source is read-only: nothing to "
                    "replicate");
      return -1;
    }
  repl.shared->can_zero (repl.shared);
  repl.shared->can_flush (repl.shared);
  repl.shared->can_extents (repl.shared);
  return 0;
}

/* Wait for the shipper's first connection attempt, so that a target that
 * is too small or read-only stops the server at startup.  A target that
 * is merely down does not: the journal absorbs writes until it is back.
 */
static int
wait_first_connect (void)
{
  struct timespec ts;
  int r = 0;

  clock_gettime (CLOCK_REALTIME, &ts);
  ts.tv_sec += FIRST_CONNECT_WAIT_S;
  pthread_mutex_lock (&repl.lock);
  while (!repl.first_result)
    if (pthread_cond_timedwait (&repl.cond, &repl.lock, &ts) == ETIMEDOUT)
      break;
  if (repl.fatal)
    {
      nbdkit_error ("vaio-replication: %s", repl.fatal_msg);
      r = -1;
    }
  pthread_mutex_unlock (&repl.lock);
  return r;
}

static int
repl_after_fork (nbdkit_backend *backend)
{
  char err[1024];

  if (target_is_self (repl.target, err, sizeof err))
    {
      nbdkit_error ("vaio-replication: %s", err);
      return -1;
    }
  if (open_shared (backend) == -1)
    return -1;
  if (open_state (err, sizeof err) == -1
      || state_recover (err, sizeof err) == -1)
    {
      nbdkit_error ("vaio-replication: %s", err);
      return -1;
    }
  /* Published only now, so that a reader never sees the zeros of a state
   * not yet recovered (tracking 0, lag 0) as "in sync".
   */
  repl.stats = vaio_stats_create (repl.state_dir, "vaio-replication",
                                  "replication", counter_defs, RC_COUNT);
  if (repl.stats == NULL)
    nbdkit_debug ("vaio-replication: %s/stats: %m (stats not published)",
                  repl.state_dir);
  vaio_stats_set (repl.stats, RC_RPO_US, repl.rpo_ns / 1000);
  vaio_stats_set (repl.stats, RC_JOURNAL_SIZE, repl.jrnl->size);
  vaio_stats_set (repl.stats, RC_SYNC_MODE, repl.mode == REPL_SYNC);
  vaio_stats_set (repl.stats, RC_CORRUPT_RECORDS, repl.recovered_corrupt);
  vaio_stats_set (repl.stats, RC_REPLAYED_RECORDS, repl.recovered_replayed);
  pthread_mutex_lock (&repl.lock);
  state_publish_locked ();
  pthread_mutex_unlock (&repl.lock);
  if (shipper_start () == -1)
    return -1;
  return wait_first_connect ();
}

static void
repl_cleanup (nbdkit_backend *backend)
{
  char err[512];

  shipper_stop ();
  if (repl.bmap && bmap_persist (repl.bmap, true, err, sizeof err) == -1)
    nbdkit_error ("vaio-replication: %s", err);
  if (repl.jrnl)
    jrnl_sync (repl.jrnl);
  pthread_mutex_lock (&repl.lock);
  state_publish_locked ();
  pthread_mutex_unlock (&repl.lock);
  jrnl_close (repl.jrnl);
  repl.jrnl = NULL;
  bmap_close (repl.bmap);
  repl.bmap = NULL;
  state_free ();
  vaio_stats_close (repl.stats);
  repl.stats = NULL;
  if (repl.shared)
    {
      repl.shared->finalize (repl.shared);
      nbdkit_next_context_close (repl.shared);
      repl.shared = NULL;
    }
}

static void
repl_unload (void)
{
  free (repl.target);
  free (repl.state_dir);
  free (repl.psk_file);
}

/* ---- Data path ---- */

static int
repl_can_fua (nbdkit_next *next, void *handle)
{
  /* FUA must reach our journal too: take it natively even when the
   * backend only emulates it (then we flush the backend ourselves).
   */
  return next->can_fua (next) == NBDKIT_FUA_NONE ? NBDKIT_FUA_NONE
                                                 : NBDKIT_FUA_NATIVE;
}

static int
local_fua (nbdkit_next *next, uint32_t *flags, int *err)
{
  if ((*flags & NBDKIT_FLAG_FUA) && next->can_fua (next) == NBDKIT_FUA_EMULATE)
    {
      *flags &= ~NBDKIT_FLAG_FUA;
      return 1;
    }
  return 0;
}

static int
finish (enum vaio_stats_op op, uint32_t count, uint64_t t0, struct repl_op *rop,
        int r)
{
  state_end (rop, r == 0);
  if (r == 0 && repl.mode == REPL_SYNC)
    state_wait_replicated (rop);
  vaio_stats_record (repl.stats, op, count, vaio_stats_now_ns () - t0, r == -1);
  return r;
}

static int
repl_pwrite (nbdkit_next *next, void *handle, const void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  bool fua = flags & NBDKIT_FLAG_FUA;
  struct repl_op op;
  int r, emulate;

  if (state_begin (JRNL_WRITE, buf, count, offset, fua, &op, err) == -1)
    return -1;
  emulate = local_fua (next, &flags, err);
  r = next->pwrite (next, buf, count, offset, flags, err);
  if (r == 0 && emulate)
    r = next->flush (next, 0, err);
  return finish (VAIO_OP_WRITE, count, t0, &op, r);
}

static int
repl_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
           uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  bool fua = flags & NBDKIT_FLAG_FUA;
  struct repl_op op;
  int r, emulate;

  if (state_begin (JRNL_ZERO, NULL, count, offset, fua, &op, err) == -1)
    return -1;
  emulate = local_fua (next, &flags, err);
  r = next->zero (next, count, offset, flags, err);
  if (r == 0 && emulate)
    r = next->flush (next, 0, err);
  return finish (VAIO_OP_ZERO, count, t0, &op, r);
}

/* A trim is applied as a zero that may punch holes: after a plain trim
 * the source could read back anything, and the replica must be byte
 * identical.  Writing zeros on both sides makes them agree.
 */
static int
repl_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
           uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  bool fua = flags & NBDKIT_FLAG_FUA;
  struct repl_op op;
  int r, emulate;

  if (state_begin (JRNL_TRIM, NULL, count, offset, fua, &op, err) == -1)
    return -1;
  emulate = local_fua (next, &flags, err);
  r = next->zero (next, count, offset,
                  (flags & NBDKIT_FLAG_FUA) | NBDKIT_FLAG_MAY_TRIM, err);
  if (r == 0 && emulate)
    r = next->flush (next, 0, err);
  return finish (VAIO_OP_TRIM, count, t0, &op, r);
}

static int
repl_can_trim (nbdkit_next *next, void *handle)
{
  /* Trims become zeros (see repl_trim). */
  return next->can_zero (next) > 0;
}

static int
repl_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  struct repl_op op;
  int r;

  if (state_flush_begin (&op, err) == -1)
    return -1;
  r = next->flush (next, flags, err);
  return finish (VAIO_OP_FLUSH, 0, t0, &op, r);
}

static int
repl_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  int r = next->pread (next, buf, count, offset, flags, err);

  vaio_stats_record (repl.stats, VAIO_OP_READ, count, vaio_stats_now_ns () - t0,
                     r == -1);
  return r;
}

static int
repl_can_fast_zero (nbdkit_next *next, void *handle)
{
  /* A fast-zero request the backend refuses would still be journaled:
   * do not advertise it.
   */
  return 0;
}

static struct nbdkit_filter filter = {
  .name = "vaio-replication",
  .longname = "vaio-nbd journaled continuous replication filter",
  .config = repl_config,
  .config_complete = repl_config_complete,
  .config_help = repl_config_help,
  .after_fork = repl_after_fork,
  .cleanup = repl_cleanup,
  .unload = repl_unload,
  .can_fua = repl_can_fua,
  .can_trim = repl_can_trim,
  .can_fast_zero = repl_can_fast_zero,
  .pread = repl_pread,
  .pwrite = repl_pwrite,
  .zero = repl_zero,
  .trim = repl_trim,
  .flush = repl_flush,
};

NBDKIT_REGISTER_FILTER (filter)

/* vaio-sioc: storage I/O control for VM disks sharing a datastore.
 *
 * nbdkit --filter=nbdkit-vaio-sioc-filter.so file disk.img \
 *   [sioc-datastore=PATH] [sioc-state-dir=DIR] [sioc-limit-iops=N] \
 *   [sioc-limit-mbps=N] [sioc-reservation=N] [sioc-shares=low|normal|high|N] \
 *   [sioc-latency-threshold=30ms|auto]
 *
 * Every read, write, zero and trim is admitted by mClock-style tags
 * (mclock.h) at this disk's limit, reservation and, while the datastore
 * is congested, its entitlement; the control thread (control.h) works out
 * the entitlement with the other disks on the same datastore through the
 * shared segment (segment.h).  Flush is never held: it carries no data
 * and delaying it only delays durability.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "control.h"
#include "mclock.h"
#include "policy.h"
#include "admission.h"
#include "stats.h"

/* Parameters: written by .config on nbdkit's main thread before any I/O,
 * read-only afterwards.
 */
static char *datastore_path;
static char *state_dir;
static struct sioc_policy param_policy;
static bool policy_initialised;

static void
sioc_unload (void)
{
  free (datastore_path);
  free (state_dir);
}

static int
set_path (char **dst, const char *key, const char *value)
{
  char *p;

  if (*value == '\0')
    {
      nbdkit_error ("vaio-sioc: %s: empty path", key);
      return -1;
    }
  p = nbdkit_absolute_path (value);
  if (p == NULL)
    return -1;
  free (*dst);
  *dst = p;
  return 0;
}

static int
sioc_config (nbdkit_next_config *next, nbdkit_backend *nxdata, const char *key,
             const char *value)
{
  char err[256];
  int r;

  if (!policy_initialised)
    {
      sioc_policy_init (&param_policy);
      policy_initialised = true;
    }
  if (strcmp (key, "sioc-datastore") == 0)
    return set_path (&datastore_path, key, value);
  if (strcmp (key, "sioc-state-dir") == 0)
    return set_path (&state_dir, key, value);
  r = sioc_policy_set (&param_policy, key, value, err, sizeof err);
  if (r == -1)
    {
      nbdkit_error ("vaio-sioc: %s", err);
      return -1;
    }
  if (r == 0)
    return 0;
  if (strncmp (key, "sioc-", 5) == 0)
    {
      nbdkit_error ("vaio-sioc: unknown parameter '%s'", key);
      return -1;
    }
  return next (nxdata, key, value);
}

static int
sioc_config_complete (nbdkit_next_config_complete *next, nbdkit_backend *nxdata)
{
  char err[256];

  if (!policy_initialised)
    {
      sioc_policy_init (&param_policy);
      policy_initialised = true;
    }
  if (sioc_policy_check (&param_policy, err, sizeof err) == -1)
    {
      nbdkit_error ("vaio-sioc: %s", err);
      return -1;
    }
  return next (nxdata);
}

#define sioc_config_help                                                       \
  "sioc-datastore=PATH       Datastore segment shared by its disks.\n"         \
  "sioc-state-dir=DIR        Stats and live settings for this disk.\n"         \
  "sioc-limit-iops=N         IOPS cap (32 KiB units), 0 = none.\n"             \
  "sioc-limit-mbps=N         MiB/s cap, 0 = none.\n"                           \
  "sioc-reservation=N        IOPS guaranteed under contention.\n"              \
  "sioc-shares=S             low|normal|high|N (500|1000|2000|1..10000).\n"    \
  "sioc-latency-threshold=T  Congestion latency (30ms) or auto."

static const char *
disk_name (void)
{
  const char *base;

  if (state_dir == NULL)
    return "";
  base = strrchr (state_dir, '/');
  return base && base[1] ? base + 1 : state_dir;
}

static int
sioc_get_ready (int thread_model)
{
  struct sioc_control_config cfg = {
    .datastore_path = datastore_path,
    .state_dir = state_dir,
    .name = disk_name (),
    .policy = param_policy,
  };

  return sioc_control_prepare (&cfg);
}

static int
sioc_after_fork (nbdkit_backend *nxdata)
{
  return sioc_control_start ();
}

static void
sioc_cleanup (nbdkit_backend *nxdata)
{
  sioc_control_stop ();
}

/* Per-request accounting: the guest-visible latency (throttling
 * included) goes to the stats file, the backend latency to the control
 * thread's congestion signal.
 */
struct request
{
  uint64_t arrived, started, units;
};

static struct request
begin (uint64_t units, uint64_t bytes)
{
  struct request rq = { .arrived = vaio_stats_now_ns (), .units = units };

  rq.started = sioc_sched_admit (rq.arrived, units, bytes);
  /* Counted when the request starts, so the published admission rate is
   * exactly what the backend was given.
   */
  vaio_stats_add (sioc_control_stats (), C_ADMITTED, units);
  if (rq.started > rq.arrived)
    vaio_stats_add (sioc_control_stats (), C_THROTTLED_NS,
                    rq.started - rq.arrived);
  return rq;
}

static int
end (const struct request *rq, enum vaio_stats_op op, uint64_t bytes, int r)
{
  uint64_t now = vaio_stats_now_ns ();

  sioc_sched_done (rq->units, rq->started, now);
  vaio_stats_record (sioc_control_stats (), op, bytes, now - rq->arrived,
                     r == -1);
  return r;
}

static int
sioc_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  struct request rq = begin (sioc_cost_units (count), count);

  return end (&rq, VAIO_OP_READ, count,
              next->pread (next, buf, count, offset, flags, err));
}

static int
sioc_pwrite (nbdkit_next *next, void *handle, const void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  struct request rq = begin (sioc_cost_units (count), count);

  return end (&rq, VAIO_OP_WRITE, count,
              next->pwrite (next, buf, count, offset, flags, err));
}

/* Zero and trim move no data: charged one I/O, no bandwidth. */
static int
sioc_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
           uint32_t flags, int *err)
{
  struct request rq = begin (1, 0);

  return end (&rq, VAIO_OP_ZERO, 0,
              next->zero (next, count, offset, flags, err));
}

static int
sioc_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
           uint32_t flags, int *err)
{
  struct request rq = begin (1, 0);

  return end (&rq, VAIO_OP_TRIM, 0,
              next->trim (next, count, offset, flags, err));
}

static int
sioc_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  int r = next->flush (next, flags, err);

  vaio_stats_record (sioc_control_stats (), VAIO_OP_FLUSH, 0,
                     vaio_stats_now_ns () - t0, r == -1);
  return r;
}

static struct nbdkit_filter filter = {
  .name = "vaio-sioc",
  .longname = "vaio-nbd storage I/O control filter",
  .unload = sioc_unload,
  .config = sioc_config,
  .config_complete = sioc_config_complete,
  .config_help = sioc_config_help,
  .get_ready = sioc_get_ready,
  .after_fork = sioc_after_fork,
  .cleanup = sioc_cleanup,
  .pread = sioc_pread,
  .pwrite = sioc_pwrite,
  .zero = sioc_zero,
  .trim = sioc_trim,
  .flush = sioc_flush,
};

NBDKIT_REGISTER_FILTER (filter)

/* vaio-sioc: admission path, see admission.h. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "admission.h"

/* sched_lock guards tags and rates: every admission reads the rates and
 * advances the tags; the control thread replaces the rates.  Held only
 * for a few arithmetic operations, never while sleeping.
 */
static pthread_mutex_t sched_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sioc_tags tags;
static struct sioc_rates rates;

/* Whether any tag can hold a request (a limit is set, or the datastore
 * is congested).  Written under sched_lock by the control thread, read
 * without it on every request: an unthrottled disk never takes the lock.
 */
static bool throttling __attribute__ ((aligned (64)));

/* Monotonic counters, updated with relaxed atomics (no lock).  Every
 * request writes them and reads `throttling`: each starts a cache line
 * (apart from the lock, tags and rates before them), so the counter
 * writes do not keep evicting the flag every admission reads.
 */
static struct sioc_sched_counters counters __attribute__ ((aligned (64)));

static void
sleep_until (uint64_t when_ns)
{
  struct timespec ts = {
    .tv_sec = (time_t)(when_ns / 1000000000u),
    .tv_nsec = (long)(when_ns % 1000000000u),
  };

  while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

static void
count (uint64_t *c, uint64_t delta)
{
  __atomic_fetch_add (c, delta, __ATOMIC_RELAXED);
}

uint64_t
sioc_sched_admit (uint64_t now, uint64_t units, uint64_t bytes)
{
  enum sioc_admit_reason why;
  uint64_t start;

  if (!__atomic_load_n (&throttling, __ATOMIC_ACQUIRE))
    return now;
  pthread_mutex_lock (&sched_lock);
  start = sioc_tags_admit (&tags, now, units, bytes, &rates, &why);
  pthread_mutex_unlock (&sched_lock);

  if (start > now)
    {
      bool shared = why == SIOC_ADMIT_SHARE || why == SIOC_ADMIT_RESERVATION;

      if (shared)
        {
          count (&counters.share_waits, 1);
          count (&counters.share_waiting, 1);
        }
      sleep_until (start);
      if (shared)
        __atomic_fetch_sub (&counters.share_waiting, 1, __ATOMIC_RELAXED);
      return start;
    }
  return now;
}

void
sioc_sched_done (uint64_t units, uint64_t started_ns, uint64_t now)
{
  count (&counters.done_units, units);
  count (&counters.done_ops, 1);
  count (&counters.backend_ns, now > started_ns ? now - started_ns : 0);
}

void
sioc_sched_set_rates (const struct sioc_rates *r)
{
  pthread_mutex_lock (&sched_lock);
  rates = *r;
  __atomic_store_n (&throttling,
                    r->limit_iops > 0 || r->limit_bps > 0
                        || r->entitlement_iops > 0,
                    __ATOMIC_RELEASE);
  pthread_mutex_unlock (&sched_lock);
}

void
sioc_sched_get_counters (struct sioc_sched_counters *c)
{
  c->done_units = __atomic_load_n (&counters.done_units, __ATOMIC_RELAXED);
  c->done_ops = __atomic_load_n (&counters.done_ops, __ATOMIC_RELAXED);
  c->backend_ns = __atomic_load_n (&counters.backend_ns, __ATOMIC_RELAXED);
  c->share_waits = __atomic_load_n (&counters.share_waits, __ATOMIC_RELAXED);
  c->share_waiting
      = __atomic_load_n (&counters.share_waiting, __ATOMIC_RELAXED);
}

/* vaio-sioc: mClock tags and allocation, see mclock.h. */
#include <math.h>

#include "mclock.h"

#define NS_PER_S 1e9

uint64_t
sioc_cost_units (uint64_t bytes)
{
  uint64_t units = (bytes + SIOC_UNIT_BYTES - 1) / SIOC_UNIT_BYTES;

  return units == 0 ? 1 : units;
}

static uint64_t
max_u64 (uint64_t a, uint64_t b)
{
  return a > b ? a : b;
}

static uint64_t
min_u64 (uint64_t a, uint64_t b)
{
  return a < b ? a : b;
}

/* Time to serve amount at rate per second, in ns (rate > 0). */
static uint64_t
spacing_ns (double amount, double rate)
{
  return (uint64_t)(amount * NS_PER_S / rate);
}

uint64_t
sioc_tags_admit (struct sioc_tags *t, uint64_t now, uint64_t units,
                 uint64_t bytes, const struct sioc_rates *r,
                 enum sioc_admit_reason *why)
{
  /* A tag counts only while its limit is set: a limit removed live must
   * release requests at once.
   */
  uint64_t limit_at = max_u64 (now, max_u64 (r->limit_iops > 0 ? t->l : 0,
                                             r->limit_bps > 0 ? t->lb : 0));
  uint64_t start = limit_at;
  bool shared = r->entitlement_iops > 0;

  *why = limit_at > now ? SIOC_ADMIT_LIMIT : SIOC_ADMIT_FREE;
  if (shared)
    {
      uint64_t due = t->p;

      if (r->reservation_iops > 0)
        due = min_u64 (due, t->r);
      if (due > start)
        {
          start = due;
          *why = (r->reservation_iops > 0 && t->r < t->p)
                     ? SIOC_ADMIT_RESERVATION
                     : SIOC_ADMIT_SHARE;
        }
    }

  t->l = r->limit_iops > 0 ? start + spacing_ns ((double)units, r->limit_iops)
                           : 0;
  t->lb
      = r->limit_bps > 0 ? start + spacing_ns ((double)bytes, r->limit_bps) : 0;
  /* Tags never bank idle time: an idle disk restarts from now, so it
   * cannot burst above its rates after a pause (mClock's max(tag, now)).
   */
  if (r->reservation_iops > 0)
    t->r = max_u64 (t->r, start)
           + spacing_ns ((double)units, r->reservation_iops);
  else
    t->r = start;
  if (shared)
    t->p = max_u64 (t->p, start)
           + spacing_ns ((double)units, r->entitlement_iops);
  else
    t->p = start;
  return start;
}

static double
clamp_claim (const struct sioc_claim *c, double level)
{
  double hi = c->cap > c->reservation ? c->cap : c->reservation;
  double x = level * c->shares;

  if (x < c->reservation)
    x = c->reservation;
  if (x > hi)
    x = hi;
  return x;
}

static double
total_at (const struct sioc_claim *c, size_t n, double level)
{
  double sum = 0;

  for (size_t i = 0; i < n; i++)
    sum += clamp_claim (&c[i], level);
  return sum;
}

void
sioc_allocate (double capacity, struct sioc_claim *c, size_t n)
{
  double lo = 0, hi = 1, level;

  if (n == 0)
    return;
  /* total_at is monotonic in level: find the level that fills capacity
   * by doubling then bisection.  If even an unbounded level does not
   * reach capacity every disk sits at its cap (the rest stays unused).
   */
  while (total_at (c, n, hi) < capacity && hi < 1e12)
    hi *= 2;
  for (int i = 0; i < 100; i++)
    {
      level = (lo + hi) / 2;
      if (total_at (c, n, level) < capacity)
        lo = level;
      else
        hi = level;
    }
  for (size_t i = 0; i < n; i++)
    c[i].out = clamp_claim (&c[i], hi);
}

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

/* Time to serve amount at rate per second, in ns.  Rates below
 * SIOC_RATE_FLOOR count as the floor: a vanishing rate must not schedule
 * a request past the end of time (or overflow the conversion).
 */
static uint64_t
spacing_ns (double amount, double rate)
{
  if (!(rate >= SIOC_RATE_FLOOR))
    rate = SIOC_RATE_FLOOR;
  return (uint64_t)(amount * NS_PER_S / rate);
}

/* The earliest a tag may be when a request arrives at now: it may lag
 * now by SIOC_TAG_SLACK_NS, no more.
 */
static uint64_t
tag_floor (uint64_t now)
{
  return now > SIOC_TAG_SLACK_NS ? now - SIOC_TAG_SLACK_NS : 0;
}

uint64_t
sioc_tags_admit (struct sioc_tags *t, uint64_t now, uint64_t units,
                 uint64_t bytes, const struct sioc_rates *r,
                 enum sioc_admit_reason *why)
{
  uint64_t lo = tag_floor (now);
  /* This request's due time by each tag.  A limit tag counts only while
   * its limit is set: a limit removed live releases requests at once.
   */
  uint64_t due_l = r->limit_iops > 0 ? max_u64 (t->l, lo) : 0;
  uint64_t due_lb = r->limit_bps > 0 ? max_u64 (t->lb, lo) : 0;
  uint64_t due_r = max_u64 (t->r, lo);
  uint64_t due_p = max_u64 (t->p, lo);
  uint64_t start = max_u64 (now, max_u64 (due_l, due_lb));
  bool reserved = r->reservation_iops > 0;
  bool shared = r->entitlement_iops > 0;

  *why = start > now ? SIOC_ADMIT_LIMIT : SIOC_ADMIT_FREE;
  if (shared)
    {
      uint64_t due = reserved ? min_u64 (due_p, due_r) : due_p;

      if (due > start)
        {
          start = due;
          *why = reserved && due_r < due_p ? SIOC_ADMIT_RESERVATION
                                           : SIOC_ADMIT_SHARE;
        }
    }

  /* Tags advance on their own schedule, not from the start time: a
   * thread or client that wakes a little late costs no throughput.
   */
  t->l = r->limit_iops > 0 ? due_l + spacing_ns ((double)units, r->limit_iops)
                           : 0;
  t->lb = r->limit_bps > 0 ? due_lb + spacing_ns ((double)bytes, r->limit_bps)
                           : 0;
  t->r = reserved ? due_r + spacing_ns ((double)units, r->reservation_iops)
                  : start;
  t->p = shared ? due_p + spacing_ns ((double)units, r->entitlement_iops)
                : start;
  return start;
}

static double
clamp_claim (const struct sioc_claim *c, double level)
{
  double hi = c->cap > c->reserved ? c->cap : c->reserved;
  double x = level * c->shares;

  if (x < c->reserved)
    x = c->reserved;
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

/* Scale the reservations to fit the reservable part of capacity. */
static double
admit_reservations (double capacity, struct sioc_claim *c, size_t n)
{
  double sum = 0, room = SIOC_RESERVABLE_FRACTION * capacity, scale = 1;

  for (size_t i = 0; i < n; i++)
    sum += c[i].reservation;
  if (sum > room)
    scale = room / sum;
  for (size_t i = 0; i < n; i++)
    c[i].reserved = c[i].reservation * scale;
  return scale;
}

double
sioc_allocate (double capacity, struct sioc_claim *c, size_t n)
{
  double lo = 0, hi = 1, level, scale;

  if (n == 0)
    return 1;
  scale = admit_reservations (capacity, c, n);
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
  return scale;
}

double
sioc_contender_floor (double capacity, unsigned contenders)
{
  if (capacity <= 0)
    return 0;
  return capacity / (SIOC_FAIR_FLOOR_DIV * (contenders > 0 ? contenders : 1));
}

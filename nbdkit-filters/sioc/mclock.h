/* vaio-sioc: mClock-style admission tags and the datastore allocation.
 *
 * Each disk keeps three tags (Gulati et al., "mClock", OSDI 2010), here as
 * absolute CLOCK_MONOTONIC times at which the next request may start:
 *   R  reservation: requests are due at the reserved rate,
 *   L  limit: no request starts before L (IOPS and MB/s limits alike),
 *   P  proportional share: under congestion, the disk's entitlement.
 * A request starts at max(now, L, min(R, P)): it never exceeds its limit,
 * it is always served at least at its reservation, and otherwise at its
 * entitlement.  Without congestion there is no P tag: only limits apply
 * (work-conserving).  Tags bank no idle time beyond a small slack
 * (SIOC_TAG_SLACK_NS), so a disk back from idle bursts by 50 ms worth of
 * its rate at most.
 *
 * The entitlement comes from sioc_allocate(): the datastore's capacity
 * divided by shares, each disk clamped between its reservation and its
 * cap (limit or demand), as mClock's tags would divide a shared queue.
 * Pure C, no nbdkit, so the unit tests drive it with synthetic clocks.
 */
#ifndef SIOC_MCLOCK_H
#define SIOC_MCLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How far a tag may lag behind now.  Without any lag, every late wakeup
 * of a busy host (a client or thread scheduled 5 ms late) would be lost
 * throughput; with it, a disk back from idle may burst by at most 50 ms
 * worth of its rate.  mClock's max(tag, now) is the zero-slack case.
 */
#define SIOC_TAG_SLACK_NS 50000000u

/* The lowest rate a tag is spaced at, per second (see spacing_ns). */
#define SIOC_RATE_FLOOR 1.0

/* VMware charges large I/Os in 32 KiB units: a 64 KiB read is 2 I/Os. */
#define SIOC_UNIT_BYTES 32768

uint64_t sioc_cost_units (uint64_t bytes);

struct sioc_rates
{
  double limit_iops;       /* 0 = none */
  double limit_bps;        /* bytes per second, 0 = none */
  double reservation_iops; /* 0 = none */
  double entitlement_iops; /* 0 = not congested: no share tag */
};

struct sioc_tags
{
  uint64_t r, l, lb, p; /* next-due times, ns */
};

enum sioc_admit_reason
{
  SIOC_ADMIT_FREE,        /* started at once */
  SIOC_ADMIT_LIMIT,       /* waited for a limit */
  SIOC_ADMIT_RESERVATION, /* waited, then ran on its reservation */
  SIOC_ADMIT_SHARE,       /* waited for its share of a congested store */
};

/* Start time for a request of units/bytes arriving at now, and advance
 * the tags as if it started then.  Callers serialise calls per disk.
 */
uint64_t sioc_tags_admit (struct sioc_tags *t, uint64_t now, uint64_t units,
                          uint64_t bytes, const struct sioc_rates *r,
                          enum sioc_admit_reason *why);

struct sioc_claim
{
  double shares;      /* > 0 */
  double reservation; /* >= 0 */
  double cap;         /* limit or demand; INFINITY for none */
  double out;         /* result: entitlement, units per second */
  double reserved;    /* result: the reservation in force (<= reservation) */
};

/* Reservations together may take this much of the capacity.  mClock
 * assumes admissible reservations (VMware refuses the others at
 * admission); here each disk sets its own, so when they add up to more
 * they are scaled down proportionally to fit, and the rest of the
 * capacity is still divided by shares: a disk that reserves "everything"
 * cannot starve a neighbour.
 */
#define SIOC_RESERVABLE_FRACTION 0.9

/* Divide capacity: out_i = clamp(level * shares_i, reserved_i,
 * max(cap_i, reserved_i)) with the one level where the outs add up to
 * capacity (or every disk at its cap, or every disk at its reservation).
 * reserved_i is reservation_i, scaled down by the same factor for every
 * disk when the reservations add up to more than
 * SIOC_RESERVABLE_FRACTION of capacity.  Returns that factor (1 when the
 * reservations fit).
 */
double sioc_allocate (double capacity, struct sioc_claim *c, size_t n);

/* The least a contender is entitled to while the datastore is congested,
 * whatever the others claim: capacity / (SIOC_FAIR_FLOOR_DIV *
 * contenders).  A peer's shares (within 1..SIOC_SHARES_MAX), demand and
 * throughput are its own word: one that overstates them would otherwise
 * take nearly all the capacity.  The number of contenders and the
 * capacity are this disk's own reading (congestion.h bounds them).  4 is
 * VMware's widest preset ratio (high:low = 2000:500): a disk at low
 * beside n-1 disks at high gets capacity / (4n - 3) by shares, above the
 * floor, so any mix of low, normal and high is divided exactly by
 * shares; only custom ratios wider than 4:1 are lifted to it.
 */
#define SIOC_FAIR_FLOOR_DIV 4.0

double sioc_contender_floor (double capacity, unsigned contenders);

#endif /* SIOC_MCLOCK_H */

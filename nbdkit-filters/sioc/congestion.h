/* vaio-sioc: the datastore congestion signal and capacity estimate.
 *
 * Like VMware SIOC, congestion is judged from the latency the datastore
 * shows (the I/O-weighted mean over every live disk, from the segment),
 * against a threshold: fixed (30ms by default), or `auto`, the latency
 * observed at 90% of the peak throughput seen so far.
 *
 * While congested, the datastore's capacity is estimated from the
 * throughput it delivered when congestion began, then cut by 10% (never
 * below half of that onset throughput) while
 * latency stays above the threshold and raised by 1% per step while it is
 * below (AIMD, so the sum of entitlements tracks what the datastore can
 * do without queueing).  Congestion ends when fewer than two disks
 * contend, or when the estimate stops binding (capacity well above what
 * the disks take) for a second.  Pure C, driven with synthetic clocks by
 * the unit tests.
 */
#ifndef SIOC_CONGESTION_H
#define SIOC_CONGESTION_H

#include <stdbool.h>
#include <stdint.h>

struct sioc_congestion
{
  bool congested;
  double capacity_iops;    /* estimate while congested */
  double onset_iops;       /* delivered when congestion began */
  uint64_t hold_until_ns;  /* no second cut before this (latency lags) */
  uint64_t slack_since_ns; /* capacity not binding since (0 = binding) */
  double recent_iops;      /* follower: the slots' recent peak throughput */
};

struct sioc_datastore_sample
{
  uint64_t now_ns;
  double delivered_iops; /* sum over live disks */
  double latency_ns;     /* I/O-weighted mean backend latency */
  unsigned contenders;   /* live disks with demand */
};

/* Floors on the capacity estimate, the leader's and (for a leader's
 * published estimate) the followers'.
 */
#define SIOC_MIN_CAPACITY 10.0 /* IOPS: never starve everyone */
#define SIOC_ONSET_FLOOR  0.5  /* of the throughput at congestion onset */

void sioc_congestion_init (struct sioc_congestion *c);
void sioc_congestion_step (struct sioc_congestion *c,
                           const struct sioc_datastore_sample *s,
                           double threshold_ns);

/* A follower takes the leader's published verdict, within bounds it
 * checks itself: the datastore is congested only if the leader says so
 * and s (the follower's own reading of the live slots) shows two or more
 * contenders, and the capacity is never below what the leader would
 * allow itself (SIOC_MIN_CAPACITY, SIOC_ONSET_FLOOR of the most
 * throughput the slots showed lately, by this follower's reading: it
 * decays only while the datastore is not congested).  Returns
 * true when the leader's numbers were overridden (a peer-rejected
 * event): a lone active disk told it is congested, or a capacity below
 * the floor.
 */
bool sioc_congestion_follow (struct sioc_congestion *c, bool leader_congested,
                             double leader_capacity_iops,
                             const struct sioc_datastore_sample *s);

/* Threshold `auto`: track the peak throughput and the lowest latency at
 * which the datastore delivered at least 90% of it.  Learnt per epoch of
 * SIOC_AUTO_EPOCH observations, over the current epoch and the one
 * before, so what the datastore did more than two epochs ago is
 * forgotten: a datastore that got slower is re-learnt within two epochs
 * (a minute at the 50ms control period), and one that keeps reaching its
 * knee keeps it across an epoch change.
 */
#define SIOC_AUTO_EPOCH 600

struct sioc_knee
{
  double peak_iops;
  double latency_at_90_ns; /* 0 until observed */
};

struct sioc_auto_threshold
{
  struct sioc_knee cur, prev;
  unsigned observed; /* in the current epoch */
};

void sioc_auto_threshold_init (struct sioc_auto_threshold *a);
void sioc_auto_threshold_observe (struct sioc_auto_threshold *a,
                                  double delivered_iops, double latency_ns);
/* The threshold to use: the observed latency, or fallback_ns until one
 * is known.
 */
double sioc_auto_threshold_get (const struct sioc_auto_threshold *a,
                                double fallback_ns);

#endif /* SIOC_CONGESTION_H */

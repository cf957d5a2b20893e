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
};

struct sioc_datastore_sample
{
  uint64_t now_ns;
  double delivered_iops; /* sum over live disks */
  double latency_ns;     /* I/O-weighted mean backend latency */
  unsigned contenders;   /* live disks with demand */
};

void sioc_congestion_init (struct sioc_congestion *c);
void sioc_congestion_step (struct sioc_congestion *c,
                           const struct sioc_datastore_sample *s,
                           double threshold_ns);

/* Threshold `auto`: track the peak throughput and the lowest latency at
 * which the datastore delivered at least 90% of it.
 */
struct sioc_auto_threshold
{
  double peak_iops;
  double latency_at_90_ns; /* 0 until observed */
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

/* vaio-sioc: congestion signal and capacity estimate, see congestion.h. */
#include <string.h>

#include "congestion.h"

#define CUT_FACTOR    0.9
#define PROBE_FACTOR  1.01
#define CUT_HOLD_NS   200000000u /* latency needs ~4 steps to react */
#define SLACK_RATIO   1.5        /* capacity / delivered = not binding */
#define SLACK_EXIT_NS 1000000000u
#define MIN_CAPACITY  10.0 /* IOPS: never starve everyone */
/* Latency that stays high however hard we throttle comes from elsewhere
 * (an unmanaged client, a starved CPU): cutting below half of what the
 * datastore delivered when congestion began would only idle it.
 */
#define ONSET_FLOOR 0.5

void
sioc_congestion_init (struct sioc_congestion *c)
{
  memset (c, 0, sizeof *c);
}

static void
leave (struct sioc_congestion *c)
{
  c->congested = false;
  c->capacity_iops = 0;
  c->slack_since_ns = 0;
}

void
sioc_congestion_step (struct sioc_congestion *c,
                      const struct sioc_datastore_sample *s,
                      double threshold_ns)
{
  bool slow = s->latency_ns > threshold_ns;

  /* A lone disk shares with nobody: dividing by shares would only
   * throttle it (work-conserving).
   */
  if (s->contenders < 2)
    {
      leave (c);
      return;
    }
  if (!c->congested)
    {
      if (slow)
        {
          c->congested = true;
          c->capacity_iops = s->delivered_iops > MIN_CAPACITY
                                 ? s->delivered_iops
                                 : MIN_CAPACITY;
          c->onset_iops = c->capacity_iops;
          c->hold_until_ns = s->now_ns + CUT_HOLD_NS;
          c->slack_since_ns = 0;
        }
      return;
    }

  if (slow)
    {
      if (s->now_ns >= c->hold_until_ns)
        {
          c->capacity_iops *= CUT_FACTOR;
          if (c->capacity_iops < ONSET_FLOOR * c->onset_iops)
            c->capacity_iops = ONSET_FLOOR * c->onset_iops;
          if (c->capacity_iops < MIN_CAPACITY)
            c->capacity_iops = MIN_CAPACITY;
          c->hold_until_ns = s->now_ns + CUT_HOLD_NS;
        }
      c->slack_since_ns = 0;
      return;
    }

  /* Below the threshold: probe upwards, but only while the estimate
   * binds; far above what the disks take, congestion is over.
   */
  if (c->capacity_iops > SLACK_RATIO * s->delivered_iops)
    {
      if (c->slack_since_ns == 0)
        c->slack_since_ns = s->now_ns;
      else if (s->now_ns - c->slack_since_ns >= SLACK_EXIT_NS)
        leave (c);
      return;
    }
  c->slack_since_ns = 0;
  c->capacity_iops *= PROBE_FACTOR;
}

void
sioc_auto_threshold_init (struct sioc_auto_threshold *a)
{
  memset (a, 0, sizeof *a);
}

void
sioc_auto_threshold_observe (struct sioc_auto_threshold *a,
                             double delivered_iops, double latency_ns)
{
  double ratio;

  if (delivered_iops <= 0 || latency_ns <= 0)
    return;
  /* A new peak: what was 90% of the old one may not be of this one. */
  if (delivered_iops > a->peak_iops)
    {
      a->peak_iops = delivered_iops;
      a->latency_at_90_ns = latency_ns;
      return;
    }
  ratio = delivered_iops / a->peak_iops;
  /* The knee of the latency curve is the lowest latency that still gets
   * 90% of the peak: a longer queue adds latency, not throughput.  (An
   * average over samples near 90% instead followed whatever queue depth
   * the moment had: on a datastore that serves one request at a time
   * it swung between 5 and 80 ms from run to run.)
   */
  if (ratio >= 0.9 && latency_ns < a->latency_at_90_ns)
    a->latency_at_90_ns = latency_ns;
}

double
sioc_auto_threshold_get (const struct sioc_auto_threshold *a,
                         double fallback_ns)
{
  return a->latency_at_90_ns > 0 ? a->latency_at_90_ns : fallback_ns;
}

/* vaio-sioc: congestion signal and capacity estimate, see congestion.h. */
#include <math.h>
#include <string.h>

#include "congestion.h"

#define CUT_FACTOR    0.9
#define PROBE_FACTOR  1.01
#define CUT_HOLD_NS   200000000u /* latency needs ~4 steps to react */
#define SLACK_RATIO   1.5        /* capacity / delivered = not binding */
#define SLACK_EXIT_NS 1000000000u
/* SIOC_ONSET_FLOOR: latency that stays high however hard we throttle
 * comes from elsewhere (an unmanaged client, a starved CPU): cutting
 * below half of what the datastore delivered when congestion began would
 * only idle it.
 */
#define MIN_CAPACITY SIOC_MIN_CAPACITY
#define ONSET_FLOOR  SIOC_ONSET_FLOOR
#define RECENT_DECAY 0.998 /* per follower step */

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

bool
sioc_congestion_follow (struct sioc_congestion *c, bool leader_congested,
                        double leader_capacity_iops,
                        const struct sioc_datastore_sample *s)
{
  double floor;

  /* The reference is this follower's own reading: the most the slots
   * delivered lately.  It decays (half-life ~17 s of control steps)
   * only while not congested, so a leader cannot walk the floor down by
   * throttling the disks, however long it keeps them congested; and it
   * covers the throughput seen before the episode, not only the first
   * samples of it (taken while the disks' averages still ramp up).
   */
  if (!c->congested)
    c->recent_iops *= RECENT_DECAY;
  if (s->delivered_iops > c->recent_iops)
    c->recent_iops = s->delivered_iops;

  if (!leader_congested || leader_capacity_iops <= 0)
    {
      leave (c);
      c->onset_iops = 0;
      return false;
    }
  /* Work-conserving whatever the leader says: a disk alone on the
   * datastore shares with nobody.
   */
  if (s->contenders < 2)
    {
      leave (c);
      c->onset_iops = 0;
      return true;
    }
  /* Kept as the onset too, so this disk carries on if it takes over. */
  c->onset_iops = c->recent_iops > MIN_CAPACITY ? c->recent_iops : MIN_CAPACITY;
  c->congested = true;
  floor = ONSET_FLOOR * c->onset_iops;
  if (floor < MIN_CAPACITY)
    floor = MIN_CAPACITY;
  c->capacity_iops = leader_capacity_iops;
  if (leader_capacity_iops >= floor)
    return false;
  c->capacity_iops = floor;
  return true;
}

void
sioc_auto_threshold_init (struct sioc_auto_threshold *a)
{
  memset (a, 0, sizeof *a);
}

static void
knee_observe (struct sioc_knee *k, double delivered_iops, double latency_ns)
{
  double ratio;

  /* A new peak: what was 90% of the old one may not be of this one. */
  if (delivered_iops > k->peak_iops)
    {
      k->peak_iops = delivered_iops;
      k->latency_at_90_ns = latency_ns;
      return;
    }
  ratio = delivered_iops / k->peak_iops;
  /* The knee of the latency curve is the lowest latency that still gets
   * 90% of the peak: a longer queue adds latency, not throughput.  (An
   * average over samples near 90% instead followed whatever queue depth
   * the moment had: on a datastore that serves one request at a time
   * it swung between 5 and 80 ms from run to run.)
   */
  if (ratio >= 0.9 && latency_ns < k->latency_at_90_ns)
    k->latency_at_90_ns = latency_ns;
}

void
sioc_auto_threshold_observe (struct sioc_auto_threshold *a,
                             double delivered_iops, double latency_ns)
{
  if (delivered_iops <= 0 || latency_ns <= 0)
    return;
  knee_observe (&a->cur, delivered_iops, latency_ns);
  if (++a->observed >= SIOC_AUTO_EPOCH)
    {
      a->prev = a->cur;
      memset (&a->cur, 0, sizeof a->cur);
      a->observed = 0;
    }
}

/* The lowest knee among the epochs that reached 90% of the higher peak:
 * a fresh epoch's first samples (taken under load, at a long queue) do
 * not displace a knee the datastore still reaches, and an epoch far
 * below the other's peak does not count until the other is forgotten.
 */
double
sioc_auto_threshold_get (const struct sioc_auto_threshold *a,
                         double fallback_ns)
{
  const struct sioc_knee *k[2] = { &a->prev, &a->cur };
  double peak = fmax (a->prev.peak_iops, a->cur.peak_iops), best = 0;

  for (int i = 0; i < 2; i++)
    if (k[i]->latency_at_90_ns > 0 && k[i]->peak_iops >= 0.9 * peak
        && (best == 0 || k[i]->latency_at_90_ns < best))
      best = k[i]->latency_at_90_ns;
  return best > 0 ? best : fallback_ns;
}

/* Check unit tests for vaio-sioc's pure logic: policy parsing, the mClock
 * tags and allocation, the congestion controller, the datastore segment.
 * No nbdkit, synthetic clocks, so the results are exact.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "congestion.h"
#include "mclock.h"
#include "policy.h"
#include "segment.h"

#define MS UINT64_C (1000000)

static char tmpdir[64];

static void
make_tmpdir (void)
{
  strcpy (tmpdir, "/tmp/sioc-unit.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (tmpdir));
}

static void
remove_tmpdir (void)
{
  char cmd[128];

  snprintf (cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  ck_assert_int_eq (system (cmd), 0);
}

static void
write_file (const char *path, const char *text)
{
  FILE *fp = fopen (path, "w");

  ck_assert_ptr_nonnull (fp);
  fputs (text, fp);
  fclose (fp);
}

/* --- policy --- */

START_TEST (policy_defaults_and_shares)
{
  struct sioc_policy p;
  char err[256];

  sioc_policy_init (&p);
  ck_assert_uint_eq (p.shares, 1000);
  ck_assert_uint_eq (p.latency_threshold_ns, 30 * MS);
  ck_assert (!p.latency_auto);
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-shares", "low", err, 256), 0);
  ck_assert_uint_eq (p.shares, 500);
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-shares", "high", err, 256), 0);
  ck_assert_uint_eq (p.shares, 2000);
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-shares", "normal", err, 256), 0);
  ck_assert_uint_eq (p.shares, 1000);
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-shares", "1234", err, 256), 0);
  ck_assert_uint_eq (p.shares, 1234);
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-shares", "0", err, 256), -1);
  ck_assert_ptr_nonnull (strstr (err, "sioc-shares: '0'"));
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-shares", "medium", err, 256),
                    -1);
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-shares", "2000000", err, 256),
                    -1);
  /* VMware's range: 10000 at most. */
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-shares", "10001", err, 256), -1);
  ck_assert_ptr_nonnull (strstr (err, "from 1 to 10000"));
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-shares", "10000", err, 256), 0);
  ck_assert_uint_eq (p.shares, 10000);
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-shares", "1234", err, 256), 0);
  ck_assert_uint_eq (p.shares, 1234); /* untouched by bad values */
}
END_TEST

START_TEST (policy_rates_threshold_unknown)
{
  struct sioc_policy p;
  char err[256];

  sioc_policy_init (&p);
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-limit-iops", "500", err, 256),
                    0);
  ck_assert_uint_eq (p.limit_iops, 500);
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-limit-iops", "5x", err, 256),
                    -1);
  ck_assert_ptr_nonnull (strstr (err, "sioc-limit-iops"));
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-limit-mbps", "-1", err, 256),
                    -1);
  ck_assert_int_eq (
      sioc_policy_set (&p, "sioc-reservation", "10000001", err, 256), -1);
  ck_assert_int_eq (
      sioc_policy_set (&p, "sioc-latency-threshold", "auto", err, 256), 0);
  ck_assert (p.latency_auto);
  ck_assert_int_eq (
      sioc_policy_set (&p, "sioc-latency-threshold", "5ms", err, 256), 0);
  ck_assert (!p.latency_auto);
  ck_assert_uint_eq (p.latency_threshold_ns, 5 * MS);
  ck_assert_int_eq (
      sioc_policy_set (&p, "sioc-latency-threshold", "30", err, 256), -1);
  ck_assert_int_eq (
      sioc_policy_set (&p, "sioc-latency-threshold", "50us", err, 256), -1);
  ck_assert_int_eq (sioc_policy_set (&p, "file", "x.img", err, 256), 1);

  ck_assert_int_eq (sioc_policy_set (&p, "sioc-limit-iops", "100", err, 256),
                    0);
  ck_assert_int_eq (sioc_policy_set (&p, "sioc-reservation", "200", err, 256),
                    0);
  ck_assert_int_eq (sioc_policy_check (&p, err, 256), -1);
  ck_assert_ptr_nonnull (strstr (err, "sioc-reservation=200"));
}
END_TEST

START_TEST (policy_settings_file)
{
  struct sioc_policy p, before;
  char path[128], err[512];

  make_tmpdir ();
  snprintf (path, sizeof path, "%s/settings", tmpdir);
  sioc_policy_init (&p);
  write_file (path, "# vaioctl apply\n\n  sioc-limit-iops = 700 \n"
                    "sioc-shares=high\nsioc-latency-threshold=auto\n");
  ck_assert_int_eq (sioc_policy_load_file (path, &p, err, sizeof err), 0);
  ck_assert_uint_eq (p.limit_iops, 700);
  ck_assert_uint_eq (p.shares, 2000);
  ck_assert (p.latency_auto);

  /* All or nothing: a bad second line leaves the first unapplied. */
  before = p;
  write_file (path, "sioc-limit-iops=10\nsioc-shares=lots\n");
  ck_assert_int_eq (sioc_policy_load_file (path, &p, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "settings:2: sioc-shares: 'lots'"));
  ck_assert_mem_eq (&p, &before, sizeof p);

  write_file (path, "sioc-colour=blue\n");
  ck_assert_int_eq (sioc_policy_load_file (path, &p, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "settings:1: unknown key 'sioc-colour'"));
  write_file (path, "sioc-limit-iops\n");
  ck_assert_int_eq (sioc_policy_load_file (path, &p, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "expected key=value"));
  write_file (path, "sioc-limit-iops=50\nsioc-reservation=60\n");
  ck_assert_int_eq (sioc_policy_load_file (path, &p, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "is above sioc-limit-iops=50"));
  ck_assert_mem_eq (&p, &before, sizeof p);
  unlink (path);
  ck_assert_int_eq (sioc_policy_load_file (path, &p, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, path));
  remove_tmpdir ();
}
END_TEST

/* --- mClock tags --- */

START_TEST (cost_in_32k_units)
{
  ck_assert_uint_eq (sioc_cost_units (0), 1);
  ck_assert_uint_eq (sioc_cost_units (512), 1);
  ck_assert_uint_eq (sioc_cost_units (32768), 1);
  ck_assert_uint_eq (sioc_cost_units (32769), 2);
  ck_assert_uint_eq (sioc_cost_units (131072), 4);
  ck_assert_uint_eq (sioc_cost_units (1048576), 32);
}
END_TEST

START_TEST (limit_spaces_requests)
{
  struct sioc_tags t = { 0 };
  struct sioc_rates r = { .limit_iops = 100 };
  enum sioc_admit_reason why;
  uint64_t slack_ms = SIOC_TAG_SLACK_NS / MS;

  /* A backlog at 1 s: the tag may lag now by the slack, so the first
   * slack-worth (50 ms at 100/s: 6 requests) start at once, then one
   * every 10 ms.
   */
  for (uint64_t i = 0; i < 12; i++)
    {
      uint64_t due = 1000 - slack_ms + i * 10;
      uint64_t s = sioc_tags_admit (&t, 1000 * MS, 1, 4096, &r, &why);

      ck_assert_uint_eq (s, (due > 1000 ? due : 1000) * MS);
      ck_assert_int_eq (why, due > 1000 ? SIOC_ADMIT_LIMIT : SIOC_ADMIT_FREE);
    }
  /* After an idle pause no more than the slack is banked. */
  for (int i = 0; i < 6; i++)
    ck_assert_uint_eq (sioc_tags_admit (&t, 5000 * MS, 1, 4096, &r, &why),
                       5000 * MS);
  ck_assert_uint_eq (sioc_tags_admit (&t, 5000 * MS, 1, 4096, &r, &why),
                     5010 * MS);
  /* A 128 KiB request is 4 units: it pushes the next by 40 ms. */
  memset (&t, 0, sizeof t);
  ck_assert_uint_eq (sioc_tags_admit (&t, 0, 4, 131072, &r, &why), 0);
  ck_assert_uint_eq (sioc_tags_admit (&t, 0, 1, 4096, &r, &why), 40 * MS);
}
END_TEST

START_TEST (limit_count_over_one_second)
{
  struct sioc_tags t = { 0 };
  struct sioc_rates r = { .limit_iops = 400 };
  enum sioc_admit_reason why;
  unsigned n = 0;

  /* Saturating client from 1 s: starts before 2 s are one second at the
   * limit plus the slack (50 ms = 20 requests) the tag may lag by.
   */
  while (sioc_tags_admit (&t, 1000 * MS, 1, 4096, &r, &why) < 2000 * MS)
    n++;
  ck_assert_uint_eq (n, 420);
}
END_TEST

START_TEST (bandwidth_limit)
{
  struct sioc_tags t = { 0 };
  struct sioc_rates r = { .limit_bps = 1048576 };
  enum sioc_admit_reason why;

  sioc_tags_admit (&t, 0, 2, 65536, &r, &why);
  /* 64 KiB at 1 MiB/s: 62.5 ms. */
  ck_assert_uint_eq (sioc_tags_admit (&t, 0, 2, 65536, &r, &why), 62500000u);
}
END_TEST

START_TEST (limit_removed_live)
{
  struct sioc_tags t = { 0 };
  struct sioc_rates r = { .limit_iops = 1 };
  enum sioc_admit_reason why;

  sioc_tags_admit (&t, 0, 1, 4096, &r, &why);
  r.limit_iops = 0;
  ck_assert_uint_eq (sioc_tags_admit (&t, 10 * MS, 1, 4096, &r, &why), 10 * MS);
  ck_assert_int_eq (why, SIOC_ADMIT_FREE);
}
END_TEST

START_TEST (uncongested_is_free)
{
  struct sioc_tags t = { 0 };
  struct sioc_rates r = { .reservation_iops = 100 };
  enum sioc_admit_reason why;

  for (int i = 0; i < 100; i++)
    {
      ck_assert_uint_eq (sioc_tags_admit (&t, 7 * MS, 1, 4096, &r, &why),
                         7 * MS);
      ck_assert_int_eq (why, SIOC_ADMIT_FREE);
    }
}
END_TEST

START_TEST (share_reservation_and_limit)
{
  struct sioc_tags t = { 0 };
  struct sioc_rates r = { .entitlement_iops = 200 };
  enum sioc_admit_reason why;
  uint64_t s = 0;

  /* Entitlement alone: 5 ms apart. */
  for (int i = 0; i < 5; i++)
    s = sioc_tags_admit (&t, 0, 1, 4096, &r, &why);
  ck_assert_uint_eq (s, 20 * MS);
  ck_assert_int_eq (why, SIOC_ADMIT_SHARE);

  /* A reservation above the entitlement wins: 250/s = 4 ms apart. */
  memset (&t, 0, sizeof t);
  r = (struct sioc_rates){ .entitlement_iops = 100, .reservation_iops = 250 };
  for (int i = 0; i < 11; i++)
    s = sioc_tags_admit (&t, 0, 1, 4096, &r, &why);
  ck_assert_uint_eq (s, 40 * MS);
  ck_assert_int_eq (why, SIOC_ADMIT_RESERVATION);

  /* The limit caps both. */
  memset (&t, 0, sizeof t);
  r = (struct sioc_rates){ .entitlement_iops = 500,
                           .reservation_iops = 40,
                           .limit_iops = 50 };
  for (int i = 0; i < 3; i++)
    s = sioc_tags_admit (&t, 0, 1, 4096, &r, &why);
  ck_assert_uint_eq (s, 40 * MS);
  ck_assert_int_eq (why, SIOC_ADMIT_LIMIT);
}
END_TEST

/* --- allocation --- */

static void
alloc3 (double capacity, struct sioc_claim *c, size_t n)
{
  sioc_allocate (capacity, c, n);
}

START_TEST (allocate_by_shares)
{
  struct sioc_claim c[3] = {
    { .shares = 500, .cap = INFINITY },
    { .shares = 1000, .cap = INFINITY },
    { .shares = 2000, .cap = INFINITY },
  };

  alloc3 (700, c, 3);
  ck_assert_double_eq_tol (c[0].out, 100, 1e-6);
  ck_assert_double_eq_tol (c[1].out, 200, 1e-6);
  ck_assert_double_eq_tol (c[2].out, 400, 1e-6);
  alloc3 (300, c, 2);
  ck_assert_double_eq_tol (c[0].out, 100, 1e-6);
  ck_assert_double_eq_tol (c[1].out, 200, 1e-6);
}
END_TEST

START_TEST (allocate_reservation_first)
{
  struct sioc_claim c[2] = {
    { .shares = 500, .reservation = 250, .cap = INFINITY },
    { .shares = 2000, .cap = INFINITY },
  };

  alloc3 (450, c, 2);
  ck_assert_double_eq_tol (c[0].out, 250, 1e-6);
  ck_assert_double_eq_tol (c[1].out, 200, 1e-6);
  ck_assert_double_eq_tol (c[0].reserved, 250, 1e-6);
  /* Reservations beyond capacity (550 on 400) are scaled down to fit 90%
   * of it (360): 250 -> 163.6, 300 -> 196.4; the other 40 go by shares,
   * all of it to the 2000-share disk (its share, 4x, is above its
   * scaled reservation first).
   */
  c[1].reservation = 300;
  ck_assert_double_eq_tol (sioc_allocate (400, c, 2), 360.0 / 550, 1e-9);
  ck_assert_double_eq_tol (c[0].reserved, 250 * 360.0 / 550, 1e-6);
  ck_assert_double_eq_tol (c[1].reserved, 300 * 360.0 / 550, 1e-6);
  ck_assert_double_eq_tol (c[0].out, 250 * 360.0 / 550, 1e-6);
  ck_assert_double_eq_tol (c[0].out + c[1].out, 400, 1e-6);
}
END_TEST

/* The audit's case: one disk reserves 100000 IOPS on a datastore of 250;
 * its neighbour with twice the shares keeps the unreservable 10%, not the
 * crawl it got when the reservation was honoured whole.
 */
START_TEST (allocate_huge_reservation_scaled)
{
  struct sioc_claim c[2] = {
    { .shares = 1000, .reservation = 100000, .cap = INFINITY },
    { .shares = 2000, .cap = INFINITY },
  };

  ck_assert_double_lt (sioc_allocate (250, c, 2), 0.01);
  ck_assert_double_eq_tol (c[0].reserved, 225, 1e-6);
  ck_assert_double_eq_tol (c[0].out, 225, 1e-6);
  ck_assert_double_eq_tol (c[1].reserved, 0, 1e-9);
  ck_assert_double_eq_tol (c[1].out, 25, 1e-6);
  /* Reservations that fit are untouched. */
  c[0].reservation = 100;
  ck_assert_double_eq (sioc_allocate (250, c, 2), 1);
  ck_assert_double_eq_tol (c[0].reserved, 100, 1e-9);
}
END_TEST

/* The audit's case: a peer claims 300 IOPS of backlogged demand and the
 * most shares a slot may carry (10000, larger is refused) beside two
 * real 1000-share disks on a capacity of 270.  By shares the real disks
 * get 22.5 each; with 100 shares each 2.6, and the floor (capacity / 4
 * per contender, 3 contenders) lifts them to 22.5.
 */
START_TEST (contender_floor_bounds_overstating_peer)
{
  struct sioc_claim c[3] = {
    { .shares = 10000, .cap = INFINITY },
    { .shares = 1000, .cap = INFINITY },
    { .shares = 1000, .cap = INFINITY },
  };

  sioc_allocate (270, c, 3);
  ck_assert_double_eq_tol (c[1].out, 22.5, 1e-6);
  c[1].shares = c[2].shares = 100;
  sioc_allocate (270, c, 3);
  ck_assert_double_lt (c[1].out, 3);
  ck_assert_double_eq_tol (sioc_contender_floor (270, 3), 22.5, 1e-9);
  ck_assert_double_eq (sioc_contender_floor (0, 3), 0);
  ck_assert_double_eq_tol (sioc_contender_floor (100, 0), 25, 1e-9);
  /* Any mix of the presets is divided by shares alone: the worst case,
   * low beside n-1 disks at high, is still above the floor.
   */
  for (unsigned n = 2; n <= 64; n++)
    {
      struct sioc_claim m[64];

      for (unsigned i = 0; i < n; i++)
        m[i] = (struct sioc_claim){ .shares = i == 0 ? 500 : 2000,
                                    .cap = INFINITY };
      sioc_allocate (1000, m, n);
      ck_assert_double_gt (m[0].out, sioc_contender_floor (1000, n));
    }
}
END_TEST

START_TEST (allocate_caps_redistribute)
{
  struct sioc_claim c[3] = {
    { .shares = 1000, .cap = 50 },
    { .shares = 1000, .cap = INFINITY },
    { .shares = 2000, .cap = INFINITY },
  };

  alloc3 (650, c, 3);
  ck_assert_double_eq_tol (c[0].out, 50, 1e-6);
  ck_assert_double_eq_tol (c[1].out, 200, 1e-6);
  ck_assert_double_eq_tol (c[2].out, 400, 1e-6);
  /* Everyone capped below capacity: each gets its cap. */
  c[1].cap = 10;
  c[2].cap = 20;
  alloc3 (650, c, 3);
  ck_assert_double_eq_tol (c[0].out + c[1].out + c[2].out, 80, 1e-6);
}
END_TEST

/* --- congestion --- */

static struct sioc_datastore_sample
sample (uint64_t ms, double iops, double lat_ms, unsigned contenders)
{
  return (struct sioc_datastore_sample){ .now_ns = ms * MS,
                                         .delivered_iops = iops,
                                         .latency_ns = lat_ms * MS,
                                         .contenders = contenders };
}

START_TEST (congestion_needs_two_contenders)
{
  struct sioc_congestion c;
  struct sioc_datastore_sample s = sample (0, 500, 80, 1);

  sioc_congestion_init (&c);
  sioc_congestion_step (&c, &s, 30 * MS);
  ck_assert (!c.congested);
  s.contenders = 2;
  sioc_congestion_step (&c, &s, 30 * MS);
  ck_assert (c.congested);
  ck_assert_double_eq_tol (c.capacity_iops, 500, 1e-9);
  s.contenders = 1;
  sioc_congestion_step (&c, &s, 30 * MS);
  ck_assert (!c.congested);
}
END_TEST

START_TEST (congestion_cut_probe_exit)
{
  struct sioc_congestion c;
  struct sioc_datastore_sample s = sample (1000, 400, 50, 2);

  sioc_congestion_init (&c);
  sioc_congestion_step (&c, &s, 30 * MS);
  ck_assert (c.congested);
  /* Still slow: no second cut inside the hold, then a 10% cut. */
  s = sample (1100, 400, 50, 2);
  sioc_congestion_step (&c, &s, 30 * MS);
  ck_assert_double_eq_tol (c.capacity_iops, 400, 1e-9);
  s = sample (1250, 400, 50, 2);
  sioc_congestion_step (&c, &s, 30 * MS);
  ck_assert_double_eq_tol (c.capacity_iops, 360, 1e-9);
  /* Fast and binding: probe up 1% per step. */
  s = sample (1300, 360, 5, 2);
  sioc_congestion_step (&c, &s, 30 * MS);
  ck_assert_double_eq_tol (c.capacity_iops, 363.6, 1e-9);
  /* Demand fell far below the estimate: exit after a second of slack. */
  s = sample (1400, 100, 5, 2);
  sioc_congestion_step (&c, &s, 30 * MS);
  ck_assert (c.congested);
  s = sample (2000, 100, 5, 2);
  sioc_congestion_step (&c, &s, 30 * MS);
  ck_assert (c.congested);
  s = sample (2450, 100, 5, 2);
  sioc_congestion_step (&c, &s, 30 * MS);
  ck_assert (!c.congested);
}
END_TEST

START_TEST (congestion_cut_floor)
{
  struct sioc_congestion c;
  struct sioc_datastore_sample s = sample (1000, 400, 50, 2);

  /* Latency that never falls (someone else loads the datastore): cuts
   * stop at half the onset throughput instead of idling it.
   */
  sioc_congestion_init (&c);
  for (uint64_t t = 1000; t < 10000; t += 50)
    {
      s = sample (t, 100, 50, 2);
      if (t == 1000)
        s.delivered_iops = 400;
      sioc_congestion_step (&c, &s, 30 * MS);
    }
  ck_assert (c.congested);
  ck_assert_double_eq_tol (c.capacity_iops, 200, 1e-9);
}
END_TEST

/* A follower with a fake leader: the leader's word is taken only within
 * the follower's own bounds.
 */
START_TEST (follower_bounds_leader)
{
  struct sioc_congestion c;
  struct sioc_datastore_sample lone = sample (1000, 240, 60, 1),
                               two = sample (1000, 240, 60, 2);

  sioc_congestion_init (&c);
  /* A lone active disk told "congested, capacity 0.001": not congested,
   * and the refusal is reported.
   */
  ck_assert (sioc_congestion_follow (&c, true, 0.001, &lone));
  ck_assert (!c.congested);
  ck_assert_double_eq (c.capacity_iops, 0);
  /* Two contenders: congested, but the capacity is floored at half the
   * throughput the slots showed at onset (240).
   */
  ck_assert (sioc_congestion_follow (&c, true, 0.001, &two));
  ck_assert (c.congested);
  ck_assert_double_eq_tol (c.capacity_iops, 120, 1e-9);
  /* The floor is the follower's own reading: the leader keeping the
   * disks throttled (their throughput falls) does not walk it down, for
   * as long as it lasts.
   */
  two.delivered_iops = 30;
  for (int i = 0; i < 10000; i++)
    ck_assert (sioc_congestion_follow (&c, true, 0.001, &two));
  ck_assert_double_eq_tol (c.capacity_iops, 120, 1e-9);
  /* More throughput raises it. */
  two.delivered_iops = 300;
  ck_assert (sioc_congestion_follow (&c, true, 0.001, &two));
  ck_assert_double_eq_tol (c.capacity_iops, 150, 1e-9);
  two.delivered_iops = 30;
  /* A sane estimate passes untouched. */
  ck_assert (!sioc_congestion_follow (&c, true, 200, &two));
  ck_assert_double_eq_tol (c.capacity_iops, 200, 1e-9);
  /* Uncongested: nothing to refuse, and the peak fades (0.998 a step):
   * after a while the floor is down to what the slots now show.
   */
  ck_assert (!sioc_congestion_follow (&c, false, 0, &two));
  ck_assert (!c.congested);
  ck_assert (sioc_congestion_follow (&c, true, 5, &two));
  ck_assert_double_eq_tol (c.capacity_iops, 150 * 0.998, 1e-9);
  two.delivered_iops = 8;
  for (int i = 0; i < 3000; i++)
    sioc_congestion_follow (&c, false, 0, &two);
  ck_assert (sioc_congestion_follow (&c, true, 5, &two));
  ck_assert_double_eq_tol (c.capacity_iops, SIOC_MIN_CAPACITY, 1e-9);
}
END_TEST

START_TEST (vanishing_rate_is_floored)
{
  struct sioc_tags t = { 0 };
  struct sioc_rates r = { .entitlement_iops = 1e-30 };
  enum sioc_admit_reason why;

  sioc_tags_admit (&t, 0, 1, 4096, &r, &why);
  /* Spaced at SIOC_RATE_FLOOR (1/s), not at the end of time. */
  ck_assert_uint_eq (sioc_tags_admit (&t, 0, 1, 4096, &r, &why), 1000 * MS);
}
END_TEST

START_TEST (auto_threshold)
{
  struct sioc_auto_threshold a;

  sioc_auto_threshold_init (&a);
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 30 * MS);
  sioc_auto_threshold_observe (&a, 1000, 60 * MS); /* peak */
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 60 * MS);
  sioc_auto_threshold_observe (&a, 500, 2 * MS); /* far below: ignored */
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 60 * MS);
  sioc_auto_threshold_observe (&a, 900, 12 * MS); /* 90%, sooner */
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 12 * MS);
  sioc_auto_threshold_observe (&a, 950, 40 * MS); /* a longer queue */
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 12 * MS);
  sioc_auto_threshold_observe (&a, 2000, 80 * MS); /* new peak: start over */
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 80 * MS);
  sioc_auto_threshold_observe (&a, 1700, 9 * MS); /* 85%: not enough */
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 80 * MS);
}
END_TEST

static void
observe_n (struct sioc_auto_threshold *a, unsigned n, double iops, double lat)
{
  for (unsigned i = 0; i < n; i++)
    sioc_auto_threshold_observe (a, iops, lat);
}

/* The peak is not kept for ever: a datastore that got slower is learnt
 * again within two epochs; one that keeps reaching its knee keeps it.
 */
START_TEST (auto_threshold_forgets)
{
  struct sioc_auto_threshold a;

  sioc_auto_threshold_init (&a);
  sioc_auto_threshold_observe (&a, 250, 60 * MS);
  observe_n (&a, SIOC_AUTO_EPOCH - 1, 240, 5 * MS);
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 5 * MS);
  /* Same datastore, next epoch starts under load (long queue, a touch
   * above the old peak): the old knee stays, and the datastore reaching
   * it again keeps it into the next epoch.
   */
  observe_n (&a, 10, 255, 60 * MS);
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 5 * MS);
  observe_n (&a, SIOC_AUTO_EPOCH - 10, 240, 5 * MS);
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 5 * MS);
  /* The datastore halves: 120 IOPS, knee 10ms.  Still the old knee while
   * the old epoch is remembered...
   */
  observe_n (&a, SIOC_AUTO_EPOCH - 1, 120, 10 * MS);
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 5 * MS);
  /* ...then learnt afresh. */
  observe_n (&a, 1, 120, 10 * MS);
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 10 * MS);
  observe_n (&a, 5, 125, 40 * MS);
  ck_assert_double_eq (sioc_auto_threshold_get (&a, 30 * MS), 10 * MS);
}
END_TEST

/* --- segment --- */

static char seg_path[128];

static struct sioc_segment *
open_seg (void)
{
  char err[512];
  struct sioc_segment *seg
      = sioc_segment_open (seg_path, NULL, err, sizeof err);

  ck_assert_msg (seg != NULL, "%s", err);
  return seg;
}

static void
seg_setup (void)
{
  make_tmpdir ();
  snprintf (seg_path, sizeof seg_path, "%s/ds.seg", tmpdir);
}

static uint64_t
mono_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct sioc_slot_data
slot_data (uint64_t now, uint32_t shares)
{
  struct sioc_slot_data d;

  memset (&d, 0, sizeof d);
  d.pid = (uint64_t)getpid ();
  d.heartbeat_ns = now;
  d.shares = shares;
  d.delivered_miops = 123456;
  d.latency_ns = 2 * MS;
  strcpy (d.name, "vm1-disk0");
  return d;
}

START_TEST (segment_create_publish_read)
{
  struct sioc_segment *seg = open_seg (), *seg2;
  struct sioc_slot_data d, got;
  uint64_t now = mono_ns (), ta = sioc_segment_token (),
           tb = sioc_segment_token ();
  struct stat st;
  int a, b;

  ck_assert_int_eq (stat (seg_path, &st), 0);
  ck_assert_uint_eq (st.st_mode & 0777, 0600);
  seg2 = open_seg (); /* a second process's view */
  a = sioc_segment_claim (seg, ta, now, 400 * MS, "a");
  b = sioc_segment_claim (seg2, tb, now, 400 * MS, "b");
  ck_assert_int_ge (a, 0);
  ck_assert_int_ge (b, 0);
  ck_assert_int_ne (a, b);

  d = slot_data (now, 2000);
  ck_assert_int_eq (sioc_segment_publish (seg, a, ta, &d), 0);
  ck_assert_int_eq (sioc_segment_read (seg2, a, now, 400 * MS, &got),
                    SIOC_SLOT_LIVE);
  ck_assert_uint_eq (got.shares, 2000);
  ck_assert_uint_eq (got.delivered_miops, 123456);
  ck_assert_str_eq (got.name, "vm1-disk0");
  ck_assert_uint_eq (got.token, ta);
  /* Only the owner publishes. */
  ck_assert_int_eq (sioc_segment_publish (seg2, a, tb, &d), -1);
  ck_assert_int_eq (sioc_segment_read (seg, 5, now, 400 * MS, &got),
                    SIOC_SLOT_FREE);
  sioc_segment_release (seg, a, ta);
  ck_assert_int_eq (sioc_segment_read (seg2, a, now, 400 * MS, &got),
                    SIOC_SLOT_FREE);
  sioc_segment_close (seg);
  sioc_segment_close (seg2);
}
END_TEST

START_TEST (segment_rejects_corrupt_and_insane_slots)
{
  struct sioc_segment *seg = open_seg ();
  uint64_t now = mono_ns (), tok = sioc_segment_token ();
  struct sioc_slot_data d, got;
  struct sioc_slot *s;
  int i = sioc_segment_claim (seg, tok, now, 400 * MS, "a");

  s = sioc_segment_slot (seg, i);
  d = slot_data (now, 1000);
  sioc_segment_publish (seg, i, tok, &d);
  /* A flipped bit in the data: checksum mismatch. */
  s->data.delivered_miops ^= 1;
  ck_assert_int_eq (sioc_segment_read (seg, i, now, 400 * MS, &got),
                    SIOC_SLOT_BAD);
  /* Checksummed but insane numbers are refused too. */
  d.shares = 0;
  sioc_segment_publish (seg, i, tok, &d);
  ck_assert_int_eq (sioc_segment_read (seg, i, now, 400 * MS, &got),
                    SIOC_SLOT_BAD);
  d = slot_data (now, 1000);
  d.shares = 10001; /* above the most a policy may set */
  sioc_segment_publish (seg, i, tok, &d);
  ck_assert_int_eq (sioc_segment_read (seg, i, now, 400 * MS, &got),
                    SIOC_SLOT_BAD);
  d = slot_data (now, 1000);
  d.delivered_miops = UINT64_C (1) << 60;
  sioc_segment_publish (seg, i, tok, &d);
  ck_assert_int_eq (sioc_segment_read (seg, i, now, 400 * MS, &got),
                    SIOC_SLOT_BAD);
  d = slot_data (now + 5000 * MS, 1000); /* heartbeat from the future */
  sioc_segment_publish (seg, i, tok, &d);
  ck_assert_int_eq (sioc_segment_read (seg, i, now, 400 * MS, &got),
                    SIOC_SLOT_BAD);
  /* A writer that died mid-write leaves seq odd: torn, then stale. */
  d = slot_data (now, 1000);
  sioc_segment_publish (seg, i, tok, &d);
  s->seq |= 1;
  ck_assert_int_eq (sioc_segment_read (seg, i, now, 400 * MS, &got),
                    SIOC_SLOT_BAD);
  ck_assert_int_eq (sioc_segment_read (seg, i, now + 500 * MS, 400 * MS, &got),
                    SIOC_SLOT_STALE);
  /* The owner's next publish repairs it. */
  sioc_segment_publish (seg, i, tok, &d);
  ck_assert_uint_eq (s->seq & 1, 0);
  ck_assert_int_eq (sioc_segment_read (seg, i, now, 400 * MS, &got),
                    SIOC_SLOT_LIVE);
  sioc_segment_close (seg);
}
END_TEST

static uint64_t
dead_token (void)
{
  pid_t pid = fork ();

  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    _exit (0);
  waitpid (pid, NULL, 0);
  return (uint64_t)(uint32_t)pid | (UINT64_C (7) << 32);
}

START_TEST (segment_stale_and_dead_slots_reclaimed)
{
  struct sioc_segment *seg = open_seg ();
  uint64_t now = mono_ns (), toks[SIOC_SEG_SLOTS], dead = dead_token (),
           mine = sioc_segment_token ();
  struct sioc_slot_data d, got;

  /* Fill the segment with live disks. */
  for (int i = 0; i < SIOC_SEG_SLOTS; i++)
    {
      toks[i] = sioc_segment_token () + ((uint64_t)i << 40);
      ck_assert_int_eq (sioc_segment_claim (seg, toks[i], now, 400 * MS, "x"),
                        i);
      d = slot_data (now, 1000);
      sioc_segment_publish (seg, i, toks[i], &d);
    }
  ck_assert_int_eq (sioc_segment_claim (seg, mine, now, 400 * MS, "me"), -1);

  /* Slot 9's owner stops heartbeating: stale after 400 ms, reclaimed. */
  d = slot_data (now - 500 * MS, 1000);
  sioc_segment_publish (seg, 9, toks[9], &d);
  ck_assert_int_eq (sioc_segment_read (seg, 9, now, 400 * MS, &got),
                    SIOC_SLOT_STALE);
  ck_assert_int_eq (sioc_segment_claim (seg, mine, now, 400 * MS, "me"), 9);
  ck_assert_int_eq (sioc_segment_read (seg, 9, now, 400 * MS, &got),
                    SIOC_SLOT_LIVE);
  ck_assert_str_eq (got.name, "me");
  /* The stalled owner wakes up: its publish fails, it must re-claim. */
  ck_assert_int_eq (sioc_segment_publish (seg, 9, toks[9], &d), -1);

  /* Slot 20's owner process is gone: stale at once, fresh heartbeat or
   * not, and reclaimable.
   */
  __atomic_store_n (&sioc_segment_slot (seg, 20)->owner, dead,
                    __ATOMIC_RELEASE);
  ck_assert_int_eq (sioc_segment_read (seg, 20, now, 400 * MS, &got),
                    SIOC_SLOT_STALE);
  ck_assert_int_eq (sioc_segment_claim (seg, toks[9], now, 400 * MS, "x"), 20);
  sioc_segment_close (seg);
}
END_TEST

/* vaioctl's datastore names map to <state-dir>/datastores/NAME.seg: the
 * first disk makes the directory, owner-only; a missing state dir above
 * it is an error naming the segment.
 */
START_TEST (segment_makes_datastores_dir)
{
  char path[192], err[512];
  struct sioc_segment *seg;
  struct stat st;
  bool corrupt;

  snprintf (path, sizeof path, "%s/datastores/ds1.seg", tmpdir);
  seg = sioc_segment_open (path, NULL, err, sizeof err);
  ck_assert_msg (seg != NULL, "%s", err);
  sioc_segment_close (seg);
  snprintf (path, sizeof path, "%s/datastores", tmpdir);
  ck_assert_int_eq (stat (path, &st), 0);
  ck_assert_uint_eq (st.st_mode & 0777, 0700);
  snprintf (path, sizeof path, "%s/nowhere/datastores/ds1.seg", tmpdir);
  corrupt = true;
  ck_assert_ptr_null (sioc_segment_open (path, &corrupt, err, sizeof err));
  ck_assert_ptr_nonnull (strstr (err, path));
  ck_assert (!corrupt); /* a path that cannot be used, not a bad file */
}
END_TEST

static void
expect_open_error (const char *want)
{
  char err[512];
  bool corrupt = false;
  struct sioc_segment *seg
      = sioc_segment_open (seg_path, &corrupt, err, sizeof err);

  ck_assert_ptr_null (seg);
  ck_assert_msg (corrupt, "'%s' not reported as corrupt contents", err);
  ck_assert_msg (strstr (err, want) != NULL, "'%s' lacks '%s'", err, want);
  ck_assert_ptr_nonnull (strstr (err, seg_path));
}

static void
poke (off_t offset, const void *bytes, size_t n)
{
  int fd = open (seg_path, O_WRONLY);

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pwrite (fd, bytes, n, offset), (ssize_t)n);
  close (fd);
}

/* Flip every bit of one byte: always a change, whatever it held. */
static void
flip (off_t offset)
{
  int fd = open (seg_path, O_RDWR);
  unsigned char b;

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pread (fd, &b, 1, offset), 1);
  b ^= 0xff;
  ck_assert_int_eq (pwrite (fd, &b, 1, offset), 1);
  close (fd);
}

START_TEST (segment_header_corruption)
{
  uint32_t v = 99;

  sioc_segment_close (open_seg ());
  poke (0, "XXXX", 4);
  expect_open_error ("bad magic");
  unlink (seg_path);

  sioc_segment_close (open_seg ());
  poke (8, &v, sizeof v);
  expect_open_error ("datastore segment version 99");
  unlink (seg_path);

  sioc_segment_close (open_seg ());
  flip (24);
  expect_open_error ("checksum mismatch");
  unlink (seg_path);

  sioc_segment_close (open_seg ());
  ck_assert_int_eq (truncate (seg_path, 4096), 0);
  expect_open_error ("bytes, expected");
  ck_assert_int_eq (truncate (seg_path, 10), 0);
  expect_open_error ("too short");
}
END_TEST

static Suite *
sioc_suite (void)
{
  Suite *s = suite_create ("vaio-sioc");
  TCase *policy = tcase_create ("policy"), *tags = tcase_create ("mclock"),
        *cong = tcase_create ("congestion"), *seg = tcase_create ("segment");

  tcase_add_test (policy, policy_defaults_and_shares);
  tcase_add_test (policy, policy_rates_threshold_unknown);
  tcase_add_test (policy, policy_settings_file);
  tcase_add_test (tags, cost_in_32k_units);
  tcase_add_test (tags, limit_spaces_requests);
  tcase_add_test (tags, limit_count_over_one_second);
  tcase_add_test (tags, bandwidth_limit);
  tcase_add_test (tags, limit_removed_live);
  tcase_add_test (tags, uncongested_is_free);
  tcase_add_test (tags, share_reservation_and_limit);
  tcase_add_test (tags, allocate_by_shares);
  tcase_add_test (tags, allocate_reservation_first);
  tcase_add_test (tags, allocate_huge_reservation_scaled);
  tcase_add_test (tags, allocate_caps_redistribute);
  tcase_add_test (tags, contender_floor_bounds_overstating_peer);
  tcase_add_test (cong, congestion_needs_two_contenders);
  tcase_add_test (cong, congestion_cut_probe_exit);
  tcase_add_test (cong, congestion_cut_floor);
  tcase_add_test (tags, vanishing_rate_is_floored);
  tcase_add_test (cong, auto_threshold);
  tcase_add_test (cong, auto_threshold_forgets);
  tcase_add_test (cong, follower_bounds_leader);
  tcase_add_checked_fixture (seg, seg_setup, remove_tmpdir);
  tcase_add_test (seg, segment_create_publish_read);
  tcase_add_test (seg, segment_rejects_corrupt_and_insane_slots);
  tcase_add_test (seg, segment_stale_and_dead_slots_reclaimed);
  tcase_add_test (seg, segment_header_corruption);
  tcase_add_test (seg, segment_makes_datastores_dir);
  suite_add_tcase (s, policy);
  suite_add_tcase (s, tags);
  suite_add_tcase (s, cong);
  suite_add_tcase (s, seg);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (sioc_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

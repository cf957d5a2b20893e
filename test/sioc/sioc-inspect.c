/* sioc-inspect: read vaio-sioc's published state for the integration
 * tests (vaioctl status is the user's view; this is the tests').
 *
 *   sioc-inspect counter STATS-FILE NAME   one value (sioc counter, or
 *                                          read-ops, write-ops, p50-us,
 *                                          p99-us)
 *   sioc-inspect stats STATS-FILE          every value, name=value
 *   sioc-inspect rate STATS-FILE NAME SECS per-second rate of a counter
 *                                          over SECS, timed in-process
 *   sioc-inspect wait-ge STATS-FILE NAME VALUE TIMEOUT-MS
 *                                          poll every 10 ms until the
 *                                          counter is >= VALUE; print the
 *                                          milliseconds it took (exit 1 on
 *                                          timeout)
 *   sioc-inspect segment SEGMENT-FILE      one line per claimed slot
 *   sioc-inspect fake-peer SEGMENT-FILE CAPACITY-MIOPS FLAGS SHARES
 *                [DELIVERED-MIOPS [RESERVATION-MIOPS]]
 *                                          a rogue peer: claim a slot and
 *                                          publish, every 50 ms until
 *                                          killed, numbers that pass the
 *                                          sanity checks but lie (flags 2:
 *                                          "congested"; 1: "backlogged",
 *                                          with a reservation of 1000000
 *                                          IOPS unless given; it moves no
 *                                          I/O, whatever throughput it
 *                                          claims, 0 by default).  Prints
 *                                          the slot.
 *
 * Exit 1 with the reader's message when a file is missing or corrupt.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mclock.h"
#include "segment.h"
#include "stats.h"

static const char *const state_names[] = {
  [SIOC_SLOT_FREE] = "free",
  [SIOC_SLOT_LIVE] = "live",
  [SIOC_SLOT_STALE] = "stale",
  [SIOC_SLOT_BAD] = "bad",
};

static uint64_t
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
all_hist (const struct vaio_stats_snapshot *s,
          uint64_t hist[VAIO_STATS_LAT_BUCKETS])
{
  memset (hist, 0, sizeof (uint64_t) * VAIO_STATS_LAT_BUCKETS);
  for (int op = 0; op < VAIO_OP_COUNT; op++)
    for (int b = 0; b < VAIO_STATS_LAT_BUCKETS; b++)
      hist[b] += s->body.op[op].latency_hist[b];
}

static void
print_stats (const struct vaio_stats_snapshot *s, const char *only)
{
  uint64_t hist[VAIO_STATS_LAT_BUCKETS];

  all_hist (s, hist);
  if (only == NULL)
    {
      printf ("read-ops=%" PRIu64 "\n", s->body.op[VAIO_OP_READ].ops);
      printf ("write-ops=%" PRIu64 "\n", s->body.op[VAIO_OP_WRITE].ops);
      printf ("read-bytes=%" PRIu64 "\n", s->body.op[VAIO_OP_READ].bytes);
      printf ("write-bytes=%" PRIu64 "\n", s->body.op[VAIO_OP_WRITE].bytes);
      printf ("p50-us=%.0f\n", vaio_stats_percentile_us (hist, 0.5));
      printf ("p99-us=%.0f\n", vaio_stats_percentile_us (hist, 0.99));
      for (unsigned i = 0; i < s->header.n_counters; i++)
        printf ("%.*s=%" PRIu64 "\n", VAIO_STATS_NAME_LEN,
                s->header.counter_names[i], s->body.counters[i]);
      return;
    }
  if (strcmp (only, "read-ops") == 0)
    printf ("%" PRIu64 "\n", s->body.op[VAIO_OP_READ].ops);
  else if (strcmp (only, "write-ops") == 0)
    printf ("%" PRIu64 "\n", s->body.op[VAIO_OP_WRITE].ops);
  else if (strcmp (only, "p50-us") == 0)
    printf ("%.0f\n", vaio_stats_percentile_us (hist, 0.5));
  else if (strcmp (only, "p99-us") == 0)
    printf ("%.0f\n", vaio_stats_percentile_us (hist, 0.99));
  else
    {
      int i = vaio_stats_counter_index (s, only);

      if (i < 0)
        {
          fprintf (stderr, "sioc-inspect: no counter '%s'\n", only);
          exit (1);
        }
      printf ("%" PRIu64 "\n", s->body.counters[i]);
    }
}

static int
stats_cmd (const char *path, const char *only)
{
  struct vaio_stats_snapshot snap;
  char err[512];

  if (vaio_stats_read (path, &snap, err, sizeof err) == -1)
    {
      fprintf (stderr, "sioc-inspect: %s\n", err);
      return 1;
    }
  print_stats (&snap, only);
  return 0;
}

/* The counter's rate over secs, both samples and the clock read in this
 * process, so a busy host's fork/exec delays do not skew it.
 */
static int
rate_cmd (const char *path, const char *name, const char *secs_s)
{
  struct vaio_stats_snapshot a, b;
  char err[512];
  double secs = atof (secs_s);
  uint64_t t0, t1;
  struct timespec ts;
  int i;

  if (secs <= 0 || secs > 60)
    {
      fprintf (stderr, "sioc-inspect: bad seconds '%s'\n", secs_s);
      return 2;
    }
  if (vaio_stats_read (path, &a, err, sizeof err) == -1)
    goto fail;
  t0 = now_ns ();
  i = vaio_stats_counter_index (&a, name);
  if (i < 0)
    {
      fprintf (stderr, "sioc-inspect: no counter '%s'\n", name);
      return 1;
    }
  ts.tv_sec = (time_t)secs;
  ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
  nanosleep (&ts, NULL);
  if (vaio_stats_read (path, &b, err, sizeof err) == -1)
    goto fail;
  t1 = now_ns ();
  printf ("%.1f\n", (double)(b.body.counters[i] - a.body.counters[i])
                        / ((double)(t1 - t0) / 1e9));
  return 0;

fail:
  fprintf (stderr, "sioc-inspect: %s\n", err);
  return 1;
}

static int
wait_cmd (const char *path, const char *name, const char *value_s,
          const char *timeout_s)
{
  uint64_t want = strtoull (value_s, NULL, 10), t0 = now_ns ();
  uint64_t timeout_ns = strtoull (timeout_s, NULL, 10) * 1000000u;
  struct vaio_stats_snapshot snap;
  const struct timespec tick = { .tv_nsec = 10000000 };
  char err[512];
  int i;

  for (;;)
    {
      if (vaio_stats_read (path, &snap, err, sizeof err) == -1)
        {
          fprintf (stderr, "sioc-inspect: %s\n", err);
          return 1;
        }
      i = vaio_stats_counter_index (&snap, name);
      if (i < 0)
        {
          fprintf (stderr, "sioc-inspect: no counter '%s'\n", name);
          return 1;
        }
      if (snap.body.counters[i] >= want)
        {
          printf ("%" PRIu64 "\n", (now_ns () - t0) / 1000000u);
          return 0;
        }
      if (now_ns () - t0 > timeout_ns)
        {
          fprintf (stderr,
                   "sioc-inspect: %s stayed at %" PRIu64 " < %" PRIu64 "\n",
                   name, snap.body.counters[i], want);
          return 1;
        }
      nanosleep (&tick, NULL);
    }
}

static int
segment_cmd (const char *path)
{
  struct sioc_segment *seg;
  struct sioc_slot_data d;
  char err[512];
  uint64_t now = now_ns ();

  seg = sioc_segment_open (path, NULL, err, sizeof err);
  if (seg == NULL)
    {
      fprintf (stderr, "sioc-inspect: %s\n", err);
      return 1;
    }
  for (int i = 0; i < SIOC_SEG_SLOTS; i++)
    {
      enum sioc_slot_state st = sioc_segment_read (seg, i, now, 400000000u, &d);

      if (st == SIOC_SLOT_FREE)
        continue;
      printf ("slot=%d state=%s", i, state_names[st]);
      if (st == SIOC_SLOT_LIVE)
        printf (" pid=%" PRIu64 " name=%s shares=%u delivered=%.1f "
                "entitlement=%.1f capacity=%.1f flags=%u",
                d.pid, d.name, d.shares, (double)d.delivered_miops / 1000,
                (double)d.entitlement_miops / 1000,
                (double)d.capacity_miops / 1000, d.flags);
      printf ("\n");
    }
  sioc_segment_close (seg);
  return 0;
}

static int
fake_peer_cmd (const char *path, const char *cap, const char *flags,
               const char *shares, const char *delivered,
               const char *reservation)
{
  struct timespec tick = { 0, 50000000 };
  struct sioc_segment *seg;
  struct sioc_slot_data d;
  uint64_t tok = sioc_segment_token ();
  char err[512];
  int idx;

  seg = sioc_segment_open (path, NULL, err, sizeof err);
  if (seg == NULL)
    {
      fprintf (stderr, "sioc-inspect: %s\n", err);
      return 1;
    }
  idx = sioc_segment_claim (seg, tok, now_ns (), 400000000u, "fake");
  if (idx < 0)
    {
      fprintf (stderr, "sioc-inspect: %s: no free slot\n", path);
      return 1;
    }
  printf ("%d\n", idx);
  fflush (stdout);
  memset (&d, 0, sizeof d);
  d.pid = (uint64_t)getpid ();
  d.shares = (uint32_t)strtoul (shares, NULL, 10);
  d.flags = (uint32_t)strtoul (flags, NULL, 10);
  d.capacity_miops = strtoull (cap, NULL, 10);
  d.reservation_miops = d.flags & SIOC_SLOT_BACKLOGGED ? 1000000000 : 0;
  if (reservation != NULL)
    d.reservation_miops = strtoull (reservation, NULL, 10);
  if (delivered != NULL)
    d.delivered_miops = strtoull (delivered, NULL, 10);
  d.threshold_ns = 30000000;
  strcpy (d.name, "fake");
  for (;;)
    {
      d.heartbeat_ns = now_ns ();
      if (sioc_segment_publish (seg, idx, tok, &d) == -1)
        return 1;
      nanosleep (&tick, NULL);
    }
}

int
main (int argc, char **argv)
{
  if (argc == 4 && strcmp (argv[1], "counter") == 0)
    return stats_cmd (argv[2], argv[3]);
  if (argc == 3 && strcmp (argv[1], "stats") == 0)
    return stats_cmd (argv[2], NULL);
  if (argc == 5 && strcmp (argv[1], "rate") == 0)
    return rate_cmd (argv[2], argv[3], argv[4]);
  if (argc == 6 && strcmp (argv[1], "wait-ge") == 0)
    return wait_cmd (argv[2], argv[3], argv[4], argv[5]);
  if (argc == 3 && strcmp (argv[1], "segment") == 0)
    return segment_cmd (argv[2]);
  if (argc >= 6 && argc <= 8 && strcmp (argv[1], "fake-peer") == 0)
    return fake_peer_cmd (argv[2], argv[3], argv[4], argv[5],
                          argc > 6 ? argv[6] : NULL, argc > 7 ? argv[7] : NULL);
  fprintf (stderr, "usage: sioc-inspect counter|stats|rate|wait-ge|segment|"
                   "fake-peer "
                   "FILE [NAME [SECS]]\n");
  return 2;
}

/* vaio-sioc: the control thread, see control.h. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nbdkit-filter.h>

#include "congestion.h"
#include "control.h"
#include "mclock.h"
#include "admission.h"
#include "segment.h"
#include "stats.h"

#define TICK_NS           50000000u   /* control period */
#define RELOAD_NS         100000000u  /* settings file checked this often */
#define STALE_NS          400000000u  /* peer silent this long is gone */
#define REOPEN_NS         1000000000u /* a corrupt segment is retried */
#define EWMA_ALPHA        0.3
#define ACTIVE_IOPS       1.0 /* below: idle, not a contender */
#define DEMAND_HEADROOM   1.5 /* non-backlogged disk's cap */
#define DEMAND_FLOOR      10.0
#define ENTITLEMENT_FLOOR 5.0 /* IOPS: a contender is never stopped */

/* -D vaio_sioc.control=1: one debug line per tick. */
NBDKIT_DLL_PUBLIC int vaio_sioc_debug_control;

static const struct vaio_stats_counter_def counter_defs[C_COUNT] = {
  [C_ADMITTED] = { "admitted-units", VAIO_COUNTER },
  [C_THROTTLED_NS] = { "throttled-ns", VAIO_COUNTER },
  [C_ENTITLEMENT] = { "entitlement-iops", VAIO_GAUGE },
  [C_DELIVERED] = { "delivered-iops", VAIO_GAUGE },
  [C_LIMIT_IOPS] = { "limit-iops", VAIO_GAUGE },
  [C_LIMIT_MBPS] = { "limit-mbps", VAIO_GAUGE },
  [C_RESERVATION] = { "reservation-iops", VAIO_GAUGE },
  [C_SHARES] = { "shares", VAIO_GAUGE },
  [C_CONGESTED] = { "congested", VAIO_GAUGE },
  [C_DS_LATENCY_US] = { "datastore-latency-us", VAIO_GAUGE },
  [C_THRESHOLD_US] = { "latency-threshold-us", VAIO_GAUGE },
  [C_BACKEND_LATENCY_US] = { "backend-latency-us", VAIO_GAUGE },
  [C_PEERS] = { "peers", VAIO_GAUGE },
  [C_PEER_REJECTED] = { "peer-rejected", VAIO_COUNTER },
  [C_SETTINGS_RELOADS] = { "settings-reloads", VAIO_COUNTER },
  [C_SETTINGS_ERRORS] = { "settings-errors", VAIO_COUNTER },
  [C_SLOT] = { "slot", VAIO_GAUGE },
  [C_RESERVATION_EFFECTIVE] = { "reservation-effective-iops", VAIO_GAUGE },
  [C_UNCOORDINATED] = { "uncoordinated", VAIO_GAUGE },
};

struct peer
{
  int slot;
  struct sioc_slot_data d;
};

/* Control state.  Written by sioc_control_prepare/start/stop on nbdkit's
 * main thread while the control thread does not run, and otherwise only
 * by the control thread: no lock needed.  stop_lock guards `stopping`.
 */
static struct
{
  struct sioc_control_config cfg;
  char settings_path[PATH_MAX];
  struct sioc_policy policy; /* in force: parameters + settings file */
  struct timespec settings_mtime;
  off_t settings_size;
  ino_t settings_ino;
  bool settings_seen;
  uint64_t next_reload_ns;

  struct sioc_segment *seg;
  uint64_t token;
  int slot; /* -1: none */

  struct vaio_stats *stats;
  struct sioc_congestion cong;
  struct sioc_auto_threshold auto_thr;

  struct sioc_sched_counters last;
  uint64_t last_ns;
  double delivered_iops, latency_ns;
  bool backlogged;
  double threshold_ns, ds_latency_ns, entitlement;
  double reserved;      /* reservation in force (scaled to fit capacity) */
  double reserve_scale; /* last scale applied to the reservations, 1 = none */
  unsigned peers;
  bool full_warned; /* the segment-full warning was given */
  bool seg_bad;     /* the segment file is corrupt: retried, limits only */
  uint64_t next_reopen_ns;

  pthread_t thread;
  bool running;
} ctl = { .slot = -1, .reserve_scale = 1 };

static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond;
static bool stopping;

/* --- settings file --- */

/* The settings file overrides the parameters key by key; removing a key
 * (or the file) restores the parameter's value.
 */
static int
load_settings (bool at_start)
{
  struct sioc_policy p = ctl.cfg.policy;
  char err[512];
  struct stat st;

  if (stat (ctl.settings_path, &st) == -1)
    {
      if (errno != ENOENT)
        goto fail_errno;
      if (ctl.settings_seen)
        {
          ctl.settings_seen = false;
          ctl.policy = p;
          vaio_stats_add (ctl.stats, C_SETTINGS_RELOADS, 1);
        }
      return 0;
    }
  if (ctl.settings_seen && st.st_mtim.tv_sec == ctl.settings_mtime.tv_sec
      && st.st_mtim.tv_nsec == ctl.settings_mtime.tv_nsec
      && st.st_size == ctl.settings_size && st.st_ino == ctl.settings_ino)
    return 0;
  ctl.settings_seen = true;
  ctl.settings_mtime = st.st_mtim;
  ctl.settings_size = st.st_size;
  ctl.settings_ino = st.st_ino;
  if (sioc_policy_load_file (ctl.settings_path, &p, err, sizeof err) == -1)
    {
      /* Keep running on the settings in force: a typo in a live change
       * must not take the disk down.
       */
      nbdkit_error ("vaio-sioc: %s (settings unchanged)", err);
      vaio_stats_add (ctl.stats, C_SETTINGS_ERRORS, 1);
      return -1;
    }
  ctl.policy = p;
  if (!at_start)
    {
      vaio_stats_add (ctl.stats, C_SETTINGS_RELOADS, 1);
      nbdkit_debug ("vaio-sioc: applied %s: limit-iops=%" PRIu64
                    " limit-mbps=%" PRIu64 " reservation=%" PRIu64 " shares=%u",
                    ctl.settings_path, p.limit_iops, p.limit_mbps,
                    p.reservation_iops, p.shares);
    }
  return 0;

fail_errno:
  nbdkit_error ("vaio-sioc: %s: %s", ctl.settings_path, strerror (errno));
  vaio_stats_add (ctl.stats, C_SETTINGS_ERRORS, 1);
  return -1;
}

/* --- measurement --- */

static double
ewma (double old, double sample)
{
  return old == 0 ? sample : (1 - EWMA_ALPHA) * old + EWMA_ALPHA * sample;
}

static void
measure (uint64_t now)
{
  struct sioc_sched_counters c;
  double dt = (double)(now - ctl.last_ns) / 1e9;
  uint64_t ops;

  sioc_sched_get_counters (&c);
  if (dt <= 0)
    return;
  ctl.delivered_iops = ewma (ctl.delivered_iops,
                             (double)(c.done_units - ctl.last.done_units) / dt);
  if (ctl.delivered_iops < 0.01)
    ctl.delivered_iops = 0;
  ops = c.done_ops - ctl.last.done_ops;
  if (ops > 0)
    ctl.latency_ns
        = ewma (ctl.latency_ns,
                (double)(c.backend_ns - ctl.last.backend_ns) / (double)ops);
  /* Backlogged: requests are held for their share right now, or were
   * during this period.  Either alone flaps on a busy host (a period
   * with no arrivals, or a moment with none held).
   */
  ctl.backlogged = c.share_waiting > 0 || c.share_waits != ctl.last.share_waits;
  ctl.last = c;
  ctl.last_ns = now;
}

/* --- coordination --- */

static uint64_t
to_milli (double x)
{
  return x <= 0 ? 0 : (uint64_t)llround (x * 1000);
}

static void
own_data (struct sioc_slot_data *d, uint64_t now, bool leader)
{
  memset (d, 0, sizeof *d);
  d->pid = (uint64_t)getpid ();
  d->heartbeat_ns = now;
  d->shares = ctl.policy.shares;
  d->flags = ctl.backlogged ? SIOC_SLOT_BACKLOGGED : 0;
  if (leader && ctl.cong.congested)
    d->flags |= SIOC_SLOT_CONGESTED;
  d->reservation_miops = ctl.policy.reservation_iops * 1000;
  d->limit_miops = ctl.policy.limit_iops * 1000;
  d->delivered_miops = to_milli (ctl.delivered_iops);
  d->latency_ns = (uint64_t)ctl.latency_ns;
  d->capacity_miops = leader ? to_milli (ctl.cong.capacity_iops) : 0;
  d->entitlement_miops = to_milli (ctl.entitlement);
  d->threshold_ns = (uint64_t)ctl.threshold_ns;
  strncpy (d->name, ctl.cfg.name ? ctl.cfg.name : "", sizeof d->name - 1);
}

/* Contention is judged from throughput: a peer's word that it is
 * backlogged does not make it a contender unless it also moves I/O (a
 * throttled contender still runs at ENTITLEMENT_FLOOR or more), so a
 * peer cannot get a lone disk throttled by claiming demand it does not
 * show.  This disk's own backlog is known first-hand.
 */
static bool
is_contender (const struct peer *p)
{
  return (double)p->d.delivered_miops / 1000 >= ACTIVE_IOPS
         || (p->slot == ctl.slot && ctl.backlogged);
}

static double
own_threshold (void)
{
  if (ctl.policy.latency_auto)
    return sioc_auto_threshold_get (&ctl.auto_thr,
                                    (double)SIOC_DEFAULT_THRESHOLD_NS);
  return (double)ctl.policy.latency_threshold_ns;
}

/* Open the datastore's segment.  A file that is there but corrupt (a
 * bad write by anyone) leaves this disk uncoordinated, limits only,
 * rather than refusing to start it: one bad write must not stop every
 * later disk on the datastore.  Said once per episode at error level;
 * the control thread retries every REOPEN_NS, so a segment replaced by
 * a valid one (or removed, then recreated here) is picked up.  Other
 * failures at start (the path cannot be opened, created or mapped: a
 * mistake in this disk's configuration) are -1; on a retry they only
 * mean trying again.
 */
static int
open_segment (bool at_start)
{
  char err[512];
  bool corrupt;

  ctl.seg
      = sioc_segment_open (ctl.cfg.datastore_path, &corrupt, err, sizeof err);
  if (ctl.seg != NULL)
    {
      if (ctl.seg_bad)
        nbdkit_debug ("vaio-sioc: datastore segment %s is valid again: "
                      "coordinating",
                      ctl.cfg.datastore_path);
      ctl.seg_bad = false;
      /* The token holds the pid: made after nbdkit forks (at start, by
       * sioc_control_start).
       */
      if (!at_start)
        ctl.token = sioc_segment_token ();
      return 0;
    }
  if (!corrupt && at_start)
    {
      nbdkit_error ("vaio-sioc: sioc-datastore: %s", err);
      return -1;
    }
  if (!ctl.seg_bad)
    nbdkit_error ("vaio-sioc: warning: sioc-datastore: %s: this disk runs "
                  "uncoordinated, limits only, until the segment is valid "
                  "(checked every second)",
                  err);
  ctl.seg_bad = true;
  return 0;
}

static void
set_uncoordinated (uint64_t why)
{
  vaio_stats_set (ctl.stats, C_SLOT, SIOC_NO_SLOT);
  vaio_stats_set (ctl.stats, C_UNCOORDINATED, why);
}

static void
ensure_slot (uint64_t now)
{
  if (ctl.slot >= 0)
    return;
  ctl.slot
      = sioc_segment_claim (ctl.seg, ctl.token, now, STALE_NS, ctl.cfg.name);
  if (ctl.slot < 0)
    {
      set_uncoordinated (SIOC_SEGMENT_FULL);
      /* Once per episode: the control thread retries every tick. */
      if (!ctl.full_warned)
        nbdkit_error ("vaio-sioc: warning: datastore segment %s is full "
                      "(%d live disks): this disk runs uncoordinated, "
                      "limits only, until a slot frees",
                      ctl.cfg.datastore_path, SIOC_SEG_SLOTS);
      ctl.full_warned = true;
      return;
    }
  if (ctl.full_warned)
    nbdkit_debug ("vaio-sioc: datastore segment %s: claimed slot %d",
                  ctl.cfg.datastore_path, ctl.slot);
  ctl.full_warned = false;
  vaio_stats_set (ctl.stats, C_SLOT, (uint64_t)ctl.slot);
  vaio_stats_set (ctl.stats, C_UNCOORDINATED, SIOC_COORDINATED);
}

/* Read every live peer; own slot from our fresh numbers. */
static size_t
read_peers (struct peer *peers, uint64_t now)
{
  size_t n = 0;

  for (int i = 0; i < SIOC_SEG_SLOTS; i++)
    {
      enum sioc_slot_state st;

      if (i == ctl.slot)
        {
          peers[n].slot = i;
          own_data (&peers[n].d, now, false);
          n++;
          continue;
        }
      st = sioc_segment_read (ctl.seg, i, now, STALE_NS, &peers[n].d);
      if (st == SIOC_SLOT_LIVE)
        peers[n++].slot = i;
      else if (st == SIOC_SLOT_BAD)
        vaio_stats_add (ctl.stats, C_PEER_REJECTED, 1);
    }
  return n;
}

/* The datastore as every live disk sees it: total throughput and the
 * I/O-weighted mean latency (as SIOC averages its hosts' latencies).
 */
static void
sample_datastore (const struct peer *peers, size_t n, uint64_t now,
                  struct sioc_datastore_sample *s)
{
  double weighted = 0;

  *s = (struct sioc_datastore_sample){ .now_ns = now };
  for (size_t i = 0; i < n; i++)
    {
      double iops = (double)peers[i].d.delivered_miops / 1000;

      s->delivered_iops += iops;
      weighted += iops * (double)peers[i].d.latency_ns;
      if (is_contender (&peers[i]))
        s->contenders++;
    }
  s->latency_ns = s->delivered_iops > 0 ? weighted / s->delivered_iops : 0;
}

static void
lead (const struct sioc_datastore_sample *s)
{
  if (ctl.policy.latency_auto)
    sioc_auto_threshold_observe (&ctl.auto_thr, s->delivered_iops,
                                 s->latency_ns);
  ctl.threshold_ns = own_threshold ();
  sioc_congestion_step (&ctl.cong, s, ctl.threshold_ns);
}

/* A follower adopts the leader's verdict within its own bounds (see
 * sioc_congestion_follow), and keeps it so it can carry on seamlessly if
 * it becomes the leader.
 */
static void
follow (const struct sioc_slot_data *leader,
        const struct sioc_datastore_sample *s)
{
  bool said = (leader->flags & SIOC_SLOT_CONGESTED) != 0;
  double cap = (double)leader->capacity_miops / 1000;

  ctl.threshold_ns = (double)leader->threshold_ns;
  if (sioc_congestion_follow (&ctl.cong, said, cap, s))
    {
      vaio_stats_add (ctl.stats, C_PEER_REJECTED, 1);
      if (vaio_sioc_debug_control)
        nbdkit_debug ("vaio-sioc: leader's verdict refused: congested=%d "
                      "capacity=%.3f, contenders=%u: using congested=%d "
                      "capacity=%.1f",
                      said, cap, s->contenders, ctl.cong.congested,
                      ctl.cong.capacity_iops);
    }
}

static double
entitlement_of_self (const struct peer *peers, size_t n)
{
  struct sioc_claim claims[SIOC_SEG_SLOTS];
  double own = 0, scale;

  for (size_t i = 0; i < n; i++)
    {
      const struct sioc_slot_data *d = &peers[i].d;
      /* A peer that moves no I/O claims neither unbounded demand nor its
       * reservation (mClock reserves for active clients): a slot's word
       * alone cannot take the capacity from the disks that use it.
       */
      bool active = is_contender (&peers[i]);
      double cap = INFINITY;

      if (!active || !(d->flags & SIOC_SLOT_BACKLOGGED))
        cap = DEMAND_HEADROOM * (double)d->delivered_miops / 1000
              + DEMAND_FLOOR;
      if (d->limit_miops > 0 && (double)d->limit_miops / 1000 < cap)
        cap = (double)d->limit_miops / 1000;
      claims[i] = (struct sioc_claim){
        .shares = d->shares,
        .reservation = active ? (double)d->reservation_miops / 1000 : 0,
        .cap = cap,
      };
    }
  scale = sioc_allocate (ctl.cong.capacity_iops, claims, n);
  for (size_t i = 0; i < n; i++)
    if (peers[i].slot == ctl.slot)
      {
        own = claims[i].out;
        ctl.reserved = claims[i].reserved;
      }
  if (scale < 1 && ctl.reserve_scale == 1)
    nbdkit_debug ("vaio-sioc: reservations exceed %.0f%% of the datastore's "
                  "capacity %.1f IOPS: scaled by %.3f, this disk's %" PRIu64
                  " to %.1f",
                  SIOC_RESERVABLE_FRACTION * 100, ctl.cong.capacity_iops, scale,
                  ctl.policy.reservation_iops, ctl.reserved);
  ctl.reserve_scale = scale;
  return own;
}

static void
coordinate (uint64_t now)
{
  struct peer peers[SIOC_SEG_SLOTS];
  struct sioc_datastore_sample sample;
  struct sioc_slot_data mine;
  size_t n;
  bool leader;

  ctl.threshold_ns = own_threshold ();
  ctl.entitlement = 0;
  ctl.reserved = (double)ctl.policy.reservation_iops;
  ctl.peers = 1;
  if (ctl.seg == NULL && ctl.seg_bad && now >= ctl.next_reopen_ns)
    {
      open_segment (false);
      ctl.next_reopen_ns = now + REOPEN_NS;
    }
  if (ctl.seg == NULL)
    {
      if (ctl.seg_bad)
        set_uncoordinated (SIOC_SEGMENT_BAD);
      return;
    }
  ensure_slot (now);
  if (ctl.slot < 0)
    return;

  n = read_peers (peers, now);
  ctl.peers = (unsigned)n;
  leader = peers[0].slot == ctl.slot;
  sample_datastore (peers, n, now, &sample);
  ctl.ds_latency_ns = sample.latency_ns;
  if (leader)
    lead (&sample);
  else
    follow (&peers[0].d, &sample);
  /* Whatever the peers claim (shares, demand, reservations), this disk
   * keeps its floor (sioc_contender_floor), and never stops: 0 would
   * mean "not congested" to the tags.
   */
  if (ctl.cong.congested && ctl.cong.capacity_iops > 0)
    ctl.entitlement = fmax (
        entitlement_of_self (peers, n),
        fmax (sioc_contender_floor (ctl.cong.capacity_iops, sample.contenders),
              ENTITLEMENT_FLOOR));
  else
    ctl.reserve_scale = 1;

  own_data (&mine, now, leader);
  if (sioc_segment_publish (ctl.seg, ctl.slot, ctl.token, &mine) == -1)
    {
      /* We stalled long enough for a peer to reclaim our slot. */
      nbdkit_debug ("vaio-sioc: lost slot %d, claiming a new one", ctl.slot);
      ctl.slot = -1;
    }
}

/* --- one tick --- */

static void
apply_rates (void)
{
  struct sioc_rates r = {
    .limit_iops = (double)ctl.policy.limit_iops,
    .limit_bps = (double)ctl.policy.limit_mbps * 1048576.0,
    .reservation_iops = ctl.reserved,
    .entitlement_iops = ctl.entitlement,
  };

  sioc_sched_set_rates (&r);
}

static void
publish_stats (void)
{
  struct vaio_stats *s = ctl.stats;

  vaio_stats_set (s, C_ENTITLEMENT, (uint64_t)llround (ctl.entitlement));
  vaio_stats_set (s, C_DELIVERED, (uint64_t)llround (ctl.delivered_iops));
  vaio_stats_set (s, C_LIMIT_IOPS, ctl.policy.limit_iops);
  vaio_stats_set (s, C_LIMIT_MBPS, ctl.policy.limit_mbps);
  vaio_stats_set (s, C_RESERVATION, ctl.policy.reservation_iops);
  vaio_stats_set (s, C_RESERVATION_EFFECTIVE, (uint64_t)llround (ctl.reserved));
  vaio_stats_set (s, C_SHARES, ctl.policy.shares);
  vaio_stats_set (s, C_CONGESTED, ctl.cong.congested ? 1 : 0);
  vaio_stats_set (s, C_DS_LATENCY_US,
                  (uint64_t)llround (ctl.ds_latency_ns / 1000));
  vaio_stats_set (s, C_THRESHOLD_US,
                  (uint64_t)llround (ctl.threshold_ns / 1000));
  vaio_stats_set (s, C_BACKEND_LATENCY_US,
                  (uint64_t)llround (ctl.latency_ns / 1000));
  vaio_stats_set (s, C_PEERS, ctl.peers);
}

static void
tick (uint64_t now)
{
  if (ctl.cfg.state_dir != NULL && now >= ctl.next_reload_ns)
    {
      load_settings (false);
      ctl.next_reload_ns = now + RELOAD_NS;
    }
  measure (now);
  coordinate (now);
  apply_rates ();
  publish_stats ();
  if (vaio_sioc_debug_control)
    nbdkit_debug ("vaio-sioc: slot=%d peers=%u delivered=%.1f lat=%.0fus "
                  "ds-lat=%.0fus thr=%.0fus congested=%d cap=%.1f "
                  "entitled=%.1f backlogged=%d",
                  ctl.slot, ctl.peers, ctl.delivered_iops,
                  ctl.latency_ns / 1000, ctl.ds_latency_ns / 1000,
                  ctl.threshold_ns / 1000, ctl.cong.congested,
                  ctl.cong.capacity_iops, ctl.entitlement, ctl.backlogged);
}

static bool
wait_tick (uint64_t deadline)
{
  struct timespec ts = {
    .tv_sec = (time_t)(deadline / 1000000000u),
    .tv_nsec = (long)(deadline % 1000000000u),
  };
  bool stop;

  pthread_mutex_lock (&stop_lock);
  while (!stopping && pthread_cond_timedwait (&stop_cond, &stop_lock, &ts) == 0)
    ;
  stop = stopping;
  pthread_mutex_unlock (&stop_lock);
  return !stop;
}

static void *
control_thread (void *arg)
{
  uint64_t next = vaio_stats_now_ns ();

  do
    {
      tick (vaio_stats_now_ns ());
      next += TICK_NS;
    }
  while (wait_tick (next));
  return NULL;
}

/* --- lifecycle --- */

int
sioc_control_prepare (const struct sioc_control_config *cfg)
{
  ctl.cfg = *cfg;
  ctl.policy = cfg->policy;
  sioc_congestion_init (&ctl.cong);
  sioc_auto_threshold_init (&ctl.auto_thr);
  if (cfg->state_dir != NULL)
    {
      if (mkdir (cfg->state_dir, 0700) == -1 && errno != EEXIST)
        {
          nbdkit_error ("vaio-sioc: sioc-state-dir=%s: %s", cfg->state_dir,
                        strerror (errno));
          return -1;
        }
      if ((size_t)snprintf (ctl.settings_path, sizeof ctl.settings_path,
                            "%s/settings", cfg->state_dir)
          >= sizeof ctl.settings_path)
        {
          nbdkit_error ("vaio-sioc: sioc-state-dir=%s: path too long",
                        cfg->state_dir);
          return -1;
        }
      if (load_settings (true) == -1)
        return -1;
    }
  if (cfg->datastore_path != NULL && open_segment (true) == -1)
    return -1;
  return 0;
}

int
sioc_control_start (void)
{
  pthread_condattr_t attr;
  int r;

  if (ctl.cfg.state_dir != NULL)
    {
      ctl.stats = vaio_stats_create (ctl.cfg.state_dir, "vaio-sioc", "sioc",
                                     counter_defs, C_COUNT);
      if (ctl.stats == NULL)
        {
          nbdkit_error ("vaio-sioc: %s/stats: %s", ctl.cfg.state_dir,
                        strerror (errno));
          return -1;
        }
      vaio_stats_set (ctl.stats, C_SLOT, SIOC_NO_SLOT);
    }
  if (ctl.seg != NULL)
    {
      ctl.token = sioc_segment_token ();
      ensure_slot (vaio_stats_now_ns ());
    }
  else if (ctl.seg_bad)
    set_uncoordinated (SIOC_SEGMENT_BAD);
  ctl.last_ns = vaio_stats_now_ns ();
  apply_rates ();

  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&stop_cond, &attr);
  pthread_condattr_destroy (&attr);
  r = pthread_create (&ctl.thread, NULL, control_thread, NULL);
  if (r != 0)
    {
      nbdkit_error ("vaio-sioc: cannot start control thread: %s", strerror (r));
      return -1;
    }
  ctl.running = true;
  return 0;
}

struct vaio_stats *
sioc_control_stats (void)
{
  return ctl.stats;
}

void
sioc_control_stop (void)
{
  if (ctl.running)
    {
      pthread_mutex_lock (&stop_lock);
      stopping = true;
      pthread_cond_signal (&stop_cond);
      pthread_mutex_unlock (&stop_lock);
      pthread_join (ctl.thread, NULL);
      ctl.running = false;
    }
  if (ctl.seg != NULL && ctl.slot >= 0)
    sioc_segment_release (ctl.seg, ctl.slot, ctl.token);
  sioc_segment_close (ctl.seg);
  ctl.seg = NULL;
  vaio_stats_close (ctl.stats);
  ctl.stats = NULL;
}

/* vaio-replication: state shared by the filter callbacks (repl.c), the
 * write path bookkeeping (state.c), the shipping thread (shipper.c,
 * target.c) and the bitmap resync (resync.c).
 *
 * Data flow of a write:
 *   1. wait until no overlapping local write is in flight (so that the
 *      source applies overlapping writes in journal order);
 *   2. reserve a journal record under the lock (or, in tracking mode,
 *      mark the dirty bitmap durably), then write the record outside it:
 *      writers do not serialise on the journal file;
 *   3. write the source;
 *   4. mark the entry ready: the shipper may send it once every record
 *      that completed before it arrived is on the replica (its barrier);
 *   5. sync mode only: wait until the replica acknowledged it.  In sync
 *      mode the entry is ready as soon as its record is written, so the
 *      replica write runs while the source write does.
 * After a crash the journal is replayed onto the source before anything
 * else, so a record that reached the journal but not the source cannot
 * make the replica newer than the source.
 */
#ifndef VAIO_REPL_H
#define VAIO_REPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nbdkit-filter.h>

#include "bitmap.h"
#include "journal.h"
#include "stats.h"

enum repl_mode
{
  REPL_ASYNC,
  REPL_SYNC,
};

/* Where new writes go. */
enum repl_track
{
  TRACK_JOURNAL, /* ordered records, shipped in order */
  TRACK_BITMAP,  /* journal overflowed or unusable: dirty bitmap + resync */
};

enum entry_state
{
  E_LOCAL, /* journaled, source operation still running */
  E_READY, /* may be sent */
  E_SENT,
  E_ACKED,
};

struct repl_entry
{
  uint64_t seq;
  uint64_t offset;
  uint64_t barrier;
  uint64_t pos; /* of the record in the journal */
  uint64_t t_mono_ns;
  uint32_t length;
  uint32_t data_len;
  uint8_t type;
  uint8_t state;
  bool failed; /* the source operation failed: send the source's bytes */
  bool fua;    /* the client asked for FUA: so does the replica request */
  bool done;   /* record written and source operation finished */
};

/* A write, zero or trim between steps 1 and 4. */
struct repl_inflight
{
  uint64_t offset, length;
  uint64_t seq; /* its journal entry, 0 if none */
  bool tracked; /* covered by the bitmap: mark it again when done */
  bool in_use;
};

/* Indexes of the class-specific stats counters. */
enum repl_counter
{
  RC_LAG_US,
  RC_LAG_P50_US,
  RC_LAG_P99_US,
  RC_RPO_US,
  RC_OVER_RPO,
  RC_JOURNAL_USED,
  RC_JOURNAL_SIZE,
  RC_TRACKING,
  RC_DIRTY_BYTES,
  RC_RESYNC_TOTAL,
  RC_RESYNC_DONE,
  RC_CONNECTED,
  RC_SHIPPED_RECORDS,
  RC_SHIPPED_BYTES,
  RC_CORRUPT_RECORDS,
  RC_OVERFLOWS,
  RC_RECONNECTS,
  RC_SYNC_MODE,
  RC_REPLAYED_RECORDS,
  RC_BARRIER_WAITS,
  RC_COUNT
};

#define LAG_BUCKETS 32

struct repl
{
  /* Configuration: written by .config/.config_complete, then read-only. */
  char *target;
  char *state_dir;
  char *psk_file;
  enum repl_mode mode;
  uint64_t rpo_ns;
  uint64_t checkpoint_ns;
  uint64_t journal_size;
  uint64_t granularity;
  unsigned max_inflight;

  /* Set in .after_fork, read-only afterwards. */
  nbdkit_next *shared; /* backend context for replay and resync reads */
  uint64_t disk_size;
  struct vaio_stats *stats;
  int wake_fd; /* eventfd: wakes the shipper */
  pthread_t shipper;
  bool shipper_started;

  /* Everything below is guarded by lock. */
  pthread_mutex_t lock;
  pthread_cond_t cond;       /* entries acked, mode changes */
  pthread_cond_t range_cond; /* an in-flight range was freed */
  unsigned cond_waiters;     /* sync writers waiting on cond */
  unsigned range_waiters;    /* writers waiting on range_cond */
  struct jrnl *jrnl;
  struct bmap *bmap;
  enum repl_track track;
  uint64_t tracking_since_ns;

  /* Journal entries not yet on the replica: seqs [base_seq, head). */
  struct repl_entry *ring;
  uint64_t ring_cap; /* power of two */
  uint64_t ring_start;
  uint64_t ring_n;
  uint64_t base_seq; /* every seq below is on the replica or discarded */
  uint64_t ship_seq; /* next seq to send */
  uint64_t local_done_max;
  uint64_t done_prefix;     /* every entry <= this is done (see journal.h) */
  uint64_t last_failed_seq; /* the last entry whose source write failed */

  struct repl_inflight *infl;
  unsigned infl_cap;

  bool connected;
  bool stopping;
  bool fatal;        /* the replica can never be used (too small, read-only) */
  bool first_result; /* the first connection attempt has finished */
  char fatal_msg[1024];

  /* Lag of acknowledged records, log2 µs buckets; two windows. */
  uint64_t lag_hist[2][LAG_BUCKETS];
  uint64_t lag_window_start_ns;
  uint64_t resync_done_bytes;
  uint64_t recovered_corrupt;  /* found by the last recovery */
  uint64_t recovered_replayed; /* replayed onto the source by it */
};

extern struct repl repl;

/* state.c: the write path and the entry queue (caller holds no lock
 * unless the name ends in _locked).
 */
int state_init (void);
void state_free (void);
int state_recover (char *err, size_t errlen);
struct repl_entry *state_entry_locked (uint64_t seq);
void state_pop_acked_locked (void);
void state_go_tracking_locked (const char *why);
void state_wake_shipper (void);
void state_wake_consumed (void);
void state_publish_locked (void);
void state_requeue_unflushed_locked (void);

struct repl_op
{
  int slot;
  uint64_t seq; /* 0: not journaled */
};
int state_begin (uint32_t type, const void *buf, uint32_t count,
                 uint64_t offset, bool fua, struct repl_op *op, int *err);
void state_end (struct repl_op *op, bool ok);
int state_flush_begin (struct repl_op *op, int *err);
void state_wait_replicated (const struct repl_op *op);
bool state_replicated_locked (uint64_t seq);

/* target.c */
struct nbd_handle;
struct nbd_handle *target_connect (int timeout_ms, bool *fatal, char *err,
                                   size_t errlen);
int target_is_self (const char *uri, char *err, size_t errlen);

/* jsync.c: fdatasync of the journal off the shipper thread. */
int jsync_start (void);
void jsync_request (void);
bool jsync_take_done (void);
void jsync_stop (void);

/* shipper.c */
int shipper_start (void);
void shipper_stop (void);
bool shipper_send_now (void);
bool shipper_wait_acked (uint64_t seq, uint64_t deadline_ns);
void lag_record_locked (uint64_t lag_ns);

/* The shipper's connection.  shipper.c's ship_lock guards it: the
 * shipper thread or a sync writer driving it (the libnbd completion
 * callbacks run in whichever thread holds the lock).
 */
struct ship_conn
{
  struct nbd_handle *nbd;
  uint64_t gen;       /* connection generation: stale callbacks ignore */
  int inflight;       /* commands sent, not completed */
  int entry_inflight; /* of which journal entries */
  bool broken;        /* a command failed: reconnect */
  bool can_zero;
  bool can_flush;
  bool can_fua;
};

/* resync.c: bitmap-driven copy of dirty regions, run by the shipper. */
struct resync;
struct resync *resync_new (void);
void resync_free (struct resync *rs);
void resync_step (struct resync *rs, struct ship_conn *sc);
void resync_abort (struct resync *rs);

#endif /* VAIO_REPL_H */

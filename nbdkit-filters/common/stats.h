/* vaio-nbd common stats: per-disk counters a filter publishes in its state
 * directory, read by `vaioctl status` and `vaioctl top` while I/O runs.
 *
 * The file <state-dir>/stats is a fixed-size shared mapping:
 *
 *   struct vaio_stats_header   written once at creation, versioned and
 *                              CRC32-checked (a reader refuses a bad one)
 *   struct vaio_stats_body     live counters, updated with relaxed atomic
 *                              adds: no lock on the I/O path
 *
 * Counters are monotonic (readers compute rates from two samples) except
 * those a filter declares as gauges (current values: dirty bytes, lag).
 */
#ifndef VAIO_STATS_H
#define VAIO_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VAIO_STATS_MAGIC        "VAIOSTAT"
#define VAIO_STATS_VERSION      1
#define VAIO_STATS_NAME_LEN     32
#define VAIO_STATS_MAX_COUNTERS 48
#define VAIO_STATS_LAT_BUCKETS  32 /* bucket i: latency in [2^i, 2^(i+1)) µs */

enum vaio_stats_op
{
  VAIO_OP_READ,
  VAIO_OP_WRITE,
  VAIO_OP_ZERO,
  VAIO_OP_TRIM,
  VAIO_OP_FLUSH,
  VAIO_OP_COUNT
};

enum vaio_stats_kind
{
  VAIO_COUNTER = 0, /* monotonic: show as a rate or a total */
  VAIO_GAUGE = 1,   /* a current value */
};

struct vaio_stats_counter_def
{
  const char *name;
  enum vaio_stats_kind kind;
};

struct vaio_stats_header
{
  char magic[8];
  uint32_t version;
  uint32_t header_size;
  uint32_t body_size;
  uint32_t n_counters;
  uint64_t pid;
  uint64_t created_unix_ns;
  char filter[VAIO_STATS_NAME_LEN];
  char class_name[VAIO_STATS_NAME_LEN];
  char counter_names[VAIO_STATS_MAX_COUNTERS][VAIO_STATS_NAME_LEN];
  uint8_t counter_kinds[VAIO_STATS_MAX_COUNTERS];
  uint32_t crc32; /* zlib crc32 of every byte above */
  uint32_t pad;
};

struct vaio_stats_op_counters
{
  uint64_t ops;
  uint64_t bytes;
  uint64_t errors;
  uint64_t latency_ns_sum;
  uint64_t latency_hist[VAIO_STATS_LAT_BUCKETS];
};

struct vaio_stats_body
{
  uint64_t heartbeat_unix_ns; /* last update by the writer */
  struct vaio_stats_op_counters op[VAIO_OP_COUNT];
  uint64_t counters[VAIO_STATS_MAX_COUNTERS];
};

/* --- Writer side (inside a filter) --- */

struct vaio_stats;

/* Create <dir>/stats (mode 0600) for this filter and map it.  The file is
 * written to a temporary name and renamed, so a reader never sees a
 * half-written header.  Returns NULL with errno set.
 */
struct vaio_stats *vaio_stats_create (const char *dir, const char *filter,
                                      const char *class_name,
                                      const struct vaio_stats_counter_def *defs,
                                      unsigned n_defs);
void vaio_stats_close (struct vaio_stats *s);

/* Record one completed request.  Safe from any thread, lock-free. */
void vaio_stats_record (struct vaio_stats *s, enum vaio_stats_op op,
                        uint64_t bytes, uint64_t latency_ns, bool failed);

/* Class-specific counters, by index into the defs given at creation. */
void vaio_stats_add (struct vaio_stats *s, unsigned idx, uint64_t delta);
void vaio_stats_set (struct vaio_stats *s, unsigned idx, uint64_t value);

/* CLOCK_MONOTONIC in nanoseconds, for latency measurement. */
uint64_t vaio_stats_now_ns (void);

/* --- Reader side (vaioctl) --- */

struct vaio_stats_snapshot
{
  struct vaio_stats_header header;
  struct vaio_stats_body body;
};

/* Read a consistent-enough snapshot of the file at path.  Returns 0, or -1
 * with a message in err naming the file and what is wrong with it
 * (missing, short, bad magic, unknown version, header checksum mismatch).
 */
int vaio_stats_read (const char *path, struct vaio_stats_snapshot *snap,
                     char *err, size_t errlen);

/* Percentile p (0..1) of a latency histogram, in microseconds (the upper
 * bound of the bucket holding it); 0 when the histogram is empty.
 */
double vaio_stats_percentile_us (const uint64_t hist[VAIO_STATS_LAT_BUCKETS],
                                 double p);

/* Index of a named class-specific counter in a snapshot, or -1. */
int vaio_stats_counter_index (const struct vaio_stats_snapshot *snap,
                              const char *name);

#endif /* VAIO_STATS_H */

/* vaio-nbd common stats: see stats.h for the file layout. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "stats.h"

struct vaio_stats
{
  struct vaio_stats_body *body; /* shared mapping of the body */
  void *map;
  size_t map_len;
};

static uint64_t
clock_ns (clockid_t clk)
{
  struct timespec ts;

  clock_gettime (clk, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
vaio_stats_now_ns (void)
{
  return clock_ns (CLOCK_MONOTONIC);
}

static uint32_t
header_crc (const struct vaio_stats_header *h)
{
  return (uint32_t)crc32 (0, (const Bytef *)h,
                          offsetof (struct vaio_stats_header, crc32));
}

static void
copy_name (char dst[VAIO_STATS_NAME_LEN], const char *src)
{
  strncpy (dst, src ? src : "", VAIO_STATS_NAME_LEN - 1);
  dst[VAIO_STATS_NAME_LEN - 1] = '\0';
}

static void
header_init (struct vaio_stats_header *h, const char *filter,
             const char *class_name, const struct vaio_stats_counter_def *defs,
             unsigned n_defs)
{
  memset (h, 0, sizeof *h);
  memcpy (h->magic, VAIO_STATS_MAGIC, sizeof h->magic);
  h->version = VAIO_STATS_VERSION;
  h->header_size = sizeof (struct vaio_stats_header);
  h->body_size = sizeof (struct vaio_stats_body);
  h->n_counters = n_defs;
  h->pid = (uint64_t)getpid ();
  h->created_unix_ns = clock_ns (CLOCK_REALTIME);
  copy_name (h->filter, filter);
  copy_name (h->class_name, class_name);
  for (unsigned i = 0; i < n_defs; i++)
    {
      copy_name (h->counter_names[i], defs[i].name);
      h->counter_kinds[i] = (uint8_t)defs[i].kind;
    }
  h->crc32 = header_crc (h);
}

struct vaio_stats *
vaio_stats_create (const char *dir, const char *filter, const char *class_name,
                   const struct vaio_stats_counter_def *defs, unsigned n_defs)
{
  char path[PATH_MAX], tmp[PATH_MAX];
  struct vaio_stats_header h;
  struct vaio_stats *s;
  size_t len = sizeof h + sizeof (struct vaio_stats_body);
  int fd, saved;

  if (n_defs > VAIO_STATS_MAX_COUNTERS)
    {
      errno = EINVAL;
      return NULL;
    }
  if ((size_t)snprintf (path, sizeof path, "%s/stats", dir) >= sizeof path
      || (size_t)snprintf (tmp, sizeof tmp, "%s/.stats.%ld", dir,
                           (long)getpid ())
             >= sizeof tmp)
    {
      errno = ENAMETOOLONG;
      return NULL;
    }

  header_init (&h, filter, class_name, defs, n_defs);

  fd = open (tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd == -1)
    return NULL;
  if (ftruncate (fd, (off_t)len) == -1
      || pwrite (fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
    goto fail;

  s = calloc (1, sizeof *s);
  if (s == NULL)
    goto fail;
  s->map_len = len;
  s->map = mmap (NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (s->map == MAP_FAILED)
    {
      free (s);
      goto fail;
    }
  s->body = (struct vaio_stats_body *)((char *)s->map + sizeof h);
  if (rename (tmp, path) == -1)
    {
      saved = errno;
      munmap (s->map, len);
      free (s);
      errno = saved;
      goto fail;
    }
  close (fd);
  return s;

fail:
  saved = errno;
  close (fd);
  unlink (tmp);
  errno = saved;
  return NULL;
}

void
vaio_stats_close (struct vaio_stats *s)
{
  if (s == NULL)
    return;
  munmap (s->map, s->map_len);
  free (s);
}

static unsigned
latency_bucket (uint64_t latency_ns)
{
  uint64_t us = latency_ns / 1000;
  unsigned b = 0;

  while (us > 1 && b < VAIO_STATS_LAT_BUCKETS - 1)
    {
      us >>= 1;
      b++;
    }
  return b;
}

void
vaio_stats_record (struct vaio_stats *s, enum vaio_stats_op op, uint64_t bytes,
                   uint64_t latency_ns, bool failed)
{
  struct vaio_stats_op_counters *c;

  if (s == NULL || (unsigned)op >= VAIO_OP_COUNT)
    return;
  c = &s->body->op[op];
  __atomic_fetch_add (&c->ops, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add (&c->bytes, bytes, __ATOMIC_RELAXED);
  if (failed)
    __atomic_fetch_add (&c->errors, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add (&c->latency_ns_sum, latency_ns, __ATOMIC_RELAXED);
  __atomic_fetch_add (&c->latency_hist[latency_bucket (latency_ns)], 1,
                      __ATOMIC_RELAXED);
  __atomic_store_n (&s->body->heartbeat_unix_ns, clock_ns (CLOCK_REALTIME),
                    __ATOMIC_RELAXED);
}

void
vaio_stats_add (struct vaio_stats *s, unsigned idx, uint64_t delta)
{
  if (s == NULL || idx >= VAIO_STATS_MAX_COUNTERS)
    return;
  __atomic_fetch_add (&s->body->counters[idx], delta, __ATOMIC_RELAXED);
}

void
vaio_stats_set (struct vaio_stats *s, unsigned idx, uint64_t value)
{
  if (s == NULL || idx >= VAIO_STATS_MAX_COUNTERS)
    return;
  __atomic_store_n (&s->body->counters[idx], value, __ATOMIC_RELAXED);
}

/* Copy the live body word by word with atomic loads: each counter is
 * itself consistent; across counters the snapshot is as of "about now",
 * which is all a monitoring view needs.
 */
static void
body_load (struct vaio_stats_body *dst, const struct vaio_stats_body *src)
{
  const uint64_t *s = (const uint64_t *)src;
  uint64_t *d = (uint64_t *)dst;

  for (size_t i = 0; i < sizeof *dst / sizeof (uint64_t); i++)
    d[i] = __atomic_load_n (&s[i], __ATOMIC_RELAXED);
}

int
vaio_stats_read (const char *path, struct vaio_stats_snapshot *snap, char *err,
                 size_t errlen)
{
  size_t len = sizeof snap->header + sizeof snap->body;
  struct stat st;
  void *map;
  int fd;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    {
      snprintf (err, errlen, "%s: %s", path, strerror (errno));
      return -1;
    }
  if (fstat (fd, &st) == -1 || (size_t)st.st_size < len)
    {
      snprintf (err, errlen, "%s: file too short for a stats file", path);
      close (fd);
      return -1;
    }
  map = mmap (NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  close (fd);
  if (map == MAP_FAILED)
    {
      snprintf (err, errlen, "%s: mmap: %s", path, strerror (errno));
      return -1;
    }
  memcpy (&snap->header, map, sizeof snap->header);
  body_load (
      &snap->body,
      (const struct vaio_stats_body *)((char *)map + sizeof snap->header));
  munmap (map, len);

  if (memcmp (snap->header.magic, VAIO_STATS_MAGIC, 8) != 0)
    {
      snprintf (err, errlen, "%s: not a vaio stats file (bad magic)", path);
      return -1;
    }
  if (snap->header.version != VAIO_STATS_VERSION)
    {
      snprintf (err, errlen, "%s: stats version %u, this vaioctl reads %u",
                path, snap->header.version, VAIO_STATS_VERSION);
      return -1;
    }
  if (snap->header.crc32 != header_crc (&snap->header)
      || snap->header.header_size != sizeof snap->header
      || snap->header.body_size != sizeof snap->body
      || snap->header.n_counters > VAIO_STATS_MAX_COUNTERS)
    {
      snprintf (err, errlen, "%s: stats header checksum mismatch (corrupt)",
                path);
      return -1;
    }
  return 0;
}

double
vaio_stats_percentile_us (const uint64_t hist[VAIO_STATS_LAT_BUCKETS], double p)
{
  uint64_t total = 0, seen = 0, want;

  for (unsigned i = 0; i < VAIO_STATS_LAT_BUCKETS; i++)
    total += hist[i];
  if (total == 0)
    return 0;
  want = (uint64_t)(p * (double)total);
  if (want == 0)
    want = 1;
  for (unsigned i = 0; i < VAIO_STATS_LAT_BUCKETS; i++)
    {
      seen += hist[i];
      if (seen >= want)
        return (double)(UINT64_C (1) << (i + 1));
    }
  return (double)(UINT64_C (1) << VAIO_STATS_LAT_BUCKETS);
}

int
vaio_stats_counter_index (const struct vaio_stats_snapshot *snap,
                          const char *name)
{
  for (unsigned i = 0; i < snap->header.n_counters; i++)
    if (strncmp (snap->header.counter_names[i], name, VAIO_STATS_NAME_LEN) == 0)
      return (int)i;
  return -1;
}

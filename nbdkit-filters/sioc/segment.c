/* vaio-sioc: the datastore coordination segment, see segment.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "policy.h"
#include "segment.h"

#define READ_TRIES     4
#define MAX_MIOPS      (UINT64_C (10000000) * 1000)
#define MAX_LATENCY_NS UINT64_C (60000000000)
#define MAX_CLOCK_SKEW UINT64_C (1000000000)

_Static_assert(sizeof (struct sioc_seg_header) == 64, "header layout");
_Static_assert(sizeof (struct sioc_slot_data) % 8 == 0, "slot data words");
_Static_assert(sizeof (struct sioc_slot) % 8 == 0, "slot words");

struct sioc_segment
{
  struct sioc_slot *slots; /* inside map */
  void *map;
  size_t map_len;
};

static size_t
segment_size (void)
{
  return sizeof (struct sioc_seg_header)
         + SIOC_SEG_SLOTS * sizeof (struct sioc_slot);
}

static uint32_t
header_crc (const struct sioc_seg_header *h)
{
  return (uint32_t)crc32 (0, (const Bytef *)h,
                          offsetof (struct sioc_seg_header, crc32));
}

static uint32_t
data_crc (const struct sioc_slot_data *d)
{
  return (uint32_t)crc32 (0, (const Bytef *)d,
                          offsetof (struct sioc_slot_data, crc32));
}

static void
header_init (struct sioc_seg_header *h)
{
  struct timespec ts;

  memset (h, 0, sizeof *h);
  memcpy (h->magic, SIOC_SEG_MAGIC, sizeof h->magic);
  h->version = SIOC_SEG_VERSION;
  h->header_size = sizeof *h;
  h->slot_size = sizeof (struct sioc_slot);
  h->n_slots = SIOC_SEG_SLOTS;
  clock_gettime (CLOCK_REALTIME, &ts);
  h->created_unix_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  h->crc32 = header_crc (h);
}

/* vaioctl names a datastore's segment <host state-dir>/datastores/NAME.seg:
 * the first disk on it makes that directory (owner-only, as the rest of
 * the state dir).  Only the last level: a missing state dir is an error.
 */
static int
make_parent (const char *path, char *err, size_t errlen)
{
  char dir[PATH_MAX];
  char *slash;

  if ((size_t)snprintf (dir, sizeof dir, "%s", path) >= sizeof dir)
    {
      snprintf (err, errlen, "%s: path too long", path);
      return -1;
    }
  slash = strrchr (dir, '/');
  if (slash == NULL || slash == dir)
    return 0;
  *slash = '\0';
  if (mkdir (dir, 0700) == -1 && errno != EEXIST)
    {
      snprintf (err, errlen, "%s: cannot create its directory: %s", path,
                strerror (errno));
      return -1;
    }
  return 0;
}

/* Create the segment complete under a temporary name, then link it into
 * place: a peer opening path sees either nothing or a whole segment, and
 * when two processes race the first link wins and both use it.
 */
static int
create_segment (const char *path, char *err, size_t errlen)
{
  struct sioc_seg_header h;
  char tmp[PATH_MAX];
  int fd, r = 0;

  if ((size_t)snprintf (tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid ())
      >= sizeof tmp)
    {
      snprintf (err, errlen, "%s: path too long", path);
      return -1;
    }
  if (make_parent (path, err, errlen) == -1)
    return -1;
  header_init (&h);
  unlink (tmp);
  fd = open (tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd == -1)
    {
      snprintf (err, errlen, "%s: cannot create: %s", tmp, strerror (errno));
      return -1;
    }
  if (ftruncate (fd, (off_t)segment_size ()) == -1
      || pwrite (fd, &h, sizeof h, 0) != (ssize_t)sizeof h || fsync (fd) == -1)
    {
      snprintf (err, errlen, "%s: cannot write: %s", tmp, strerror (errno));
      r = -1;
    }
  close (fd);
  if (r == 0 && link (tmp, path) == -1 && errno != EEXIST)
    {
      snprintf (err, errlen, "%s: cannot create: %s", path, strerror (errno));
      r = -1;
    }
  unlink (tmp);
  return r;
}

static int
check_header (const char *path, const struct sioc_seg_header *h, char *err,
              size_t errlen)
{
  if (memcmp (h->magic, SIOC_SEG_MAGIC, sizeof h->magic) != 0)
    snprintf (err, errlen, "%s: not a vaio-sioc datastore segment (bad magic)",
              path);
  else if (h->version != SIOC_SEG_VERSION)
    snprintf (err, errlen,
              "%s: datastore segment version %u, this filter uses %u", path,
              h->version, SIOC_SEG_VERSION);
  else if (h->crc32 != header_crc (h))
    snprintf (err, errlen,
              "%s: datastore segment header checksum mismatch (corrupt)", path);
  else if (h->header_size != sizeof *h
           || h->slot_size != sizeof (struct sioc_slot)
           || h->n_slots != SIOC_SEG_SLOTS)
    snprintf (err, errlen,
              "%s: datastore segment geometry %u/%u/%u does not match this "
              "filter",
              path, h->header_size, h->slot_size, h->n_slots);
  else
    return 0;
  return -1;
}

static int
open_existing (const char *path, char *err, size_t errlen)
{
  int fd = open (path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

  if (fd == -1 && errno == ENOENT)
    {
      if (create_segment (path, err, errlen) == -1)
        return -1;
      fd = open (path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    }
  if (fd == -1)
    snprintf (err, errlen, "%s: %s", path, strerror (errno));
  return fd;
}

struct sioc_segment *
sioc_segment_open (const char *path, bool *corrupt, char *err, size_t errlen)
{
  struct sioc_seg_header h;
  struct sioc_segment *seg;
  struct stat st;
  bool dummy;
  int fd;

  if (corrupt == NULL)
    corrupt = &dummy;
  *corrupt = false;
  fd = open_existing (path, err, errlen);
  if (fd == -1)
    return NULL;
  if (fstat (fd, &st) == -1 || !S_ISREG (st.st_mode))
    {
      snprintf (err, errlen, "%s: not a regular file", path);
      goto fail;
    }
  *corrupt = true;
  if (pread (fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
    {
      snprintf (err, errlen, "%s: too short for a vaio-sioc datastore segment",
                path);
      goto fail;
    }
  if (check_header (path, &h, err, errlen) == -1)
    goto fail;
  if ((size_t)st.st_size != segment_size ())
    {
      snprintf (err, errlen,
                "%s: datastore segment is %lld bytes, expected %zu (corrupt)",
                path, (long long)st.st_size, segment_size ());
      goto fail;
    }
  *corrupt = false;

  seg = calloc (1, sizeof *seg);
  if (seg == NULL)
    {
      snprintf (err, errlen, "%s: %s", path, strerror (errno));
      goto fail;
    }
  seg->map_len = segment_size ();
  seg->map
      = mmap (NULL, seg->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (seg->map == MAP_FAILED)
    {
      snprintf (err, errlen, "%s: mmap: %s", path, strerror (errno));
      free (seg);
      goto fail;
    }
  seg->slots = (struct sioc_slot *)((char *)seg->map + sizeof h);
  close (fd);
  return seg;

fail:
  close (fd);
  return NULL;
}

void
sioc_segment_close (struct sioc_segment *seg)
{
  if (seg == NULL)
    return;
  munmap (seg->map, seg->map_len);
  free (seg);
}

uint64_t
sioc_segment_token (void)
{
  uint32_t rnd = 0;

  while (rnd == 0)
    if (getrandom (&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
      rnd = (uint32_t)time (NULL) ^ (uint32_t)clock ();
  return (uint64_t)(uint32_t)getpid () | ((uint64_t)rnd << 32);
}

struct sioc_slot *
sioc_segment_slot (struct sioc_segment *seg, int idx)
{
  return &seg->slots[idx];
}

static bool
owner_dead (uint64_t owner)
{
  pid_t pid = (pid_t)(owner & 0xffffffffu);

  return pid <= 0 || (kill (pid, 0) == -1 && errno == ESRCH);
}

bool
sioc_slot_data_sane (const struct sioc_slot_data *d, uint64_t now_ns)
{
  return d->pid != 0 && d->shares >= 1 && d->shares <= SIOC_SHARES_MAX
         && (d->flags & ~(SIOC_SLOT_BACKLOGGED | SIOC_SLOT_CONGESTED)) == 0
         && d->reservation_miops <= MAX_MIOPS && d->limit_miops <= MAX_MIOPS
         && d->delivered_miops <= MAX_MIOPS && d->capacity_miops <= MAX_MIOPS
         && d->entitlement_miops <= MAX_MIOPS && d->latency_ns <= MAX_LATENCY_NS
         && d->threshold_ns <= MAX_LATENCY_NS
         && d->heartbeat_ns <= now_ns + MAX_CLOCK_SKEW
         && memchr (d->name, '\0', sizeof d->name) != NULL;
}

/* Seqlock read: a consistent copy of the slot's data, or false when the
 * owner kept writing (or died mid-write) through every try.
 */
static bool
read_consistent (const struct sioc_slot *s, struct sioc_slot_data *d)
{
  const uint64_t *src = (const uint64_t *)&s->data;
  uint64_t *dst = (uint64_t *)d;

  for (int t = 0; t < READ_TRIES; t++)
    {
      uint64_t s1 = __atomic_load_n (&s->seq, __ATOMIC_ACQUIRE), s2;

      if (s1 & 1)
        continue;
      for (size_t i = 0; i < sizeof *d / sizeof (uint64_t); i++)
        dst[i] = __atomic_load_n (&src[i], __ATOMIC_RELAXED);
      __atomic_thread_fence (__ATOMIC_ACQUIRE);
      s2 = __atomic_load_n (&s->seq, __ATOMIC_RELAXED);
      if (s1 == s2)
        return true;
    }
  return false;
}

enum sioc_slot_state
sioc_segment_read (struct sioc_segment *seg, int idx, uint64_t now_ns,
                   uint64_t stale_ns, struct sioc_slot_data *d)
{
  const struct sioc_slot *s = &seg->slots[idx];
  uint64_t owner = __atomic_load_n (&s->owner, __ATOMIC_ACQUIRE);
  uint64_t hb = __atomic_load_n (&s->data.heartbeat_ns, __ATOMIC_RELAXED);

  if (owner == 0)
    return SIOC_SLOT_FREE;
  if (owner_dead (owner))
    return SIOC_SLOT_STALE;
  if (!read_consistent (s, d) || d->crc32 != data_crc (d)
      || !sioc_slot_data_sane (d, now_ns))
    /* A torn or corrupt slot whose heartbeat word went quiet is as good
     * as dead; otherwise its owner may still repair it.
     */
    return hb + stale_ns < now_ns ? SIOC_SLOT_STALE : SIOC_SLOT_BAD;
  if (d->token != owner)
    return SIOC_SLOT_BAD; /* claimed, first publish still to come */
  if (d->heartbeat_ns + stale_ns < now_ns)
    return SIOC_SLOT_STALE;
  return SIOC_SLOT_LIVE;
}

static void
write_data (struct sioc_slot *s, const struct sioc_slot_data *d)
{
  const uint64_t *src = (const uint64_t *)d;
  uint64_t *dst = (uint64_t *)&s->data;
  uint64_t seq = __atomic_load_n (&s->seq, __ATOMIC_RELAXED);

  /* Odd means a previous owner died mid-write: start from even. */
  seq = (seq + 1) & ~UINT64_C (1);
  __atomic_store_n (&s->seq, seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence (__ATOMIC_RELEASE);
  for (size_t i = 0; i < sizeof *d / sizeof (uint64_t); i++)
    __atomic_store_n (&dst[i], src[i], __ATOMIC_RELAXED);
  __atomic_store_n (&s->seq, seq + 2, __ATOMIC_RELEASE);
}

int
sioc_segment_publish (struct sioc_segment *seg, int idx, uint64_t token,
                      const struct sioc_slot_data *d)
{
  struct sioc_slot *s = &seg->slots[idx];
  struct sioc_slot_data copy = *d;

  if (__atomic_load_n (&s->owner, __ATOMIC_ACQUIRE) != token)
    return -1;
  copy.token = token;
  copy.crc32 = data_crc (&copy);
  write_data (s, &copy);
  return 0;
}

static bool
try_take (struct sioc_segment *seg, int idx, uint64_t expected, uint64_t token)
{
  return __atomic_compare_exchange_n (&seg->slots[idx].owner, &expected, token,
                                      false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE);
}

static int
first_publish (struct sioc_segment *seg, int idx, uint64_t token,
               uint64_t now_ns, const char *name)
{
  struct sioc_slot_data d;

  memset (&d, 0, sizeof d);
  d.pid = (uint64_t)getpid ();
  d.heartbeat_ns = now_ns;
  d.shares = 1000;
  strncpy (d.name, name ? name : "", sizeof d.name - 1);
  sioc_segment_publish (seg, idx, token, &d);
  return idx;
}

int
sioc_segment_claim (struct sioc_segment *seg, uint64_t token, uint64_t now_ns,
                    uint64_t stale_ns, const char *name)
{
  struct sioc_slot_data d;

  for (int i = 0; i < SIOC_SEG_SLOTS; i++)
    if (try_take (seg, i, 0, token))
      return first_publish (seg, i, token, now_ns, name);
  for (int i = 0; i < SIOC_SEG_SLOTS; i++)
    {
      uint64_t owner = __atomic_load_n (&seg->slots[i].owner, __ATOMIC_ACQUIRE);

      if (owner != 0
          && sioc_segment_read (seg, i, now_ns, stale_ns, &d) == SIOC_SLOT_STALE
          && try_take (seg, i, owner, token))
        return first_publish (seg, i, token, now_ns, name);
    }
  return -1;
}

void
sioc_segment_release (struct sioc_segment *seg, int idx, uint64_t token)
{
  try_take (seg, idx, token, 0);
}

/* vaio-cache: the cache file or device, its persistent metadata, loading
 * (warm restart, crash recovery, corruption checks) and persisting.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nbdkit-filter.h>

#include "uring.h"
#include "vcache.h"

#define DEFAULT_CACHE_SIZE (256 * 1024 * 1024ULL)

/* --- slot bookkeeping shared with io.c and destage.c (lock held) --- */

void
slot_mark_md (struct vcache *c, uint32_t slot)
{
  c->md_dirty[slot / VCACHE_ENTRIES_PER_MD] = 1;
}

/* Return an unmapped slot to the free list, or park it as a zombie while
 * durable metadata may still call it dirty.  Called with lock held.
 */
void
slot_release (struct vcache *c, uint32_t s)
{
  struct vcache_slot *sl = &c->slots[s];

  if (sl->flags & SLOT_ONDISK_DIRTY)
    {
      sl->flags = SLOT_ZOMBIE | SLOT_ONDISK_DIRTY;
      slot_mark_md (c, s);
      return;
    }
  sl->flags = 0;
  sl->block = VCACHE_NO_BLOCK;
  c->free_stack[c->n_free++] = s;
}

/* --- opening the cache file or device --- */

static int
open_cache_fd (struct vcache *c, bool direct, bool *created)
{
  int flags = O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0);
  int fd;

  *created = false;
  fd = open (c->cfg.cache_path, flags);
  if (fd == -1 && errno == ENOENT && !c->cfg.is_device)
    {
      fd = open (c->cfg.cache_path, flags | O_CREAT | O_EXCL, 0600);
      *created = fd >= 0;
    }
  return fd;
}

/* cache-direct=auto: O_DIRECT on a block device, the page cache on a
 * cache file.  A hit from the page cache is a memory copy; an O_DIRECT
 * hit is a device round trip with its interrupt and thread wake-up,
 * which on the 2-vCPU bench VM held hits to 0.24-0.30x the IOPS of bare
 * nbdkit (README, make bench).  A dedicated flash device is what O_DIRECT is
 * for: no RAM spent caching the cache.
 */
static bool
want_direct (const struct vcache *c)
{
  struct stat st;

  switch (c->cfg.direct)
    {
    case DIRECT_ON:
      return true;
    case DIRECT_OFF:
      return false;
    case DIRECT_AUTO:
      break;
    }
  return c->cfg.is_device
         || (stat (c->cfg.cache_path, &st) == 0 && S_ISBLK (st.st_mode));
}

/* Open with O_DIRECT where wanted and the file system or device allows
 * it, else fall back to buffered I/O (tmpfs refuses O_DIRECT at open or
 * at the first read).
 */
static int
open_cache (struct vcache *c, bool *created)
{
  void *probe;
  int r;

  c->direct = false;
  if (want_direct (c))
    {
      c->fd = open_cache_fd (c, true, created);
      if (c->fd >= 0)
        {
          probe = uring_bounce ();
          if (probe == NULL)
            return -1;
          r = *created ? 0 : uring_pread (c->fd, probe, VCACHE_REC_SIZE, 0);
          if (r == 0 || r == EIO)
            {
              c->direct = true;
              return 0;
            }
          close (c->fd);
          if (*created)
            unlink (c->cfg.cache_path);
        }
      else if (errno != EINVAL)
        goto err;
      nbdkit_debug ("vaio-cache: %s: O_DIRECT refused, using buffered I/O",
                    c->cfg.cache_path);
    }
  c->fd = open_cache_fd (c, false, created);
  if (c->fd >= 0)
    return 0;
err:
  nbdkit_error ("vaio-cache: cannot open cache %s: %m", c->cfg.cache_path);
  return -1;
}

static int
device_size (struct vcache *c, uint64_t *size)
{
  struct stat st;

  if (fstat (c->fd, &st) == -1)
    return -1;
  if (S_ISBLK (st.st_mode))
    return ioctl (c->fd, BLKGETSIZE64, size);
  *size = (uint64_t)st.st_size;
  return 0;
}

/* --- records --- */

static int
write_rec (struct vcache *c, const void *rec, uint64_t off)
{
  int r = uring_pwrite (c->fd, rec, VCACHE_REC_SIZE, off);

  if (r)
    {
      errno = r;
      nbdkit_error ("vaio-cache: %s: metadata write at %" PRIu64 ": %m",
                    c->cfg.cache_path, off);
      return -1;
    }
  return 0;
}

static int
sync_cache (struct vcache *c)
{
  int r = uring_fdatasync (c->fd);

  if (r)
    {
      errno = r;
      nbdkit_error ("vaio-cache: %s: fdatasync: %m", c->cfg.cache_path);
      return -1;
    }
  return 0;
}

/* Write the superblock to the copy not holding its newest version. */
static int
write_super (struct vcache *c)
{
  void *rec = uring_bounce ();

  c->sb_seq++;
  vcache_super_encode (&c->sb, c->sb_seq, rec);
  if (write_rec (c, rec, vcache_super_offset (c->sb_seq % 2)) == -1)
    return -1;
  return sync_cache (c);
}

/* --- in-memory state --- */

static int
alloc_state (struct vcache *c)
{
  uint32_t n = c->geom.n_slots, md = c->geom.n_md_blocks;

  c->slots = calloc (n, sizeof *c->slots);
  c->free_stack = malloc (n * sizeof *c->free_stack);
  c->md_dirty = calloc (md, 1);
  c->md_seq = calloc (md, sizeof *c->md_seq);
  if (!c->slots || !c->free_stack || !c->md_dirty || !c->md_seq
      || blockmap_init (&c->map, n) == -1)
    goto nomem;
  if (evict_init (&c->q, n) == -1)
    {
      blockmap_free (&c->map);
      goto nomem;
    }
  return 0;
nomem:
  nbdkit_error ("vaio-cache: out of memory for %" PRIu32 " slots", n);
  return -1;
}

static void
free_state (struct vcache *c)
{
  if (c->slots)
    {
      blockmap_free (&c->map);
      evict_free (&c->q);
    }
  free (c->slots);
  free (c->free_stack);
  free (c->md_dirty);
  free (c->md_seq);
  c->slots = NULL;
  c->free_stack = NULL;
  c->md_dirty = NULL;
  c->md_seq = NULL;
}

static void
reset_slots (struct vcache *c)
{
  c->n_free = 0;
  c->dirty_count = 0;
  for (uint32_t s = c->geom.n_slots; s-- > 0;)
    {
      c->slots[s] = (struct vcache_slot){ .block = VCACHE_NO_BLOCK };
      c->free_stack[c->n_free++] = s;
    }
}

/* A fresh, empty cache: both copies of every record written, so stale
 * records of an earlier format can never win on sequence number.
 */
static int
format_cache (struct vcache *c)
{
  void *rec = uring_bounce ();

  nbdkit_debug ("vaio-cache: formatting %s: %" PRIu32 " slots of %" PRIu32
                " bytes",
                c->cfg.cache_path, c->geom.n_slots, c->geom.block_size);
  free_state (c);
  if (alloc_state (c) == -1)
    return -1;
  reset_slots (c);
  for (uint32_t i = 0; i < c->geom.n_md_blocks; i++)
    {
      struct vcache_entry e[VCACHE_ENTRIES_PER_MD];
      uint32_t first = i * VCACHE_ENTRIES_PER_MD;
      unsigned n = c->geom.n_slots - first < VCACHE_ENTRIES_PER_MD
                       ? c->geom.n_slots - first
                       : VCACHE_ENTRIES_PER_MD;

      for (unsigned k = 0; k < n; k++)
        e[k] = (struct vcache_entry){ .block = VCACHE_NO_BLOCK };
      /* Sequence s always lives in copy s % 2 (see store_persist). */
      for (uint64_t seq = 1; seq <= 2; seq++)
        {
          vcache_md_encode (i, seq, 0, e, n, rec);
          if (write_rec (c, rec, vcache_md_offset (i, seq % 2)) == -1)
            return -1;
        }
      c->md_seq[i] = 2;
    }
  memset (&c->sb, 0, sizeof c->sb);
  c->sb.backing_size = c->backing_size;
  c->sb.cache_size = c->cfg.cache_size;
  c->sb.data_offset = c->geom.data_offset;
  c->sb.block_size = c->geom.block_size;
  c->sb.n_slots = c->geom.n_slots;
  c->sb.n_md_blocks = c->geom.n_md_blocks;
  c->sb.clean = 1;
  memcpy (c->sb.disk_id, c->cfg.disk_id, VCACHE_DISK_ID_LEN);
  c->sb_seq = 0;
  /* Two superblock writes: seq 1 to copy 1, seq 2 to copy 0. */
  if (write_super (c) == -1 || write_super (c) == -1)
    return -1;
  return 0;
}

/* --- loading --- */

struct load_error
{
  char msg[256];
};

static int
read_pair (struct vcache *c, uint64_t off0, uint64_t off1, void *a, void *b)
{
  int r = uring_pread (c->fd, a, VCACHE_REC_SIZE, off0);

  if (r == 0)
    r = uring_pread (c->fd, b, VCACHE_REC_SIZE, off1);
  if (r)
    {
      errno = r;
      nbdkit_error ("vaio-cache: %s: reading metadata: %m", c->cfg.cache_path);
      return -1;
    }
  return 0;
}

/* Map one slot loaded from disk.  Returns -1 if the entry is impossible. */
static int
load_entry (struct vcache *c, uint32_t s, const struct vcache_entry *e,
            bool clean_sb)
{
  struct vcache_slot *sl = &c->slots[s];
  uint32_t other;

  if (!(e->flags & VCACHE_ENTRY_VALID))
    return 0;
  /* After a crash, clean entries may name data a later fill replaced:
   * only dirty entries, whose slots are never reused before newer
   * metadata is durable, are trusted.
   */
  if (!clean_sb && !(e->flags & VCACHE_ENTRY_DIRTY))
    return 0;
  if (e->block >= c->n_blocks)
    return -1;
  if (e->epoch > c->epoch)
    c->epoch = e->epoch;
  if (blockmap_get (&c->map, e->block, &other))
    {
      /* Two slots claim one block: an invalidation was not yet durable.
       * The newer dirty epoch wins; the loser waits for metadata.
       */
      struct vcache_slot *o = &c->slots[other];
      if (o->epoch >= e->epoch)
        {
          sl->flags = SLOT_ZOMBIE | SLOT_ONDISK_DIRTY;
          slot_mark_md (c, s);
          return 0;
        }
      evict_remove (&c->q, other);
      if (o->flags & SLOT_DIRTY)
        c->dirty_count--;
      o->flags = SLOT_ZOMBIE | SLOT_ONDISK_DIRTY;
      slot_mark_md (c, other);
    }
  sl->block = e->block;
  sl->epoch = e->epoch;
  sl->flags = SLOT_VALID;
  if (e->flags & VCACHE_ENTRY_DIRTY)
    {
      sl->flags |= SLOT_DIRTY | SLOT_ONDISK_DIRTY;
      c->dirty_count++;
    }
  blockmap_put (&c->map, e->block, s);
  evict_insert (&c->q, s, e->block, true);
  return 0;
}

/* Load every metadata block.  Returns 0, or -1 with le->msg set. */
static int
load_md (struct vcache *c, struct load_error *le)
{
  void *a = uring_bounce ();
  void *b = NULL;
  bool clean_sb = c->sb.clean == 1;
  int ret = -1;

  if (posix_memalign (&b, URING_ALIGN, VCACHE_REC_SIZE) != 0)
    {
      snprintf (le->msg, sizeof le->msg, "out of memory");
      return -1;
    }
  for (uint32_t s = 0; s < c->geom.n_slots; s++)
    c->slots[s] = (struct vcache_slot){ .block = VCACHE_NO_BLOCK };
  for (uint32_t i = 0; i < c->geom.n_md_blocks; i++)
    {
      struct vcache_entry e0[VCACHE_ENTRIES_PER_MD], e1[VCACHE_ENTRIES_PER_MD];
      uint32_t first = i * VCACHE_ENTRIES_PER_MD;
      unsigned n = c->geom.n_slots - first < VCACHE_ENTRIES_PER_MD
                       ? c->geom.n_slots - first
                       : VCACHE_ENTRIES_PER_MD;
      uint64_t seq0 = 0, seq1 = 0, gen0 = 0, gen1 = 0;
      const char *why0 = "", *why1 = "";
      bool ok0, ok1;
      int pick;

      if (read_pair (c, vcache_md_offset (i, 0), vcache_md_offset (i, 1), a, b)
          == -1)
        goto out;
      ok0 = vcache_md_decode (a, i, e0, n, &seq0, &gen0, &why0) == 0;
      ok1 = vcache_md_decode (b, i, e1, n, &seq1, &gen1, &why1) == 0;
      pick = vcache_pick_copy (ok0, seq0, ok1, seq1);
      if (pick == -1)
        {
          snprintf (le->msg, sizeof le->msg,
                    "metadata block %" PRIu32 " corrupt (%s / %s)", i, why0,
                    why1);
          goto out;
        }
      if ((pick ? gen1 : gen0) > c->sb.mount_gen
          || (clean_sb && (pick ? gen1 : gen0) != c->sb.mount_gen))
        {
          snprintf (le->msg, sizeof le->msg,
                    "metadata block %" PRIu32 " is from generation %" PRIu64
                    ", superblock from %" PRIu64,
                    i, pick ? gen1 : gen0, c->sb.mount_gen);
          goto out;
        }
      c->md_seq[i] = pick ? seq1 : seq0;
      for (unsigned k = 0; k < n; k++)
        if (load_entry (c, first + k, pick ? &e1[k] : &e0[k], clean_sb) == -1)
          {
            snprintf (le->msg, sizeof le->msg,
                      "metadata block %" PRIu32
                      " maps slot %u beyond the end of the disk",
                      i, first + k);
            goto out;
          }
    }
  /* Everything not mapped (and not a zombie) is free. */
  c->n_free = 0;
  for (uint32_t s = c->geom.n_slots; s-- > 0;)
    if (c->slots[s].flags == 0)
      c->free_stack[c->n_free++] = s;
  if (c->sb.max_epoch > c->epoch)
    c->epoch = c->sb.max_epoch;
  ret = 0;
out:
  free (b);
  return ret;
}

/* Does the superblock describe this disk with this geometry? */
static const char *
identity_mismatch (struct vcache *c)
{
  if (c->sb.backing_size != c->backing_size)
    return "it caches a disk of another size";
  if (strncmp (c->sb.disk_id, c->cfg.disk_id, VCACHE_DISK_ID_LEN) != 0)
    return "it caches another disk (cache-disk-id differs)";
  if (c->sb.block_size != c->geom.block_size)
    return "its block size differs from cache-block-size";
  if (c->sb.cache_size != c->cfg.cache_size || c->sb.n_slots != c->geom.n_slots
      || c->sb.n_md_blocks != c->geom.n_md_blocks
      || c->sb.data_offset != c->geom.data_offset)
    return "its size differs from cache-size";
  return NULL;
}

/* Without dirty data a bad or foreign cache is simply discarded; with
 * dirty data (or when we cannot tell) it is an error: the data may be
 * the only copy of acknowledged writes.
 */
static int
discard_or_fail (struct vcache *c, bool sb_valid, const char *why)
{
  if (sb_valid && c->sb.clean == 1 && c->sb.dirty_slots == 0)
    {
      nbdkit_debug ("vaio-cache: %s: %s; it held no dirty data: "
                    "discarding it",
                    c->cfg.cache_path, why);
      return format_cache (c);
    }
  nbdkit_error ("vaio-cache: cache %s: %s; it may hold dirty data "
                "(writes not yet in the backing image), so it is not "
                "used; fix it or remove the file to start empty",
                c->cfg.cache_path, why);
  return -1;
}

/* No usable superblock and no cache-size given: size a new cache from
 * the existing file, or the default.
 */
static int
default_geometry (struct vcache *c)
{
  struct stat st;

  c->cfg.cache_size = DEFAULT_CACHE_SIZE;
  if (fstat (c->fd, &st) == 0 && st.st_size >= 1024 * 1024)
    c->cfg.cache_size = (uint64_t)st.st_size;
  if (vcache_geometry (c->cfg.cache_size, c->cfg.block_size, &c->geom) == -1)
    {
      nbdkit_error ("vaio-cache: %s: too small for one cache block",
                    c->cfg.cache_path);
      return -1;
    }
  return 0;
}

static int
load_cache (struct vcache *c, bool created)
{
  void *a = uring_bounce ();
  void *b = NULL;
  struct vcache_super s0, s1;
  uint64_t seq0 = 0, seq1 = 0;
  const char *why0 = "", *why1 = "", *mismatch;
  bool ok0, ok1, blank;
  struct load_error le;
  int pick, r = -1;

  if (created)
    return format_cache (c);
  if (posix_memalign (&b, URING_ALIGN, VCACHE_REC_SIZE) != 0)
    return -1;
  if (read_pair (c, vcache_super_offset (0), vcache_super_offset (1), a, b)
      == -1)
    goto out;
  blank = vcache_rec_is_blank (a) && vcache_rec_is_blank (b);
  ok0 = vcache_super_decode (a, &s0, &seq0, &why0) == 0;
  ok1 = vcache_super_decode (b, &s1, &seq1, &why1) == 0;
  pick = vcache_pick_copy (ok0, seq0, ok1, seq1);
  if (pick == -1)
    {
      if (c->cfg.cache_size == 0 && default_geometry (c) == -1)
        goto out;
      if (blank)
        r = format_cache (c);
      else
        {
          char why[128];
          snprintf (why, sizeof why, "superblock corrupt (%s / %s)", why0,
                    why1);
          r = discard_or_fail (c, false, why);
        }
      goto out;
    }
  c->sb = pick ? s1 : s0;
  c->sb_seq = pick ? seq1 : seq0;
  if (c->cfg.cache_size == 0)
    {
      c->cfg.cache_size = c->sb.cache_size;
      if (vcache_geometry (c->cfg.cache_size, c->cfg.block_size, &c->geom)
          == -1)
        {
          r = discard_or_fail (c, true, "its recorded size is too small");
          goto out;
        }
    }
  mismatch = identity_mismatch (c);
  if (mismatch)
    {
      r = discard_or_fail (c, true, mismatch);
      goto out;
    }
  if (alloc_state (c) == -1)
    goto out;
  if (load_md (c, &le) == -1)
    {
      r = discard_or_fail (c, true, le.msg);
      goto out;
    }
  nbdkit_debug ("vaio-cache: %s: loaded %s cache, %" PRIu64
                " blocks cached, %" PRIu64 " dirty",
                c->cfg.cache_path, c->sb.clean ? "clean" : "crashed",
                (uint64_t)c->map.count, c->dirty_count);
  r = 0;
out:
  free (b);
  return r;
}

int
store_open (struct vcache *c)
{
  bool created;
  uint64_t have;
  struct stat st;

  if (open_cache (c, &created) == -1)
    return -1;
  if (fstat (c->fd, &st) == 0 && !S_ISBLK (st.st_mode) && c->cfg.is_device)
    nbdkit_debug ("vaio-cache: %s is not a block device", c->cfg.cache_path);
  nbdkit_debug ("vaio-cache: %s: %s", c->cfg.cache_path,
                c->direct ? "O_DIRECT" : "buffered (page cache)");
  if (device_size (c, &have) == -1)
    {
      nbdkit_error ("vaio-cache: %s: cannot get size: %m", c->cfg.cache_path);
      return -1;
    }
  if (c->cfg.is_device)
    {
      if (c->cfg.cache_size == 0 || c->cfg.cache_size > have)
        c->cfg.cache_size = have;
    }
  else if (created)
    {
      if (c->cfg.cache_size == 0)
        c->cfg.cache_size = DEFAULT_CACHE_SIZE;
    }
  if (c->cfg.cache_size
      && vcache_geometry (c->cfg.cache_size, c->cfg.block_size, &c->geom) == -1)
    {
      nbdkit_error ("vaio-cache: cache-size %" PRIu64
                    " is too small for one block of %" PRIu32 " bytes",
                    c->cfg.cache_size, c->cfg.block_size);
      return -1;
    }
  if (load_cache (c, created) == -1)
    return -1;
  if (!c->cfg.is_device && have < c->cfg.cache_size
      && ftruncate (c->fd, (off_t)c->cfg.cache_size) == -1)
    {
      nbdkit_error ("vaio-cache: %s: cannot size it to %" PRIu64 ": %m",
                    c->cfg.cache_path, c->cfg.cache_size);
      return -1;
    }
  /* Mounted: from now on the cache is "not clean" on disk until a clean
   * shutdown says otherwise, so a crash makes the loader trust only dirty
   * entries.
   */
  c->sb.mount_gen++;
  c->sb.clean = 0;
  c->sb.dirty_slots = 0;
  return write_super (c);
}

/* --- persisting --- */

static unsigned
md_entries (const struct vcache *c, uint32_t i)
{
  uint32_t first = i * VCACHE_ENTRIES_PER_MD;

  return c->geom.n_slots - first < VCACHE_ENTRIES_PER_MD
             ? c->geom.n_slots - first
             : VCACHE_ENTRIES_PER_MD;
}

static void
encode_entries (struct vcache *c, uint32_t i, struct vcache_entry *e)
{
  uint32_t first = i * VCACHE_ENTRIES_PER_MD;
  unsigned n = md_entries (c, i);

  for (unsigned k = 0; k < n; k++)
    {
      struct vcache_slot *sl = &c->slots[first + k];

      e[k] = (struct vcache_entry){ .block = VCACHE_NO_BLOCK };
      if (sl->flags & SLOT_VALID)
        {
          e[k].block = sl->block;
          e[k].epoch = sl->epoch;
          e[k].flags = VCACHE_ENTRY_VALID;
          if (sl->flags & SLOT_DIRTY)
            {
              e[k].flags |= VCACHE_ENTRY_DIRTY;
              /* Conservative: from now on the disk may say dirty. */
              sl->flags |= SLOT_ONDISK_DIRTY;
            }
        }
    }
}

/* The metadata just written is durable: slots it records as not dirty
 * no longer have a dirty entry on disk; zombies among them become free.
 */
static void
after_md_durable (struct vcache *c, uint32_t i, const struct vcache_entry *e)
{
  uint32_t first = i * VCACHE_ENTRIES_PER_MD;
  unsigned n = md_entries (c, i);

  for (unsigned k = 0; k < n; k++)
    {
      struct vcache_slot *sl = &c->slots[first + k];

      if (e[k].flags & VCACHE_ENTRY_DIRTY)
        continue;
      sl->flags &= ~SLOT_ONDISK_DIRTY;
      if (sl->flags & SLOT_ZOMBIE)
        {
          sl->flags = 0;
          sl->block = VCACHE_NO_BLOCK;
          c->free_stack[c->n_free++] = first + k;
        }
    }
}

/* Make every acknowledged write durable in the cache: data first, then
 * the metadata that points at it.  all: rewrite every metadata block
 * (clean shutdown), else only the changed ones.
 */
int
store_persist (struct vcache *c, bool all)
{
  uint32_t nmd = c->geom.n_md_blocks, nw = 0;
  uint32_t *idx = NULL;
  struct vcache_entry *ents = NULL;
  void *rec = NULL;
  int ret = -1;

  pthread_mutex_lock (&c->persist_lock);
  idx = malloc (nmd * sizeof *idx);
  ents = malloc ((size_t)nmd * VCACHE_ENTRIES_PER_MD * sizeof *ents);
  rec = uring_bounce ();
  if (!idx || !ents || !rec)
    {
      nbdkit_error ("vaio-cache: out of memory persisting metadata");
      goto out;
    }
  pthread_mutex_lock (&c->lock);
  for (uint32_t i = 0; i < nmd; i++)
    if (all || c->md_dirty[i])
      {
        c->md_dirty[i] = 0;
        encode_entries (c, i, &ents[(size_t)nw * VCACHE_ENTRIES_PER_MD]);
        idx[nw++] = i;
      }
  pthread_mutex_unlock (&c->lock);

  if (sync_cache (c) == -1)
    goto redirty;
  for (uint32_t w = 0; w < nw; w++)
    {
      uint32_t i = idx[w];
      uint64_t seq = c->md_seq[i] + 1;

      vcache_md_encode (i, seq, c->sb.mount_gen,
                        &ents[(size_t)w * VCACHE_ENTRIES_PER_MD],
                        md_entries (c, i), rec);
      if (write_rec (c, rec, vcache_md_offset (i, seq % 2)) == -1)
        goto redirty;
      c->md_seq[i] = seq;
    }
  if (nw && sync_cache (c) == -1)
    goto redirty;

  pthread_mutex_lock (&c->lock);
  for (uint32_t w = 0; w < nw; w++)
    after_md_durable (c, idx[w], &ents[(size_t)w * VCACHE_ENTRIES_PER_MD]);
  pthread_mutex_unlock (&c->lock);
  ret = 0;
  goto out;

redirty:
  /* Not durable: the next persist must write these blocks again. */
  pthread_mutex_lock (&c->lock);
  for (uint32_t w = 0; w < nw; w++)
    c->md_dirty[idx[w]] = 1;
  pthread_mutex_unlock (&c->lock);
out:
  pthread_mutex_unlock (&c->persist_lock);
  free (idx);
  free (ents);
  return ret;
}

/* Clean shutdown: all metadata, then a superblock saying clean, so the
 * next start trusts clean entries too (warm cache).
 */
int
store_close_clean (struct vcache *c)
{
  int r;

  if (store_persist (c, true) == -1)
    return -1;
  pthread_mutex_lock (&c->persist_lock);
  pthread_mutex_lock (&c->lock);
  c->sb.clean = 1;
  c->sb.dirty_slots = c->dirty_count;
  c->sb.max_epoch = c->epoch;
  pthread_mutex_unlock (&c->lock);
  r = write_super (c);
  pthread_mutex_unlock (&c->persist_lock);
  return r;
}

void
store_free (struct vcache *c)
{
  free_state (c);
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
}

/* vaio-cache: the shared state of the cache filter.
 *
 * One cache per nbdkit process (one process serves one VM disk).  Locks,
 * always taken in this order, never two stripes at once:
 *
 *   stripes[hash(block)]  rwlock per group of backing blocks: shared for
 *                         cache hits and destaging, exclusive for fills,
 *                         writes, zero and trim.  Held across backend and
 *                         cache I/O of that one block only, so unrelated
 *                         blocks never wait for each other's I/O (nbdkit's
 *                         cache filter holds one global lock around
 *                         backend I/O; we do not).
 *   persist_lock          serialises metadata writes, so metadata records
 *                         reach the disk in the order they were encoded.
 *   lock                  the in-memory map: slots, blockmap, 2Q queues,
 *                         free list, dirty accounting.  Never held across
 *                         I/O.
 *
 * A slot pinned (pins > 0, taken under lock, dropped atomically) is never
 * evicted or reused.  A slot whose
 * on-disk metadata may still say "dirty" (SLOT_ONDISK_DIRTY) is never
 * reused until newer metadata saying otherwise is durable: after a crash
 * the loader trusts dirty entries, so their data must stay put.
 */
#ifndef VAIO_CACHE_VCACHE_H
#define VAIO_CACHE_VCACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nbdkit-filter.h>

#include "blockmap.h"
#include "evict.h"
#include "meta.h"
#include "stats.h"

#define VCACHE_STRIPES 1024

enum vcache_mode
{
  MODE_WRITE_THROUGH,
  MODE_WRITE_BACK,
  MODE_WRITE_AROUND,
};

/* Slot flags in memory. */
#define SLOT_VALID        0x01 /* mapped, data present */
#define SLOT_DIRTY        0x02 /* newer than the backing image */
#define SLOT_ONDISK_DIRTY 0x04 /* durable metadata may say dirty */
#define SLOT_BUSY         0x08 /* allocated, being filled, not mapped */
#define SLOT_ZOMBIE       0x10 /* invalidated, waits for metadata */

struct vcache_slot
{
  uint64_t block;
  uint64_t epoch; /* dirty epoch, see struct vcache_entry */
  uint64_t wseq;  /* +1 per write: destage clears DIRTY only if unchanged */
  uint32_t pins;
  uint8_t flags;
};

/* Stats counter indices (order of stat_defs in cache.c). */
enum
{
  ST_HITS,
  ST_MISSES,
  ST_HIT_RATIO_PERMILLE,
  ST_DIRTY_BYTES,
  ST_CACHED_BYTES,
  ST_DESTAGED_BYTES,
  ST_BYPASSED,
  ST_EVICTIONS,
  ST_DESTAGE_RATE, /* bytes/s over the last second or so */
  ST_COUNT
};

/* cache-direct=: O_DIRECT always, never, or only on a block device. */
enum vcache_direct
{
  DIRECT_AUTO,
  DIRECT_ON,
  DIRECT_OFF,
};

struct vcache_config
{
  char *cache_path;
  bool is_device;
  uint64_t cache_size; /* 0: from the existing cache, else 256M */
  uint32_t block_size;
  enum vcache_mode mode;
  uint64_t seq_cutoff;            /* 0: never bypass */
  unsigned dirty_high, dirty_low; /* percent of slots */
  bool destage_on_close;
  enum vcache_direct direct;
  char *state_dir;
  char disk_id[VCACHE_DISK_ID_LEN];
};

struct vcache
{
  struct vcache_config cfg;

  /* Set up in after_fork, read-only afterwards. */
  int fd;
  bool direct; /* fd is O_DIRECT */
  uint64_t backing_size;
  uint64_t n_blocks;
  struct vcache_geom geom;
  nbdkit_next *shared; /* backend context of the destager */
  struct vaio_stats *stats;
  char *zero_block;

  pthread_rwlock_t stripes[VCACHE_STRIPES];
  pthread_mutex_t persist_lock; /* guards sb, sb_seq, md_seq */
  struct vcache_super sb;
  uint64_t sb_seq;
  uint64_t *md_seq;

  pthread_mutex_t lock; /* guards everything below */
  struct vcache_slot *slots;
  struct blockmap map;
  struct evict2q q;
  uint32_t *free_stack;
  uint32_t n_free;
  uint8_t *md_dirty; /* per metadata block: needs writing */
  uint64_t dirty_count;
  uint64_t epoch;
  uint64_t hits, misses;   /* atomic: updated without the lock */
  uint64_t destaged_total; /* atomic */
  pthread_cond_t destage_cond;
  bool destage_stop;
  bool destage_active;
  bool draining; /* <state-dir>/drain exists: destage to zero */
};

/* The one cache of this process: cache.c sets it up in after_fork and
 * tears it down in cleanup; its own locks guard it in between.
 */
extern struct vcache vcache;

/* store.c */
int store_open (struct vcache *c);
int store_persist (struct vcache *c, bool all);
int store_close_clean (struct vcache *c);
void store_free (struct vcache *c);
void slot_mark_md (struct vcache *c, uint32_t slot);
void slot_release (struct vcache *c, uint32_t slot);

/* io.c */
uint32_t block_len (const struct vcache *c, uint64_t block);
int io_read_block (struct vcache *c, nbdkit_next *next, uint64_t block,
                   uint32_t off, uint32_t len, char *dst, bool bypass,
                   int *err);
int io_write_block (struct vcache *c, nbdkit_next *next, uint64_t block,
                    uint32_t off, uint32_t len, const char *src, bool zero,
                    uint32_t zero_flags, bool bypass, int *err);
int io_trim_block (struct vcache *c, nbdkit_next *next, uint64_t block,
                   uint32_t off, uint32_t len, int *err);
int io_flush (struct vcache *c, nbdkit_next *next, int *err);
int io_cache_read (struct vcache *c, uint32_t slot, uint32_t off, uint32_t len,
                   char *dst);
void io_publish_stats (struct vcache *c);

/* destage.c */
int destage_start (struct vcache *c);
void destage_stop (struct vcache *c);
int destage_all (struct vcache *c);
void destage_kick (struct vcache *c);

#endif /* VAIO_CACHE_VCACHE_H */

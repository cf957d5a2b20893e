/* vaio-cache persistent metadata: on-disk layout, encode and decode.
 *
 * Pure logic (no I/O), so the Check unit tests exercise it directly.
 *
 * Cache file layout, in 4 KiB records:
 *
 *   record 0, 1          superblock, two copies (A/B)
 *   record 2 + 2*i, +1   metadata block i, two copies (A/B)
 *   data_offset ...      n_slots data slots of block_size bytes
 *
 * Every record has a header with a magic, a version, its kind and index,
 * a sequence number (the record's generation: +1 at every write) and a
 * zlib crc32 over the whole record.  A record is always written to the
 * copy that does NOT hold its newest version, so a write torn by a crash
 * leaves the previous durable version intact; the loader takes the valid
 * copy with the highest sequence.
 */
#ifndef VAIO_CACHE_META_H
#define VAIO_CACHE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VCACHE_REC_SIZE    4096
#define VCACHE_VERSION     1
#define VCACHE_DISK_ID_LEN 64
#define VCACHE_NO_BLOCK    UINT64_MAX

enum vcache_rec_kind
{
  VCACHE_REC_SUPER = 1,
  VCACHE_REC_MD = 2,
};

/* Slot flags as stored on disk. */
#define VCACHE_ENTRY_VALID 1u
#define VCACHE_ENTRY_DIRTY 2u

struct vcache_entry
{
  uint64_t block; /* backing block number, VCACHE_NO_BLOCK when empty */
  uint64_t epoch; /* when it last became dirty: newest wins a duplicate */
  uint32_t flags;
};

struct vcache_super
{
  uint64_t backing_size;
  uint64_t cache_size;
  uint64_t data_offset;
  uint64_t mount_gen;   /* +1 at every start; md records carry theirs */
  uint64_t dirty_slots; /* at clean shutdown */
  uint64_t max_epoch;
  uint32_t block_size;
  uint32_t n_slots;
  uint32_t n_md_blocks;
  uint32_t clean; /* 1: written by a clean shutdown */
  char disk_id[VCACHE_DISK_ID_LEN];
};

/* Where things are, for a cache of cache_size bytes. */
struct vcache_geom
{
  uint32_t block_size;
  uint32_t n_slots;
  uint32_t n_md_blocks;
  uint64_t data_offset;
};

#define VCACHE_HEADER_SIZE 48
#define VCACHE_ENTRY_SIZE  24
#define VCACHE_ENTRIES_PER_MD                                                  \
  ((VCACHE_REC_SIZE - VCACHE_HEADER_SIZE) / VCACHE_ENTRY_SIZE)

/* Compute the layout.  Returns 0, or -1 when the cache is too small to
 * hold even one slot.
 */
int vcache_geometry (uint64_t cache_size, uint32_t block_size,
                     struct vcache_geom *g);

static inline uint64_t
vcache_super_offset (unsigned copy)
{
  return (uint64_t)copy * VCACHE_REC_SIZE;
}

static inline uint64_t
vcache_md_offset (uint32_t md_index, unsigned copy)
{
  return (uint64_t)(2 + 2 * (uint64_t)md_index + copy) * VCACHE_REC_SIZE;
}

/* Encode into a VCACHE_REC_SIZE buffer. */
void vcache_super_encode (const struct vcache_super *sb, uint64_t seq,
                          void *rec);
void vcache_md_encode (uint32_t md_index, uint64_t seq, uint64_t mount_gen,
                       const struct vcache_entry *entries, unsigned n,
                       void *rec);

/* Decode one record.  Return 0, or -1 with *why set to a static string
 * saying what is wrong (bad magic, version, checksum, index).
 */
int vcache_super_decode (const void *rec, struct vcache_super *sb,
                         uint64_t *seq, const char **why);
int vcache_md_decode (const void *rec, uint32_t md_index,
                      struct vcache_entry *entries, unsigned n, uint64_t *seq,
                      uint64_t *mount_gen, const char **why);

/* Which copy holds the newest valid version: 0, 1, or -1 if neither is
 * valid.
 */
int vcache_pick_copy (bool ok0, uint64_t seq0, bool ok1, uint64_t seq1);

/* True if the record is all zero bytes (never written). */
bool vcache_rec_is_blank (const void *rec);

#endif /* VAIO_CACHE_META_H */

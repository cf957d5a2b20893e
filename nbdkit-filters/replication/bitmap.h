/* vaio-replication: the persisted dirty bitmap (change tracking).
 *
 * One bit per `granularity` bytes of the source disk says "the replica may
 * differ here".  <state-dir>/bitmap is:
 *
 *   [0, 4096)            header: magic, version, granularity, disk size,
 *                        number of bits, hash of the replica target, CRC32
 *   4096-byte pages      BMAP_PAGE_BITS bits, the page index and a CRC32
 *                        of both, so a torn or corrupted page is detected
 *                        and treated as all-dirty (never as clean).
 *
 * In memory there are two sets: `dirty` (must be copied) and `copying`
 * (taken by a resync pass, not yet durable on the replica).  The file
 * holds their union, so a crash in the middle of a copy copies again.
 * Callers serialise access (the filter's lock).
 */
#ifndef VAIO_REPL_BITMAP_H
#define VAIO_REPL_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BMAP_MAGIC      "VAIOBMAP"
#define BMAP_VERSION    1
#define BMAP_PAGE_SIZE  4096
#define BMAP_PAGE_BYTES (BMAP_PAGE_SIZE - 8)
#define BMAP_PAGE_BITS  (BMAP_PAGE_BYTES * 8)

struct bmap
{
  int fd;
  char *path;
  uint64_t granularity;
  uint64_t disk_size;
  uint64_t nbits;
  uint32_t target_hash;
  uint64_t npages;
  uint8_t *dirty;      /* npages * BMAP_PAGE_BYTES */
  uint8_t *copying;    /* same size */
  uint8_t *page_stale; /* per page: file differs from memory */
  uint64_t n_dirty;    /* bits set in dirty */
  uint64_t n_copying;  /* bits set in copying */
};

/* Open or create path.  A new file, or one made for another disk size,
 * granularity or target, starts with every bit dirty (*full_sync set):
 * the replica is unknown.  Pages failing their CRC are reported in
 * *bad_pages and come back all-dirty.  A bad header is an error.
 */
struct bmap *bmap_open (const char *path, uint64_t disk_size,
                        uint64_t granularity, uint32_t target_hash,
                        bool *full_sync, uint64_t *bad_pages, char *err,
                        size_t errlen);
void bmap_close (struct bmap *b);

/* Mark [offset, offset+len) dirty.  Returns the number of newly set
 * bits (their pages are now stale in the file).
 */
uint64_t bmap_mark (struct bmap *b, uint64_t offset, uint64_t len);
void bmap_mark_all (struct bmap *b);

/* First dirty bit at or after from, or -1. */
int64_t bmap_next_dirty (const struct bmap *b, uint64_t from);

/* Move a bit from dirty to copying (a resync pass takes it). */
void bmap_take (struct bmap *b, uint64_t bit);

/* The copy of a taken bit is durable on the replica: forget it. */
void bmap_done (struct bmap *b, uint64_t bit);

/* A copy failed: the bit is dirty again. */
void bmap_untake (struct bmap *b, uint64_t bit);

/* Write every stale page (and fdatasync when sync). */
int bmap_persist (struct bmap *b, bool sync, char *err, size_t errlen);

bool bmap_is_clean (const struct bmap *b);

/* Pure helpers for the tests. */
void bmap_page_encode (const uint8_t bits[BMAP_PAGE_BYTES], uint32_t index,
                       uint8_t out[BMAP_PAGE_SIZE]);
bool bmap_page_check (const uint8_t in[BMAP_PAGE_SIZE], uint32_t index);

#endif /* VAIO_REPL_BITMAP_H */

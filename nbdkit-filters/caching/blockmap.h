/* vaio-cache: fixed-capacity hash map from a backing block number to a
 * 32-bit value (a slot index, or a ghost-ring position).  Open addressing
 * with linear probing and backward-shift deletion, so there are no
 * tombstones and lookups stay short however many deletions happen.
 * Not thread-safe: the caller's lock guards it.
 */
#ifndef VAIO_CACHE_BLOCKMAP_H
#define VAIO_CACHE_BLOCKMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blockmap
{
  uint64_t *keys; /* UINT64_MAX marks an empty bucket */
  uint32_t *vals;
  size_t mask;
  size_t count;
  size_t max_entries;
};

/* Room for max_entries keys.  Returns 0, or -1 (ENOMEM). */
int blockmap_init (struct blockmap *m, size_t max_entries);
void blockmap_free (struct blockmap *m);
bool blockmap_get (const struct blockmap *m, uint64_t key, uint32_t *val);
/* Insert or replace.  Returns -1 only when full (a caller bug). */
int blockmap_put (struct blockmap *m, uint64_t key, uint32_t val);
bool blockmap_del (struct blockmap *m, uint64_t key);
void blockmap_clear (struct blockmap *m);

#endif /* VAIO_CACHE_BLOCKMAP_H */

/* vaio-cache eviction: 2Q (Johnson & Shasha, VLDB 1994), scan resistant.
 *
 *   A1in  FIFO of blocks seen once recently (about a quarter of the cache)
 *   A1out ghost FIFO of block numbers recently evicted from A1in (no data)
 *   Am    LRU of blocks referenced again (hit in A1in, found in A1out,
 *         or loaded warm)
 *
 * A sequential scan touches each block once: it cycles through A1in and
 * never displaces Am, the hot set.  Pure logic over slot indices; the
 * caller's lock guards it and the caller decides which slots may be
 * evicted (not pinned, not dirty).
 */
#ifndef VAIO_CACHE_EVICT_H
#define VAIO_CACHE_EVICT_H

#include <stdbool.h>
#include <stdint.h>

#include "blockmap.h"

enum evict_list
{
  EVICT_NONE = 0,
  EVICT_A1IN,
  EVICT_AM,
};

struct evict_queue
{
  uint32_t head, tail; /* head = most recent; UINT32_MAX when empty */
  uint32_t len;
};

struct evict2q
{
  uint32_t n_slots;
  uint32_t kin;  /* target size of A1in */
  uint32_t kout; /* capacity of the A1out ghost ring */
  uint32_t *prev, *next;
  uint8_t *list; /* enum evict_list per slot */
  uint64_t *block;
  struct evict_queue a1in, am;
  uint64_t *ghost;        /* ring of block numbers */
  uint32_t ghost_pos;     /* next position to overwrite */
  struct blockmap ghosts; /* block -> ring position */
};

typedef bool (*evict_can_fn) (void *opaque, uint32_t slot);

int evict_init (struct evict2q *q, uint32_t n_slots);
void evict_free (struct evict2q *q);

/* A block was just cached in slot.  It joins Am if it is a ghost (seen
 * recently) or hot is true (warm load), else A1in.
 */
void evict_insert (struct evict2q *q, uint32_t slot, uint64_t block, bool hot);
/* A cache hit on slot. */
void evict_touch (struct evict2q *q, uint32_t slot);
/* slot was invalidated (trim): forget it without making a ghost. */
void evict_remove (struct evict2q *q, uint32_t slot);
/* Choose a victim, remove it from its queue and return it; -1 when no
 * slot among the oldest few of either queue can be evicted.
 */
int64_t evict_victim (struct evict2q *q, evict_can_fn can, void *opaque);

#endif /* VAIO_CACHE_EVICT_H */

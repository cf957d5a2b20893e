/* vaio-cache eviction, 2Q: see evict.h. */
#include <errno.h>
#include <stdlib.h>

#include "evict.h"

#define NIL UINT32_MAX

/* How far from the cold end victim selection looks past slots it may not
 * evict (dirty or pinned) before giving up: bounds the time spent under
 * the caller's lock.
 */
#define VICTIM_SCAN 64

static void
queue_init (struct evict_queue *qu)
{
  qu->head = qu->tail = NIL;
  qu->len = 0;
}

static struct evict_queue *
queue_of (struct evict2q *q, uint8_t list)
{
  return list == EVICT_AM ? &q->am : &q->a1in;
}

static void
unlink_slot (struct evict2q *q, uint32_t s)
{
  struct evict_queue *qu;

  if (q->list[s] == EVICT_NONE)
    return;
  qu = queue_of (q, q->list[s]);
  if (q->prev[s] != NIL)
    q->next[q->prev[s]] = q->next[s];
  else
    qu->head = q->next[s];
  if (q->next[s] != NIL)
    q->prev[q->next[s]] = q->prev[s];
  else
    qu->tail = q->prev[s];
  qu->len--;
  q->list[s] = EVICT_NONE;
  q->prev[s] = q->next[s] = NIL;
}

static void
push_head (struct evict2q *q, uint8_t list, uint32_t s)
{
  struct evict_queue *qu = queue_of (q, list);

  q->prev[s] = NIL;
  q->next[s] = qu->head;
  if (qu->head != NIL)
    q->prev[qu->head] = s;
  else
    qu->tail = s;
  qu->head = s;
  qu->len++;
  q->list[s] = list;
}

int
evict_init (struct evict2q *q, uint32_t n_slots)
{
  q->n_slots = n_slots;
  q->kin = n_slots / 4 ? n_slots / 4 : 1;
  q->kout = n_slots / 2 ? n_slots / 2 : 1;
  q->prev = malloc (n_slots * sizeof *q->prev);
  q->next = malloc (n_slots * sizeof *q->next);
  q->list = calloc (n_slots, 1);
  q->block = malloc (n_slots * sizeof *q->block);
  q->ghost = malloc (q->kout * sizeof *q->ghost);
  if (!q->prev || !q->next || !q->list || !q->block || !q->ghost
      || blockmap_init (&q->ghosts, q->kout) == -1)
    {
      free (q->prev);
      free (q->next);
      free (q->list);
      free (q->block);
      free (q->ghost);
      errno = ENOMEM;
      return -1;
    }
  for (uint32_t i = 0; i < n_slots; i++)
    {
      q->prev[i] = q->next[i] = NIL;
      q->block[i] = UINT64_MAX;
    }
  for (uint32_t i = 0; i < q->kout; i++)
    q->ghost[i] = UINT64_MAX;
  q->ghost_pos = 0;
  queue_init (&q->a1in);
  queue_init (&q->am);
  return 0;
}

void
evict_free (struct evict2q *q)
{
  free (q->prev);
  free (q->next);
  free (q->list);
  free (q->block);
  free (q->ghost);
  blockmap_free (&q->ghosts);
}

static void
ghost_add (struct evict2q *q, uint64_t block)
{
  uint32_t pos = q->ghost_pos, owner;
  uint64_t old = q->ghost[pos];

  /* The ring entry being overwritten leaves A1out, unless that block was
   * re-added later at another position.
   */
  if (old != UINT64_MAX && blockmap_get (&q->ghosts, old, &owner)
      && owner == pos)
    blockmap_del (&q->ghosts, old);
  q->ghost[pos] = block;
  blockmap_put (&q->ghosts, block, pos);
  q->ghost_pos = (pos + 1) % q->kout;
}

void
evict_insert (struct evict2q *q, uint32_t slot, uint64_t block, bool hot)
{
  unlink_slot (q, slot);
  q->block[slot] = block;
  if (blockmap_del (&q->ghosts, block))
    hot = true;
  push_head (q, hot ? EVICT_AM : EVICT_A1IN, slot);
}

void
evict_touch (struct evict2q *q, uint32_t slot)
{
  /* A second reference promotes a block from A1in to Am (the "full"
   * 2Q's correlated-reference window is not worth its bookkeeping here:
   * NBD clients rarely re-read a block within microseconds).  A block
   * read once by a scan never leaves A1in, so scans cannot reach Am.
   */
  if (q->list[slot] == EVICT_A1IN
      || (q->list[slot] == EVICT_AM && q->am.head != slot))
    {
      unlink_slot (q, slot);
      push_head (q, EVICT_AM, slot);
    }
}

void
evict_remove (struct evict2q *q, uint32_t slot)
{
  unlink_slot (q, slot);
  q->block[slot] = UINT64_MAX;
}

static int64_t
pick_from (struct evict2q *q, struct evict_queue *qu, evict_can_fn can,
           void *opaque)
{
  uint32_t s = qu->tail;

  for (unsigned n = 0; s != NIL && n < VICTIM_SCAN; n++, s = q->prev[s])
    if (can (opaque, s))
      return s;
  return -1;
}

int64_t
evict_victim (struct evict2q *q, evict_can_fn can, void *opaque)
{
  bool from_a1in = q->a1in.len > q->kin || q->am.len == 0;
  int64_t s;

  s = pick_from (q, from_a1in ? &q->a1in : &q->am, can, opaque);
  if (s == -1)
    {
      from_a1in = !from_a1in;
      s = pick_from (q, from_a1in ? &q->a1in : &q->am, can, opaque);
    }
  if (s == -1)
    return -1;
  if (q->list[s] == EVICT_A1IN)
    ghost_add (q, q->block[s]);
  evict_remove (q, (uint32_t)s);
  return s;
}

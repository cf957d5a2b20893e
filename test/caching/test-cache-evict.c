/* Unit tests of vaio-cache's block map and 2Q eviction: lookups survive
 * heavy deletion, a sequential scan does not flush the hot set, victims
 * respect the caller's "may not evict" (dirty, pinned).
 */
#include <check.h>
#include <stdlib.h>

#include "blockmap.h"
#include "evict.h"

START_TEST (blockmap_put_get_del)
{
  struct blockmap m;
  uint32_t v;

  ck_assert_int_eq (blockmap_init (&m, 1000), 0);
  for (uint64_t k = 0; k < 1000; k++)
    ck_assert_int_eq (blockmap_put (&m, k * 64, (uint32_t)k), 0);
  ck_assert_int_eq (blockmap_put (&m, 999999, 1), -1); /* full */
  for (uint64_t k = 0; k < 1000; k += 2)
    ck_assert (blockmap_del (&m, k * 64));
  for (uint64_t k = 0; k < 1000; k++)
    {
      bool found = blockmap_get (&m, k * 64, &v);
      ck_assert_int_eq (found, k % 2 == 1);
      if (found)
        ck_assert_uint_eq (v, k);
    }
  ck_assert_uint_eq (m.count, 500);
  ck_assert (!blockmap_del (&m, 0));
  blockmap_free (&m);
}
END_TEST

/* Random insert/delete against a plain array model. */
START_TEST (blockmap_random_against_model)
{
  enum
  {
    KEYS = 4096,
    CAP = 512
  };
  struct blockmap m;
  static int model[KEYS];
  size_t live = 0;
  uint32_t v;

  srand (1234);
  for (unsigned i = 0; i < KEYS; i++)
    model[i] = -1;
  ck_assert_int_eq (blockmap_init (&m, CAP), 0);
  for (unsigned step = 0; step < 200000; step++)
    {
      unsigned k = (unsigned)rand () % KEYS;
      if (model[k] >= 0 && rand () % 2)
        {
          ck_assert (blockmap_del (&m, k));
          model[k] = -1;
          live--;
        }
      else if (live < CAP || model[k] >= 0)
        {
          if (model[k] < 0)
            live++;
          model[k] = (int)step;
          ck_assert_int_eq (blockmap_put (&m, k, step), 0);
        }
    }
  for (unsigned k = 0; k < KEYS; k++)
    {
      bool found = blockmap_get (&m, k, &v);
      ck_assert_int_eq (found, model[k] >= 0);
      if (found)
        ck_assert_uint_eq (v, (uint32_t)model[k]);
    }
  ck_assert_uint_eq (m.count, live);
  blockmap_free (&m);
}
END_TEST

/* A tiny cache simulator over the policy: block -> slot. */
struct sim
{
  struct evict2q q;
  struct blockmap map;
  uint64_t *slot_block;
  bool *dirty;
  uint32_t n, used;
  unsigned hits, misses;
};

static bool
sim_can (void *opaque, uint32_t s)
{
  struct sim *sm = opaque;
  return !sm->dirty[s];
}

static void
sim_init (struct sim *sm, uint32_t n)
{
  ck_assert_int_eq (evict_init (&sm->q, n), 0);
  ck_assert_int_eq (blockmap_init (&sm->map, n), 0);
  sm->slot_block = calloc (n, sizeof *sm->slot_block);
  sm->dirty = calloc (n, sizeof *sm->dirty);
  sm->n = n;
  sm->used = 0;
  sm->hits = sm->misses = 0;
}

static void
sim_free (struct sim *sm)
{
  evict_free (&sm->q);
  blockmap_free (&sm->map);
  free (sm->slot_block);
  free (sm->dirty);
}

/* Returns the slot used, or -1 when nothing could be evicted. */
static int64_t
sim_access (struct sim *sm, uint64_t b)
{
  uint32_t s;
  int64_t v;

  if (blockmap_get (&sm->map, b, &s))
    {
      sm->hits++;
      evict_touch (&sm->q, s);
      return s;
    }
  sm->misses++;
  if (sm->used < sm->n)
    s = sm->used++;
  else
    {
      v = evict_victim (&sm->q, sim_can, sm);
      if (v < 0)
        return -1;
      s = (uint32_t)v;
      ck_assert (blockmap_del (&sm->map, sm->slot_block[s]));
    }
  sm->slot_block[s] = b;
  blockmap_put (&sm->map, b, s);
  evict_insert (&sm->q, s, b, false);
  return s;
}

START_TEST (scan_does_not_flush_hot_set)
{
  struct sim sm;
  const uint32_t n = 100;

  sim_init (&sm, n);
  /* A hot set of 50 blocks, each referenced twice, then scans. */
  for (unsigned round = 0; round < 2; round++)
    for (uint64_t b = 0; b < 50; b++)
      sim_access (&sm, b);
  /* A long one-pass scan, 10x the cache. */
  for (uint64_t b = 0; b < 1000; b++)
    sim_access (&sm, 500000 + b);
  sm.hits = sm.misses = 0;
  for (uint64_t b = 0; b < 50; b++)
    sim_access (&sm, b);
  ck_assert_uint_eq (sm.hits, 50);
  sim_free (&sm);
}
END_TEST

/* The control: under plain FIFO/LRU the same scan would have flushed the
 * hot set; make sure the scan really was large enough to do so, by
 * checking that scan blocks themselves did not stay.
 */
START_TEST (scan_blocks_do_not_stay)
{
  struct sim sm;
  unsigned stayed = 0;

  sim_init (&sm, 100);
  for (uint64_t b = 0; b < 1000; b++)
    sim_access (&sm, 500000 + b);
  for (uint64_t b = 0; b < 1000; b++)
    stayed += blockmap_get (&sm.map, 500000 + b, NULL);
  ck_assert_uint_eq (stayed, 100); /* the cache is full, of the newest */
  ck_assert (!blockmap_get (&sm.map, 500000, NULL));
  sim_free (&sm);
}
END_TEST

START_TEST (dirty_never_evicted)
{
  struct sim sm;

  sim_init (&sm, 10);
  for (uint64_t b = 0; b < 10; b++)
    sm.dirty[sim_access (&sm, b)] = b < 9; /* all dirty but block 9 */
  /* Only block 9's slot may go; then nothing may. */
  ck_assert_int_ge (sim_access (&sm, 100), 0);
  ck_assert (!blockmap_get (&sm.map, 9, NULL));
  /* Now every slot is dirty except block 0's: it is the only victim. */
  for (uint32_t s = 0; s < 10; s++)
    sm.dirty[s] = sm.slot_block[s] != 0;
  ck_assert_int_ge (sim_access (&sm, 101), 0);
  ck_assert (!blockmap_get (&sm.map, 0, NULL));
  for (uint32_t s = 0; s < 10; s++)
    sm.dirty[s] = true;
  ck_assert_int_eq (sim_access (&sm, 102), -1);
  for (uint64_t b = 1; b < 9; b++)
    ck_assert (blockmap_get (&sm.map, b, NULL));
  sim_free (&sm);
}
END_TEST

/* A block evicted from A1in and referenced again soon returns to Am. */
START_TEST (ghost_hit_promotes)
{
  struct sim sm;
  uint32_t s;

  sim_init (&sm, 8);
  for (uint64_t b = 0; b < 9; b++) /* block 0 evicted to A1out */
    sim_access (&sm, b);
  ck_assert (!blockmap_get (&sm.map, 0, NULL));
  sim_access (&sm, 0);
  ck_assert (blockmap_get (&sm.map, 0, &s));
  ck_assert_int_eq (sm.q.list[s], EVICT_AM);
  sim_free (&sm);
}
END_TEST

START_TEST (remove_is_not_a_ghost)
{
  struct evict2q q;

  ck_assert_int_eq (evict_init (&q, 8), 0);
  evict_insert (&q, 0, 42, false);
  ck_assert_int_eq (q.list[0], EVICT_A1IN);
  evict_remove (&q, 0);
  ck_assert_int_eq (q.list[0], EVICT_NONE);
  evict_insert (&q, 1, 42, false);
  ck_assert_int_eq (q.list[1], EVICT_A1IN); /* not promoted */
  evict_free (&q);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("vaio-cache-evict");
  TCase *tc = tcase_create ("evict");
  SRunner *sr;
  int failed;

  tcase_add_test (tc, blockmap_put_get_del);
  tcase_add_test (tc, blockmap_random_against_model);
  tcase_add_test (tc, scan_does_not_flush_hot_set);
  tcase_add_test (tc, scan_blocks_do_not_stay);
  tcase_add_test (tc, dirty_never_evicted);
  tcase_add_test (tc, ghost_hit_promotes);
  tcase_add_test (tc, remove_is_not_a_ghost);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

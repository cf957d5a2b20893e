/* vaio-cache: block number -> slot hash map, see blockmap.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap.h"

#define EMPTY UINT64_MAX

static size_t
hash64 (uint64_t k)
{
  /* splitmix64 finalizer: sequential block numbers spread evenly. */
  k ^= k >> 30;
  k *= 0xbf58476d1ce4e5b9ULL;
  k ^= k >> 27;
  k *= 0x94d049bb133111ebULL;
  k ^= k >> 31;
  return (size_t)k;
}

int
blockmap_init (struct blockmap *m, size_t max_entries)
{
  size_t cap = 16;

  while (cap < max_entries * 2)
    cap <<= 1;
  m->keys = malloc (cap * sizeof *m->keys);
  m->vals = calloc (cap, sizeof *m->vals);
  if (m->keys == NULL || m->vals == NULL)
    {
      free (m->keys);
      free (m->vals);
      errno = ENOMEM;
      return -1;
    }
  memset (m->keys, 0xff, cap * sizeof *m->keys);
  m->mask = cap - 1;
  m->count = 0;
  m->max_entries = max_entries;
  return 0;
}

void
blockmap_free (struct blockmap *m)
{
  free (m->keys);
  free (m->vals);
  m->keys = NULL;
  m->vals = NULL;
}

void
blockmap_clear (struct blockmap *m)
{
  memset (m->keys, 0xff, (m->mask + 1) * sizeof *m->keys);
  m->count = 0;
}

static size_t
find (const struct blockmap *m, uint64_t key)
{
  size_t i = hash64 (key) & m->mask;

  while (m->keys[i] != EMPTY && m->keys[i] != key)
    i = (i + 1) & m->mask;
  return i;
}

bool
blockmap_get (const struct blockmap *m, uint64_t key, uint32_t *val)
{
  size_t i = find (m, key);

  if (m->keys[i] != key)
    return false;
  if (val)
    *val = m->vals[i];
  return true;
}

int
blockmap_put (struct blockmap *m, uint64_t key, uint32_t val)
{
  size_t i = find (m, key);

  if (m->keys[i] == EMPTY)
    {
      if (m->count >= m->max_entries)
        return -1;
      m->keys[i] = key;
      m->count++;
    }
  m->vals[i] = val;
  return 0;
}

bool
blockmap_del (struct blockmap *m, uint64_t key)
{
  size_t i = find (m, key), j;

  if (m->keys[i] != key)
    return false;
  /* Backward-shift: pull later members of the probe run into the hole
   * when their home bucket does not lie cyclically in (i, j].
   */
  j = i;
  for (;;)
    {
      size_t home;

      j = (j + 1) & m->mask;
      if (m->keys[j] == EMPTY)
        break;
      home = hash64 (m->keys[j]) & m->mask;
      if ((j > i && (home <= i || home > j))
          || (j < i && (home <= i && home > j)))
        {
          m->keys[i] = m->keys[j];
          m->vals[i] = m->vals[j];
          i = j;
        }
    }
  m->keys[i] = EMPTY;
  m->count--;
  return true;
}

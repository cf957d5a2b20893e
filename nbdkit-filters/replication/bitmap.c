/* vaio-replication: the persisted dirty bitmap.  See bitmap.h. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "bitmap.h"
#include "le.h"

void
bmap_page_encode (const uint8_t bits[BMAP_PAGE_BYTES], uint32_t index,
                  uint8_t out[BMAP_PAGE_SIZE])
{
  memcpy (out, bits, BMAP_PAGE_BYTES);
  vaio_put_le32 (out + BMAP_PAGE_BYTES, index);
  vaio_put_le32 (out + BMAP_PAGE_BYTES + 4,
                 (uint32_t)crc32 (0, out, BMAP_PAGE_BYTES + 4));
}

bool
bmap_page_check (const uint8_t in[BMAP_PAGE_SIZE], uint32_t index)
{
  return vaio_get_le32 (in + BMAP_PAGE_BYTES) == index
         && vaio_get_le32 (in + BMAP_PAGE_BYTES + 4)
                == (uint32_t)crc32 (0, in, BMAP_PAGE_BYTES + 4);
}

static void
header_encode (const struct bmap *b, uint8_t out[BMAP_PAGE_SIZE])
{
  memset (out, 0, BMAP_PAGE_SIZE);
  memcpy (out, BMAP_MAGIC, 8);
  vaio_put_le32 (out + 8, BMAP_VERSION);
  vaio_put_le32 (out + 12, b->target_hash);
  vaio_put_le64 (out + 16, b->granularity);
  vaio_put_le64 (out + 24, b->disk_size);
  vaio_put_le64 (out + 32, b->nbits);
  vaio_put_le32 (out + 40, (uint32_t)crc32 (0, out, 40));
}

static bool
test_bit (const uint8_t *set, uint64_t bit)
{
  return (set[bit / 8] >> (bit % 8)) & 1;
}

static void
stale_page_of (struct bmap *b, uint64_t bit)
{
  b->page_stale[bit / BMAP_PAGE_BITS] = 1;
}

uint64_t
bmap_mark (struct bmap *b, uint64_t offset, uint64_t len)
{
  uint64_t first, last, added = 0;

  if (len == 0 || offset >= b->disk_size)
    return 0;
  if (len > b->disk_size - offset)
    len = b->disk_size - offset;
  first = offset / b->granularity;
  last = (offset + len - 1) / b->granularity;
  for (uint64_t bit = first; bit <= last; bit++)
    if (!test_bit (b->dirty, bit))
      {
        b->dirty[bit / 8] |= (uint8_t)(1u << (bit % 8));
        b->n_dirty++;
        added++;
        stale_page_of (b, bit);
      }
  return added;
}

void
bmap_mark_all (struct bmap *b)
{
  bmap_mark (b, 0, b->disk_size);
}

int64_t
bmap_next_dirty (const struct bmap *b, uint64_t from)
{
  for (uint64_t bit = from; bit < b->nbits; bit++)
    {
      if (bit % 64 == 0 && bit + 64 <= b->nbits)
        {
          uint64_t word;
          memcpy (&word, b->dirty + bit / 8, 8);
          if (word == 0)
            {
              bit += 63;
              continue;
            }
        }
      if (test_bit (b->dirty, bit))
        return (int64_t)bit;
    }
  return -1;
}

void
bmap_take (struct bmap *b, uint64_t bit)
{
  if (!test_bit (b->dirty, bit))
    return;
  b->dirty[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
  b->n_dirty--;
  if (!test_bit (b->copying, bit))
    {
      b->copying[bit / 8] |= (uint8_t)(1u << (bit % 8));
      b->n_copying++;
    }
}

void
bmap_done (struct bmap *b, uint64_t bit)
{
  if (!test_bit (b->copying, bit))
    return;
  b->copying[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
  b->n_copying--;
  stale_page_of (b, bit);
}

void
bmap_untake (struct bmap *b, uint64_t bit)
{
  bmap_done (b, bit);
  bmap_mark (b, bit * b->granularity, 1);
}

bool
bmap_is_clean (const struct bmap *b)
{
  return b->n_dirty == 0 && b->n_copying == 0;
}

static int
write_page (struct bmap *b, uint64_t page)
{
  uint8_t bits[BMAP_PAGE_BYTES], out[BMAP_PAGE_SIZE];
  const uint8_t *d = b->dirty + page * BMAP_PAGE_BYTES;
  const uint8_t *c = b->copying + page * BMAP_PAGE_BYTES;

  for (size_t i = 0; i < BMAP_PAGE_BYTES; i++)
    bits[i] = d[i] | c[i];
  bmap_page_encode (bits, (uint32_t)page, out);
  return pwrite (b->fd, out, sizeof out, (off_t)((page + 1) * BMAP_PAGE_SIZE))
                 == (ssize_t)sizeof out
             ? 0
             : -1;
}

int
bmap_persist (struct bmap *b, bool sync, char *err, size_t errlen)
{
  bool wrote = false;

  for (uint64_t p = 0; p < b->npages; p++)
    if (b->page_stale[p])
      {
        if (write_page (b, p) == -1)
          {
            snprintf (err, errlen, "%s: writing bitmap: %m", b->path);
            return -1;
          }
        b->page_stale[p] = 0;
        wrote = true;
      }
  if (wrote && sync && fdatasync (b->fd) == -1)
    {
      snprintf (err, errlen, "%s: fdatasync: %m", b->path);
      return -1;
    }
  return 0;
}

static int
load_pages (struct bmap *b, uint64_t *bad_pages)
{
  uint8_t page[BMAP_PAGE_SIZE];

  *bad_pages = 0;
  for (uint64_t p = 0; p < b->npages; p++)
    {
      ssize_t n
          = pread (b->fd, page, sizeof page, (off_t)((p + 1) * BMAP_PAGE_SIZE));
      if (n == (ssize_t)sizeof page && bmap_page_check (page, (uint32_t)p))
        {
          memcpy (b->dirty + p * BMAP_PAGE_BYTES, page, BMAP_PAGE_BYTES);
          continue;
        }
      /* Unreadable or corrupt: every region it covers may differ. */
      (*bad_pages)++;
      memset (b->dirty + p * BMAP_PAGE_BYTES, 0xff, BMAP_PAGE_BYTES);
      b->page_stale[p] = 1;
    }
  /* Bits past the end of the disk are never dirty. */
  for (uint64_t bit = b->nbits; bit < b->npages * BMAP_PAGE_BITS; bit++)
    b->dirty[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
  b->n_dirty = 0;
  for (uint64_t bit = 0; bit < b->nbits; bit++)
    b->n_dirty += test_bit (b->dirty, bit);
  return 0;
}

/* Check an existing header.  Returns 1 if it matches this disk, 0 if it
 * is valid but for another disk/target (start over), -1 if corrupt.
 */
static int
header_check (struct bmap *b, const uint8_t in[BMAP_PAGE_SIZE], char *err,
              size_t errlen)
{
  if (memcmp (in, BMAP_MAGIC, 8) != 0)
    {
      snprintf (err, errlen, "%s: not a vaio replication bitmap (bad magic)",
                b->path);
      return -1;
    }
  if (vaio_get_le32 (in + 8) != BMAP_VERSION)
    {
      snprintf (err, errlen, "%s: bitmap version %u, this filter reads %u",
                b->path, vaio_get_le32 (in + 8), BMAP_VERSION);
      return -1;
    }
  if (vaio_get_le32 (in + 40) != (uint32_t)crc32 (0, in, 40))
    {
      snprintf (err, errlen,
                "%s: bitmap header checksum mismatch (corrupt); move the "
                "state directory aside to start over with a full resync",
                b->path);
      return -1;
    }
  return vaio_get_le32 (in + 12) == b->target_hash
         && vaio_get_le64 (in + 16) == b->granularity
         && vaio_get_le64 (in + 24) == b->disk_size
         && vaio_get_le64 (in + 32) == b->nbits;
}

static struct bmap *
bmap_alloc (const char *path, uint64_t disk_size, uint64_t granularity,
            uint32_t target_hash)
{
  struct bmap *b = calloc (1, sizeof *b);

  if (b == NULL)
    return NULL;
  b->fd = -1;
  b->granularity = granularity;
  b->disk_size = disk_size;
  b->target_hash = target_hash;
  b->nbits = (disk_size + granularity - 1) / granularity;
  b->npages = (b->nbits + BMAP_PAGE_BITS - 1) / BMAP_PAGE_BITS;
  if (b->npages == 0)
    b->npages = 1;
  b->path = strdup (path);
  b->dirty = calloc (b->npages, BMAP_PAGE_BYTES);
  b->copying = calloc (b->npages, BMAP_PAGE_BYTES);
  b->page_stale = calloc (b->npages, 1);
  if (!b->path || !b->dirty || !b->copying || !b->page_stale)
    {
      bmap_close (b);
      return NULL;
    }
  return b;
}

static int
start_over (struct bmap *b, char *err, size_t errlen)
{
  uint8_t hdr[BMAP_PAGE_SIZE];

  header_encode (b, hdr);
  if (ftruncate (b->fd, (off_t)((b->npages + 1) * BMAP_PAGE_SIZE)) == -1
      || pwrite (b->fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr)
    {
      snprintf (err, errlen, "%s: writing bitmap: %m", b->path);
      return -1;
    }
  bmap_mark_all (b);
  for (uint64_t p = 0; p < b->npages; p++)
    b->page_stale[p] = 1;
  return bmap_persist (b, true, err, errlen);
}

struct bmap *
bmap_open (const char *path, uint64_t disk_size, uint64_t granularity,
           uint32_t target_hash, bool *full_sync, uint64_t *bad_pages,
           char *err, size_t errlen)
{
  uint8_t hdr[BMAP_PAGE_SIZE];
  struct bmap *b;
  int r;

  *full_sync = false;
  *bad_pages = 0;
  b = bmap_alloc (path, disk_size, granularity, target_hash);
  if (b == NULL)
    {
      snprintf (err, errlen, "%s: %m", path);
      return NULL;
    }
  b->fd = open (path, O_RDWR | O_CLOEXEC);
  if (b->fd == -1 && errno == ENOENT)
    {
      b->fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (b->fd == -1)
        goto open_error;
      *full_sync = true;
      if (start_over (b, err, errlen) == -1)
        goto fail;
      return b;
    }
  if (b->fd == -1)
    goto open_error;
  if (pread (b->fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr)
    {
      snprintf (err, errlen, "%s: bitmap file too short for its header", path);
      goto fail;
    }
  r = header_check (b, hdr, err, errlen);
  if (r == -1)
    goto fail;
  if (r == 0)
    {
      *full_sync = true;
      if (start_over (b, err, errlen) == -1)
        goto fail;
      return b;
    }
  load_pages (b, bad_pages);
  if (bmap_persist (b, true, err, errlen) == -1)
    goto fail;
  return b;

open_error:
  snprintf (err, errlen, "%s: open: %m", path);
fail:
  bmap_close (b);
  return NULL;
}

void
bmap_close (struct bmap *b)
{
  if (b == NULL)
    return;
  if (b->fd >= 0)
    close (b->fd);
  free (b->path);
  free (b->dirty);
  free (b->copying);
  free (b->page_stale);
  free (b);
}

/* vaio-cache persistent metadata: see meta.h for the layout. */
#include <endian.h>
#include <string.h>
#include <zlib.h>

#include "meta.h"
#include "le.h"

static const char super_magic[8] = "VCACHESB";
static const char md_magic[8] = "VCACHEMD";

/* Header field offsets inside a record. */
enum
{
  H_MAGIC = 0,
  H_VERSION = 8,
  H_KIND = 12,
  H_INDEX = 16,
  H_SEQ = 24,
  H_GEN = 32,
  H_PAYLOAD = 40,
  H_CRC = 44,
};

/* crc32 of the whole record with the crc field itself taken as zero. */
static uint32_t
rec_crc (const unsigned char *rec)
{
  static const unsigned char zero4[4];
  uLong c = crc32 (0, rec, H_CRC);
  c = crc32 (c, zero4, 4);
  c = crc32 (c, rec + H_CRC + 4, VCACHE_REC_SIZE - H_CRC - 4);
  return (uint32_t)c;
}

static void
header_put (unsigned char *rec, const char magic[8], uint32_t kind,
            uint64_t index, uint64_t seq, uint64_t gen, uint32_t payload)
{
  memcpy (rec + H_MAGIC, magic, 8);
  vaio_put_le32 (rec + H_VERSION, VCACHE_VERSION);
  vaio_put_le32 (rec + H_KIND, kind);
  vaio_put_le64 (rec + H_INDEX, index);
  vaio_put_le64 (rec + H_SEQ, seq);
  vaio_put_le64 (rec + H_GEN, gen);
  vaio_put_le32 (rec + H_PAYLOAD, payload);
  vaio_put_le32 (rec + H_CRC, 0);
}

static void
header_seal (unsigned char *rec)
{
  vaio_put_le32 (rec + H_CRC, rec_crc (rec));
}

static int
header_check (const unsigned char *rec, const char magic[8], uint32_t kind,
              uint64_t index, const char **why)
{
  if (memcmp (rec + H_MAGIC, magic, 8) != 0)
    {
      *why = "bad magic";
      return -1;
    }
  if (vaio_get_le32 (rec + H_VERSION) != VCACHE_VERSION)
    {
      *why = "unsupported version";
      return -1;
    }
  if (vaio_get_le32 (rec + H_CRC) != rec_crc (rec))
    {
      *why = "checksum mismatch";
      return -1;
    }
  if (vaio_get_le32 (rec + H_KIND) != kind
      || vaio_get_le64 (rec + H_INDEX) != index)
    {
      *why = "record in the wrong place";
      return -1;
    }
  return 0;
}

int
vcache_geometry (uint64_t cache_size, uint32_t block_size,
                 struct vcache_geom *g)
{
  uint64_t n = cache_size / block_size;

  /* Each slot costs its data plus its share of metadata; shrink until
   * data and metadata both fit.
   */
  for (;;)
    {
      uint64_t md = (n + VCACHE_ENTRIES_PER_MD - 1) / VCACHE_ENTRIES_PER_MD;
      uint64_t meta_bytes = (2 + 2 * md) * VCACHE_REC_SIZE;
      uint64_t data_off
          = (meta_bytes + block_size - 1) / block_size * block_size;

      if (n == 0)
        return -1;
      if (n <= UINT32_MAX && data_off + n * block_size <= cache_size)
        {
          g->block_size = block_size;
          g->n_slots = (uint32_t)n;
          g->n_md_blocks = (uint32_t)md;
          g->data_offset = data_off;
          return 0;
        }
      n--;
    }
}

void
vcache_super_encode (const struct vcache_super *sb, uint64_t seq, void *rec)
{
  unsigned char *r = rec;
  unsigned char *p = r + VCACHE_HEADER_SIZE;

  memset (r, 0, VCACHE_REC_SIZE);
  header_put (r, super_magic, VCACHE_REC_SUPER, 0, seq, sb->mount_gen, 128);
  vaio_put_le64 (p + 0, sb->backing_size);
  vaio_put_le64 (p + 8, sb->cache_size);
  vaio_put_le64 (p + 16, sb->data_offset);
  vaio_put_le64 (p + 24, sb->mount_gen);
  vaio_put_le64 (p + 32, sb->dirty_slots);
  vaio_put_le64 (p + 40, sb->max_epoch);
  vaio_put_le32 (p + 48, sb->block_size);
  vaio_put_le32 (p + 52, sb->n_slots);
  vaio_put_le32 (p + 56, sb->n_md_blocks);
  vaio_put_le32 (p + 60, sb->clean);
  memcpy (p + 64, sb->disk_id, VCACHE_DISK_ID_LEN);
  header_seal (r);
}

int
vcache_super_decode (const void *rec, struct vcache_super *sb, uint64_t *seq,
                     const char **why)
{
  const unsigned char *r = rec;
  const unsigned char *p = r + VCACHE_HEADER_SIZE;

  if (header_check (r, super_magic, VCACHE_REC_SUPER, 0, why) == -1)
    return -1;
  *seq = vaio_get_le64 (r + H_SEQ);
  sb->backing_size = vaio_get_le64 (p + 0);
  sb->cache_size = vaio_get_le64 (p + 8);
  sb->data_offset = vaio_get_le64 (p + 16);
  sb->mount_gen = vaio_get_le64 (p + 24);
  sb->dirty_slots = vaio_get_le64 (p + 32);
  sb->max_epoch = vaio_get_le64 (p + 40);
  sb->block_size = vaio_get_le32 (p + 48);
  sb->n_slots = vaio_get_le32 (p + 52);
  sb->n_md_blocks = vaio_get_le32 (p + 56);
  sb->clean = vaio_get_le32 (p + 60);
  memcpy (sb->disk_id, p + 64, VCACHE_DISK_ID_LEN);
  sb->disk_id[VCACHE_DISK_ID_LEN - 1] = '\0';
  return 0;
}

void
vcache_md_encode (uint32_t md_index, uint64_t seq, uint64_t mount_gen,
                  const struct vcache_entry *entries, unsigned n, void *rec)
{
  unsigned char *r = rec;

  memset (r, 0, VCACHE_REC_SIZE);
  header_put (r, md_magic, VCACHE_REC_MD, md_index, seq, mount_gen,
              n * VCACHE_ENTRY_SIZE);
  for (unsigned i = 0; i < n && i < VCACHE_ENTRIES_PER_MD; i++)
    {
      unsigned char *p = r + VCACHE_HEADER_SIZE + i * VCACHE_ENTRY_SIZE;
      vaio_put_le64 (p, entries[i].block);
      vaio_put_le64 (p + 8, entries[i].epoch);
      vaio_put_le32 (p + 16, entries[i].flags);
    }
  header_seal (r);
}

int
vcache_md_decode (const void *rec, uint32_t md_index,
                  struct vcache_entry *entries, unsigned n, uint64_t *seq,
                  uint64_t *mount_gen, const char **why)
{
  const unsigned char *r = rec;

  if (n > VCACHE_ENTRIES_PER_MD)
    {
      *why = "too many entries";
      return -1;
    }
  if (header_check (r, md_magic, VCACHE_REC_MD, md_index, why) == -1)
    return -1;
  if (vaio_get_le32 (r + H_PAYLOAD) != n * VCACHE_ENTRY_SIZE)
    {
      *why = "entry count does not match the geometry";
      return -1;
    }
  *seq = vaio_get_le64 (r + H_SEQ);
  *mount_gen = vaio_get_le64 (r + H_GEN);
  for (unsigned i = 0; i < n; i++)
    {
      const unsigned char *p = r + VCACHE_HEADER_SIZE + i * VCACHE_ENTRY_SIZE;
      entries[i].block = vaio_get_le64 (p);
      entries[i].epoch = vaio_get_le64 (p + 8);
      entries[i].flags = vaio_get_le32 (p + 16);
      if ((entries[i].flags & ~(VCACHE_ENTRY_VALID | VCACHE_ENTRY_DIRTY))
          || ((entries[i].flags & VCACHE_ENTRY_DIRTY)
              && !(entries[i].flags & VCACHE_ENTRY_VALID)))
        {
          *why = "invalid entry flags";
          return -1;
        }
    }
  return 0;
}

int
vcache_pick_copy (bool ok0, uint64_t seq0, bool ok1, uint64_t seq1)
{
  if (ok0 && ok1)
    return seq1 > seq0 ? 1 : 0;
  if (ok0)
    return 0;
  if (ok1)
    return 1;
  return -1;
}

bool
vcache_rec_is_blank (const void *rec)
{
  const unsigned char *r = rec;

  for (size_t i = 0; i < VCACHE_REC_SIZE; i++)
    if (r[i])
      return false;
  return true;
}

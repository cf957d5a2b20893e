/* vaio-replication: the on-disk write journal.  See journal.h. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "dirsync.h"
#include "journal.h"
#include "le.h"

#define PROBE_CHUNK (1024 * 1024)

const char *
jrnl_check_str (enum jrnl_check c)
{
  switch (c)
    {
    case JRNL_OK:
      return "ok";
    case JRNL_BAD_MAGIC:
      return "bad record magic";
    case JRNL_BAD_VERSION:
      return "unknown record version";
    case JRNL_BAD_HDR_CRC:
      return "record header checksum mismatch";
    case JRNL_BAD_SEQ:
      return "unexpected sequence number";
    case JRNL_BAD_TYPE:
      return "unknown record type";
    case JRNL_BAD_DATA_CRC:
      return "record payload checksum mismatch";
    }
  return "?";
}

static uint64_t
align_up (uint64_t n)
{
  return (n + JRNL_ALIGN - 1) & ~(uint64_t)(JRNL_ALIGN - 1);
}

uint64_t
jrnl_rec_size (uint32_t data_len)
{
  return JRNL_REC_HDR_SIZE + align_up (data_len);
}

uint32_t
jrnl_data_crc (const void *data, uint32_t len)
{
  return (uint32_t)crc32 (0, (const Bytef *)data, len);
}

void
jrnl_rec_encode (const struct jrnl_rec *r, unsigned char out[64])
{
  memset (out, 0, 64);
  vaio_put_le32 (out + 0, JRNL_REC_MAGIC);
  vaio_put_le32 (out + 4, JRNL_REC_VERSION | (r->type << 16));
  vaio_put_le64 (out + 8, r->seq);
  vaio_put_le64 (out + 16, r->timestamp_ns);
  vaio_put_le64 (out + 24, r->offset);
  vaio_put_le32 (out + 32, r->length);
  vaio_put_le32 (out + 36, r->data_len);
  vaio_put_le64 (out + 40, r->barrier);
  vaio_put_le32 (out + 48, r->data_crc);
  vaio_put_le64 (out + 52, r->committed);
  vaio_put_le32 (out + 60, (uint32_t)crc32 (0, out, 60));
}

enum jrnl_check
jrnl_rec_decode (const unsigned char in[64], uint64_t expect_seq,
                 struct jrnl_rec *r)
{
  uint32_t vt;

  if (vaio_get_le32 (in) != JRNL_REC_MAGIC)
    return JRNL_BAD_MAGIC;
  if (vaio_get_le32 (in + 60) != (uint32_t)crc32 (0, in, 60))
    return JRNL_BAD_HDR_CRC;
  vt = vaio_get_le32 (in + 4);
  if ((vt & 0xffff) != JRNL_REC_VERSION)
    return JRNL_BAD_VERSION;
  r->type = vt >> 16;
  r->seq = vaio_get_le64 (in + 8);
  r->timestamp_ns = vaio_get_le64 (in + 16);
  r->offset = vaio_get_le64 (in + 24);
  r->length = vaio_get_le32 (in + 32);
  r->data_len = vaio_get_le32 (in + 36);
  r->barrier = vaio_get_le64 (in + 40);
  r->data_crc = vaio_get_le32 (in + 48);
  r->committed = vaio_get_le64 (in + 52);
  if (r->type < JRNL_WRITE || r->type > JRNL_WRAP
      || (r->type == JRNL_WRITE && r->data_len != r->length)
      || (r->type != JRNL_WRITE && r->data_len != 0))
    return JRNL_BAD_TYPE;
  if (expect_seq != 0 && r->seq != expect_seq)
    return JRNL_BAD_SEQ;
  return JRNL_OK;
}

/* ---- File header ---- */

static void
header_encode (const struct jrnl *j, unsigned char out[JRNL_HEADER_SIZE])
{
  memset (out, 0, JRNL_HEADER_SIZE);
  memcpy (out, JRNL_MAGIC, 8);
  vaio_put_le32 (out + 8, JRNL_VERSION);
  vaio_put_le32 (out + 12, JRNL_HEADER_SIZE);
  vaio_put_le64 (out + 16, j->size);
  vaio_put_le64 (out + 24, j->source_size);
  vaio_put_le64 (out + 32, j->tail_pos);
  vaio_put_le64 (out + 40, j->tail_seq);
  vaio_put_le32 (out + 48, (uint32_t)crc32 (0, out, 48));
}

static int
header_decode (struct jrnl *j, const unsigned char in[JRNL_HEADER_SIZE],
               char *err, size_t errlen)
{
  if (memcmp (in, JRNL_MAGIC, 8) != 0)
    {
      snprintf (err, errlen, "%s: not a vaio replication journal (bad magic)",
                j->path);
      return -1;
    }
  if (vaio_get_le32 (in + 8) != JRNL_VERSION)
    {
      snprintf (err, errlen,
                "%s: journal format version %u, this filter reads only "
                "version %u; let the filter version that wrote it drain it "
                "(clean shutdown with the replica connected), or move the "
                "state directory aside to start over with a full resync",
                j->path, vaio_get_le32 (in + 8), JRNL_VERSION);
      return -1;
    }
  if (vaio_get_le32 (in + 48) != (uint32_t)crc32 (0, in, 48)
      || vaio_get_le32 (in + 12) != JRNL_HEADER_SIZE)
    {
      snprintf (err, errlen,
                "%s: journal header checksum mismatch (corrupt); move the "
                "state directory aside to start over with a full resync",
                j->path);
      return -1;
    }
  j->size = vaio_get_le64 (in + 16);
  j->source_size = vaio_get_le64 (in + 24);
  j->tail_pos = vaio_get_le64 (in + 32);
  j->tail_seq = vaio_get_le64 (in + 40);
  if (j->size < JRNL_MIN_SIZE || j->tail_pos < JRNL_HEADER_SIZE
      || j->tail_pos >= j->size || j->tail_pos % JRNL_ALIGN != 0
      || j->tail_seq == 0)
    {
      snprintf (err, errlen, "%s: journal header has impossible values",
                j->path);
      return -1;
    }
  return 0;
}

static int
header_write (struct jrnl *j, bool sync, char *err, size_t errlen)
{
  unsigned char buf[JRNL_HEADER_SIZE];

  header_encode (j, buf);
  if (pwrite (j->fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf
      || (sync && fdatasync (j->fd) == -1))
    {
      snprintf (err, errlen, "%s: writing journal header: %m", j->path);
      return -1;
    }
  return 0;
}

static struct jrnl *
jrnl_new (const char *path)
{
  struct jrnl *j = calloc (1, sizeof *j);

  if (j == NULL)
    return NULL;
  j->fd = -1;
  j->path = strdup (path);
  if (j->path == NULL)
    {
      free (j);
      return NULL;
    }
  return j;
}

/* Write zeros over the whole file, size bytes.  posix_fallocate alone
 * leaves unwritten extents, and on recent kernels every append into them
 * (a record is not block aligned) makes ext4 zero page-cache ranges
 * around it in ext4_block_write_begin: perf showed that memset at about
 * ten times the cost of copying the record, the largest part of the
 * journal's cost per write.  Written once here, the ring's pages are
 * plain overwrites from the first record on.
 */
static int
fill_zeros (int fd, uint64_t size)
{
  unsigned char *zeros = calloc (1, PROBE_CHUNK);
  int ret = 0;

  if (zeros == NULL)
    return -1;
  for (uint64_t off = 0; off < size && ret == 0; off += PROBE_CHUNK)
    {
      size_t len = size - off < PROBE_CHUNK ? size - off : PROBE_CHUNK;
      ssize_t n = pwrite (fd, zeros, len, (off_t)off);

      if (n != (ssize_t)len)
        {
          if (n >= 0)
            errno = ENOSPC;
          ret = -1;
        }
    }
  free (zeros);
  return ret;
}

/* Build the journal under a temporary name and rename it into place:
 * writing a large ring takes a while, and a process killed meanwhile
 * must not leave a file without a valid header at path (which the next
 * start would refuse).  A leftover temporary file is replaced.
 */
static int
jrnl_create (struct jrnl *j, uint64_t size, char *err, size_t errlen)
{
  char tmp[4096];
  int r;

  if ((size_t)snprintf (tmp, sizeof tmp, "%s.new", j->path) >= sizeof tmp)
    {
      errno = ENAMETOOLONG;
      snprintf (err, errlen, "%s: create: %m", j->path);
      return -1;
    }
  unlink (tmp);
  j->fd = open (tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (j->fd == -1)
    {
      snprintf (err, errlen, "%s: create: %m", tmp);
      return -1;
    }
  /* Reserve the space first: a full file system fails here at once,
   * and an append never fails for lack of space once the journal exists.
   */
  r = posix_fallocate (j->fd, 0, (off_t)size);
  if (r != 0)
    {
      errno = r;
      snprintf (err, errlen, "%s: preallocating %llu bytes: %m", tmp,
                (unsigned long long)size);
      goto fail;
    }
  /* Made durable here, once: left dirty, the first flush the guest sends
   * would wait for all of them.
   */
  if (fill_zeros (j->fd, size) == -1 || fdatasync (j->fd) == -1)
    {
      snprintf (err, errlen, "%s: writing %llu bytes of zeros: %m", tmp,
                (unsigned long long)size);
      goto fail;
    }
  j->size = size;
  j->tail_pos = j->head_pos = JRNL_HEADER_SIZE;
  j->tail_seq = j->head_seq = 1;
  j->created = true;
  if (header_write (j, true, err, errlen) == -1)
    goto fail;
  if (rename (tmp, j->path) == -1 || vaio_fsync_parent_dir (j->path) == -1)
    {
      snprintf (err, errlen, "%s: putting the new journal in place: %m",
                j->path);
      goto fail;
    }
  return 0;

fail:
  unlink (tmp);
  return -1;
}

/* The shipper sends payloads straight from the page cache through this
 * mapping (no copy, no read syscall).  Optional: without it, it reads.
 */
static void
map_file (struct jrnl *j)
{
  void *p = mmap (NULL, j->size, PROT_READ, MAP_SHARED, j->fd, 0);

  j->map = p == MAP_FAILED ? NULL : p;
}

struct jrnl *
jrnl_open (const char *path, uint64_t size, uint64_t source_size, bool *created,
           char *err, size_t errlen)
{
  unsigned char buf[JRNL_HEADER_SIZE];
  struct jrnl *j;
  ssize_t n;

  size &= ~(uint64_t)(JRNL_ALIGN - 1);
  if (size < JRNL_MIN_SIZE)
    {
      snprintf (err, errlen, "journal size %llu is below the minimum %d",
                (unsigned long long)size, JRNL_MIN_SIZE);
      return NULL;
    }
  j = jrnl_new (path);
  if (j == NULL)
    {
      snprintf (err, errlen, "%s: %m", path);
      return NULL;
    }
  j->source_size = source_size;
  *created = false;
  j->fd = open (path, O_RDWR | O_CLOEXEC);
  if (j->fd == -1 && errno == ENOENT)
    {
      if (jrnl_create (j, size, err, errlen) == -1)
        goto fail;
      *created = true;
      map_file (j);
      return j;
    }
  if (j->fd == -1)
    {
      snprintf (err, errlen, "%s: open: %m", path);
      goto fail;
    }
  n = pread (j->fd, buf, sizeof buf, 0);
  if (n != (ssize_t)sizeof buf)
    {
      snprintf (err, errlen, "%s: journal file too short for its header", path);
      goto fail;
    }
  if (header_decode (j, buf, err, errlen) == -1)
    goto fail;
  if (j->source_size != source_size)
    {
      snprintf (err, errlen,
                "%s: journal is for a disk of %llu bytes, this disk has %llu",
                path, (unsigned long long)j->source_size,
                (unsigned long long)source_size);
      goto fail;
    }
  j->head_pos = j->tail_pos;
  j->head_seq = j->tail_seq;
  map_file (j);
  return j;

fail:
  jrnl_close (j);
  return NULL;
}

void
jrnl_close (struct jrnl *j)
{
  if (j == NULL)
    return;
  if (j->map != NULL)
    munmap ((void *)j->map, j->size);
  if (j->fd >= 0)
    close (j->fd);
  free (j->path);
  free (j);
}

uint64_t
jrnl_next_pos (const struct jrnl *j, uint64_t pos, uint32_t data_len)
{
  pos += jrnl_rec_size (data_len);
  if (pos + JRNL_REC_HDR_SIZE > j->size)
    pos = JRNL_HEADER_SIZE;
  return pos;
}

static uint64_t
ring_capacity (const struct jrnl *j)
{
  return j->size - JRNL_HEADER_SIZE;
}

/* Ring bytes from a to b. */
static uint64_t
ring_distance (const struct jrnl *j, uint64_t a, uint64_t b)
{
  return b >= a ? b - a : ring_capacity (j) - (a - b);
}

static void
update_used (struct jrnl *j)
{
  if (j->head_pos == j->tail_pos)
    j->used = j->head_seq == j->tail_seq ? 0 : ring_capacity (j);
  else
    j->used = ring_distance (j, j->tail_pos, j->head_pos);
}

/* Look at every record with a sequence number above head_seq anywhere
 * in the ring (only done once, at the end of a recovery scan).  If one
 * says the record at head_seq was complete when it was reserved, that
 * record was lost to corruption: *lost.  The others were written while
 * it was still a hole: orphans.
 */
static int
scan_beyond (struct jrnl *j, jrnl_rec_fn orphan_fn, void *opaque, bool *lost)
{
  unsigned char *buf = malloc (PROBE_CHUNK);
  struct jrnl_rec r;
  int ret = 0;

  *lost = false;
  if (buf == NULL)
    return -1;
  for (uint64_t off = JRNL_HEADER_SIZE; off < j->size && ret == 0;
       off += PROBE_CHUNK)
    {
      uint64_t len = j->size - off < PROBE_CHUNK ? j->size - off : PROBE_CHUNK;
      if (pread (j->fd, buf, len, (off_t)off) != (ssize_t)len)
        {
          ret = -1;
          break;
        }
      for (uint64_t i = 0; i + JRNL_REC_HDR_SIZE <= len; i += JRNL_ALIGN)
        {
          if (jrnl_rec_decode (buf + i, 0, &r) != JRNL_OK
              || r.seq < j->head_seq)
            continue;
          if (r.seq > j->max_seq_seen)
            j->max_seq_seen = r.seq;
          if (r.seq == j->head_seq)
            continue; /* a WRAP before the hole, or its leftover */
          if (r.committed >= j->head_seq)
            *lost = true;
          else if (r.type != JRNL_WRAP && orphan_fn != NULL
                   && orphan_fn (opaque, &r, off + i, NULL) == -1)
            ret = -1;
        }
    }
  free (buf);
  return ret;
}

int
jrnl_walk_from_tail (struct jrnl *j, uint64_t end_seq, jrnl_rec_fn fn,
                     void *opaque)
{
  unsigned char hdr[JRNL_REC_HDR_SIZE];
  uint64_t pos = j->tail_pos, seq = j->tail_seq;
  struct jrnl_rec r;

  while (seq < end_seq)
    {
      if (pread (j->fd, hdr, sizeof hdr, (off_t)pos) != (ssize_t)sizeof hdr)
        {
          errno = EIO;
          return -1;
        }
      if (jrnl_rec_decode (hdr, seq, &r) != JRNL_OK)
        {
          errno = EIO;
          return -1;
        }
      if (r.type == JRNL_WRAP)
        {
          pos = JRNL_HEADER_SIZE;
          continue;
        }
      if (fn (opaque, &r, pos, NULL) == -1)
        return -1;
      seq++;
      pos = jrnl_next_pos (j, pos, r.data_len);
    }
  return 0;
}

int
jrnl_read_data (struct jrnl *j, uint64_t pos, void *buf, uint32_t len)
{
  ssize_t n = pread (j->fd, buf, len, (off_t)(pos + JRNL_REC_HDR_SIZE));

  if (n == -1)
    return -1;
  if ((uint32_t)n != len)
    {
      errno = EIO;
      return -1;
    }
  return 0;
}

int
jrnl_scan (struct jrnl *j, jrnl_rec_fn fn, jrnl_rec_fn bad_fn,
           jrnl_rec_fn orphan_fn, void *opaque, bool *lost_unknown, char *err,
           size_t errlen)
{
  /* Every record takes at least JRNL_ALIGN bytes, so a walk longer than
   * this has gone round the ring: a bound against crafted input.
   */
  uint64_t max_steps = ring_capacity (j) / JRNL_ALIGN + 2;
  uint64_t pos = j->tail_pos, seq = j->tail_seq;
  unsigned char hdr[JRNL_REC_HDR_SIZE];
  void *data = NULL;
  size_t data_cap = 0;
  struct jrnl_rec r;
  enum jrnl_check c;
  bool corrupt_end = false;
  int ret = -1;

  *lost_unknown = false;
  for (uint64_t step = 0; step < max_steps; step++)
    {
      if (pread (j->fd, hdr, sizeof hdr, (off_t)pos) != (ssize_t)sizeof hdr)
        break;
      c = jrnl_rec_decode (hdr, seq, &r);
      if (c != JRNL_OK)
        {
          /* Where the journal ends, the slot holds zeros or an older
           * record whole (a record header is 64 aligned bytes written by
           * one call, inside one page, so a kill cannot tear it).  A
           * record's magic with a bad checksum or contents is a damaged
           * header: what it said, and whether acknowledged writes
           * followed it, is unknown.
           */
          corrupt_end = c == JRNL_BAD_HDR_CRC || c == JRNL_BAD_VERSION
                        || c == JRNL_BAD_TYPE;
          break;
        }
      if (r.type == JRNL_WRAP)
        {
          pos = JRNL_HEADER_SIZE;
          continue;
        }
      if (pos + jrnl_rec_size (r.data_len) > j->size)
        break;
      if (r.data_len > data_cap)
        {
          void *p = realloc (data, r.data_len);
          if (p == NULL)
            {
              snprintf (err, errlen, "%s: %m", j->path);
              goto out;
            }
          data = p;
          data_cap = r.data_len;
        }
      if (r.data_len > 0 && jrnl_read_data (j, pos, data, r.data_len) == -1)
        break;
      if (r.data_len > 0 && jrnl_data_crc (data, r.data_len) != r.data_crc)
        {
          if (bad_fn && bad_fn (opaque, &r, pos, NULL) == -1)
            goto out;
        }
      else if (fn (opaque, &r, pos, r.data_len ? data : NULL) == -1)
        goto out;
      seq++;
      pos = jrnl_next_pos (j, pos, r.data_len);
    }
  j->head_pos = pos;
  j->head_seq = seq;
  j->max_seq_seen = seq - 1;
  update_used (j);
  /* A journal created by this open holds nothing past its end. */
  if (!j->created && scan_beyond (j, orphan_fn, opaque, lost_unknown) == -1)
    {
      snprintf (err, errlen, "%s: reading journal: %m", j->path);
      goto out;
    }
  *lost_unknown = *lost_unknown || corrupt_end;
  ret = 0;
out:
  free (data);
  return ret;
}

int
jrnl_reserve (struct jrnl *j, struct jrnl_rec *r, struct jrnl_slot *slot)
{
  uint64_t rs = jrnl_rec_size (r->data_len), waste = 0, at = j->head_pos;

  if (at + rs > j->size)
    {
      waste = j->size - at;
      at = JRNL_HEADER_SIZE;
    }
  if (j->used + waste + rs > ring_capacity (j))
    return 1;
  r->seq = j->head_seq;
  slot->pos = at;
  slot->wrap_pos = waste >= JRNL_REC_HDR_SIZE ? j->head_pos : 0;
  j->head_pos = jrnl_next_pos (j, at, r->data_len);
  j->head_seq++;
  update_used (j);
  return 0;
}

int
jrnl_write (struct jrnl *j, const struct jrnl_rec *r, const void *data,
            const struct jrnl_slot *slot)
{
  static const unsigned char zeros[JRNL_ALIGN];
  unsigned char hdr[JRNL_REC_HDR_SIZE];
  ssize_t want = (ssize_t)jrnl_rec_size (r->data_len);
  struct iovec iov[3];
  ssize_t n;

  if (slot->wrap_pos != 0)
    {
      struct jrnl_rec w
          = { .type = JRNL_WRAP, .seq = r->seq, .committed = r->committed };

      jrnl_rec_encode (&w, hdr);
      n = pwrite (j->fd, hdr, sizeof hdr, (off_t)slot->wrap_pos);
      if (n != (ssize_t)sizeof hdr)
        goto short_write;
    }
  jrnl_rec_encode (r, hdr);
  iov[0] = (struct iovec){ hdr, sizeof hdr };
  iov[1] = (struct iovec){ (void *)data, r->data_len };
  iov[2]
      = (struct iovec){ (void *)zeros, align_up (r->data_len) - r->data_len };
  n = pwritev (j->fd, iov, 3, (off_t)slot->pos);
  if (n != want)
    goto short_write;
  return 0;

short_write:
  if (n >= 0)
    errno = EIO;
  return -1;
}

int
jrnl_append (struct jrnl *j, struct jrnl_rec *r, const void *data,
             uint64_t *pos, char *err, size_t errlen)
{
  struct jrnl_slot slot;

  if (jrnl_reserve (j, r, &slot) == 1)
    return 1;
  r->data_crc = r->data_len ? jrnl_data_crc (data, r->data_len) : 0;
  r->committed = r->seq - 1;
  if (jrnl_write (j, r, data, &slot) == -1)
    {
      snprintf (err, errlen, "%s: appending to journal: %m", j->path);
      return -1;
    }
  *pos = slot.pos;
  return 0;
}

const void *
jrnl_data_ptr (const struct jrnl *j, uint64_t pos)
{
  return j->map != NULL ? j->map + pos + JRNL_REC_HDR_SIZE : NULL;
}

int
jrnl_set_tail (struct jrnl *j, uint64_t pos, uint64_t seq, bool sync, char *err,
               size_t errlen)
{
  uint64_t old_pos = j->tail_pos, old_seq = j->tail_seq;

  j->tail_pos = pos;
  j->tail_seq = seq;
  if (header_write (j, sync, err, errlen) == -1)
    {
      j->tail_pos = old_pos;
      j->tail_seq = old_seq;
      return -1;
    }
  update_used (j);
  return 0;
}

int
jrnl_reset (struct jrnl *j, char *err, size_t errlen)
{
  if (j->max_seq_seen >= j->head_seq)
    j->head_seq = j->max_seq_seen + 1;
  return jrnl_set_tail (j, j->head_pos, j->head_seq, true, err, errlen);
}

int
jrnl_sync (struct jrnl *j)
{
  return fdatasync (j->fd);
}

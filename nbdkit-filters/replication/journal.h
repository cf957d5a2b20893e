/* vaio-replication: the on-disk write journal.
 *
 * <state-dir>/journal is a preallocated ring file:
 *
 *   [0, 4096)          struct jrnl_disk_header: magic, version, ring size,
 *                      tail (oldest record the replica may still lack),
 *                      source disk size, CRC32 of all of it.
 *   [4096, size)       records, each 64-byte aligned:
 *                        struct jrnl_disk_rec (64 bytes, its own CRC32)
 *                        payload (WRITE only), CRC32 in the record header,
 *                        padded to 64 bytes.
 *
 * Appends are split in two so that writers do not serialise on the
 * file: jrnl_reserve (under the caller's lock) hands out the sequence
 * number and the ring space, jrnl_write (no lock) writes the record.
 * Records are therefore written out of order, and a crash can leave a
 * reserved record unwritten (a hole) with later records written after
 * it.  Version 2 records carry `committed`: every record up to that
 * sequence number was complete when this one was reserved.  A later
 * record whose `committed` covers the hole proves the hole was once a
 * complete record (corruption: the range is unknown); otherwise the hole
 * was never written, its writer never touched the source nor acked, and
 * the records after it are orphans whose ranges must be resynchronised.
 *
 * Sequence numbers grow forever (they survive a journal reset), so a
 * record left over from an earlier lap of the ring never has the sequence
 * number a scan expects: the first record that fails its checks is the
 * end of the journal.  A record after the end that does carry a later
 * sequence number proves that something in between was corrupted.
 *
 * Everything here is plain file I/O with errors in a caller's buffer, so
 * the unit tests link it without nbdkit.  Callers serialise access.
 */
#ifndef VAIO_REPL_JOURNAL_H
#define VAIO_REPL_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JRNL_MAGIC        "VAIOJRNL"
#define JRNL_VERSION      2
#define JRNL_HEADER_SIZE  4096
#define JRNL_REC_MAGIC    0x31524a56u /* "VJR1" little-endian */
#define JRNL_REC_VERSION  2
#define JRNL_ALIGN        64
#define JRNL_REC_HDR_SIZE 64
#define JRNL_MIN_SIZE     (JRNL_HEADER_SIZE + 64 * 1024)

enum jrnl_type
{
  JRNL_WRITE = 1,
  JRNL_ZERO = 2,  /* zero the range on the replica */
  JRNL_TRIM = 3,  /* shipped as a zero: see repl.c */
  JRNL_FLUSH = 4, /* a barrier: the replica flushes here */
  JRNL_WRAP = 5,  /* ring continues at the start of the data area */
};

/* A record as the code sees it (host byte order). */
struct jrnl_rec
{
  uint32_t type;
  uint64_t seq;
  uint64_t timestamp_ns; /* CLOCK_REALTIME when appended */
  uint64_t offset;       /* in the source disk */
  uint32_t length;       /* bytes of the source disk affected */
  uint32_t data_len;     /* payload bytes (== length for WRITE, else 0) */
  uint64_t barrier;      /* the replica must hold every record <= this
                            before this one may be sent (0: none) */
  uint64_t committed;    /* every record <= this was complete when this
                            one was reserved (see above) */
  uint32_t data_crc;
};

/* Where jrnl_reserve put a record. */
struct jrnl_slot
{
  uint64_t pos;      /* of the record */
  uint64_t wrap_pos; /* a WRAP record goes here first (0: none) */
};

/* Results of checking a record. */
enum jrnl_check
{
  JRNL_OK = 0,
  JRNL_BAD_MAGIC,
  JRNL_BAD_VERSION,
  JRNL_BAD_HDR_CRC,
  JRNL_BAD_SEQ,
  JRNL_BAD_TYPE,
  JRNL_BAD_DATA_CRC,
};

const char *jrnl_check_str (enum jrnl_check c);

/* Bytes a record with data_len payload bytes takes in the ring. */
uint64_t jrnl_rec_size (uint32_t data_len);

/* Encode r's header into out[64] (computing its CRC; r->data_crc must
 * already be set, see jrnl_data_crc).  Pure functions, for the tests too.
 */
void jrnl_rec_encode (const struct jrnl_rec *r, unsigned char out[64]);
uint32_t jrnl_data_crc (const void *data, uint32_t len);

/* Decode and check a 64-byte record header.  If expect_seq is not 0 the
 * sequence number must equal it.
 */
enum jrnl_check jrnl_rec_decode (const unsigned char in[64],
                                 uint64_t expect_seq, struct jrnl_rec *r);

/* The journal file. */
struct jrnl
{
  int fd;
  char *path;
  uint64_t size;        /* file size; ring is [JRNL_HEADER_SIZE, size) */
  uint64_t source_size; /* disk size recorded in the header */
  uint64_t tail_pos;    /* persisted: oldest record not known replicated */
  uint64_t tail_seq;
  uint64_t head_pos; /* next append */
  uint64_t head_seq;
  uint64_t used;         /* ring bytes from tail to head, wrap waste included */
  uint64_t max_seq_seen; /* highest sequence number the scan saw anywhere */
  const unsigned char *map; /* read-only mapping of the file, or NULL */
  bool created;             /* created by this open: nothing past the end */
};

/* Open path, creating it (mode 0600, every byte written) if missing.  An
 * existing journal must have a valid header and the same source size.
 * On success *created says whether it was new.  The ring is not scanned:
 * call jrnl_scan next (head == tail until then).
 */
struct jrnl *jrnl_open (const char *path, uint64_t size, uint64_t source_size,
                        bool *created, char *err, size_t errlen);
void jrnl_close (struct jrnl *j);

/* Walk the records from the tail, calling fn for each valid one (data is
 * its payload, NULL if none).  Sets head to the end.  A record whose
 * header is good but whose payload fails its CRC is reported through
 * bad_fn (its header tells the affected range) and the walk goes on.
 * *lost_unknown is set when a later record proves that a record with an
 * unreadable header was lost, or when the walk ends at a damaged record
 * header (the record's magic with a bad checksum or contents): then the
 * affected range is unknown.
 * Records after the end that were written while the record at the end
 * was still unwritten (a hole, see above) go to orphan_fn (may be NULL).
 * Returns 0, or -1 on an I/O error or if fn returns -1.
 */
typedef int (*jrnl_rec_fn) (void *opaque, const struct jrnl_rec *r,
                            uint64_t pos, const void *data);

/* Call fn (data NULL) for each record from the tail up to, not
 * including, end_seq, reading headers only (every record there is
 * complete).  Returns 0, or -1 with errno set (EIO: a header that does
 * not decode) or if fn returns -1.
 */
int jrnl_walk_from_tail (struct jrnl *j, uint64_t end_seq, jrnl_rec_fn fn,
                         void *opaque);
int jrnl_scan (struct jrnl *j, jrnl_rec_fn fn, jrnl_rec_fn bad_fn,
               jrnl_rec_fn orphan_fn, void *opaque, bool *lost_unknown,
               char *err, size_t errlen);

/* Reserve ring space for r (r->data_len set): fills r->seq and *slot.
 * Returns 0, or 1 if there is no room.  The caller serialises reserves
 * with each other and with set_tail/reset.
 */
int jrnl_reserve (struct jrnl *j, struct jrnl_rec *r, struct jrnl_slot *slot);

/* Write a reserved record (r->data_crc and r->committed set).  Safe to
 * call from several threads at once for different slots.  Returns 0 or
 * -1 on an I/O error (errno set).
 */
int jrnl_write (struct jrnl *j, const struct jrnl_rec *r, const void *data,
                const struct jrnl_slot *slot);

/* Reserve and write one record (computing r->data_crc).  *pos is where
 * the record starts.  Returns 0, 1 if there is no room (nothing
 * written), or -1 on an I/O error.
 */
int jrnl_append (struct jrnl *j, struct jrnl_rec *r, const void *data,
                 uint64_t *pos, char *err, size_t errlen);

/* The payload of a complete record at pos, in the read-only mapping of
 * the file (valid until the tail moves past it), or NULL if the file is
 * not mapped: then use jrnl_read_data.
 */
const void *jrnl_data_ptr (const struct jrnl *j, uint64_t pos);

/* Read the payload of the record at pos into buf (len bytes). */
int jrnl_read_data (struct jrnl *j, uint64_t pos, void *buf, uint32_t len);

/* Position just after the record at pos with data_len payload bytes. */
uint64_t jrnl_next_pos (const struct jrnl *j, uint64_t pos, uint32_t data_len);

/* Persist a new tail (every record before it is on the replica, durable)
 * and make the space before it reusable.  With sync, fdatasync() the
 * journal too; without, the caller calls jrnl_sync later (outside its
 * lock): a tail lost to a power cut is only older, never newer.
 */
int jrnl_set_tail (struct jrnl *j, uint64_t pos, uint64_t seq, bool sync,
                   char *err, size_t errlen);

/* Drop every record: tail = head (and the sequence numbers go past any
 * the last scan saw, so that orphans are never taken for new records). */
int jrnl_reset (struct jrnl *j, char *err, size_t errlen);

int jrnl_sync (struct jrnl *j);

#endif /* VAIO_REPL_JOURNAL_H */

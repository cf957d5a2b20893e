/* vaio-sioc: the datastore coordination segment.
 *
 * One file per datastore (sioc-datastore=PATH), mapped shared by every
 * nbdkit process serving a disk on that datastore:
 *
 *   struct sioc_seg_header   written once, before the file appears under
 *                            its name (link of a complete temp file):
 *                            magic, version, geometry, crc32
 *   struct sioc_slot[64]     one per disk: an owner word (claimed by
 *                            compare-and-swap) and the disk's published
 *                            numbers under a seqlock, with their crc32
 *
 * No process ever waits on another: there is no lock to hold.  A slot is
 * written only by its owner; readers retry a torn read a bounded number of
 * times, then ignore the slot for this round.  A slot whose heartbeat is
 * stale (owner dead or stopped) is ignored and may be reclaimed by
 * compare-and-swap on the owner word.  Peers' numbers are checked against
 * sane bounds before use.  Pure C (no nbdkit), for the unit tests.
 */
#ifndef SIOC_SEGMENT_H
#define SIOC_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIOC_SEG_MAGIC   "VAIOSIOC"
#define SIOC_SEG_VERSION 1
#define SIOC_SEG_SLOTS   64
#define SIOC_NAME_LEN    32

/* Slot flags. */
#define SIOC_SLOT_BACKLOGGED 1u /* waited for its share last period */
#define SIOC_SLOT_CONGESTED  2u /* leader's verdict (leader slot only) */

struct sioc_seg_header
{
  char magic[8];
  uint32_t version;
  uint32_t header_size;
  uint32_t slot_size;
  uint32_t n_slots;
  uint64_t created_unix_ns;
  uint32_t crc32; /* zlib crc32 of every byte above */
  uint32_t pad[7];
};

/* What a disk publishes.  Rates are in milli-units (32 KiB I/Os) per
 * second, so everything is an integer a reader can bound-check.
 */
struct sioc_slot_data
{
  uint64_t token; /* copy of the owner word */
  uint64_t pid;
  uint64_t heartbeat_ns; /* CLOCK_MONOTONIC (host-wide) */
  uint32_t shares;
  uint32_t flags;
  uint64_t reservation_miops;
  uint64_t limit_miops;       /* 0 = none */
  uint64_t delivered_miops;   /* recent throughput */
  uint64_t latency_ns;        /* recent mean backend latency */
  uint64_t capacity_miops;    /* leader: datastore capacity estimate */
  uint64_t entitlement_miops; /* what this disk currently runs at */
  uint64_t threshold_ns;      /* latency threshold in force */
  char name[SIOC_NAME_LEN];
  uint32_t crc32; /* zlib crc32 of every byte above */
  uint32_t pad;
};

struct sioc_slot
{
  uint64_t owner; /* 0 = free; else a token (pid | random << 32) */
  uint64_t seq;   /* seqlock: odd while the owner writes */
  struct sioc_slot_data data;
  uint64_t reserved[4];
};

enum sioc_slot_state
{
  SIOC_SLOT_FREE,  /* no owner */
  SIOC_SLOT_LIVE,  /* valid, fresh data */
  SIOC_SLOT_STALE, /* owner dead or silent too long */
  SIOC_SLOT_BAD,   /* torn, checksum mismatch or insane numbers */
};

struct sioc_segment; /* the mapping */

/* Open (creating if absent, mode 0600) and validate the segment at path.
 * NULL with a message naming the file in err; *corrupt (if not NULL)
 * then says whether the file is there but its contents are not a valid
 * segment (too short, bad magic, version, checksum, geometry or size),
 * as opposed to a path that cannot be opened, created or mapped.
 */
struct sioc_segment *sioc_segment_open (const char *path, bool *corrupt,
                                        char *err, size_t errlen);
void sioc_segment_close (struct sioc_segment *seg);

/* A new owner token for this process. */
uint64_t sioc_segment_token (void);

/* Claim a free slot, else a stale one.  Returns the index, or -1 when all
 * slots are live.
 */
int sioc_segment_claim (struct sioc_segment *seg, uint64_t token,
                        uint64_t now_ns, uint64_t stale_ns, const char *name);

/* Publish d (heartbeat included) in slot idx.  -1 if token no longer owns
 * the slot (it was reclaimed while we stalled).
 */
int sioc_segment_publish (struct sioc_segment *seg, int idx, uint64_t token,
                          const struct sioc_slot_data *d);

/* Read slot idx.  LIVE fills *d; other states leave it unspecified. */
enum sioc_slot_state sioc_segment_read (struct sioc_segment *seg, int idx,
                                        uint64_t now_ns, uint64_t stale_ns,
                                        struct sioc_slot_data *d);

void sioc_segment_release (struct sioc_segment *seg, int idx, uint64_t token);

/* The raw slot, for tests that corrupt it. */
struct sioc_slot *sioc_segment_slot (struct sioc_segment *seg, int idx);

/* Sanity bounds on a peer's published numbers (exposed for tests). */
bool sioc_slot_data_sane (const struct sioc_slot_data *d, uint64_t now_ns);

#endif /* SIOC_SEGMENT_H */

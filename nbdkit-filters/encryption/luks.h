/* vaio-crypt: the LUKS1 on-disk format, as cryptsetup and QEMU define it.
 *
 * The 592-byte big-endian partition header at offset 0, eight keyslots,
 * each keyslot's key material (the master key, expanded by the
 * anti-forensic splitter and encrypted with a key derived from the
 * passphrase by PBKDF2) in its own 4096-byte aligned area, then the
 * payload, encrypted with aes-xts-plain64 under the master key.
 *
 * Nothing here depends on nbdkit: the filter, the vaio-crypt CLI and the
 * unit tests share it.  Errors are returned as -1 with a message in
 * err[errlen] (never containing key material) and errno set.
 */
#ifndef VAIO_CRYPT_LUKS_H
#define VAIO_CRYPT_LUKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LUKS_MAGIC          "LUKS\xba\xbe"
#define LUKS_MAGIC_LEN      6
#define LUKS_VERSION        1
#define LUKS_HEADER_SIZE    592
#define LUKS_SECTOR         512
#define LUKS_NUM_KEYS       8
#define LUKS_DIGEST_SIZE    20
#define LUKS_SALT_SIZE      32
#define LUKS_NAME_LEN       32
#define LUKS_UUID_LEN       40
#define LUKS_STRIPES        4000
#define LUKS_KEY_ENABLED    0x00AC71F3u
#define LUKS_KEY_DISABLED   0x0000DEADu
#define LUKS_MIN_ITERATIONS 1000
#define LUKS_ALIGN_KEYSLOTS 4096    /* bytes: each key material area */
#define LUKS_ALIGN_PAYLOAD  1048576 /* bytes: payload offset */
#define LUKS_MAX_KEY_BYTES  64

struct luks_keyslot
{
  uint32_t active; /* LUKS_KEY_ENABLED or LUKS_KEY_DISABLED */
  uint32_t iterations;
  uint8_t salt[LUKS_SALT_SIZE];
  uint32_t key_material_offset; /* sectors */
  uint32_t stripes;
};

/* The header, decoded to host byte order; strings NUL-terminated. */
struct luks_header
{
  char cipher_name[LUKS_NAME_LEN + 1];
  char cipher_mode[LUKS_NAME_LEN + 1];
  char hash_spec[LUKS_NAME_LEN + 1];
  uint32_t payload_offset; /* sectors */
  uint32_t key_bytes;
  uint8_t mk_digest[LUKS_DIGEST_SIZE];
  uint8_t mk_digest_salt[LUKS_SALT_SIZE];
  uint32_t mk_digest_iterations;
  char uuid[LUKS_UUID_LEN + 1];
  struct luks_keyslot slots[LUKS_NUM_KEYS];
};

/* Reads count bytes at offset of the image; 0 or -1 with errno. */
typedef int (*luks_read_fn) (void *opaque, void *buf, size_t count,
                             uint64_t offset);
typedef int (*luks_write_fn) (void *opaque, const void *buf, size_t count,
                              uint64_t offset);

/* The two over a file descriptor (opaque: an int *), for the tools that
 * work on an image file.  Reading past the end fails with EIO (a
 * truncated image).  Header writes (offset 0) are ordered: what was
 * written before is made durable first, and the header before returning.
 */
int luks_fd_read (void *opaque, void *buf, size_t count, uint64_t offset);
int luks_fd_write (void *opaque, const void *buf, size_t count,
                   uint64_t offset);

/* Decode and validate raw[LUKS_HEADER_SIZE] for an image of image_size
 * bytes: magic, version, cipher aes/xts-plain64, a known hash, 32 or 64
 * byte keys, keyslots inside the header area and not overlapping, payload
 * inside the image.  Anything else is a clear error, never a guess.
 */
int luks_header_decode (const uint8_t raw[LUKS_HEADER_SIZE],
                        uint64_t image_size, struct luks_header *h, char *err,
                        size_t errlen);
void luks_header_encode (const struct luks_header *h,
                         uint8_t raw[LUKS_HEADER_SIZE]);

/* Bytes of key material one keyslot occupies (key_bytes * stripes). */
size_t luks_keyslot_bytes (const struct luks_header *h, unsigned slot);

/* Try the passphrase against every active keyslot (or only `slot` when
 * slot >= 0).  On success copy the master key (h->key_bytes) to mk, set
 * *slot_out and return 0.  A wrong passphrase and corrupt key material
 * are indistinguishable in LUKS1: both give -1 with errno EPERM.
 */
int luks_unlock (const struct luks_header *h, const uint8_t *pass,
                 size_t pass_len, int slot, luks_read_fn rd, void *opaque,
                 uint8_t *mk, int *slot_out, char *err, size_t errlen);

/* Parameters for a new image. */
struct luks_format_params
{
  uint32_t key_bytes;       /* 32 (aes-128-xts) or 64 (aes-256-xts) */
  const char *hash;         /* "sha256" (default when NULL) */
  uint32_t slot_iterations; /* 0: benchmark for iter_time_ms */
  uint32_t iter_time_ms;    /* default 1000 */
  const char *uuid;         /* NULL: random */
};

/* Build a header and a fresh random master key (mk[key_bytes]).  No slot
 * is active yet and nothing is written.
 */
int luks_format_header (const struct luks_format_params *p,
                        struct luks_header *h, uint8_t *mk, char *err,
                        size_t errlen);

/* Store mk in keyslot `slot` (or the first free one when slot < 0) under
 * the passphrase: writes the key material, then the header.  *slot_out
 * receives the slot used.
 */
int luks_add_keyslot (struct luks_header *h, const uint8_t *mk,
                      const uint8_t *pass, size_t pass_len, int slot,
                      uint32_t iterations, luks_write_fn wr, void *opaque,
                      int *slot_out, char *err, size_t errlen);

/* Overwrite keyslot material with random bytes, then mark it disabled and
 * write the header.
 */
int luks_remove_keyslot (struct luks_header *h, unsigned slot, luks_write_fn wr,
                         void *opaque, char *err, size_t errlen);

/* Check a candidate master key against the header's digest. */
int luks_verify_mk (const struct luks_header *h, const uint8_t *mk, char *err,
                    size_t errlen);

/* PBKDF2 iterations that take about ms milliseconds with this hash. */
uint32_t luks_benchmark_iterations (const char *hash, uint32_t ms);

unsigned luks_active_slots (const struct luks_header *h);

/* Anti-forensic splitter (af.c), LUKS1 definition with hash `hash`. */
int luks_af_split (const uint8_t *src, uint8_t *dst, size_t block,
                   unsigned stripes, const char *hash);
int luks_af_merge (const uint8_t *src, uint8_t *dst, size_t block,
                   unsigned stripes, const char *hash);

#endif /* VAIO_CRYPT_LUKS_H */

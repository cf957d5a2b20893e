/* vaio-crypt: nbdkit filter serving the plaintext payload of a LUKS1
 * (aes-xts-plain64) image.
 *
 *   nbdkit --filter=.../nbdkit-vaio-crypt-filter.so file disk.img \
 *          crypt-passphrase-file=/path/pw [crypt-state-dir=DIR]
 *
 * The key is unlocked once, in .after_fork, through a shared read-only
 * backend context: with a wrong key every client is refused in .open with
 * the reason, before a byte of the image is written.  Every request then makes
 * one call to the next layer; sectors are ciphered with per-thread EVP contexts
 * (xts.c).  Unaligned requests are widened to whole sectors
 * (read-modify-write for writes, serialized: see rmw_lock).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>
#include <openssl/crypto.h>

#include "keys.h"
#include "keysource.h"
#include "luks.h"
#include "stats.h"
#include "xts.h"

/* Set from the command line in .config / .config_complete, read-only
 * after that (nbdkit configures before it starts any thread).
 */
static struct crypt_key_source key_source = { .prefix = "crypt-" };
static const char *state_dir;
static int keyslot = -1;

/* Set once in .after_fork before connections are served, then read-only
 * except `header_raw`, which .prepare may refresh under header_lock after
 * a key rotation rewrote the header while we serve.
 */
static struct luks_header header;
static uint8_t header_raw[LUKS_HEADER_SIZE];
static uint64_t payload_bytes;
static struct xts_engine engine;
static bool unlocked;
static char unlock_error[512]; /* why not unlocked, for every client */
static struct vaio_stats *stats;
static pthread_mutex_t header_lock = PTHREAD_MUTEX_INITIALIZER;

/* Guards read-modify-write of partial sectors.  A read-modify-write
 * holds it exclusively: two writes to different bytes of one sector must
 * not both read the old sector and each write back the other's bytes
 * stale.  Whole-sector writes hold it shared, so they never land between
 * a read-modify-write's read and its write (which would put back the
 * sector's old bytes outside the partial write).  Writers are preferred
 * so a stream of whole-sector writes cannot starve a partial one.
 */
static pthread_rwlock_t rmw_lock
    = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

enum
{
  STAT_SECTORS_ENCRYPTED,
  STAT_SECTORS_DECRYPTED,
  STAT_RMW_WRITES,
  STAT_UNLOCKED_SLOT,
};
static const struct vaio_stats_counter_def stat_defs[] = {
  [STAT_SECTORS_ENCRYPTED] = { "sectors-encrypted", VAIO_COUNTER },
  [STAT_SECTORS_DECRYPTED] = { "sectors-decrypted", VAIO_COUNTER },
  [STAT_RMW_WRITES] = { "rmw-writes", VAIO_COUNTER },
  [STAT_UNLOCKED_SLOT] = { "unlocked-keyslot", VAIO_GAUGE },
};

static void
crypt_unload (void)
{
  crypt_key_source_free (&key_source);
  if (unlocked)
    xts_engine_free (&engine);
  vaio_stats_close (stats);
}

static int
crypt_config (nbdkit_next_config *next, nbdkit_backend *nxdata, const char *key,
              const char *value)
{
  char err[256];
  int r;

  if (strcmp (key, "crypt-state-dir") == 0)
    {
      state_dir = value;
      return 0;
    }
  if (strcmp (key, "crypt-keyslot") == 0)
    {
      if (nbdkit_parse_int ("crypt-keyslot", value, &keyslot) == -1)
        return -1;
      if (keyslot < 0 || keyslot >= LUKS_NUM_KEYS)
        {
          nbdkit_error ("crypt-keyslot: must be 0..7, not %d", keyslot);
          return -1;
        }
      return 0;
    }
  r = crypt_key_source_config (&key_source, key, value, err, sizeof err);
  if (r == -1)
    {
      nbdkit_error ("%s", err);
      return -1;
    }
  if (r == 1)
    return 0;
  return next (nxdata, key, value);
}

static int
crypt_config_complete (nbdkit_next_config_complete *next,
                       nbdkit_backend *nxdata)
{
  char err[256];

  if (crypt_key_source_complete (&key_source, err, sizeof err) == -1)
    {
      nbdkit_error ("%s", err);
      return -1;
    }
  return next (nxdata);
}

#define crypt_config_help                                                      \
  "crypt-passphrase-file=PATH  Passphrase (one trailing newline ignored).\n"   \
  "crypt-key-file=PATH         Key file (exact bytes).\n"                      \
  "crypt-passphrase-fd=FD      Passphrase read from an inherited fd.\n"        \
  "crypt-key-fd=FD             Key read from an inherited fd.\n"               \
  "crypt-keystore=DIR          Key store of KEKs (with crypt-key-id).\n"       \
  "crypt-key-id=ID             KEK id wrapping this disk's key.\n"             \
  "crypt-keyslot=N             Only try keyslot N (0-7).\n"                    \
  "crypt-state-dir=DIR         Per-disk state dir (stats published there)."

static int
crypt_thread_model (void)
{
  return NBDKIT_THREAD_MODEL_PARALLEL;
}

static int
crypt_get_ready (int thread_model)
{
  if (state_dir == NULL)
    return 0;
  stats = vaio_stats_create (state_dir, "vaio-crypt", "encryption", stat_defs,
                             sizeof stat_defs / sizeof stat_defs[0]);
  if (stats == NULL)
    {
      nbdkit_error ("crypt-state-dir: cannot create %s/stats: %m", state_dir);
      return -1;
    }
  return 0;
}

/* luks_read_fn over an nbdkit next context. */
static int
next_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  nbdkit_next *next = opaque;
  int err = 0;

  if (next->pread (next, buf, (uint32_t)count, offset, 0, &err) == -1)
    {
      errno = err ? err : EIO;
      return -1;
    }
  return 0;
}

/* Read and decode the header through next; a message in err. */
static int
read_header (nbdkit_next *next, uint8_t raw[LUKS_HEADER_SIZE],
             struct luks_header *h, uint64_t *size_out, char *err,
             size_t errlen)
{
  int64_t size = next->get_size (next);

  if (size == -1)
    {
      snprintf (err, errlen, "cannot get the image size");
      return -1;
    }
  if ((uint64_t)size < LUKS_HEADER_SIZE)
    {
      snprintf (err, errlen,
                "image is %" PRIi64 " bytes, too small for a LUKS header "
                "(truncated?)",
                size);
      return -1;
    }
  if (next_read (next, raw, LUKS_HEADER_SIZE, 0) == -1)
    {
      snprintf (err, errlen, "reading the LUKS header: %s", strerror (errno));
      return -1;
    }
  if (luks_header_decode (raw, (uint64_t)size, h, err, errlen) == -1)
    return -1;
  *size_out = (uint64_t)size;
  return 0;
}

/* On failure the reason is kept in unlock_error: it names the key
 * source, never the key.
 */
static int
unlock (nbdkit_next *next)
{
  uint8_t mk[LUKS_MAX_KEY_BYTES];
  struct secret pass = { 0 };
  char err[256];
  uint64_t size;
  int slot, r = -1;

  if (read_header (next, header_raw, &header, &size, err, sizeof err) == -1)
    {
      snprintf (unlock_error, sizeof unlock_error, "%s", err);
      return -1;
    }
  if (crypt_key_source_secret (&key_source, header.uuid, &pass, err, sizeof err)
          == -1
      || luks_unlock (&header, pass.data, pass.len, keyslot, next_read, next,
                      mk, &slot, err, sizeof err)
             == -1)
    {
      snprintf (unlock_error, sizeof unlock_error, "%s: %s",
                crypt_key_source_name (&key_source), err);
      goto out;
    }
  if (xts_engine_init (&engine, mk, header.key_bytes) == -1)
    {
      snprintf (unlock_error, sizeof unlock_error, "cipher setup failed: %s",
                strerror (errno));
      goto out;
    }
  nbdkit_debug ("vaio-crypt: AES-XTS through %s",
                engine.direct ? "the provider's own functions" : "EVP");
  payload_bytes = (uint64_t)header.payload_offset * LUKS_SECTOR;
  unlocked = true;
  vaio_stats_set (stats, STAT_UNLOCKED_SLOT, (uint64_t)slot);
  nbdkit_debug ("vaio-crypt: unlocked keyslot %d, %s-%s %u-bit, payload at "
                "%" PRIu64,
                slot, header.cipher_name, header.cipher_mode,
                header.key_bytes * 8, payload_bytes);
  r = 0;
out:
  OPENSSL_cleanse (mk, sizeof mk);
  secret_free (&pass);
  return r;
}

/* Unlock once for the whole process, before any client is served.  A
 * failure does not fail .after_fork: with --run that leaves the captive
 * command waiting on a socket nobody serves.  Instead every client is
 * refused in .open with the reason, and no byte of the image is written.
 */
static int
crypt_after_fork (nbdkit_backend *backend)
{
  nbdkit_next *next = nbdkit_next_context_open (backend, 1, "", 1);

  if (next == NULL)
    snprintf (unlock_error, sizeof unlock_error,
              "cannot open the underlying image");
  else
    {
      if (next->prepare (next) == 0)
        unlock (next);
      else
        snprintf (unlock_error, sizeof unlock_error,
                  "cannot open the underlying image");
      next->finalize (next);
      nbdkit_next_context_close (next);
    }
  /* The key material now lives only in the cipher contexts. */
  crypt_key_source_free (&key_source);
  if (!unlocked)
    nbdkit_error ("vaio-crypt: %s: refusing all clients", unlock_error);
  return 0;
}

static void *
crypt_open (nbdkit_next_open *next, nbdkit_context *nxdata, int readonly,
            const char *exportname, int is_tls)
{
  if (!unlocked)
    {
      nbdkit_error ("vaio-crypt: %s", unlock_error);
      return NULL;
    }
  if (next (nxdata, readonly, exportname) == -1)
    return NULL;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

/* Per connection: the header must still be the one whose key we hold.  A
 * keyslot change (vaio-crypt add-key/remove-key while serving) is fine:
 * the master key digest still matches.  Anything else is refused.
 */
static int
crypt_prepare (nbdkit_next *next, void *handle, int readonly)
{
  uint8_t raw[LUKS_HEADER_SIZE];
  struct luks_header h;
  char err[256];
  uint64_t size;
  int r = 0;

  if (read_header (next, raw, &h, &size, err, sizeof err) == -1)
    {
      nbdkit_error ("vaio-crypt: %s", err);
      return -1;
    }
  pthread_mutex_lock (&header_lock);
  if (memcmp (raw, header_raw, sizeof raw) != 0)
    {
      if (h.payload_offset != header.payload_offset
          || h.key_bytes != header.key_bytes
          || luks_verify_mk (&h, engine.key, err, sizeof err) == -1)
        {
          nbdkit_error ("vaio-crypt: the LUKS header changed and no longer "
                        "matches the unlocked key: restart nbdkit");
          r = -1;
        }
      else
        memcpy (header_raw, raw, sizeof raw);
    }
  pthread_mutex_unlock (&header_lock);
  return r;
}

static int64_t
crypt_get_size (nbdkit_next *next, void *handle)
{
  int64_t size = next->get_size (next);

  if (size == -1)
    return -1;
  if ((uint64_t)size < payload_bytes)
    {
      nbdkit_error ("vaio-crypt: image shrank below the payload offset");
      return -1;
    }
  /* The guest sees whole sectors only. */
  return (int64_t)(((uint64_t)size - payload_bytes) / LUKS_SECTOR
                   * LUKS_SECTOR);
}

/* Ciphertext holes are not plaintext zeros: no trim, no extents, no
 * pass-through zero (nbdkit emulates zero with pwrite of zeros).
 */
static int
crypt_can_trim (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
crypt_can_zero (nbdkit_next *next, void *handle)
{
  return NBDKIT_ZERO_EMULATE;
}

static int
crypt_can_fast_zero (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
crypt_can_extents (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
crypt_can_cache (nbdkit_next *next, void *handle)
{
  return NBDKIT_CACHE_NONE;
}

static int
crypt_sectors (uint8_t *out, const uint8_t *in, size_t len, uint64_t sector,
               bool enc, int *err)
{
  if (xts_engine_crypt (&engine, enc, out, in, len, sector) == -1)
    {
      *err = errno;
      nbdkit_error ("vaio-crypt: %s failed at sector %" PRIu64 ": %m",
                    enc ? "encryption" : "decryption", sector);
      return -1;
    }
  vaio_stats_add (stats, enc ? STAT_SECTORS_ENCRYPTED : STAT_SECTORS_DECRYPTED,
                  len / LUKS_SECTOR);
  return 0;
}

/* Read and decrypt whole sectors [start, start + len) into buf. */
static int
read_sectors (nbdkit_next *next, uint8_t *buf, size_t len, uint64_t start,
              int *err)
{
  if (next->pread (next, buf, (uint32_t)len, payload_bytes + start, 0, err)
      == -1)
    return -1;
  return crypt_sectors (buf, buf, len, start / LUKS_SECTOR, false, err);
}

static bool
aligned (uint64_t offset, uint32_t count)
{
  return offset % LUKS_SECTOR == 0 && count % LUKS_SECTOR == 0;
}

static int
do_pread (nbdkit_next *next, uint8_t *buf, uint32_t count, uint64_t offset,
          int *err)
{
  uint64_t start = offset / LUKS_SECTOR * LUKS_SECTOR;
  uint64_t end = (offset + count + LUKS_SECTOR - 1) / LUKS_SECTOR * LUKS_SECTOR;
  uint8_t *bounce;
  int r;

  if (aligned (offset, count))
    return read_sectors (next, buf, count, offset, err);
  bounce = malloc (end - start);
  if (bounce == NULL)
    {
      *err = ENOMEM;
      nbdkit_error ("vaio-crypt: malloc: %m");
      return -1;
    }
  r = read_sectors (next, bounce, end - start, start, err);
  if (r == 0)
    memcpy (buf, bounce + (offset - start), count);
  free (bounce);
  return r;
}

static int
crypt_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  int r = do_pread (next, buf, count, offset, err);

  vaio_stats_record (stats, VAIO_OP_READ, count, vaio_stats_now_ns () - t0,
                     r == -1);
  return r;
}

/* Plaintext of the partial first and last sectors of [start, end) into
 * plain, so the caller can overlay its bytes.
 */
static int
read_edges (nbdkit_next *next, uint8_t *plain, uint64_t start, uint64_t end,
            uint64_t offset, uint32_t count, int *err)
{
  uint64_t last = end - LUKS_SECTOR;

  if (offset != start
      && read_sectors (next, plain, LUKS_SECTOR, start, err) == -1)
    return -1;
  if (offset + count != end && (last != start || offset == start)
      && read_sectors (next, plain + (last - start), LUKS_SECTOR, last, err)
             == -1)
    return -1;
  return 0;
}

static int
write_rmw (nbdkit_next *next, const uint8_t *buf, uint32_t count,
           uint64_t offset, uint32_t flags, int *err)
{
  uint64_t start = offset / LUKS_SECTOR * LUKS_SECTOR;
  uint64_t end = (offset + count + LUKS_SECTOR - 1) / LUKS_SECTOR * LUKS_SECTOR;
  size_t len = end - start;
  uint8_t *plain = malloc (len);
  int r = -1;

  if (plain == NULL)
    {
      *err = ENOMEM;
      nbdkit_error ("vaio-crypt: malloc: %m");
      return -1;
    }
  pthread_rwlock_wrlock (&rmw_lock);
  if (read_edges (next, plain, start, end, offset, count, err) == 0)
    {
      memcpy (plain + (offset - start), buf, count);
      if (crypt_sectors (plain, plain, len, start / LUKS_SECTOR, true, err) == 0
          && next->pwrite (next, plain, (uint32_t)len, payload_bytes + start,
                           flags, err)
                 == 0)
        r = 0;
    }
  pthread_rwlock_unlock (&rmw_lock);
  vaio_stats_add (stats, STAT_RMW_WRITES, 1);
  free (plain);
  return r;
}

static int
do_pwrite (nbdkit_next *next, const uint8_t *buf, uint32_t count,
           uint64_t offset, uint32_t flags, int *err)
{
  uint8_t *cipher;
  int r = -1;

  if (!aligned (offset, count))
    return write_rmw (next, buf, count, offset, flags, err);
  /* The caller's buffer is const: encrypt into our own. */
  cipher = malloc (count);
  if (cipher == NULL)
    {
      *err = ENOMEM;
      nbdkit_error ("vaio-crypt: malloc: %m");
      return -1;
    }
  if (crypt_sectors (cipher, buf, count, offset / LUKS_SECTOR, true, err) == 0)
    {
      pthread_rwlock_rdlock (&rmw_lock);
      r = next->pwrite (next, cipher, count, payload_bytes + offset, flags,
                        err);
      pthread_rwlock_unlock (&rmw_lock);
    }
  free (cipher);
  return r;
}

static int
crypt_pwrite (nbdkit_next *next, void *handle, const void *buf, uint32_t count,
              uint64_t offset, uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  int r = do_pwrite (next, buf, count, offset, flags, err);

  vaio_stats_record (stats, VAIO_OP_WRITE, count, vaio_stats_now_ns () - t0,
                     r == -1);
  return r;
}

static int
crypt_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  uint64_t t0 = vaio_stats_now_ns ();
  int r = next->flush (next, flags, err);

  vaio_stats_record (stats, VAIO_OP_FLUSH, 0, vaio_stats_now_ns () - t0,
                     r == -1);
  return r;
}

static struct nbdkit_filter filter = {
  .name = "vaio-crypt",
  .longname = "vaio-nbd encryption filter (LUKS1 aes-xts-plain64)",
  .unload = crypt_unload,
  .config = crypt_config,
  .config_complete = crypt_config_complete,
  .config_help = crypt_config_help,
  .thread_model = crypt_thread_model,
  .get_ready = crypt_get_ready,
  .after_fork = crypt_after_fork,
  .open = crypt_open,
  .prepare = crypt_prepare,
  .get_size = crypt_get_size,
  .can_trim = crypt_can_trim,
  .can_zero = crypt_can_zero,
  .can_fast_zero = crypt_can_fast_zero,
  .can_extents = crypt_can_extents,
  .can_cache = crypt_can_cache,
  .pread = crypt_pread,
  .pwrite = crypt_pwrite,
  .flush = crypt_flush,
};

NBDKIT_REGISTER_FILTER (filter)

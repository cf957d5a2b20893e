/* vaio-crypt: LUKS1 header codec, keyslots, master key digest. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "luks.h"
#include "xts.h"

/* Offsets of the fields in the 592-byte big-endian header. */
enum
{
  OFF_MAGIC = 0,
  OFF_VERSION = 6,
  OFF_CIPHER_NAME = 8,
  OFF_CIPHER_MODE = 40,
  OFF_HASH_SPEC = 72,
  OFF_PAYLOAD = 104,
  OFF_KEY_BYTES = 108,
  OFF_MK_DIGEST = 112,
  OFF_MK_SALT = 132,
  OFF_MK_ITER = 164,
  OFF_UUID = 168,
  OFF_SLOTS = 208,
  SLOT_SIZE = 48,
};

static int __attribute__ ((format (printf, 4, 5)))
fail (int errnum, char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (err, errlen, fmt, ap);
  va_end (ap);
  errno = errnum;
  return -1;
}

static uint32_t
get_be32 (const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8
         | p[3];
}

static void
put_be32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* A NUL-padded string field; -1 when it has no terminator. */
static int
get_string (char *dst, const uint8_t *src, size_t field)
{
  const uint8_t *nul = memchr (src, '\0', field);

  if (nul == NULL)
    return -1;
  memcpy (dst, src, (size_t)(nul - src) + 1);
  return 0;
}

static void
put_string (uint8_t *dst, const char *src, size_t field)
{
  memset (dst, 0, field);
  memcpy (dst, src, strnlen (src, field - 1));
}

static uint64_t
round_up (uint64_t v, uint64_t align)
{
  return (v + align - 1) / align * align;
}

size_t
luks_keyslot_bytes (const struct luks_header *h, unsigned slot)
{
  return (size_t)h->key_bytes * h->slots[slot].stripes;
}

/* Bytes the keyslot material occupies on disk: whole sectors. */
static size_t
keyslot_disk_bytes (const struct luks_header *h, unsigned slot)
{
  return (size_t)round_up (luks_keyslot_bytes (h, slot), LUKS_SECTOR);
}

static int
check_slots (const struct luks_header *h, char *err, size_t errlen)
{
  uint64_t payload = (uint64_t)h->payload_offset * LUKS_SECTOR;

  for (unsigned i = 0; i < LUKS_NUM_KEYS; i++)
    {
      const struct luks_keyslot *s = &h->slots[i];
      uint64_t start = (uint64_t)s->key_material_offset * LUKS_SECTOR;
      uint64_t end = start + keyslot_disk_bytes (h, i);

      if (s->active != LUKS_KEY_ENABLED && s->active != LUKS_KEY_DISABLED)
        return fail (EINVAL, err, errlen,
                     "LUKS header: keyslot %u has invalid state 0x%08x "
                     "(corrupt header)",
                     i, s->active);
      if (s->active == LUKS_KEY_ENABLED
          && (s->iterations == 0 || s->stripes == 0 || s->stripes > 65536))
        return fail (EINVAL, err, errlen,
                     "LUKS header: keyslot %u has %u iterations and %u "
                     "stripes (corrupt header)",
                     i, s->iterations, s->stripes);
      if (s->stripes == 0)
        continue;
      if (start < LUKS_HEADER_SIZE || end > payload)
        return fail (EINVAL, err, errlen,
                     "LUKS header: keyslot %u material [%llu, %llu) is "
                     "outside the header area [592, %llu) (corrupt header)",
                     i, (unsigned long long)start, (unsigned long long)end,
                     (unsigned long long)payload);
      for (unsigned j = 0; j < i; j++)
        {
          uint64_t s2 = (uint64_t)h->slots[j].key_material_offset * LUKS_SECTOR;
          uint64_t e2 = s2 + keyslot_disk_bytes (h, j);

          if (h->slots[j].stripes != 0 && start < e2 && s2 < end)
            return fail (EINVAL, err, errlen,
                         "LUKS header: keyslots %u and %u overlap "
                         "(corrupt header)",
                         j, i);
        }
    }
  return 0;
}

static int
check_fields (const struct luks_header *h, uint64_t image_size, char *err,
              size_t errlen)
{
  const EVP_MD *md = EVP_get_digestbyname (h->hash_spec);

  if (strcasecmp (h->cipher_name, "aes") != 0
      || strcmp (h->cipher_mode, "xts-plain64") != 0)
    return fail (ENOTSUP, err, errlen,
                 "LUKS header: cipher %s-%s is not supported "
                 "(vaio-crypt supports aes-xts-plain64)",
                 h->cipher_name, h->cipher_mode);
  if (md == NULL)
    return fail (ENOTSUP, err, errlen,
                 "LUKS header: hash '%s' is not supported", h->hash_spec);
  if (h->key_bytes != 32 && h->key_bytes != 64)
    return fail (EINVAL, err, errlen,
                 "LUKS header: key size %u bytes is not 32 or 64 "
                 "(corrupt header?)",
                 h->key_bytes);
  if (h->mk_digest_iterations == 0)
    return fail (EINVAL, err, errlen,
                 "LUKS header: master key digest has 0 iterations "
                 "(corrupt header)");
  if (h->payload_offset == 0)
    return fail (ENOTSUP, err, errlen,
                 "LUKS header: payload offset 0 (a detached header) is not "
                 "supported");
  if ((uint64_t)h->payload_offset * LUKS_SECTOR > image_size)
    return fail (EINVAL, err, errlen,
                 "LUKS header: payload offset %llu is beyond the end of the "
                 "image (%llu bytes): truncated or corrupt image",
                 (unsigned long long)h->payload_offset * LUKS_SECTOR,
                 (unsigned long long)image_size);
  return check_slots (h, err, errlen);
}

int
luks_header_decode (const uint8_t raw[LUKS_HEADER_SIZE], uint64_t image_size,
                    struct luks_header *h, char *err, size_t errlen)
{
  uint32_t version;

  memset (h, 0, sizeof *h);
  if (image_size < LUKS_HEADER_SIZE)
    return fail (EINVAL, err, errlen,
                 "image is %llu bytes, too small to hold a LUKS header",
                 (unsigned long long)image_size);
  if (memcmp (raw + OFF_MAGIC, LUKS_MAGIC, LUKS_MAGIC_LEN) != 0)
    return fail (EINVAL, err, errlen,
                 "not a LUKS image (bad magic at offset 0)");
  version = (uint32_t)raw[OFF_VERSION] << 8 | raw[OFF_VERSION + 1];
  if (version != LUKS_VERSION)
    return fail (ENOTSUP, err, errlen,
                 "LUKS version %u is not supported (vaio-crypt reads LUKS1)",
                 version);
  if (get_string (h->cipher_name, raw + OFF_CIPHER_NAME, LUKS_NAME_LEN) == -1
      || get_string (h->cipher_mode, raw + OFF_CIPHER_MODE, LUKS_NAME_LEN) == -1
      || get_string (h->hash_spec, raw + OFF_HASH_SPEC, LUKS_NAME_LEN) == -1)
    return fail (EINVAL, err, errlen,
                 "LUKS header: unterminated cipher or hash name "
                 "(corrupt header)");
  h->payload_offset = get_be32 (raw + OFF_PAYLOAD);
  h->key_bytes = get_be32 (raw + OFF_KEY_BYTES);
  memcpy (h->mk_digest, raw + OFF_MK_DIGEST, LUKS_DIGEST_SIZE);
  memcpy (h->mk_digest_salt, raw + OFF_MK_SALT, LUKS_SALT_SIZE);
  h->mk_digest_iterations = get_be32 (raw + OFF_MK_ITER);
  memcpy (h->uuid, raw + OFF_UUID, LUKS_UUID_LEN);
  h->uuid[LUKS_UUID_LEN] = '\0';
  for (unsigned i = 0; i < LUKS_NUM_KEYS; i++)
    {
      const uint8_t *p = raw + OFF_SLOTS + i * SLOT_SIZE;
      struct luks_keyslot *s = &h->slots[i];

      s->active = get_be32 (p);
      s->iterations = get_be32 (p + 4);
      memcpy (s->salt, p + 8, LUKS_SALT_SIZE);
      s->key_material_offset = get_be32 (p + 40);
      s->stripes = get_be32 (p + 44);
    }
  return check_fields (h, image_size, err, errlen);
}

void
luks_header_encode (const struct luks_header *h, uint8_t raw[LUKS_HEADER_SIZE])
{
  memset (raw, 0, LUKS_HEADER_SIZE);
  memcpy (raw + OFF_MAGIC, LUKS_MAGIC, LUKS_MAGIC_LEN);
  raw[OFF_VERSION] = 0;
  raw[OFF_VERSION + 1] = LUKS_VERSION;
  put_string (raw + OFF_CIPHER_NAME, h->cipher_name, LUKS_NAME_LEN);
  put_string (raw + OFF_CIPHER_MODE, h->cipher_mode, LUKS_NAME_LEN);
  put_string (raw + OFF_HASH_SPEC, h->hash_spec, LUKS_NAME_LEN);
  put_be32 (raw + OFF_PAYLOAD, h->payload_offset);
  put_be32 (raw + OFF_KEY_BYTES, h->key_bytes);
  memcpy (raw + OFF_MK_DIGEST, h->mk_digest, LUKS_DIGEST_SIZE);
  memcpy (raw + OFF_MK_SALT, h->mk_digest_salt, LUKS_SALT_SIZE);
  put_be32 (raw + OFF_MK_ITER, h->mk_digest_iterations);
  memcpy (raw + OFF_UUID, h->uuid, strnlen (h->uuid, LUKS_UUID_LEN));
  for (unsigned i = 0; i < LUKS_NUM_KEYS; i++)
    {
      uint8_t *p = raw + OFF_SLOTS + i * SLOT_SIZE;
      const struct luks_keyslot *s = &h->slots[i];

      put_be32 (p, s->active);
      put_be32 (p + 4, s->iterations);
      memcpy (p + 8, s->salt, LUKS_SALT_SIZE);
      put_be32 (p + 40, s->key_material_offset);
      put_be32 (p + 44, s->stripes);
    }
}

static int
pbkdf2 (const char *hash, const uint8_t *pass, size_t pass_len,
        const uint8_t *salt, size_t salt_len, uint32_t iterations, uint8_t *out,
        size_t out_len)
{
  const EVP_MD *md = EVP_get_digestbyname (hash);

  if (md == NULL || iterations > INT32_MAX)
    return -1;
  /* OpenSSL takes a char * passphrase but uses pass_len: NULs are fine. */
  return PKCS5_PBKDF2_HMAC ((const char *)pass, (int)pass_len, salt,
                            (int)salt_len, (int)iterations, md, (int)out_len,
                            out)
                 == 1
             ? 0
             : -1;
}

int
luks_verify_mk (const struct luks_header *h, const uint8_t *mk, char *err,
                size_t errlen)
{
  uint8_t digest[LUKS_DIGEST_SIZE];
  int same;

  if (pbkdf2 (h->hash_spec, mk, h->key_bytes, h->mk_digest_salt, LUKS_SALT_SIZE,
              h->mk_digest_iterations, digest, sizeof digest)
      == -1)
    return fail (EIO, err, errlen, "PBKDF2 failed computing the key digest");
  same = CRYPTO_memcmp (digest, h->mk_digest, LUKS_DIGEST_SIZE) == 0;
  OPENSSL_cleanse (digest, sizeof digest);
  if (!same)
    return fail (EPERM, err, errlen, "master key does not match the header");
  return 0;
}

/* Decrypt and merge one keyslot's material into mk; 0 when the result
 * matches the header's master key digest.
 */
static int
try_slot (const struct luks_header *h, unsigned slot, const uint8_t *pass,
          size_t pass_len, luks_read_fn rd, void *opaque, uint8_t *mk,
          char *err, size_t errlen)
{
  const struct luks_keyslot *s = &h->slots[slot];
  size_t disk_bytes = keyslot_disk_bytes (h, slot);
  uint8_t derived[LUKS_MAX_KEY_BYTES];
  uint8_t *material = malloc (disk_bytes);
  int r = -1;

  if (material == NULL)
    return fail (ENOMEM, err, errlen, "out of memory reading keyslot %u", slot);
  if (rd (opaque, material, disk_bytes,
          (uint64_t)s->key_material_offset * LUKS_SECTOR)
      == -1)
    {
      r = fail (errno, err, errlen, "reading keyslot %u material: %s", slot,
                strerror (errno));
      goto out;
    }
  if (pbkdf2 (h->hash_spec, pass, pass_len, s->salt, LUKS_SALT_SIZE,
              s->iterations, derived, h->key_bytes)
          == -1
      || xts_crypt_oneshot (derived, h->key_bytes, false, material, material,
                            disk_bytes, 0)
             == -1
      || luks_af_merge (material, mk, h->key_bytes, s->stripes, h->hash_spec)
             == -1)
    {
      r = fail (EIO, err, errlen, "keyslot %u: key derivation failed", slot);
      goto out;
    }
  r = luks_verify_mk (h, mk, err, errlen);
out:
  OPENSSL_cleanse (derived, sizeof derived);
  OPENSSL_cleanse (material, disk_bytes);
  free (material);
  return r;
}

int
luks_unlock (const struct luks_header *h, const uint8_t *pass, size_t pass_len,
             int slot, luks_read_fn rd, void *opaque, uint8_t *mk,
             int *slot_out, char *err, size_t errlen)
{
  unsigned tried = 0;

  for (unsigned i = 0; i < LUKS_NUM_KEYS; i++)
    {
      if ((slot >= 0 && (unsigned)slot != i)
          || h->slots[i].active != LUKS_KEY_ENABLED)
        continue;
      tried++;
      if (try_slot (h, i, pass, pass_len, rd, opaque, mk, err, errlen) == 0)
        {
          *slot_out = (int)i;
          return 0;
        }
      if (errno != EPERM)
        return -1; /* an I/O error: report it, not "wrong key" */
    }
  OPENSSL_cleanse (mk, h->key_bytes);
  if (tried == 0 && slot >= 0)
    return fail (EPERM, err, errlen, "LUKS keyslot %d is not active", slot);
  if (tried == 0)
    return fail (EPERM, err, errlen, "LUKS image has no active keyslot");
  return fail (EPERM, err, errlen,
               "no LUKS keyslot opens with this key (wrong passphrase or "
               "key, or corrupt key material)");
}

uint32_t
luks_benchmark_iterations (const char *hash, uint32_t ms)
{
  static const uint8_t pass[] = "vaio-crypt benchmark", salt[32] = { 0 };
  const uint32_t probe = 20000;
  struct timespec t0, t1;
  uint8_t out[32];
  double secs;
  uint64_t iters;

  clock_gettime (CLOCK_MONOTONIC, &t0);
  if (pbkdf2 (hash, pass, sizeof pass, salt, sizeof salt, probe, out,
              sizeof out)
      == -1)
    return LUKS_MIN_ITERATIONS;
  clock_gettime (CLOCK_MONOTONIC, &t1);
  secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  if (secs <= 0)
    secs = 1e-6;
  iters = (uint64_t)((double)probe * ((double)ms / 1000.0) / secs);
  if (iters < LUKS_MIN_ITERATIONS)
    iters = LUKS_MIN_ITERATIONS;
  if (iters > INT32_MAX)
    iters = INT32_MAX;
  return (uint32_t)iters;
}

static void
random_uuid (char out[LUKS_UUID_LEN + 1])
{
  uint8_t u[16];

  if (RAND_bytes (u, sizeof u) != 1)
    memset (u, 0, sizeof u);
  u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 */
  u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  snprintf (out, LUKS_UUID_LEN + 1,
            "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
            "%02x%02x%02x%02x%02x%02x",
            u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
            u[11], u[12], u[13], u[14], u[15]);
}

int
luks_format_header (const struct luks_format_params *p, struct luks_header *h,
                    uint8_t *mk, char *err, size_t errlen)
{
  const char *hash = p->hash ? p->hash : "sha256";
  uint32_t stride, offset;
  uint32_t iters;

  memset (h, 0, sizeof *h);
  if (p->key_bytes != 32 && p->key_bytes != 64)
    return fail (EINVAL, err, errlen,
                 "key size must be 256 or 512 bits (aes-xts), not %u",
                 p->key_bytes * 8);
  if (EVP_get_digestbyname (hash) == NULL || strlen (hash) >= LUKS_NAME_LEN)
    return fail (EINVAL, err, errlen, "unknown hash '%s'", hash);
  strcpy (h->cipher_name, "aes");
  strcpy (h->cipher_mode, "xts-plain64");
  strcpy (h->hash_spec, hash);
  h->key_bytes = p->key_bytes;
  if (p->uuid)
    snprintf (h->uuid, sizeof h->uuid, "%s", p->uuid);
  else
    random_uuid (h->uuid);

  /* cryptsetup's LUKS1 layout: key material areas 4096-byte aligned from
   * 4096, payload aligned to 1 MiB.
   */
  stride = (uint32_t)(round_up ((uint64_t)p->key_bytes * LUKS_STRIPES,
                                LUKS_ALIGN_KEYSLOTS)
                      / LUKS_SECTOR);
  offset = LUKS_ALIGN_KEYSLOTS / LUKS_SECTOR;
  for (unsigned i = 0; i < LUKS_NUM_KEYS; i++, offset += stride)
    {
      h->slots[i].active = LUKS_KEY_DISABLED;
      h->slots[i].key_material_offset = offset;
      h->slots[i].stripes = LUKS_STRIPES;
    }
  h->payload_offset
      = (uint32_t)(round_up ((uint64_t)offset * LUKS_SECTOR, LUKS_ALIGN_PAYLOAD)
                   / LUKS_SECTOR);

  iters = p->slot_iterations
              ? p->slot_iterations
              : luks_benchmark_iterations (
                  hash, p->iter_time_ms ? p->iter_time_ms : 1000);
  /* The digest only has to make a master key guess expensive to check:
   * cryptsetup uses an eighth of the keyslot time, at least 1000.
   */
  h->mk_digest_iterations
      = iters / 8 < LUKS_MIN_ITERATIONS ? LUKS_MIN_ITERATIONS : iters / 8;
  if (RAND_priv_bytes (mk, (int)p->key_bytes) != 1
      || RAND_bytes (h->mk_digest_salt, LUKS_SALT_SIZE) != 1
      || pbkdf2 (hash, mk, p->key_bytes, h->mk_digest_salt, LUKS_SALT_SIZE,
                 h->mk_digest_iterations, h->mk_digest, LUKS_DIGEST_SIZE)
             == -1)
    return fail (EIO, err, errlen, "random key or digest generation failed");
  return 0;
}

static int
write_header (const struct luks_header *h, luks_write_fn wr, void *opaque,
              char *err, size_t errlen)
{
  uint8_t raw[LUKS_HEADER_SIZE];

  luks_header_encode (h, raw);
  if (wr (opaque, raw, sizeof raw, 0) == -1)
    return fail (errno, err, errlen, "writing the LUKS header: %s",
                 strerror (errno));
  return 0;
}

int
luks_add_keyslot (struct luks_header *h, const uint8_t *mk, const uint8_t *pass,
                  size_t pass_len, int slot, uint32_t iterations,
                  luks_write_fn wr, void *opaque, int *slot_out, char *err,
                  size_t errlen)
{
  struct luks_keyslot *s;
  uint8_t derived[LUKS_MAX_KEY_BYTES];
  uint8_t *material;
  size_t disk_bytes;
  int r = -1;

  if (slot < 0)
    for (unsigned i = 0; i < LUKS_NUM_KEYS && slot < 0; i++)
      if (h->slots[i].active != LUKS_KEY_ENABLED)
        slot = (int)i;
  if (slot < 0 || slot >= LUKS_NUM_KEYS)
    return fail (ENOSPC, err, errlen, "no free LUKS keyslot (all 8 in use)");
  s = &h->slots[slot];
  if (s->active == LUKS_KEY_ENABLED)
    return fail (EEXIST, err, errlen, "LUKS keyslot %d is already in use",
                 slot);
  if (iterations < LUKS_MIN_ITERATIONS)
    iterations = LUKS_MIN_ITERATIONS;

  s->stripes = LUKS_STRIPES;
  disk_bytes = keyslot_disk_bytes (h, (unsigned)slot);
  material = calloc (1, disk_bytes);
  if (material == NULL)
    return fail (ENOMEM, err, errlen, "out of memory");
  s->iterations = iterations;
  if (RAND_bytes (s->salt, LUKS_SALT_SIZE) != 1
      || pbkdf2 (h->hash_spec, pass, pass_len, s->salt, LUKS_SALT_SIZE,
                 iterations, derived, h->key_bytes)
             == -1
      || luks_af_split (mk, material, h->key_bytes, s->stripes, h->hash_spec)
             == -1
      || xts_crypt_oneshot (derived, h->key_bytes, true, material, material,
                            disk_bytes, 0)
             == -1)
    {
      fail (EIO, err, errlen, "keyslot %d: key derivation failed", slot);
      goto out;
    }
  /* Material first, header last: a crash in between leaves the slot
   * disabled and the old header intact.
   */
  if (wr (opaque, material, disk_bytes,
          (uint64_t)s->key_material_offset * LUKS_SECTOR)
      == -1)
    {
      fail (errno, err, errlen, "writing keyslot %d material: %s", slot,
            strerror (errno));
      goto out;
    }
  s->active = LUKS_KEY_ENABLED;
  if (write_header (h, wr, opaque, err, errlen) == -1)
    {
      s->active = LUKS_KEY_DISABLED;
      goto out;
    }
  *slot_out = slot;
  r = 0;
out:
  OPENSSL_cleanse (derived, sizeof derived);
  OPENSSL_cleanse (material, disk_bytes);
  free (material);
  return r;
}

int
luks_remove_keyslot (struct luks_header *h, unsigned slot, luks_write_fn wr,
                     void *opaque, char *err, size_t errlen)
{
  size_t disk_bytes;
  uint8_t *noise;
  int r;

  if (slot >= LUKS_NUM_KEYS || h->slots[slot].active != LUKS_KEY_ENABLED)
    return fail (ENOENT, err, errlen, "LUKS keyslot %u is not active", slot);
  /* Disable first, then destroy the material: never a header pointing
   * at noise as if it were a key.
   */
  h->slots[slot].active = LUKS_KEY_DISABLED;
  if (write_header (h, wr, opaque, err, errlen) == -1)
    {
      h->slots[slot].active = LUKS_KEY_ENABLED;
      return -1;
    }
  disk_bytes = keyslot_disk_bytes (h, slot);
  noise = malloc (disk_bytes);
  if (noise == NULL)
    return fail (ENOMEM, err, errlen, "out of memory");
  r = RAND_bytes (noise, (int)disk_bytes) == 1 ? 0 : -1;
  if (r == 0
      && wr (opaque, noise, disk_bytes,
             (uint64_t)h->slots[slot].key_material_offset * LUKS_SECTOR)
             == -1)
    r = fail (errno, err, errlen, "wiping keyslot %u material: %s", slot,
              strerror (errno));
  else if (r == -1)
    fail (EIO, err, errlen, "random generator failed");
  h->slots[slot].iterations = 0;
  memset (h->slots[slot].salt, 0, LUKS_SALT_SIZE);
  if (r == 0)
    r = write_header (h, wr, opaque, err, errlen);
  free (noise);
  return r;
}

unsigned
luks_active_slots (const struct luks_header *h)
{
  unsigned n = 0;

  for (unsigned i = 0; i < LUKS_NUM_KEYS; i++)
    n += h->slots[i].active == LUKS_KEY_ENABLED;
  return n;
}

/* ---- image I/O over a file descriptor ---- */

int
luks_fd_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  int fd = *(int *)opaque;
  size_t done = 0;

  while (done < count)
    {
      ssize_t n = pread (fd, (char *)buf + done, count - done,
                         (off_t)(offset + done));
      if (n == -1 && errno == EINTR)
        continue;
      if (n == -1)
        return -1;
      if (n == 0)
        {
          errno = EIO; /* past the end: truncated image */
          return -1;
        }
      done += (size_t)n;
    }
  return 0;
}

/* Header writes (offset 0) are ordered: everything written before is
 * made durable first, and the header itself before returning.
 */
int
luks_fd_write (void *opaque, const void *buf, size_t count, uint64_t offset)
{
  int fd = *(int *)opaque;
  size_t done = 0;

  if (offset == 0 && fdatasync (fd) == -1)
    return -1;
  while (done < count)
    {
      ssize_t n = pwrite (fd, (const char *)buf + done, count - done,
                          (off_t)(offset + done));
      if (n == -1 && errno == EINTR)
        continue;
      if (n == -1)
        return -1;
      done += (size_t)n;
    }
  if (offset == 0 && fdatasync (fd) == -1)
    return -1;
  return 0;
}

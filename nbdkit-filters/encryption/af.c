/* vaio-crypt: the LUKS1 anti-forensic splitter (AFsplit / AFmerge).
 *
 * A key of `block` bytes is expanded to `stripes` blocks so that erasing
 * any part of the stored material destroys the key.  Definition (LUKS1
 * on-disk format spec, "AF-Splitter"): stripes-1 random blocks, each
 * XORed into an accumulator which is then diffused by the hash; the last
 * block is the accumulator XOR the key.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "luks.h"

/* H(be32(i) || chunk) for each digest-sized chunk of buf, in place; the
 * last chunk may be short and takes a truncated digest.
 */
static int
diffuse (uint8_t *buf, size_t size, const EVP_MD *md)
{
  size_t ds = (size_t)EVP_MD_get_size (md);
  uint8_t digest[EVP_MAX_MD_SIZE];
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  int ok = ctx != NULL;

  for (size_t i = 0; ok && i * ds < size; i++)
    {
      size_t n = size - i * ds < ds ? size - i * ds : ds;
      uint8_t be[4] = { (uint8_t)(i >> 24), (uint8_t)(i >> 16),
                        (uint8_t)(i >> 8), (uint8_t)i };

      ok = EVP_DigestInit_ex (ctx, md, NULL) == 1
           && EVP_DigestUpdate (ctx, be, 4) == 1
           && EVP_DigestUpdate (ctx, buf + i * ds, n) == 1
           && EVP_DigestFinal_ex (ctx, digest, NULL) == 1;
      if (ok)
        memcpy (buf + i * ds, digest, n);
    }
  EVP_MD_CTX_free (ctx);
  OPENSSL_cleanse (digest, sizeof digest);
  return ok ? 0 : -1;
}

static void
xor_into (uint8_t *dst, const uint8_t *src, size_t n)
{
  for (size_t i = 0; i < n; i++)
    dst[i] ^= src[i];
}

int
luks_af_split (const uint8_t *src, uint8_t *dst, size_t block, unsigned stripes,
               const char *hash)
{
  const EVP_MD *md = EVP_get_digestbyname (hash);
  uint8_t *acc;
  int r = -1;

  if (md == NULL || stripes == 0 || block == 0)
    {
      errno = EINVAL;
      return -1;
    }
  acc = calloc (1, block);
  if (acc == NULL)
    return -1;
  for (unsigned i = 0; i + 1 < stripes; i++)
    {
      if (RAND_bytes (dst + i * block, (int)block) != 1)
        goto out;
      xor_into (acc, dst + i * block, block);
      if (diffuse (acc, block, md) == -1)
        goto out;
    }
  memcpy (dst + (size_t)(stripes - 1) * block, acc, block);
  xor_into (dst + (size_t)(stripes - 1) * block, src, block);
  r = 0;
out:
  OPENSSL_cleanse (acc, block);
  free (acc);
  if (r == -1)
    errno = EIO;
  return r;
}

int
luks_af_merge (const uint8_t *src, uint8_t *dst, size_t block, unsigned stripes,
               const char *hash)
{
  const EVP_MD *md = EVP_get_digestbyname (hash);
  uint8_t *acc;
  int r = -1;

  if (md == NULL || stripes == 0 || block == 0)
    {
      errno = EINVAL;
      return -1;
    }
  acc = calloc (1, block);
  if (acc == NULL)
    return -1;
  for (unsigned i = 0; i + 1 < stripes; i++)
    {
      xor_into (acc, src + i * block, block);
      if (diffuse (acc, block, md) == -1)
        goto out;
    }
  memcpy (dst, src + (size_t)(stripes - 1) * block, block);
  xor_into (dst, acc, block);
  r = 0;
out:
  OPENSSL_cleanse (acc, block);
  free (acc);
  if (r == -1)
    errno = EIO;
  return r;
}

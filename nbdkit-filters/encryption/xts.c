/* vaio-crypt: aes-xts-plain64 sector loop and per-thread EVP contexts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "xts.h"

const EVP_CIPHER *
xts_cipher (size_t key_len)
{
  switch (key_len)
    {
    case 32:
      return EVP_aes_128_xts ();
    case 64:
      return EVP_aes_256_xts ();
    default:
      return NULL;
    }
}

static void
plain64_iv (uint64_t sector, uint8_t iv[16])
{
  memset (iv, 0, 16);
  for (unsigned i = 0; i < 8; i++)
    iv[i] = (uint8_t)(sector >> (8 * i));
}

int
xts_crypt_sectors (EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in,
                   size_t len, uint64_t first_sector)
{
  uint8_t iv[16];
  int outl;

  if (len % XTS_SECTOR != 0)
    {
      errno = EINVAL;
      return -1;
    }
  for (size_t done = 0; done < len; done += XTS_SECTOR)
    {
      plain64_iv (first_sector + done / XTS_SECTOR, iv);
      /* Only the IV changes: the key schedule stays in the context. */
      if (EVP_CipherInit_ex (ctx, NULL, NULL, NULL, iv, -1) != 1
          || EVP_CipherUpdate (ctx, out + done, &outl, in + done, XTS_SECTOR)
                 != 1
          || outl != XTS_SECTOR)
        {
          errno = EIO;
          return -1;
        }
    }
  return 0;
}

static EVP_CIPHER_CTX *
keyed_ctx (const EVP_CIPHER *cipher, const uint8_t *key, bool enc)
{
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();

  if (ctx == NULL)
    return NULL;
  if (EVP_CipherInit_ex (ctx, cipher, NULL, key, NULL, enc ? 1 : 0) != 1)
    {
      EVP_CIPHER_CTX_free (ctx);
      return NULL;
    }
  return ctx;
}

int
xts_crypt_oneshot (const uint8_t *key, size_t key_len, bool enc, uint8_t *out,
                   const uint8_t *in, size_t len, uint64_t first_sector)
{
  const EVP_CIPHER *cipher = xts_cipher (key_len);
  EVP_CIPHER_CTX *ctx;
  int r;

  if (cipher == NULL)
    {
      errno = EINVAL;
      return -1;
    }
  ctx = keyed_ctx (cipher, key, enc);
  if (ctx == NULL)
    {
      errno = EIO;
      return -1;
    }
  r = xts_crypt_sectors (ctx, out, in, len, first_sector);
  EVP_CIPHER_CTX_free (ctx);
  return r;
}

struct xts_thread_ctx
{
  EVP_CIPHER_CTX *enc;
  EVP_CIPHER_CTX *dec;
};

/* Runs when a thread that used the engine exits (nbdkit's worker threads
 * exit when their connection closes).
 */
static void
thread_ctx_free (void *p)
{
  struct xts_thread_ctx *t = p;

  EVP_CIPHER_CTX_free (t->enc);
  EVP_CIPHER_CTX_free (t->dec);
  free (t);
}

int
xts_engine_init (struct xts_engine *e, const uint8_t *key, size_t key_len)
{
  memset (e, 0, sizeof *e);
  e->cipher = xts_cipher (key_len);
  if (e->cipher == NULL)
    {
      errno = EINVAL;
      return -1;
    }
  memcpy (e->key, key, key_len);
  e->key_len = key_len;
  errno = pthread_key_create (&e->tls, thread_ctx_free);
  if (errno != 0)
    return -1;
  e->tls_created = true;
  return 0;
}

void
xts_engine_free (struct xts_engine *e)
{
  struct xts_thread_ctx *t;

  if (e->tls_created)
    {
      /* Other threads have exited by now; free the caller's own. */
      t = pthread_getspecific (e->tls);
      if (t != NULL)
        thread_ctx_free (t);
      pthread_key_delete (e->tls);
    }
  OPENSSL_cleanse (e->key, sizeof e->key);
  memset (e, 0, sizeof *e);
}

EVP_CIPHER_CTX *
xts_engine_ctx (struct xts_engine *e, bool enc)
{
  struct xts_thread_ctx *t = pthread_getspecific (e->tls);

  if (t == NULL)
    {
      t = calloc (1, sizeof *t);
      if (t == NULL)
        return NULL;
      t->enc = keyed_ctx (e->cipher, e->key, true);
      t->dec = keyed_ctx (e->cipher, e->key, false);
      if (t->enc == NULL || t->dec == NULL
          || pthread_setspecific (e->tls, t) != 0)
        {
          thread_ctx_free (t);
          return NULL;
        }
    }
  return enc ? t->enc : t->dec;
}

/* vaio-crypt: aes-xts-plain64 sector loop and per-thread EVP contexts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/provider.h>

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

/* ---- The engine ----
 *
 * Why the provider's own functions: LUKS1 sectors are 512 bytes, so the
 * tweak (IV) changes every 512 bytes.  OpenSSL 3.0's EVP_CipherInit_ex
 * asks the provider for the IV length through an OSSL_PARAM query on every
 * call (3.1 and later cache it), a large part of the cost of a sector
 * (test/encryption/xts-speed measures both paths).  The fetched cipher's
 * provider hands out its dispatch table through public API
 * (OSSL_PROVIDER_query_operation); its init and update functions are what EVP
 * calls underneath, so the same AES-NI XTS code runs, without the per-sector
 * query.  Anything unexpected (no provider, no unique match, a self-check
 * mismatch) keeps the EVP path.
 */

struct xts_thread_ctx
{
  struct xts_engine *e;
  EVP_CIPHER_CTX *evp[2]; /* [enc]: the EVP path */
  void *prov[2];          /* [enc]: the direct path */
};

static void
thread_ctx_free (void *p)
{
  struct xts_thread_ctx *t = p;

  for (int enc = 0; enc < 2; enc++)
    {
      EVP_CIPHER_CTX_free (t->evp[enc]);
      if (t->prov[enc])
        t->e->fns.freectx (t->prov[enc]);
    }
  free (t);
}

/* The first name of a provider algorithm entry ("AES-256-XTS:1.3..."). */
static bool
algorithm_is (const OSSL_ALGORITHM *a, const EVP_CIPHER *cipher)
{
  const char *colon = strchr (a->algorithm_names, ':');
  size_t n = colon ? (size_t)(colon - a->algorithm_names)
                   : strlen (a->algorithm_names);
  char name[64];

  if (n >= sizeof name)
    return false;
  memcpy (name, a->algorithm_names, n);
  name[n] = '\0';
  return EVP_CIPHER_is_a (cipher, name);
}

static bool
take_dispatch (const OSSL_DISPATCH *d, struct xts_provider_fns *f)
{
  for (; d->function_id != 0; d++)
    switch (d->function_id)
      {
      case OSSL_FUNC_CIPHER_NEWCTX:
        f->newctx = OSSL_FUNC_cipher_newctx (d);
        break;
      case OSSL_FUNC_CIPHER_FREECTX:
        f->freectx = OSSL_FUNC_cipher_freectx (d);
        break;
      case OSSL_FUNC_CIPHER_ENCRYPT_INIT:
        f->encrypt_init = OSSL_FUNC_cipher_encrypt_init (d);
        break;
      case OSSL_FUNC_CIPHER_DECRYPT_INIT:
        f->decrypt_init = OSSL_FUNC_cipher_decrypt_init (d);
        break;
      case OSSL_FUNC_CIPHER_UPDATE:
        f->update = OSSL_FUNC_cipher_update (d);
        break;
      }
  return f->newctx && f->freectx && f->encrypt_init && f->decrypt_init
         && f->update;
}

/* Find the fetched cipher's entry points in its provider; false if there
 * is not exactly one implementation of that name there.
 */
static bool
provider_lookup (const EVP_CIPHER *cipher, struct xts_provider_fns *out)
{
  const OSSL_PROVIDER *prov = EVP_CIPHER_get0_provider (cipher);
  const OSSL_ALGORITHM *algs;
  struct xts_provider_fns f = { 0 };
  int no_cache = 0, found = 0;

  if (prov == NULL)
    return false;
  algs = OSSL_PROVIDER_query_operation (prov, OSSL_OP_CIPHER, &no_cache);
  if (algs == NULL)
    return false;
  for (const OSSL_ALGORITHM *a = algs; a->algorithm_names != NULL; a++)
    if (algorithm_is (a, cipher) && found++ == 0
        && !take_dispatch (a->implementation, &f))
      found = 2; /* incomplete: do not use */
  OSSL_PROVIDER_unquery_operation (prov, OSSL_OP_CIPHER, algs);
  f.provctx = OSSL_PROVIDER_get0_provider_ctx (prov);
  if (found != 1)
    return false;
  *out = f;
  return true;
}

static void *
prov_keyed (const struct xts_engine *e, bool enc)
{
  void *c = e->fns.newctx (e->fns.provctx);

  if (c == NULL)
    return NULL;
  if ((enc ? e->fns.encrypt_init : e->fns.decrypt_init) (c, e->key, e->key_len,
                                                         NULL, 0, NULL)
      != 1)
    {
      e->fns.freectx (c);
      return NULL;
    }
  return c;
}

static int
prov_crypt_sectors (const struct xts_engine *e, void *c, bool enc, uint8_t *out,
                    const uint8_t *in, size_t len, uint64_t first_sector)
{
  OSSL_FUNC_cipher_encrypt_init_fn *init
      = enc ? e->fns.encrypt_init : e->fns.decrypt_init;
  uint8_t iv[16];
  size_t outl;

  for (size_t done = 0; done < len; done += XTS_SECTOR)
    {
      plain64_iv (first_sector + done / XTS_SECTOR, iv);
      if (init (c, NULL, 0, iv, sizeof iv, NULL) != 1
          || e->fns.update (c, out + done, &outl, XTS_SECTOR, in + done,
                            XTS_SECTOR)
                 != 1
          || outl != XTS_SECTOR)
        {
          errno = EIO;
          return -1;
        }
    }
  return 0;
}

/* The direct path must give what EVP gives, both ways, before it is
 * trusted with a disk.
 */
static bool
direct_self_check (const struct xts_engine *e)
{
  uint8_t in[2 * XTS_SECTOR], a[sizeof in], b[sizeof in];
  bool ok = false;
  void *c = NULL;
  EVP_CIPHER_CTX *ctx = NULL;

  for (size_t i = 0; i < sizeof in; i++)
    in[i] = (uint8_t)(i * 31 + 7);
  for (int enc = 1; enc >= 0; enc--)
    {
      c = prov_keyed (e, enc);
      ctx = keyed_ctx (e->cipher, e->key, enc);
      ok = c && ctx && prov_crypt_sectors (e, c, enc, a, in, sizeof in, 77) == 0
           && xts_crypt_sectors (ctx, b, in, sizeof in, 77) == 0
           && memcmp (a, b, sizeof a) == 0 && memcmp (a, in, sizeof a) != 0;
      if (c)
        e->fns.freectx (c);
      EVP_CIPHER_CTX_free (ctx);
      if (!ok)
        break;
    }
  OPENSSL_cleanse (a, sizeof a);
  OPENSSL_cleanse (b, sizeof b);
  return ok;
}

int
xts_engine_init (struct xts_engine *e, const uint8_t *key, size_t key_len)
{
  const EVP_CIPHER *legacy = xts_cipher (key_len);

  memset (e, 0, sizeof *e);
  if (legacy == NULL)
    {
      errno = EINVAL;
      return -1;
    }
  e->cipher = EVP_CIPHER_fetch (NULL, EVP_CIPHER_get0_name (legacy), NULL);
  if (e->cipher == NULL)
    {
      errno = EIO;
      return -1;
    }
  memcpy (e->key, key, key_len);
  e->key_len = key_len;
  e->direct = provider_lookup (e->cipher, &e->fns) && direct_self_check (e);
  errno = pthread_key_create (&e->tls, thread_ctx_free);
  if (errno != 0)
    {
      xts_engine_free (e);
      return -1;
    }
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
  EVP_CIPHER_free (e->cipher);
  OPENSSL_cleanse (e->key, sizeof e->key);
  memset (e, 0, sizeof *e);
}

static struct xts_thread_ctx *
thread_ctx (struct xts_engine *e)
{
  struct xts_thread_ctx *t = pthread_getspecific (e->tls);

  if (t == NULL)
    {
      t = calloc (1, sizeof *t);
      if (t == NULL)
        return NULL;
      t->e = e;
      if (pthread_setspecific (e->tls, t) != 0)
        {
          free (t);
          return NULL;
        }
    }
  return t;
}

int
xts_engine_crypt (struct xts_engine *e, bool enc, uint8_t *out,
                  const uint8_t *in, size_t len, uint64_t first_sector)
{
  struct xts_thread_ctx *t;

  if (len % XTS_SECTOR != 0)
    {
      errno = EINVAL;
      return -1;
    }
  t = thread_ctx (e);
  if (t == NULL)
    {
      errno = ENOMEM;
      return -1;
    }
  if (e->direct)
    {
      if (t->prov[enc] == NULL && (t->prov[enc] = prov_keyed (e, enc)) == NULL)
        {
          errno = EIO;
          return -1;
        }
      return prov_crypt_sectors (e, t->prov[enc], enc, out, in, len,
                                 first_sector);
    }
  if (t->evp[enc] == NULL
      && (t->evp[enc] = keyed_ctx (e->cipher, e->key, enc)) == NULL)
    {
      errno = EIO;
      return -1;
    }
  return xts_crypt_sectors (t->evp[enc], out, in, len, first_sector);
}

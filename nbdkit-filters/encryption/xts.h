/* vaio-crypt: aes-xts-plain64 over 512-byte sectors with OpenSSL EVP.
 *
 * plain64: the XTS tweak of a sector is its number (counted from the
 * start of the payload, or of the keyslot material) as a 64-bit
 * little-endian integer, zero-padded to 16 bytes.
 *
 * Two ways in:
 *  - xts_crypt_oneshot: a context built and freed per call (keyslots,
 *    the CLI, tests);
 *  - struct xts_engine: one key for the life of the filter, and per
 *    calling thread an encrypt and a decrypt context keyed once, so a
 *    request costs only an IV reset per sector, never a key schedule.
 *    The engine calls the provider's AES-XTS through its dispatch table
 *    where it can, EVP otherwise: same OpenSSL code, fewer layers.
 */
#ifndef VAIO_CRYPT_XTS_H
#define VAIO_CRYPT_XTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#define XTS_SECTOR 512

/* The EVP cipher for an XTS key of key_len bytes (32 or 64), or NULL. */
const EVP_CIPHER *xts_cipher (size_t key_len);

/* Encrypt (enc = true) or decrypt len bytes (a multiple of XTS_SECTOR)
 * from in to out (which may be the same buffer) with a context already
 * keyed for that direction; sectors numbered from first_sector.
 */
int xts_crypt_sectors (EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in,
                       size_t len, uint64_t first_sector);

int xts_crypt_oneshot (const uint8_t *key, size_t key_len, bool enc,
                       uint8_t *out, const uint8_t *in, size_t len,
                       uint64_t first_sector);

/* The cipher implementation's own entry points, looked up once through
 * the provider's public dispatch table (see xts.c for why).
 */
struct xts_provider_fns
{
  void *provctx;
  OSSL_FUNC_cipher_newctx_fn *newctx;
  OSSL_FUNC_cipher_freectx_fn *freectx;
  OSSL_FUNC_cipher_encrypt_init_fn *encrypt_init;
  OSSL_FUNC_cipher_decrypt_init_fn *decrypt_init;
  OSSL_FUNC_cipher_update_fn *update;
};

struct xts_engine
{
  EVP_CIPHER *cipher; /* fetched, so that it names its provider */
  uint8_t key[64];
  size_t key_len;
  bool direct; /* the provider's functions are used (else EVP's) */
  struct xts_provider_fns fns;
  pthread_key_t tls; /* struct xts_thread_ctx * of the calling thread */
  bool tls_created;
};

/* Copies the key; the engine must outlive every thread that uses it.
 * e->direct says which path was taken; a caller may clear it before the
 * first xts_engine_crypt to force the EVP path (the tests compare both).
 */
int xts_engine_init (struct xts_engine *e, const uint8_t *key, size_t key_len);
void xts_engine_free (struct xts_engine *e);

/* Encrypt or decrypt len bytes (a multiple of XTS_SECTOR) from in to out
 * (which may be the same buffer) with this thread's context for the
 * direction, keyed on the thread's first call.  -1 with errno on a
 * length that is not whole sectors (EINVAL), allocation failure (ENOMEM)
 * or an OpenSSL failure (EIO).
 */
int xts_engine_crypt (struct xts_engine *e, bool enc, uint8_t *out,
                      const uint8_t *in, size_t len, uint64_t first_sector);

#endif /* VAIO_CRYPT_XTS_H */

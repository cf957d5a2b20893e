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
 */
#ifndef VAIO_CRYPT_XTS_H
#define VAIO_CRYPT_XTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

struct xts_engine
{
  const EVP_CIPHER *cipher;
  uint8_t key[64];
  size_t key_len;
  pthread_key_t tls; /* struct xts_thread_ctx * of the calling thread */
  bool tls_created;
};

/* Copies the key; the engine must outlive every thread that uses it. */
int xts_engine_init (struct xts_engine *e, const uint8_t *key, size_t key_len);
void xts_engine_free (struct xts_engine *e);

/* This thread's context for the direction, keyed on first use; NULL on
 * allocation or OpenSSL failure.
 */
EVP_CIPHER_CTX *xts_engine_ctx (struct xts_engine *e, bool enc);

#endif /* VAIO_CRYPT_XTS_H */

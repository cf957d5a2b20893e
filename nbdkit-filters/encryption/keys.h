/* vaio-crypt: where keys come from.
 *
 * A LUKS keyslot opens with a byte string.  It can come from
 *  - a passphrase file: its contents, one trailing newline removed;
 *  - a key file: its exact bytes (like cryptsetup --key-file);
 *  - a file descriptor, read to EOF (passphrase or key rules as above);
 *  - a key store, standing in for VMware's KMS: a directory of key
 *    encryption keys (KEKs) named by id.  The keyslot secret of a disk is
 *    HMAC-SHA256(KEK, "vaio-crypt keyslot v1" || LUKS uuid), so the
 *    keyslot holds the disk's master key wrapped under the KEK; a shallow
 *    rekey adds a keyslot for the new KEK and removes the old one,
 *    without touching the data.
 *
 * KEK files (<dir>/<id>.kek, mode 0600, dir 0700) are ours, so they carry
 * a magic, a version and a CRC32:
 *   "VAIOKEK\0" | u32le version=1 | u32le key_len=32 | key[32] | u32le crc32
 *
 * Secrets are never logged: error messages name files, not contents.
 */
#ifndef VAIO_CRYPT_KEYS_H
#define VAIO_CRYPT_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEK_MAGIC     "VAIOKEK"
#define KEK_VERSION   1
#define KEK_BYTES     32
#define KEK_FILE_SIZE (8 + 4 + 4 + KEK_BYTES + 4)
#define SECRET_MAX    (8 * 1024 * 1024) /* cryptsetup's key file limit */

struct secret
{
  uint8_t *data;
  size_t len;
};

/* Read a secret from a path or an fd.  strip_newline: passphrase rules.
 * An empty secret is an error.  Messages name `what` (the parameter).
 */
int secret_read_file (const char *path, bool strip_newline, struct secret *s,
                      const char *what, char *err, size_t errlen);
int secret_read_fd (int fd, bool strip_newline, struct secret *s,
                    const char *what, char *err, size_t errlen);
void secret_free (struct secret *s);

/* A key id: 1-64 of [A-Za-z0-9._-], not starting with '.'. */
bool keystore_valid_id (const char *id);

/* Create a new random KEK <dir>/<id>.kek (dir created 0700 if missing).
 * Refuses to overwrite an existing key.
 */
int keystore_create (const char *dir, const char *id, char *err, size_t errlen);

/* Load and check a KEK: owner-only mode, magic, version, checksum. */
int keystore_load (const char *dir, const char *id, uint8_t kek[KEK_BYTES],
                   char *err, size_t errlen);

/* The keyslot secret of the LUKS image with this uuid under this KEK. */
int keystore_slot_secret (const uint8_t kek[KEK_BYTES], const char *uuid,
                          struct secret *s, char *err, size_t errlen);

/* Encode/decode the KEK file image (exposed for the unit tests). */
void kek_encode (const uint8_t kek[KEK_BYTES], uint8_t out[KEK_FILE_SIZE]);
int kek_decode (const uint8_t *buf, size_t len, uint8_t kek[KEK_BYTES],
                const char *path, char *err, size_t errlen);

#endif /* VAIO_CRYPT_KEYS_H */

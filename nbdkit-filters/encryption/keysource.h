/* vaio-crypt: one key source chosen from parameters, shared by the filter
 * (keys prefixed "crypt-") and the CLI (options prefixed "--", and
 * "--new-" for the key being added).
 *
 *   passphrase-file=PATH | key-file=PATH | passphrase-fd=N | key-fd=N |
 *   keystore=DIR + key-id=ID
 *
 * Exactly one source.  Secrets are read when the source is completed (an
 * fd can be read only once) and wiped by crypt_key_source_free.
 */
#ifndef VAIO_CRYPT_KEYSOURCE_H
#define VAIO_CRYPT_KEYSOURCE_H

#include <stddef.h>

#include "keys.h"

enum crypt_key_kind
{
  KEY_NONE,
  KEY_PASSPHRASE_FILE,
  KEY_KEY_FILE,
  KEY_PASSPHRASE_FD,
  KEY_KEY_FD,
  KEY_KEYSTORE,
};

struct crypt_key_source
{
  const char *prefix; /* for messages: "crypt-" or "--" */
  enum crypt_key_kind kind;
  const char *kind_param; /* the parameter that chose kind */
  const char *path;       /* file, or keystore dir (borrowed) */
  const char *key_id;     /* borrowed */
  int fd;
  struct secret secret; /* file / fd sources, after complete */
  uint8_t kek[KEK_BYTES];
  int have_kek;
  char name[300]; /* "crypt-passphrase-file=/x" etc., no secrets */
};

/* Offer name=value (name without prefix).  Returns 1 when it is a key
 * source parameter (value borrowed, must outlive the source), 0 when it
 * is not, -1 (message in err) when it conflicts or is malformed.
 */
int crypt_key_source_set (struct crypt_key_source *ks, const char *prefix,
                          const char *name, const char *value, char *err,
                          size_t errlen);

/* For the filter: key is the full "crypt-..." parameter. */
int crypt_key_source_config (struct crypt_key_source *ks, const char *key,
                             const char *value, char *err, size_t errlen);

/* Check there is exactly one source and read its secret or KEK. */
int crypt_key_source_complete (struct crypt_key_source *ks, char *err,
                               size_t errlen);

/* The bytes that open a keyslot of the LUKS image with this uuid. */
int crypt_key_source_secret (const struct crypt_key_source *ks,
                             const char *uuid, struct secret *out, char *err,
                             size_t errlen);

/* "crypt-passphrase-file=/path" or similar, for messages. */
const char *crypt_key_source_name (const struct crypt_key_source *ks);

int crypt_key_source_is_set (const struct crypt_key_source *ks);

void crypt_key_source_free (struct crypt_key_source *ks);

#endif /* VAIO_CRYPT_KEYSOURCE_H */

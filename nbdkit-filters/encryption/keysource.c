/* vaio-crypt: choosing and reading one key source. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keysource.h"

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

static const struct
{
  const char *name;
  enum crypt_key_kind kind;
} kinds[] = {
  { "passphrase-file", KEY_PASSPHRASE_FILE },
  { "key-file", KEY_KEY_FILE },
  { "passphrase-fd", KEY_PASSPHRASE_FD },
  { "key-fd", KEY_KEY_FD },
  { "keystore", KEY_KEYSTORE },
};

static int
parse_fd (const char *value, int *fd)
{
  char *end;
  long v;

  errno = 0;
  v = strtol (value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < 0 || v > 1 << 20)
    return -1;
  *fd = (int)v;
  return 0;
}

int
crypt_key_source_set (struct crypt_key_source *ks, const char *prefix,
                      const char *name, const char *value, char *err,
                      size_t errlen)
{
  ks->prefix = prefix;
  if (strcmp (name, "key-id") == 0)
    {
      if (ks->key_id != NULL)
        return fail (EINVAL, err, errlen, "%skey-id given twice", prefix);
      ks->key_id = value;
      return 1;
    }
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    {
      if (strcmp (name, kinds[i].name) != 0)
        continue;
      if (ks->kind != KEY_NONE)
        return fail (EINVAL, err, errlen,
                     "%s%s and %s%s: give only one key source", prefix,
                     ks->kind_param, prefix, name);
      ks->kind = kinds[i].kind;
      ks->kind_param = kinds[i].name;
      if (ks->kind == KEY_PASSPHRASE_FD || ks->kind == KEY_KEY_FD)
        {
          /* Not echoed: a value that is no number may be the secret
           * itself, given where its descriptor was meant to go.
           */
          if (parse_fd (value, &ks->fd) == -1)
            return fail (EINVAL, err, errlen,
                         "%s%s: not a file descriptor number (the value is "
                         "not shown)",
                         prefix, name);
        }
      else if (value[0] == '\0')
        return fail (EINVAL, err, errlen, "%s%s: empty path", prefix, name);
      else
        ks->path = value;
      return 1;
    }
  return 0;
}

int
crypt_key_source_config (struct crypt_key_source *ks, const char *key,
                         const char *value, char *err, size_t errlen)
{
  if (strncmp (key, "crypt-", 6) != 0)
    return 0;
  return crypt_key_source_set (ks, "crypt-", key + 6, value, err, errlen);
}

int
crypt_key_source_is_set (const struct crypt_key_source *ks)
{
  return ks->kind != KEY_NONE || ks->key_id != NULL;
}

int
crypt_key_source_complete (struct crypt_key_source *ks, char *err,
                           size_t errlen)
{
  const char *p = ks->prefix ? ks->prefix : "";
  char what[64];
  int r;

  if (ks->key_id != NULL && ks->kind != KEY_KEYSTORE)
    return fail (EINVAL, err, errlen, "%skey-id needs %skeystore=DIR", p, p);
  snprintf (what, sizeof what, "%s%s", p, ks->kind_param ? ks->kind_param : "");
  switch (ks->kind)
    {
    case KEY_NONE:
      return fail (EINVAL, err, errlen,
                   "no key given: use one of %spassphrase-file, %skey-file, "
                   "%spassphrase-fd, %skey-fd, or %skeystore with %skey-id",
                   p, p, p, p, p, p);
    case KEY_PASSPHRASE_FILE:
    case KEY_KEY_FILE:
      snprintf (ks->name, sizeof ks->name, "%s=%s", what, ks->path);
      return secret_read_file (ks->path, ks->kind == KEY_PASSPHRASE_FILE,
                               &ks->secret, what, err, errlen);
    case KEY_PASSPHRASE_FD:
    case KEY_KEY_FD:
      snprintf (ks->name, sizeof ks->name, "%s=%d", what, ks->fd);
      r = secret_read_fd (ks->fd, ks->kind == KEY_PASSPHRASE_FD, &ks->secret,
                          what, err, errlen);
      /* Read once, then closed: the fd is not left open for children. */
      close (ks->fd);
      return r;
    case KEY_KEYSTORE:
      if (ks->key_id == NULL)
        return fail (EINVAL, err, errlen, "%skeystore needs %skey-id=ID", p, p);
      snprintf (ks->name, sizeof ks->name, "%skeystore=%s key id '%s'", p,
                ks->path, ks->key_id);
      if (keystore_load (ks->path, ks->key_id, ks->kek, err, errlen) == -1)
        return -1;
      ks->have_kek = 1;
      return 0;
    }
  return fail (EINVAL, err, errlen, "bad key source");
}

int
crypt_key_source_secret (const struct crypt_key_source *ks, const char *uuid,
                         struct secret *out, char *err, size_t errlen)
{
  if (ks->have_kek)
    return keystore_slot_secret (ks->kek, uuid, out, err, errlen);
  if (ks->secret.data == NULL)
    return fail (EINVAL, err, errlen, "key source has no key loaded");
  out->data = malloc (ks->secret.len);
  if (out->data == NULL)
    return fail (ENOMEM, err, errlen, "out of memory");
  memcpy (out->data, ks->secret.data, ks->secret.len);
  out->len = ks->secret.len;
  return 0;
}

const char *
crypt_key_source_name (const struct crypt_key_source *ks)
{
  return ks->name[0] ? ks->name : "key";
}

void
crypt_key_source_free (struct crypt_key_source *ks)
{
  secret_free (&ks->secret);
  OPENSSL_cleanse (ks->kek, sizeof ks->kek);
  ks->have_kek = 0;
}

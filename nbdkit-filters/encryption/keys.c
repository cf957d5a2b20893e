/* vaio-crypt: key sources and the KEK key store. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "keys.h"
#include "le.h"

static const char slot_label[] = "vaio-crypt keyslot v1";

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

void
secret_free (struct secret *s)
{
  if (s->data)
    {
      OPENSSL_cleanse (s->data, s->len);
      free (s->data);
    }
  s->data = NULL;
  s->len = 0;
}

int
secret_read_fd (int fd, bool strip_newline, struct secret *s, const char *what,
                char *err, size_t errlen)
{
  size_t cap = 4096;
  ssize_t n;

  s->len = 0;
  s->data = malloc (cap);
  if (s->data == NULL)
    return fail (ENOMEM, err, errlen, "%s: out of memory", what);
  for (;;)
    {
      if (s->len == cap)
        {
          uint8_t *bigger;

          if (cap >= SECRET_MAX)
            {
              secret_free (s);
              return fail (EFBIG, err, errlen,
                           "%s: key is larger than %d "
                           "bytes",
                           what, SECRET_MAX);
            }
          /* Grow by copying so no stale copy of the key is left in freed
           * memory (realloc may move without wiping).
           */
          bigger = malloc (cap * 2);
          if (bigger == NULL)
            {
              secret_free (s);
              return fail (ENOMEM, err, errlen, "%s: out of memory", what);
            }
          memcpy (bigger, s->data, s->len);
          OPENSSL_cleanse (s->data, cap);
          free (s->data);
          s->data = bigger;
          cap *= 2;
        }
      n = read (fd, s->data + s->len, cap - s->len);
      if (n == -1 && errno == EINTR)
        continue;
      if (n == -1)
        {
          int saved = errno;
          secret_free (s);
          return fail (saved, err, errlen, "%s: read: %s", what,
                       strerror (saved));
        }
      if (n == 0)
        break;
      s->len += (size_t)n;
    }
  if (strip_newline && s->len > 0 && s->data[s->len - 1] == '\n')
    s->len--;
  if (s->len == 0)
    {
      secret_free (s);
      return fail (EINVAL, err, errlen, "%s: the key is empty", what);
    }
  return 0;
}

int
secret_read_file (const char *path, bool strip_newline, struct secret *s,
                  const char *what, char *err, size_t errlen)
{
  char inner[256];
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  int r;

  if (fd == -1)
    return fail (errno, err, errlen, "%s: %s: %s", what, path,
                 strerror (errno));
  r = secret_read_fd (fd, strip_newline, s, path, inner, sizeof inner);
  close (fd);
  if (r == -1)
    {
      int saved = errno;
      return fail (saved, err, errlen, "%s: %s", what, inner);
    }
  return 0;
}

bool
keystore_valid_id (const char *id)
{
  size_t n = strlen (id);

  if (n == 0 || n > 64 || id[0] == '.')
    return false;
  return strspn (id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789._-")
         == n;
}

void
kek_encode (const uint8_t kek[KEK_BYTES], uint8_t out[KEK_FILE_SIZE])
{
  memset (out, 0, KEK_FILE_SIZE);
  memcpy (out, KEK_MAGIC, sizeof KEK_MAGIC); /* with its NUL: 8 bytes */
  vaio_put_le32 (out + 8, KEK_VERSION);
  vaio_put_le32 (out + 12, KEK_BYTES);
  memcpy (out + 16, kek, KEK_BYTES);
  vaio_put_le32 (out + 16 + KEK_BYTES,
                 (uint32_t)crc32 (0, out, 16 + KEK_BYTES));
}

int
kek_decode (const uint8_t *buf, size_t len, uint8_t kek[KEK_BYTES],
            const char *path, char *err, size_t errlen)
{
  if (len != KEK_FILE_SIZE || memcmp (buf, KEK_MAGIC, sizeof KEK_MAGIC) != 0)
    return fail (EINVAL, err, errlen, "%s: not a vaio-crypt key file", path);
  if (vaio_get_le32 (buf + 8) != KEK_VERSION)
    return fail (ENOTSUP, err, errlen,
                 "%s: key file version %u, this vaio-crypt reads %u", path,
                 vaio_get_le32 (buf + 8), KEK_VERSION);
  if (vaio_get_le32 (buf + 12) != KEK_BYTES
      || vaio_get_le32 (buf + 16 + KEK_BYTES)
             != (uint32_t)crc32 (0, buf, 16 + KEK_BYTES))
    return fail (EINVAL, err, errlen,
                 "%s: key file checksum mismatch "
                 "(corrupt key file)",
                 path);
  memcpy (kek, buf + 16, KEK_BYTES);
  return 0;
}

static int
kek_path (char *path, size_t len, const char *dir, const char *id, char *err,
          size_t errlen)
{
  if (!keystore_valid_id (id))
    return fail (EINVAL, err, errlen,
                 "key id '%s' is invalid (1-64 of A-Z a-z 0-9 . _ -, not "
                 "starting with '.')",
                 id);
  if ((size_t)snprintf (path, len, "%s/%s.kek", dir, id) >= len)
    return fail (ENAMETOOLONG, err, errlen, "key store path too long");
  return 0;
}

/* Someone else able to write the key store directory could put a key
 * of theirs under an id before it is created, or swap one: the
 * directory must belong to this user (or root) and be writable by no
 * one else.
 */
static int
trusted_dir (const char *dir, char *err, size_t errlen)
{
  struct stat st;

  if (stat (dir, &st) == -1)
    return fail (errno, err, errlen, "key store: %s: %s", dir,
                 strerror (errno));
  if (!S_ISDIR (st.st_mode))
    return fail (ENOTDIR, err, errlen, "key store: %s is not a directory", dir);
  if (st.st_uid != geteuid () && st.st_uid != 0)
    return fail (EPERM, err, errlen,
                 "key store: directory %s belongs to uid %u, not to this "
                 "user or root",
                 dir, (unsigned)st.st_uid);
  if (st.st_mode & 022)
    return fail (EPERM, err, errlen,
                 "key store: directory %s is writable by group or others "
                 "(mode %04o): chmod 700 it",
                 dir, (unsigned)(st.st_mode & 07777));
  return 0;
}

int
keystore_create (const char *dir, const char *id, char *err, size_t errlen)
{
  char path[PATH_MAX];
  uint8_t kek[KEK_BYTES], file[KEK_FILE_SIZE];
  int fd, r = 0;

  if (kek_path (path, sizeof path, dir, id, err, errlen) == -1)
    return -1;
  if (mkdir (dir, 0700) == -1 && errno != EEXIST)
    return fail (errno, err, errlen, "key store %s: %s", dir, strerror (errno));
  if (trusted_dir (dir, err, errlen) == -1)
    return -1;
  if (RAND_priv_bytes (kek, sizeof kek) != 1)
    return fail (EIO, err, errlen, "random generator failed");
  kek_encode (kek, file);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd == -1)
    r = fail (errno, err, errlen, "%s: %s", path,
              errno == EEXIST ? "key id already exists" : strerror (errno));
  else if (write (fd, file, sizeof file) != (ssize_t)sizeof file
           || fsync (fd) == -1)
    {
      r = fail (errno ? errno : EIO, err, errlen, "%s: write: %s", path,
                strerror (errno));
      unlink (path);
    }
  if (fd != -1)
    close (fd);
  OPENSSL_cleanse (kek, sizeof kek);
  OPENSSL_cleanse (file, sizeof file);
  return r;
}

int
keystore_load (const char *dir, const char *id, uint8_t kek[KEK_BYTES],
               char *err, size_t errlen)
{
  char path[PATH_MAX];
  uint8_t file[KEK_FILE_SIZE + 1];
  struct stat st;
  ssize_t n;
  int fd, r;

  if (kek_path (path, sizeof path, dir, id, err, errlen) == -1)
    return -1;
  if (trusted_dir (dir, err, errlen) == -1)
    return -1;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return fail (errno, err, errlen, "key store: %s: %s", path,
                 errno == ENOENT ? "no key with this id" : strerror (errno));
  if (fstat (fd, &st) == -1 || (st.st_mode & 077) != 0)
    {
      close (fd);
      return fail (EPERM, err, errlen,
                   "key store: %s is accessible by group or others "
                   "(mode %04o): chmod 600 it",
                   path, (unsigned)(st.st_mode & 07777));
    }
  if (st.st_uid != geteuid () && st.st_uid != 0)
    {
      close (fd);
      return fail (EPERM, err, errlen,
                   "key store: %s belongs to uid %u, not to this user or "
                   "root",
                   path, (unsigned)st.st_uid);
    }
  n = read (fd, file, sizeof file);
  close (fd);
  r = kek_decode (file, n < 0 ? 0 : (size_t)n, kek, path, err, errlen);
  OPENSSL_cleanse (file, sizeof file);
  return r;
}

int
keystore_slot_secret (const uint8_t kek[KEK_BYTES], const char *uuid,
                      struct secret *s, char *err, size_t errlen)
{
  unsigned int len = 0;
  size_t ulen = strlen (uuid);
  uint8_t *msg = malloc (sizeof slot_label + ulen);

  s->data = malloc (EVP_MAX_MD_SIZE);
  if (msg == NULL || s->data == NULL)
    {
      free (msg);
      secret_free (s);
      return fail (ENOMEM, err, errlen, "out of memory");
    }
  /* The label including its NUL separates it from the uuid. */
  memcpy (msg, slot_label, sizeof slot_label);
  memcpy (msg + sizeof slot_label, uuid, ulen);
  if (HMAC (EVP_sha256 (), kek, KEK_BYTES, msg, sizeof slot_label + ulen,
            s->data, &len)
      == NULL)
    {
      free (msg);
      secret_free (s);
      return fail (EIO, err, errlen, "HMAC failed");
    }
  free (msg);
  s->len = len;
  return 0;
}

/* vaio-nbd unit tests: shared helpers, see testutil.h. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

char *
tu_fixture (const char *rel)
{
  const char *src = getenv ("VAIO_SRC");
  char *p;

  ck_assert_msg (src != NULL, "VAIO_SRC is not set (run through meson test)");
  ck_assert_int_ne (asprintf (&p, "%s/test/unit/configs/%s", src, rel), -1);
  return p;
}

char *
tu_mkdtemp (void)
{
  const char *tmp = getenv ("TMPDIR");
  char *p, *real;

  ck_assert_int_ne (
      asprintf (&p, "%s/vaio-unit-XXXXXX", tmp && *tmp ? tmp : "/tmp"), -1);
  ck_assert_msg (mkdtemp (p) != NULL, "mkdtemp: %s", strerror (errno));
  /* Canonical, so it matches the paths the library resolves. */
  real = realpath (p, NULL);
  ck_assert_ptr_nonnull (real);
  free (p);
  return real;
}

static int
remove_one (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove (path);
}

void
tu_rmrf (const char *dir)
{
  nftw (dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *
tu_read_file (const char *path)
{
  FILE *fp = fopen (path, "re");
  char *buf = NULL;
  size_t len = 0;
  FILE *mem;
  int c;

  if (fp == NULL)
    return NULL;
  mem = open_memstream (&buf, &len);
  ck_assert_ptr_nonnull (mem);
  while ((c = getc (fp)) != EOF)
    putc (c, mem);
  fclose (fp);
  fclose (mem);
  return buf;
}

char *
tu_write_file (const char *dir, const char *name, const char *text, mode_t mode)
{
  char *path;
  size_t len = strlen (text);
  int fd;

  ck_assert_int_ne (asprintf (&path, "%s/%s", dir, name), -1);
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  ck_assert_msg (fd != -1, "%s: %s", path, strerror (errno));
  ck_assert_int_eq (write (fd, text, len), (ssize_t)len);
  ck_assert_int_eq (fchmod (fd, mode), 0); /* umask must not change it */
  close (fd);
  return path;
}

char *
tu_replace (const char *s, const char *from, const char *to)
{
  size_t flen = strlen (from);
  char *out = NULL;
  size_t len = 0;
  FILE *mem = open_memstream (&out, &len);
  const char *hit;

  ck_assert_ptr_nonnull (mem);
  while (flen > 0 && (hit = strstr (s, from)) != NULL)
    {
      fwrite (s, 1, (size_t)(hit - s), mem);
      fputs (to, mem);
      s = hit + flen;
    }
  fputs (s, mem);
  fclose (mem);
  return out;
}

/* vaio-nbd unit tests: helpers shared by the test programs.  Fixtures are
 * found through $VAIO_SRC (set by meson's test_env), never through the
 * current directory; scratch space comes from mkdtemp.
 */
#ifndef VAIO_TESTUTIL_H
#define VAIO_TESTUTIL_H

#include <sys/types.h>

/* $VAIO_SRC/test/unit/configs/<rel>; aborts the test if VAIO_SRC is unset. */
char *tu_fixture (const char *rel);

/* A fresh private directory under $TMPDIR (or /tmp), and its removal. */
char *tu_mkdtemp (void);
void tu_rmrf (const char *dir);

/* Whole file as a NUL-terminated string, NULL if it cannot be read. */
char *tu_read_file (const char *path);

/* Write text to dir/name with the given mode; returns the new path. */
char *tu_write_file (const char *dir, const char *name, const char *text,
                     mode_t mode);

/* s with every occurrence of from replaced by to (a new string). */
char *tu_replace (const char *s, const char *from, const char *to);

#endif

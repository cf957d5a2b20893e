/* vaio-nbd: make a directory entry durable (see dirsync.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirsync.h"

int
vaio_fsync_parent_dir (const char *path)
{
  char *copy = strdup (path);
  int fd, r, saved;

  if (copy == NULL)
    return -1;
  fd = open (dirname (copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free (copy);
  if (fd == -1)
    return -1;
  r = fsync (fd);
  saved = errno;
  close (fd);
  errno = saved;
  return r;
}

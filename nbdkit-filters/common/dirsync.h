/* vaio-nbd: make a directory entry durable.  Shared by the filters (a
 * journal renamed into place) and vaioctl (an image swapped by rename).
 */
#ifndef VAIO_DIRSYNC_H
#define VAIO_DIRSYNC_H

/* fsync the directory that holds path, so that a file created or renamed
 * there survives a crash.  Returns 0, or -1 with errno set.
 */
int vaio_fsync_parent_dir (const char *path);

#endif

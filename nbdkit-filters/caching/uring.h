/* vaio-cache: cache-device I/O through liburing, one ring per thread.
 *
 * Each thread (nbdkit worker or destager) gets its own small ring and an
 * aligned bounce buffer on first use; both are freed when the thread
 * exits.  No ring is shared, so submission needs no lock.
 */
#ifndef VAIO_CACHE_URING_H
#define VAIO_CACHE_URING_H

#include <stddef.h>
#include <stdint.h>

#define URING_ALIGN 4096

/* Set up the thread key; bounce_size is the bounce buffer per thread. */
int uring_global_init (size_t bounce_size);
void uring_global_fini (void);

/* The calling thread's bounce buffer (URING_ALIGN aligned), or NULL with
 * errno set if the thread's ring could not be created.
 */
void *uring_bounce (void);

/* Full-length read/write/fdatasync.  Return 0 or a positive errno. */
int uring_pread (int fd, void *buf, size_t len, uint64_t off);
int uring_pwrite (int fd, const void *buf, size_t len, uint64_t off);
int uring_fdatasync (int fd);

#endif /* VAIO_CACHE_URING_H */

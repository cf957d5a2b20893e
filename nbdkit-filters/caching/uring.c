/* vaio-cache: per-thread io_uring rings, see uring.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <liburing.h>

#include "uring.h"

#define RING_DEPTH 8

struct thread_ring
{
  struct io_uring ring;
  void *bounce;
};

/* Set once in uring_global_init before any I/O thread runs; read-only
 * afterwards.
 */
static pthread_key_t ring_key;
static size_t bounce_bytes;
static int key_created;

static void
ring_destroy (void *p)
{
  struct thread_ring *t = p;

  io_uring_queue_exit (&t->ring);
  free (t->bounce);
  free (t);
}

int
uring_global_init (size_t bounce_size)
{
  int r;

  bounce_bytes = bounce_size;
  if (key_created)
    return 0;
  r = pthread_key_create (&ring_key, ring_destroy);
  if (r != 0)
    return r;
  key_created = 1;
  return 0;
}

void
uring_global_fini (void)
{
  struct thread_ring *t;

  if (!key_created)
    return;
  /* The calling thread's own ring; other threads freed theirs at exit. */
  t = pthread_getspecific (ring_key);
  if (t)
    {
      pthread_setspecific (ring_key, NULL);
      ring_destroy (t);
    }
  pthread_key_delete (ring_key);
  key_created = 0;
}

static struct thread_ring *
thread_ring (void)
{
  struct thread_ring *t = pthread_getspecific (ring_key);
  int r;

  if (t)
    return t;
  t = calloc (1, sizeof *t);
  if (t == NULL)
    return NULL;
  r = io_uring_queue_init (RING_DEPTH, &t->ring, 0);
  if (r < 0)
    {
      free (t);
      errno = -r;
      return NULL;
    }
  if (posix_memalign (&t->bounce, URING_ALIGN, bounce_bytes) != 0)
    {
      io_uring_queue_exit (&t->ring);
      free (t);
      errno = ENOMEM;
      return NULL;
    }
  pthread_setspecific (ring_key, t);
  return t;
}

void *
uring_bounce (void)
{
  struct thread_ring *t = thread_ring ();

  return t ? t->bounce : NULL;
}

enum op
{
  OP_READ,
  OP_WRITE,
  OP_FSYNC
};

/* Submit one operation and wait for it.  Returns bytes done, or -errno. */
static int
one_op (struct thread_ring *t, enum op op, int fd, void *buf, size_t len,
        uint64_t off)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe (&t->ring);
  struct io_uring_cqe *cqe;
  int r;

  if (sqe == NULL)
    return -EBUSY;
  switch (op)
    {
    case OP_READ:
      io_uring_prep_read (sqe, fd, buf, (unsigned)len, off);
      break;
    case OP_WRITE:
      io_uring_prep_write (sqe, fd, buf, (unsigned)len, off);
      break;
    case OP_FSYNC:
      io_uring_prep_fsync (sqe, fd, IORING_FSYNC_DATASYNC);
      break;
    }
  do
    r = io_uring_submit_and_wait (&t->ring, 1);
  while (r == -EINTR);
  if (r < 0)
    return r;
  do
    r = io_uring_wait_cqe (&t->ring, &cqe);
  while (r == -EINTR);
  if (r < 0)
    return r;
  r = cqe->res;
  io_uring_cqe_seen (&t->ring, cqe);
  return r;
}

static int
rw_full (enum op op, int fd, void *buf, size_t len, uint64_t off)
{
  struct thread_ring *t = thread_ring ();
  char *p = buf;

  if (t == NULL)
    return errno;
  while (len > 0)
    {
      int r = one_op (t, op, fd, p, len, off);

      if (r == -EAGAIN || r == -EINTR)
        continue;
      if (r < 0)
        return -r;
      if (r == 0)
        return op == OP_READ ? EIO : ENOSPC; /* short file / device */
      p += r;
      off += (uint64_t)r;
      len -= (size_t)r;
    }
  return 0;
}

int
uring_pread (int fd, void *buf, size_t len, uint64_t off)
{
  return rw_full (OP_READ, fd, buf, len, off);
}

int
uring_pwrite (int fd, const void *buf, size_t len, uint64_t off)
{
  return rw_full (OP_WRITE, fd, (void *)buf, len, off);
}

int
uring_fdatasync (int fd)
{
  struct thread_ring *t = thread_ring ();
  int r;

  if (t == NULL)
    return errno;
  r = one_op (t, OP_FSYNC, fd, NULL, 0, 0);
  return r < 0 ? -r : 0;
}

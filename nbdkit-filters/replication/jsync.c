/* vaio-replication: the journal sync thread.
 *
 * A checkpoint moves the journal tail and must then make the journal
 * header durable (fdatasync).  That call writes back every dirty page of
 * the journal, which after a burst of writes can take seconds; run in the
 * shipper it stopped shipping for as long, so the replica fell behind
 * exactly when it had most to catch up.  The shipper hands the call to
 * this thread and goes on; it starts no new checkpoint until the sync is
 * over (jsync_take_done), so at most one is outstanding.
 */
#include <errno.h>
#include <stdbool.h>

#include "repl.h"

/* jsync_lock guards requested, done and stopping; jsync_cond signals a
 * request or the stop.
 */
static pthread_mutex_t jsync_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jsync_cond = PTHREAD_COND_INITIALIZER;
static bool requested, done, stopping;
/* Only jsync_start and jsync_stop touch these (the shipper's start and
 * stop, one thread at a time).
 */
static pthread_t thread;
static bool started;

static void *
jsync_main (void *arg)
{
  pthread_mutex_lock (&jsync_lock);
  for (;;)
    {
      while (!requested && !stopping)
        pthread_cond_wait (&jsync_cond, &jsync_lock);
      /* A pending request is served even when stopping: the last tail
       * a clean shutdown wrote must reach the disk.
       */
      if (!requested)
        break;
      requested = false;
      pthread_mutex_unlock (&jsync_lock);
      if (jrnl_sync (repl.jrnl) == -1)
        nbdkit_error ("vaio-replication: %s: fdatasync: %m", repl.jrnl->path);
      pthread_mutex_lock (&jsync_lock);
      done = true;
      state_wake_shipper ();
    }
  pthread_mutex_unlock (&jsync_lock);
  return arg;
}

int
jsync_start (void)
{
  int r;

  stopping = requested = done = false;
  r = pthread_create (&thread, NULL, jsync_main, NULL);
  if (r != 0)
    {
      errno = r;
      nbdkit_error ("vaio-replication: starting the journal sync thread: %m");
      return -1;
    }
  started = true;
  return 0;
}

void
jsync_request (void)
{
  pthread_mutex_lock (&jsync_lock);
  requested = true;
  done = false;
  pthread_cond_signal (&jsync_cond);
  pthread_mutex_unlock (&jsync_lock);
}

bool
jsync_take_done (void)
{
  bool r;

  pthread_mutex_lock (&jsync_lock);
  r = done;
  done = false;
  pthread_mutex_unlock (&jsync_lock);
  return r;
}

void
jsync_stop (void)
{
  if (!started)
    return;
  pthread_mutex_lock (&jsync_lock);
  stopping = true;
  pthread_cond_signal (&jsync_cond);
  pthread_mutex_unlock (&jsync_lock);
  pthread_join (thread, NULL);
  started = false;
}

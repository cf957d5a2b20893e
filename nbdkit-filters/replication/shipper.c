/* vaio-replication: the shipping thread.
 *
 * One thread runs one libnbd connection to the replica and keeps up to
 * repl-max-inflight commands in flight with the asynchronous API.  It
 * sends journal entries in sequence order; an entry goes out only when
 * every entry up to its barrier (all that had completed on the source
 * when it arrived) has been acknowledged by the replica, so the replica
 * always shows a state the source went through, and overlapping writes
 * are never in flight together.  Every repl-checkpoint it flushes the
 * replica and moves the journal tail, freeing journal space; the journal
 * sync thread (jsync.c) makes the new tail durable meanwhile.
 *
 * In sync mode a writer may drive the connection itself (shipper_send_now,
 * shipper_wait_acked): it sends its record and polls for the replica's
 * answer in its own thread, sparing the two thread wake-ups of a hand-off
 * to the shipper and back, which cost more than the replica's own round
 * trip on a small VM.  ship_lock makes it one driver at a time.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libnbd.h>

#include "repl.h"

#define RECONNECT_NS (1000ull * 1000000ull)
#define CONNECT_MS   5000
#define DRAIN_NS     (60ull * 1000000000ull)
#define POLL_MS      50
#define PUBLISH_NS   (100ull * 1000000ull)
/* Entries taken, and acknowledgements applied, per lock round trip. */
#define BATCH 64

/* Guards everything below and every libnbd call on sc.nbd.  The shipper
 * thread holds it except while it sleeps in poll; a sync writer holds it
 * while it drives the connection.  Taken before repl.lock, never after.
 */
static pthread_mutex_t ship_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ship_conn sc;
/* Counts the times libnbd was told of socket events (see wait_events). */
static uint64_t conn_epoch;
/* Set while the shipper thread waits for ship_lock: writers then leave
 * the connection to it, so that checkpoints (which free journal space)
 * are not starved by a stream of writers.  Atomic, no lock.
 */
static bool shipper_waiting;
static struct resync *rs;
static bool ckpt_inflight;
static bool tail_syncing; /* jsync has the last checkpoint's fdatasync */
static uint64_t last_ckpt_ns;
/* Replica acknowledgements not yet applied to the queue (the libnbd
 * callbacks only collect them; apply_acks takes the lock once).
 */
static uint64_t acks[BATCH];
static unsigned n_acks;

enum cmd_kind
{
  CMD_ENTRY,
  CMD_CKPT,
};

struct cmd
{
  enum cmd_kind kind;
  uint64_t gen;
  uint64_t seq; /* CMD_ENTRY */
  uint64_t ckpt_pos, ckpt_seq;
  void *buf;
  bool own_buf; /* buf is ours to free (not the journal mapping) */
};

static void
cmd_free (void *user_data)
{
  struct cmd *c = user_data;

  if (c->own_buf)
    free (c->buf);
  free (c);
}

static void
apply_acks (void)
{
  uint64_t now = vaio_stats_now_ns (), records = 0, bytes = 0;
  struct repl_entry *e;

  if (n_acks == 0)
    return;
  pthread_mutex_lock (&repl.lock);
  for (unsigned i = 0; i < n_acks; i++)
    {
      e = state_entry_locked (acks[i]);
      if (e == NULL || e->state != E_SENT)
        continue;
      e->state = E_ACKED;
      lag_record_locked (now - e->t_mono_ns);
      records++;
      bytes += e->length;
    }
  state_pop_acked_locked ();
  /* Only sync writers wait for acknowledgements. */
  if (repl.cond_waiters > 0)
    pthread_cond_broadcast (&repl.cond);
  pthread_mutex_unlock (&repl.lock);
  n_acks = 0;
  vaio_stats_add (repl.stats, RC_SHIPPED_RECORDS, records);
  vaio_stats_add (repl.stats, RC_SHIPPED_BYTES, bytes);
}

static void
ack_entry (uint64_t seq)
{
  if (n_acks == BATCH)
    apply_acks ();
  acks[n_acks++] = seq;
}

static int
entry_done (void *user_data, int *error)
{
  struct cmd *c = user_data;

  if (c->gen != sc.gen)
    return 1;
  sc.inflight--;
  sc.entry_inflight--;
  if (*error != 0)
    {
      nbdkit_debug ("vaio-replication: replica write failed: %s",
                    strerror (*error));
      sc.broken = true;
      return 1;
    }
  ack_entry (c->seq);
  return 1;
}

/* Read the source's current bytes for an entry whose source operation
 * failed: the replica must match whatever the source now holds.
 */
static void *
source_bytes (const struct repl_entry *e)
{
  void *buf = malloc (e->length ? e->length : 1);
  int err = 0;

  if (buf == NULL)
    return NULL;
  if (repl.shared->pread (repl.shared, buf, e->length, e->offset, 0, &err)
      == -1)
    {
      free (buf);
      return NULL;
    }
  return buf;
}

/* The bytes to send for an entry: straight from the journal mapping
 * when there is one (the record is complete, and its space is not reused
 * before the replica acknowledged it and the tail moved), else a copy.
 */
static void *
entry_bytes (const struct repl_entry *e, bool *own)
{
  void *buf;

  *own = true;
  if (e->failed)
    return source_bytes (e);
  if (e->type != JRNL_WRITE)
    return calloc (1, e->length ? e->length : 1);
  buf = (void *)jrnl_data_ptr (repl.jrnl, e->pos);
  if (buf != NULL)
    {
      *own = false;
      return buf;
    }
  buf = malloc (e->length ? e->length : 1);
  if (buf != NULL && jrnl_read_data (repl.jrnl, e->pos, buf, e->length) == -1)
    {
      free (buf);
      return NULL;
    }
  return buf;
}

/* The entry cannot be sent (no memory, unreadable source): let the
 * bitmap carry its range instead.
 */
static void
entry_to_bitmap (const struct repl_entry *e)
{
  pthread_mutex_lock (&repl.lock);
  bmap_mark (repl.bmap, e->offset, e->length);
  state_go_tracking_locked ("a journal entry could not be read");
  pthread_mutex_unlock (&repl.lock);
}

static void
issue_entry (const struct repl_entry *e)
{
  struct cmd *c = calloc (1, sizeof *c);
  nbd_completion_callback cb
      = { .callback = entry_done, .user_data = c, .free = cmd_free };
  uint32_t flags = e->fua && sc.can_fua ? LIBNBD_CMD_FLAG_FUA : 0;
  int64_t r;

  if (c == NULL)
    {
      entry_to_bitmap (e);
      return;
    }
  c->kind = CMD_ENTRY;
  c->gen = sc.gen;
  c->seq = e->seq;
  if (e->type == JRNL_FLUSH)
    {
      if (!sc.can_flush)
        {
          free (c);
          ack_entry (e->seq);
          return;
        }
      r = nbd_aio_flush (sc.nbd, cb, 0);
    }
  else if ((e->type == JRNL_ZERO || e->type == JRNL_TRIM) && !e->failed
           && sc.can_zero)
    r = nbd_aio_zero (sc.nbd, e->length, e->offset, cb, flags);
  else
    {
      c->buf = entry_bytes (e, &c->own_buf);
      if (c->buf == NULL)
        {
          free (c);
          entry_to_bitmap (e);
          return;
        }
      r = nbd_aio_pwrite (sc.nbd, c->buf, e->length, e->offset, cb, flags);
    }
  if (r == -1)
    {
      nbdkit_debug ("vaio-replication: sending to replica: %s",
                    nbd_get_error ());
      sc.broken = true;
      return;
    }
  sc.inflight++;
  sc.entry_inflight++;
}

/* The last entry counted in barrier_waits: one that stays blocked over
 * several looks is counted once.  Guarded by ship_lock.
 */
static uint64_t last_barrier_wait;

/* Take up to n entries that may go now, in sequence order.
 *
 * An entry that arrived after an earlier one completed on the source
 * waits until the replica acknowledged that one (its barrier): in flight
 * together, the replica could apply them in either order.  Once the
 * replica lags, every entry in the backlog followed the one before it, so
 * each costs a whole replica round trip; barrier_waits counts them.
 */
static unsigned
take_entries (struct repl_entry *out, unsigned n)
{
  struct repl_entry *e;
  unsigned taken = 0;
  bool waits = false;

  pthread_mutex_lock (&repl.lock);
  while (taken < n && repl.track == TRACK_JOURNAL
         && (e = state_entry_locked (repl.ship_seq)) != NULL
         && e->state == E_READY)
    {
      if (e->barrier >= repl.base_seq)
        {
          waits = e->seq != last_barrier_wait;
          last_barrier_wait = e->seq;
          break;
        }
      e->state = E_SENT;
      out[taken++] = *e;
      repl.ship_seq++;
    }
  pthread_mutex_unlock (&repl.lock);
  if (waits)
    vaio_stats_add (repl.stats, RC_BARRIER_WAITS, 1);
  return taken;
}

/* Send every entry that may go now, in sequence order. */
static void
send_entries (void)
{
  struct repl_entry batch[BATCH];

  while (!sc.broken && sc.inflight < (int)repl.max_inflight)
    {
      unsigned room = repl.max_inflight - (unsigned)sc.inflight;
      unsigned n = take_entries (batch, room < BATCH ? room : BATCH);

      if (n == 0)
        return;
      for (unsigned i = 0; i < n; i++)
        issue_entry (&batch[i]);
      apply_acks (); /* flushes a replica without flush support acks */
    }
}

/* ---- Checkpoints: replica flush, then the journal tail moves ---- */

static void
commit_tail (uint64_t pos, uint64_t seq)
{
  char err[512];
  int r = 0;

  pthread_mutex_lock (&repl.lock);
  /* A journal reset since the checkpoint started moved the tail past it. */
  if (seq > repl.jrnl->tail_seq)
    r = jrnl_set_tail (repl.jrnl, pos, seq, false, err, sizeof err);
  pthread_mutex_unlock (&repl.lock);
  last_ckpt_ns = vaio_stats_now_ns ();
  if (r == -1)
    {
      nbdkit_error ("vaio-replication: %s", err);
      return;
    }
  tail_syncing = true;
  jsync_request ();
}

static int
ckpt_done (void *user_data, int *error)
{
  struct cmd *c = user_data;

  if (c->gen != sc.gen)
    return 1;
  sc.inflight--;
  ckpt_inflight = false;
  if (*error != 0)
    {
      sc.broken = true;
      return 1;
    }
  commit_tail (c->ckpt_pos, c->ckpt_seq);
  return 1;
}

static void
maybe_checkpoint (bool force)
{
  uint64_t pos, seq, now = vaio_stats_now_ns ();
  struct cmd *c;
  bool due;

  if (ckpt_inflight || tail_syncing || sc.broken)
    return;
  pthread_mutex_lock (&repl.lock);
  if (repl.ring_n > 0)
    {
      const struct repl_entry *front = &repl.ring[repl.ring_start];
      pos = front->pos;
      seq = front->seq;
    }
  else
    {
      pos = repl.jrnl->head_pos;
      seq = repl.jrnl->head_seq;
    }
  due = seq > repl.jrnl->tail_seq
        && (force || now - last_ckpt_ns >= repl.checkpoint_ns
            || repl.jrnl->used >= repl.jrnl->size / 4);
  pthread_mutex_unlock (&repl.lock);
  if (!due)
    return;
  if (!sc.can_flush)
    {
      commit_tail (pos, seq);
      return;
    }
  c = calloc (1, sizeof *c);
  if (c == NULL)
    return;
  *c = (struct cmd){
    .kind = CMD_CKPT, .gen = sc.gen, .ckpt_pos = pos, .ckpt_seq = seq
  };
  if (nbd_aio_flush (sc.nbd,
                     (nbd_completion_callback){ .callback = ckpt_done,
                                                .user_data = c,
                                                .free = cmd_free },
                     0)
      == -1)
    {
      sc.broken = true;
      return;
    }
  sc.inflight++;
  ckpt_inflight = true;
}

/* ---- Connection management ---- */

static void
set_connected (bool connected)
{
  pthread_mutex_lock (&repl.lock);
  repl.connected = connected;
  repl.first_result = true;
  if (!connected)
    {
      /* Whatever was in flight may or may not have arrived, and what
       * the replica acknowledged is not durable there before the next
       * checkpoint: send again, in order, from the journal tail (see
       * state_requeue_unflushed_locked).  An entry acknowledged before
       * its source write finished is still queued (sync mode).
       */
      for (uint64_t s = repl.base_seq; s < repl.ship_seq; s++)
        {
          struct repl_entry *e = state_entry_locked (s);
          if (e != NULL && (e->state == E_SENT || e->state == E_ACKED))
            e->state = E_READY;
        }
      repl.ship_seq = repl.base_seq;
      state_requeue_unflushed_locked ();
    }
  state_publish_locked ();
  pthread_cond_broadcast (&repl.cond);
  pthread_mutex_unlock (&repl.lock);
}

static void
disconnect (void)
{
  if (sc.nbd == NULL)
    return;
  apply_acks ();
  nbd_close (sc.nbd); /* frees pending commands without completing them */
  sc.nbd = NULL;
  sc.gen++;
  sc.inflight = sc.entry_inflight = 0;
  sc.broken = false;
  ckpt_inflight = false;
  resync_abort (rs);
  set_connected (false);
  vaio_stats_add (repl.stats, RC_RECONNECTS, 1);
}

static bool
try_connect (bool *logged)
{
  bool fatal;
  char err[900];

  sc.nbd = target_connect (CONNECT_MS, &fatal, err, sizeof err);
  if (sc.nbd == NULL)
    {
      if (!*logged)
        nbdkit_error ("vaio-replication: %s (journaling until it is back)",
                      err);
      *logged = true;
      pthread_mutex_lock (&repl.lock);
      if (fatal)
        {
          repl.fatal = true;
          snprintf (repl.fatal_msg, sizeof repl.fatal_msg, "%s", err);
        }
      repl.first_result = true;
      pthread_cond_broadcast (&repl.cond);
      pthread_mutex_unlock (&repl.lock);
      return false;
    }
  *logged = false;
  sc.gen++;
  sc.can_zero = nbd_can_zero (sc.nbd) == 1;
  sc.can_flush = nbd_can_flush (sc.nbd) == 1;
  sc.can_fua = nbd_can_fua (sc.nbd) == 1;
  sc.broken = false;
  nbdkit_debug ("vaio-replication: connected to the replica");
  set_connected (true);
  return true;
}

/* Let libnbd act on what poll saw on its socket. */
static void
conn_notify (short revents)
{
  unsigned dir = nbd_aio_get_direction (sc.nbd);

  conn_epoch++;
  if ((revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP))
      && (dir & LIBNBD_AIO_DIRECTION_READ))
    {
      if (nbd_aio_notify_read (sc.nbd) == -1)
        sc.broken = true;
      apply_acks ();
    }
  dir = nbd_aio_get_direction (sc.nbd);
  if ((revents & POLLOUT) && (dir & LIBNBD_AIO_DIRECTION_WRITE))
    {
      if (nbd_aio_notify_write (sc.nbd) == -1)
        sc.broken = true;
    }
  /* The replica hung up while nothing was in flight (libnbd was not
   * reading): a crashed replica must be noticed now, not at the next
   * write, so that what it had not flushed is sent again.
   */
  if ((revents & (POLLHUP | POLLERR | POLLRDHUP))
      && !(dir & LIBNBD_AIO_DIRECTION_READ))
    sc.broken = true;
  if (nbd_aio_is_dead (sc.nbd))
    sc.broken = true;
}

static short
conn_poll_events (void)
{
  unsigned dir = nbd_aio_get_direction (sc.nbd);

  return (short)(((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0)
                 | ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0));
}

/* The shipper thread's sleep: its eventfd, and the replica's socket
 * while something is in flight.  With nothing in flight only a hang-up
 * matters: a sync writer may be driving the connection, and the
 * replies it waits for are not the shipper's to wake up for.
 */
static void
wait_events (void)
{
  struct pollfd fds[2] = { { .fd = repl.wake_fd, .events = POLLIN } };
  nfds_t n = 1;
  uint64_t epoch;
  int r;

  if (sc.nbd != NULL)
    {
      fds[1].fd = nbd_aio_get_fd (sc.nbd);
      fds[1].events = sc.inflight > 0 ? conn_poll_events () : POLLRDHUP;
      n = fds[1].fd >= 0 ? 2 : 1;
    }
  epoch = conn_epoch;
  pthread_mutex_unlock (&ship_lock);
  r = poll (fds, n, POLL_MS);
  __atomic_store_n (&shipper_waiting, true, __ATOMIC_RELEASE);
  pthread_mutex_lock (&ship_lock);
  __atomic_store_n (&shipper_waiting, false, __ATOMIC_RELEASE);
  if (r == -1)
    return;
  /* A writer drove the connection while we slept: what poll saw may be
   * gone.  A read notification with nothing to read leaves libnbd
   * waiting for a reply mid-state, and a command issued then is never
   * sent, so look again.
   */
  if (n == 2 && fds[1].revents != 0 && conn_epoch != epoch
      && poll (&fds[1], 1, 0) <= 0)
    fds[1].revents = 0;
  if (fds[0].revents & POLLIN)
    state_wake_consumed ();
  /* sc.nbd cannot change while we slept: only this thread connects. */
  if (n == 2 && fds[1].revents != 0)
    conn_notify (fds[1].revents);
}

/* ---- A sync writer driving the connection ---- */

/* Give the connection back; the shipper thread takes over what is left
 * (replies still due, entries not sent yet, a broken connection).
 */
static void
release_conn (void)
{
  struct repl_entry *e;
  bool more;

  pthread_mutex_lock (&repl.lock);
  e = state_entry_locked (repl.ship_seq);
  more = sc.broken || sc.inflight > 0 || (e != NULL && e->state == E_READY);
  pthread_mutex_unlock (&repl.lock);
  pthread_mutex_unlock (&ship_lock);
  if (more)
    state_wake_shipper ();
}

/* A writer takes the connection only when it is free and the shipper
 * thread is not waiting for it.
 */
static bool
driver_trylock (void)
{
  if (__atomic_load_n (&shipper_waiting, __ATOMIC_ACQUIRE))
    return false;
  return pthread_mutex_trylock (&ship_lock) == 0;
}

/* A sync writer's record is ready: send it now from this thread if the
 * connection is free.  Returns false if the shipper thread must do it.
 * The writer comes back in shipper_wait_acked for the answer.
 */
bool
shipper_send_now (void)
{
  bool others_wait;

  if (!driver_trylock ())
    return false;
  if (sc.nbd == NULL || sc.broken)
    {
      pthread_mutex_unlock (&ship_lock);
      return false;
    }
  send_entries ();
  /* We may have sent other writers' records too, and they wait on the
   * condition variable: someone must read the replies before we are
   * back in shipper_wait_acked.
   */
  pthread_mutex_lock (&repl.lock);
  others_wait = sc.inflight > 0 && repl.cond_waiters > 0;
  pthread_mutex_unlock (&repl.lock);
  pthread_mutex_unlock (&ship_lock);
  if (others_wait)
    state_wake_shipper ();
  return true;
}

/* Drive the connection until the replica acknowledged entry seq (or the
 * writer may return anyway: see state_replicated_locked).  Returns false
 * when it could not (the connection is busy or broke, or the deadline
 * passed): the caller then waits for the shipper thread.
 */
bool
shipper_wait_acked (uint64_t seq, uint64_t deadline_ns)
{
  struct pollfd fds[2] = { { .fd = repl.wake_fd, .events = POLLIN } };
  bool done = false;

  if (!driver_trylock ())
    {
      /* The holder may be a driver that leaves before our answer. */
      state_wake_shipper ();
      return false;
    }
  while (sc.nbd != NULL && !sc.broken)
    {
      uint64_t now = vaio_stats_now_ns ();

      apply_acks ();
      pthread_mutex_lock (&repl.lock);
      done = state_replicated_locked (seq);
      pthread_mutex_unlock (&repl.lock);
      /* Send what became ready meanwhile before leaving, saving the
       * shipper thread a wake-up.
       */
      send_entries ();
      if (done || now >= deadline_ns
          || __atomic_load_n (&shipper_waiting, __ATOMIC_ACQUIRE))
        break;
      /* Nothing in flight: ours waits for an earlier record that is not
       * written yet.  Its writer wakes the shipper thread, which sends
       * both once we let go.
       */
      if (sc.inflight == 0)
        break;
      /* The eventfd too: a writer whose record became ready while we
       * hold the connection wakes us to send it.
       */
      fds[1] = (struct pollfd){ .fd = nbd_aio_get_fd (sc.nbd),
                                .events = conn_poll_events () };
      if (poll (fds, 2, POLL_MS) <= 0)
        continue;
      if (fds[0].revents & POLLIN)
        state_wake_consumed ();
      if (fds[1].revents != 0)
        conn_notify (fds[1].revents);
    }
  release_conn ();
  return done;
}

/* Is everything on the replica and the tail persisted? */
static bool
drained (void)
{
  bool done;

  pthread_mutex_lock (&repl.lock);
  done = repl.track == TRACK_JOURNAL && repl.ring_n == 0
         && repl.jrnl->tail_seq == repl.jrnl->head_seq;
  pthread_mutex_unlock (&repl.lock);
  return done && sc.inflight == 0 && !tail_syncing;
}

static void *
shipper_main (void *arg)
{
  uint64_t next_connect = 0, drain_deadline = 0, last_publish = 0;
  bool logged = false, stopping, stop_tried_connect = false;

  pthread_mutex_lock (&ship_lock);
  /* The first checkpoint comes one interval after the start. */
  last_ckpt_ns = vaio_stats_now_ns ();
  for (;;)
    {
      uint64_t now = vaio_stats_now_ns ();

      pthread_mutex_lock (&repl.lock);
      stopping = repl.stopping;
      pthread_mutex_unlock (&repl.lock);
      if (stopping && drain_deadline == 0)
        drain_deadline = now + DRAIN_NS;

      if (sc.nbd == NULL && !repl.fatal
          && (now >= next_connect || (stopping && !stop_tried_connect)))
        {
          stop_tried_connect = stopping;
          if (!try_connect (&logged))
            next_connect = vaio_stats_now_ns () + RECONNECT_NS;
        }
      if (sc.nbd == NULL && stopping)
        break;

      if (sc.nbd != NULL)
        {
          send_entries ();
          if (sc.entry_inflight == 0)
            resync_step (rs, &sc);
          maybe_checkpoint (stopping);
          if (stopping && (drained () || now > drain_deadline))
            break;
        }
      wait_events ();
      apply_acks ();
      if (tail_syncing && jsync_take_done ())
        tail_syncing = false;
      if (sc.broken)
        {
          disconnect ();
          next_connect = vaio_stats_now_ns () + RECONNECT_NS;
        }
      if (now - last_publish >= PUBLISH_NS)
        {
          pthread_mutex_lock (&repl.lock);
          state_publish_locked ();
          pthread_mutex_unlock (&repl.lock);
          last_publish = now;
        }
    }
  if (sc.nbd != NULL)
    {
      nbd_shutdown (sc.nbd, 0);
      disconnect ();
    }
  pthread_mutex_unlock (&ship_lock);
  return arg;
}

int
shipper_start (void)
{
  int r;

  repl.wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (repl.wake_fd == -1)
    {
      nbdkit_error ("vaio-replication: eventfd: %m");
      return -1;
    }
  rs = resync_new ();
  if (rs == NULL)
    {
      nbdkit_error ("vaio-replication: out of memory");
      return -1;
    }
  if (jsync_start () == -1)
    return -1;
  r = pthread_create (&repl.shipper, NULL, shipper_main, NULL);
  if (r != 0)
    {
      errno = r;
      nbdkit_error ("vaio-replication: starting the shipper thread: %m");
      return -1;
    }
  repl.shipper_started = true;
  return 0;
}

void
shipper_stop (void)
{
  if (!repl.shipper_started)
    {
      jsync_stop ();
      return;
    }
  pthread_mutex_lock (&repl.lock);
  repl.stopping = true;
  pthread_cond_broadcast (&repl.cond);
  pthread_mutex_unlock (&repl.lock);
  state_wake_shipper ();
  pthread_join (repl.shipper, NULL);
  repl.shipper_started = false;
  jsync_stop ();
  resync_free (rs);
  rs = NULL;
  close (repl.wake_fd);
  repl.wake_fd = -1;
}

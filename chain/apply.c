/* vaio-nbd: `vaioctl apply`.
 *
 * For each configured disk: compare the argv `up` recorded for the
 * running process with the argv the config plans now.  Equal: leave the
 * process alone (same pid).  Different: swap.  Running but no longer
 * configured: stop.  Not running: start.
 *
 * A swap must not give the guest an I/O error.  nbdkit answers requests
 * with ESHUTDOWN once it is asked to quit, and QEMU does not retry a
 * request answered with an error; it does replay requests that were never
 * answered when the connection drops and comes back within its
 * reconnect-delay.  So a swap is:
 *
 *   0. drain, I/O still running: a cache being removed or re-laid out
 *      destages, a replica of a replication filter being removed catches
 *      up, until little is left (else the swap is refused: nothing
 *      stopped, the guest's I/O was never held);
 *   1. pause: the pause filter (outermost in every chain) holds new
 *      requests and acknowledges once in-flight ones completed;
 *   2. flush over a side connection (the pause filter does not hold
 *      flush): every filter makes its state durable;
 *   3. wait for filter state that a flush does not cover: a write-back
 *      cache being removed destages the rest (then a flush records it
 *      clean), a replication filter being removed ships the rest of its
 *      journal;
 *   4. put a new listening socket at the disk's socket path, then
 *      SIGKILL the old nbdkit: the connection drops, held requests were
 *      never answered;
 *   5. start the new chain on that socket (socket activation); QEMU's
 *      immediate reconnect waited in its backlog, and replays.  If the new
 * chain fails to start, the old one is started again so the VM keeps its disk.
 *
 * The start (supervise.c) also sets aside replication or caching state
 * that a chain without that class left stale, and refuses to bypass a
 * cache holding dirty data: apply checks the same before anything
 * changes, as it refuses image or socket changes and hosts in
 * maintenance.  A chain whose filters' recorded version or sha256 differ
 * from the plan's manifests is swapped even when its argv is the same.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "convert.h"
#include "inventory.h"
#include "units.h"
#include "plan.h"
#include "stats.h"
#include "supervise.h"

enum change_kind
{
  CHANGE_NONE,
  CHANGE_START,
  CHANGE_SWAP,
  CHANGE_LIVE, /* only live parameters changed: rewrite settings files */
};

/* What `up` recorded for a running disk (see write_running_record). */
struct running
{
  char *raw;   /* the record as read, to restore on rollback */
  char *text;  /* a copy, split into lines */
  char **argv; /* pointers into text */
  size_t argc;
  bool has_class[VAIO_CLASS_COUNT];
  char *filter_name[VAIO_CLASS_COUNT];
  size_t n_filters; /* "filter" lines, in chain order (guest → disk) */
  /* Their text after "filter ": "CLASS NAME VERSION SHA256". */
  const char *filter_line[VAIO_CLASS_COUNT + 1];
  int enc_pos; /* index of encryption among them, or -1 */
};

struct change
{
  enum change_kind kind;
  struct vaio_plan_disk plan;
  pid_t pid;
  struct running old;
  struct vaio_convert *conv; /* --convert-encryption: the image's */
};

static void
running_free (struct running *r)
{
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    free (r->filter_name[c]);
  free (r->argv);
  free (r->text);
  free (r->raw);
  memset (r, 0, sizeof *r);
}

static int
running_parse (const char *state_dir, struct running *r)
{
  char *save = NULL, *line;

  memset (r, 0, sizeof *r);
  r->enc_pos = -1;
  r->raw = vaio_disk_running_record (state_dir);
  if (r->raw == NULL || (r->text = strdup (r->raw)) == NULL)
    return -1;
  r->argv = calloc (strlen (r->text) / 5 + 2, sizeof *r->argv);
  if (r->argv == NULL)
    return -1;
  for (line = strtok_r (r->text, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    {
      if (strncmp (line, "argv ", 5) == 0)
        r->argv[r->argc++] = line + 5;
      else if (strncmp (line, "filter ", 7) == 0)
        {
          char cls[32], name[256];
          enum vaio_class c;
          if (r->n_filters < VAIO_CLASS_COUNT + 1)
            r->filter_line[r->n_filters] = line + 7;
          if (sscanf (line + 7, "%31s %255s", cls, name) == 2
              && vaio_class_parse (cls, &c) == 0)
            {
              r->has_class[c] = true;
              r->filter_name[c] = strdup (name);
              if (c == VAIO_CLASS_ENCRYPTION)
                r->enc_pos = (int)r->n_filters;
            }
          r->n_filters++;
        }
    }
  return 0;
}

static bool
same_argv (const struct running *r, const struct vaio_plan_disk *p)
{
  if (r->argc != p->argc)
    return false;
  for (size_t i = 0; i < p->argc; i++)
    if (strcmp (r->argv[i], p->argv[i]) != 0)
      return false;
  return true;
}

/* The plan's filter at pos as the running record writes it. */
static void
plan_filter_line (const struct vaio_plan_disk *p, size_t pos, char *buf,
                  size_t len)
{
  snprintf (buf, len, "%s %s %s %s", vaio_class_name (p->chain[pos]),
            p->filters[pos]->name, p->filters[pos]->version,
            p->filters[pos]->sha256);
}

/* The running filters are the plan's: same classes, names, versions and
 * sha256, in the same order.  A filter re-installed at the same path
 * (another version or build) has the same argv, but is not what runs:
 * status calls that noncompliant, and apply swaps it.
 */
static bool
same_filters (const struct running *r, const struct vaio_plan_disk *p)
{
  char line[1024];

  if (r->n_filters != p->n_chain)
    return false;
  for (size_t i = 0; i < p->n_chain; i++)
    {
      plan_filter_line (p, i, line, sizeof line);
      if (r->filter_line[i] == NULL || strcmp (r->filter_line[i], line) != 0)
        return false;
    }
  return true;
}

static bool
plan_has (const struct vaio_plan_disk *p, enum vaio_class c, int *pos)
{
  for (size_t i = 0; i < p->n_chain; i++)
    if (p->chain[i] == c)
      {
        if (pos)
          *pos = (int)i;
        return true;
      }
  return false;
}

/* Bytes of allocated zeros apply reads before it calls an image "holds
 * data" without looking further (a preallocated image would otherwise be
 * read whole before every swap).
 */
#define ZERO_SCAN_MAX (64 * 1024 * 1024)

/* Every allocated byte of fd from off on is zero. */
static bool
zero_from (int fd, off_t off)
{
  static char buf[65536];
  off_t data, hole, scanned = 0;

  while ((data = lseek (fd, off, SEEK_DATA)) != -1)
    {
      if ((hole = lseek (fd, data, SEEK_HOLE)) == -1)
        return false;
      for (off = data; off < hole;)
        {
          size_t len
              = (size_t)(hole - off < (off_t)sizeof buf ? hole - off
                                                        : (off_t)sizeof buf);
          ssize_t n = pread (fd, buf, len, off);
          if (n <= 0 || (scanned += n) > ZERO_SCAN_MAX)
            return false;
          for (ssize_t i = 0; i < n; i++)
            if (buf[i])
              return false;
          off += n;
        }
    }
  return errno == ENXIO;
}

/* Where a LUKS1 image's payload starts (bytes), or 0 when the image does
 * not start with a LUKS1 header.  The header is big-endian: magic (6),
 * version (2), cipher name, mode and hash (3 x 32), payload offset in
 * 512-byte sectors (4).
 */
static off_t
luks_payload_offset (int fd)
{
  unsigned char h[108];

  if (pread (fd, h, sizeof h, 0) != (ssize_t)sizeof h
      || memcmp (h, "LUKS\xba\xbe", 6) != 0 || h[6] != 0 || h[7] != 1)
    return 0;
  return (off_t)(((uint32_t)h[104] << 24) | ((uint32_t)h[105] << 16)
                 | ((uint32_t)h[106] << 8) | h[107])
         * 512;
}

/* True when the image holds data: any allocated byte that is not zero.
 * With luks_is_empty, a LUKS header with nothing but zeros or holes
 * after it counts as empty: that is a freshly formatted disk waiting for
 * its encryption filter (vaio-crypt format), not data to protect.
 */
static bool
image_holds_data (const char *image, bool luks_is_empty)
{
  int fd = open (image, O_RDONLY | O_CLOEXEC);
  off_t start = 0;
  bool empty;

  if (fd == -1)
    return true; /* cannot tell: assume it does */
  if (luks_is_empty)
    start = luks_payload_offset (fd);
  empty = zero_from (fd, start);
  close (fd);
  return !empty;
}

/* Position of encryption among a chain of n filters: 1 first (before the
 * others: they see ciphertext), 2 last (allow-cleartext-filters: they see
 * cleartext), 0 absent or alone (no other filter sees its data).
 */
static int
enc_position (int pos, size_t n)
{
  if (pos < 0 || n < 2)
    return 0;
  return pos == 0 ? 1 : 2;
}

/* A gauge of one filter's stats in a disk's state dir. */
static bool
gauge (const char *state_dir, enum vaio_class c, const char *name, uint64_t *v)
{
  char path[4096], err[256];
  struct vaio_stats_snapshot s;
  int idx;

  snprintf (path, sizeof path, "%s/%s/stats", state_dir, vaio_class_name (c));
  if (vaio_stats_read (path, &s, err, sizeof err) == -1
      || (idx = vaio_stats_counter_index (&s, name)) < 0)
    return false;
  *v = s.body.counters[idx];
  return true;
}

/* Bytes the replication filter has not shipped: its journal plus, in
 * change-tracking mode, the dirty regions.  false: cannot tell.
 */
static bool
repl_backlog (const char *state_dir, uint64_t *unshipped, uint64_t *connected)
{
  uint64_t used, dirty;

  if (!gauge (state_dir, VAIO_CLASS_REPLICATION, "journal_used_bytes", &used)
      || !gauge (state_dir, VAIO_CLASS_REPLICATION, "dirty_bytes", &dirty)
      || !gauge (state_dir, VAIO_CLASS_REPLICATION, "replica_connected",
                 connected))
    return false;
  *unshipped = used + dirty;
  return true;
}

/* A cache with a stats file publishes its dirty bytes there; one without
 * (nbdkit's own) writes dirty blocks back on flush.
 */
static bool
cache_publishes_stats (const char *state_dir)
{
  char path[4096];

  snprintf (path, sizeof path, "%s/caching/stats", state_dir);
  return access (path, F_OK) == 0;
}

/* The value of "key=value" among argv, or NULL when key is not set. */
static const char *
argv_value (char *const *argv, size_t argc, const char *key)
{
  size_t len = strlen (key);

  for (size_t i = 0; i < argc; i++)
    if (strncmp (argv[i], key, len) == 0 && argv[i][len] == '=')
      return argv[i] + len + 1;
  return NULL;
}

static bool
same_value (const char *a, const char *b)
{
  return a == b || (a && b && strcmp (a, b) == 0);
}

/* vaio-cache refuses a cache file laid out for another size, block size
 * or disk (it cannot tell a crashed cache's dirty blocks apart from
 * clean ones without the old layout).  A swap that changes one of these
 * therefore destages the cache first, and starts the new chain on an
 * empty cache file.  So does one that adds, removes or moves encryption
 * (--allow-encryption-change): the cache's blocks would be read as
 * ciphertext where they hold cleartext or the other way round, and the
 * disk it sees changes size by the LUKS header.  Moving the cache to
 * another file or device is handled alike: the old one's dirty blocks
 * must reach the image before the new cache serves.
 */
static const char *const cache_layout_keys[]
    = { "cache-size", "cache-block-size", "cache-disk-id",
        "cache-file", "cache-device",     NULL };

/* Equal values of a parameter: the same text, or the same size however
 * spelt (1G and 1024M lay a cache out alike).
 */
static bool
same_size (const char *a, const char *b)
{
  uint64_t x, y;

  if (a == NULL || b == NULL)
    return a == b;
  return strcmp (a, b) == 0
         || (vaio_parse_size (a, &x) == 0 && vaio_parse_size (b, &y) == 0
             && x == y);
}

static const char *
cache_layout_change (const struct change *ch)
{
  const struct running *r = &ch->old;
  const struct vaio_plan_disk *p = &ch->plan;
  int new_pos = -1;
  bool enc_new;

  if (!r->has_class[VAIO_CLASS_CACHING]
      || !plan_has (p, VAIO_CLASS_CACHING, NULL)
      || !cache_publishes_stats (p->state_dir))
    return NULL;
  for (size_t i = 0; cache_layout_keys[i]; i++)
    {
      const char *was = argv_value (r->argv, r->argc, cache_layout_keys[i]);
      const char *now = argv_value (p->argv, p->argc, cache_layout_keys[i]);
      if (!same_size (was, now))
        return cache_layout_keys[i];
    }
  enc_new = plan_has (p, VAIO_CLASS_ENCRYPTION, &new_pos);
  if (enc_new != r->has_class[VAIO_CLASS_ENCRYPTION]
      || (enc_new
          && enc_position (r->enc_pos, r->n_filters)
                 != enc_position (new_pos, p->n_chain)))
    return "encryption's place in the chain";
  return NULL;
}

/* The old chain's cache file (vaio-cache: cache-file=, else cache.img in
 * cache-state-dir); NULL for a cache device or when it cannot tell.
 */
static char *
old_cache_file (const struct running *r)
{
  const char *f = argv_value (r->argv, r->argc, "cache-file");
  const char *d = argv_value (r->argv, r->argc, "cache-state-dir");
  char *path = NULL;

  if (argv_value (r->argv, r->argc, "cache-device") != NULL)
    return NULL;
  if (f != NULL)
    return strdup (f);
  if (d != NULL && asprintf (&path, "%s/cache.img", d) == -1)
    return NULL;
  return path;
}

/* Adding or removing encryption: vaio_convert_check decides whether the
 * image is converted (ch->conv), must be refused, or is left to the rule
 * below (0).
 */
static int
check_encryption_change (struct change *ch, const struct vaio_apply_options *o,
                         bool holds_data, struct vaio_diag *diag)
{
  const struct vaio_plan_disk *p = &ch->plan;
  const struct running *r = &ch->old;
  struct vaio_convert_old old = {
    .argv = r->argv,
    .argc = r->argc,
    .enc_filter = r->filter_name[VAIO_CLASS_ENCRYPTION],
    .enc_pos = r->enc_pos,
    .n_filters = r->n_filters,
    .holds_data = holds_data,
  };

  return vaio_convert_check (p, &old, o->convert_encryption, &ch->conv, diag);
}

/* Reasons a swap cannot be made safely; each goes into diag. */
static int
check_swap_safe (struct change *ch, const struct vaio_apply_options *o,
                 struct vaio_diag *diag)
{
  const struct vaio_plan_disk *p = &ch->plan;
  const struct running *r = &ch->old;
  int new_pos = -1;
  bool enc_new = plan_has (p, VAIO_CLASS_ENCRYPTION, &new_pos);
  bool enc_old = r->has_class[VAIO_CLASS_ENCRYPTION];
  int where_old = enc_position (r->enc_pos, r->n_filters);
  int where_new = enc_position (new_pos, p->n_chain);
  const char *layout, *was, *now;
  static const char *const endpoint[] = { "--unix", "--ipaddr", "--port" };
  uint64_t dirty;
  int rc = 0, cv = 0;
  bool data = enc_new != enc_old && image_holds_data (p->disk->image, enc_new);

  /* A swap keeps the guest's connection: behind the same socket it
   * would be handed another disk, and on another socket it would keep
   * waiting on the old one.
   */
  was = argv_value (r->argv, r->argc, "file");
  now = argv_value (p->argv, p->argc, "file");
  if (!same_value (was, now))
    {
      vaio_diag_add (diag, &p->disk->loc,
                     "%s/%s: refusing to change the disk's image (%s -> %s) "
                     "by a swap: its guest would be given another disk "
                     "behind the same socket; to change a disk's image, "
                     "bring it down, edit, and up (vaioctl down, vaioctl up)",
                     p->vm->name, p->disk->name, was ? was : "none",
                     now ? now : "none");
      rc = -1;
    }
  for (size_t i = 0; i < sizeof endpoint / sizeof *endpoint; i++)
    {
      was = argv_value (r->argv, r->argc, endpoint[i]);
      now = argv_value (p->argv, p->argc, endpoint[i]);
      if (!same_value (was, now))
        {
          vaio_diag_add (diag, &p->disk->loc,
                         "%s/%s: refusing to change the disk's socket or "
                         "port (%s %s -> %s) by a swap: its guest stays "
                         "connected to the old one; bring the disk down "
                         "and up to move it",
                         p->vm->name, p->disk->name, endpoint[i] + 2,
                         was ? was : "unset", now ? now : "unset");
          rc = -1;
          break;
        }
    }
  if (enc_new != enc_old
      && (cv = check_encryption_change (ch, o, data, diag)) == -1)
    rc = -1;
  else if (data && cv == 0 && !o->allow_encryption_change)
    {
      vaio_diag_add (diag, &p->disk->policy_loc,
                     "%s/%s: refusing to %s encryption on a disk that holds "
                     "data (%s): the existing data would be %s; encryption "
                     "is attached only to new (empty) disks",
                     p->vm->name, p->disk->name, enc_new ? "add" : "remove",
                     p->disk->image,
                     enc_new ? "read as ciphertext"
                             : "read without decrypting");
      rc = -1;
    }
  /* The image holds ciphertext either way, but a cache or replica in
   * front of encryption holds ciphertext and one behind it cleartext:
   * moving encryption makes them read one as the other.
   */
  if (enc_new && enc_old && where_old && where_new && where_old != where_new
      && !o->allow_encryption_change && image_holds_data (p->disk->image, true))
    {
      vaio_diag_add (diag, &p->disk->policy_loc,
                     "%s/%s: refusing to move encryption from %s to %s of "
                     "the chain on a disk that holds data (%s): the filters "
                     "that %s it keep %s that would be read as %s; use "
                     "--allow-encryption-change on a disk whose cache and "
                     "replica start empty",
                     p->vm->name, p->disk->name,
                     where_old == 1 ? "first" : "last",
                     where_new == 1 ? "first" : "last", p->disk->image,
                     where_old == 1 ? "follow" : "precede",
                     where_old == 1 ? "ciphertext" : "cleartext",
                     where_old == 1 ? "cleartext" : "ciphertext");
      rc = -1;
    }
  if (r->has_class[VAIO_CLASS_CACHING]
      && !plan_has (p, VAIO_CLASS_CACHING, NULL) && !o->force
      && cache_publishes_stats (p->state_dir)
      && !gauge (p->state_dir, VAIO_CLASS_CACHING, "dirty_bytes", &dirty))
    {
      vaio_diag_add (diag, &p->disk->policy_loc,
                     "%s/%s: refusing to remove caching: cannot read its "
                     "stats (%s/caching/stats) to tell whether it holds "
                     "dirty data; use --force to remove it anyway",
                     p->vm->name, p->disk->name, p->state_dir);
      rc = -1;
    }
  if ((layout = cache_layout_change (ch)) != NULL)
    {
      char *file = old_cache_file (r);

      if (file == NULL)
        {
          vaio_diag_add (diag, &p->disk->policy_loc,
                         "%s/%s: refusing to change %s of a cache on a "
                         "device: the cache must be emptied first (destage "
                         "it, then remove caching from the policy and add it "
                         "back)",
                         p->vm->name, p->disk->name, layout);
          rc = -1;
        }
      else if (!o->force
               && !gauge (p->state_dir, VAIO_CLASS_CACHING, "dirty_bytes",
                          &dirty))
        {
          vaio_diag_add (diag, &p->disk->policy_loc,
                         "%s/%s: refusing to change %s of the cache: cannot "
                         "read its stats (%s/caching/stats) to tell whether "
                         "it holds dirty data; use --force to change it "
                         "anyway",
                         p->vm->name, p->disk->name, layout, p->state_dir);
          rc = -1;
        }
      free (file);
    }
  /* Filter state a chain without that class left behind (re-adding
   * replication or caching): refused here if the start would refuse it.
   */
  if (vaio_disk_check_state (p, r->has_class[VAIO_CLASS_CACHING], diag) == -1)
    rc = -1;
  if (r->has_class[VAIO_CLASS_REPLICATION]
      && !plan_has (p, VAIO_CLASS_REPLICATION, NULL) && !o->force)
    {
      uint64_t unshipped = 0, connected = 0;
      bool known = repl_backlog (p->state_dir, &unshipped, &connected);
      if (!known || (unshipped && !connected))
        {
          vaio_diag_add (diag, &p->disk->policy_loc,
                         "%s/%s: refusing to remove replication: %s; use "
                         "--force to drop what the replica has not received",
                         p->vm->name, p->disk->name,
                         !known ? "cannot read its stats to tell whether "
                                  "its journal is shipped"
                                : "the replica is unreachable and writes "
                                  "are not yet shipped");
          rc = -1;
        }
    }
  return rc;
}

/* Send one command byte to the pause filter and wait for its answer. */
static int
pause_command (const char *sock, char cmd, int timeout_ms)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  struct pollfd pfd;
  char reply = 0;
  int fd, r = -1;

  if (strlen (sock) >= sizeof sun.sun_path)
    return -1;
  strcpy (sun.sun_path, sock);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1)
    return -1;
  if (connect (fd, (struct sockaddr *)&sun, sizeof sun) == 0
      && write (fd, &cmd, 1) == 1)
    {
      pfd.fd = fd;
      pfd.events = POLLIN;
      if (poll (&pfd, 1, timeout_ms) == 1 && read (fd, &reply, 1) == 1
          && reply == (cmd & ~0x20))
        r = 0;
    }
  close (fd);
  return r;
}

/* Run the handle's state machine until done (1), until it fails (-1),
 * or until the deadline passes (-2).
 */
static int
nbd_wait (struct nbd_handle *nbd, uint64_t deadline, int (*done) (void *),
          void *arg)
{
  int r;

  while ((r = done (arg)) == 0)
    {
      uint64_t now = vaio_now_ms ();
      if (now >= deadline)
        return -2;
      if (nbd_poll (nbd, (int)(deadline - now)) == -1)
        return -1;
    }
  return r > 0 ? 1 : -1;
}

static int
connected (void *arg)
{
  struct nbd_handle *nbd = arg;

  if (nbd_aio_is_connecting (nbd) > 0)
    return 0;
  return nbd_aio_is_ready (nbd) > 0 ? 1 : -1;
}

struct flush_wait
{
  struct nbd_handle *nbd;
  int64_t cookie;
};

static int
flushed (void *arg)
{
  struct flush_wait *f = arg;

  return nbd_aio_command_completed (f->nbd, f->cookie);
}

/* Flush over a side connection within timeout_ms: the guest's I/O is
 * held meanwhile, so a filter whose flush (or connection open) hangs
 * must not hold it for ever.  0, -1 error, -2 timed out.
 */
static int
flush_disk (const struct vaio_plan_disk *p, int timeout_ms)
{
  uint64_t deadline = vaio_now_ms () + (uint64_t)timeout_ms;
  struct nbd_handle *nbd = nbd_create ();
  char *uri = vaio_plan_uri (p);
  struct flush_wait f = { .nbd = nbd };
  int r = -1;

  if (nbd && uri && nbd_aio_connect_uri (nbd, uri) == 0
      && (r = nbd_wait (nbd, deadline, connected, nbd)) == 1)
    {
      r = 0;
      if (nbd_can_flush (nbd) > 0)
        {
          f.cookie = nbd_aio_flush (nbd, NBD_NULL_COMPLETION, 0);
          r = f.cookie == -1 ? -1 : nbd_wait (nbd, deadline, flushed, &f);
          if (r == 1)
            r = 0;
        }
      if (r == 0)
        nbd_shutdown (nbd, 0);
    }
  if (nbd)
    nbd_close (nbd);
  free (uri);
  return r;
}

/* The pause control socket of the disk apply holds paused, for the
 * signal handler: an apply interrupted while the guest's I/O is held
 * must not leave it held.
 */
static struct sockaddr_un paused_sun;
static volatile sig_atomic_t paused;

static void
resume_and_die (int sig)
{
  if (paused)
    {
      int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      char c = 'r';
      if (fd >= 0
          && connect (fd, (struct sockaddr *)&paused_sun, sizeof paused_sun)
                 == 0
          && write (fd, &c, 1) == 1)
        {
          /* Wait for the acknowledgement, briefly. */
          if (poll (&pfd, 1, 1000) == 1)
            (void)!read (fd, &c, 1);
        }
      if (fd >= 0)
        close (fd);
      (void)!write (2, "vaioctl: interrupted: disk resumed\n", 35);
    }
  signal (sig, SIG_DFL);
  raise (sig);
}

/* sock: the disk is paused now (NULL: not any more). */
static void
resume_on_signal (const char *sock)
{
  static bool installed;

  if (!installed)
    {
      struct sigaction sa = { .sa_handler = resume_and_die };
      sigemptyset (&sa.sa_mask);
      sigaction (SIGINT, &sa, NULL);
      sigaction (SIGTERM, &sa, NULL);
      sigaction (SIGHUP, &sa, NULL);
      installed = true;
    }
  paused = 0;
  if (sock && strlen (sock) < sizeof paused_sun.sun_path)
    {
      paused_sun.sun_family = AF_UNIX;
      strcpy (paused_sun.sun_path, sock);
      /* The handler must see the whole address once it sees paused. */
      atomic_signal_fence (memory_order_seq_cst);
      paused = 1;
    }
}

static char *
drain_file (const struct change *ch)
{
  char *p;

  if (asprintf (&p, "%s/caching/drain", ch->plan.state_dir) == -1)
    return NULL;
  return p;
}

static void
drop_drain_file (const struct change *ch)
{
  char *drain = drain_file (ch);

  if (drain)
    unlink (drain);
  free (drain);
}

/* A caching filter being removed may hold dirty data that a flush made
 * durable in the cache but not in the image.  Ask it to destage
 * everything (the drain file, see nbdkit-filters/caching/README.md) and
 * wait until its dirty_bytes gauge reads 0.  A cache that publishes no
 * stats (nbdkit's own) writes dirty blocks back on flush.
 */
static int
wait_cache_clean (const struct change *ch, const struct vaio_apply_options *o,
                  bool *clean)
{
  uint64_t deadline = vaio_now_ms () + (uint64_t)o->timeout_ms, dirty;
  bool removed = ch->old.has_class[VAIO_CLASS_CACHING]
                 && !plan_has (&ch->plan, VAIO_CLASS_CACHING, NULL);
  char *drain;
  int fd, r = 0;

  *clean = false;
  if (!(removed || cache_layout_change (ch) != NULL)
      || !cache_publishes_stats (ch->plan.state_dir))
    return 0;
  drain = drain_file (ch);
  if (drain == NULL)
    return -1;
  fd = open (drain, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0)
    close (fd);
  for (;;)
    {
      /* Stats that stop being readable say nothing about dirty data:
       * unknown is not clean.
       */
      if (!gauge (ch->plan.state_dir, VAIO_CLASS_CACHING, "dirty_bytes",
                  &dirty))
        {
          r = o->force ? 0 : -1;
          break;
        }
      if (dirty == 0)
        {
          *clean = true;
          break;
        }
      if (vaio_now_ms () > deadline)
        {
          r = -1;
          break;
        }
      usleep (20000);
    }
  unlink (drain);
  free (drain);
  return r;
}

/* Replication being removed: everything journaled must reach the replica
 * first (with --force, whatever it has not received is dropped).  Stats
 * that cannot be read say nothing about the journal: not caught up.
 */
static int
wait_replica_caught_up (const struct change *ch,
                        const struct vaio_apply_options *o)
{
  uint64_t deadline = vaio_now_ms () + (uint64_t)o->timeout_ms, unshipped,
           connected;

  if (o->force || !ch->old.has_class[VAIO_CLASS_REPLICATION]
      || plan_has (&ch->plan, VAIO_CLASS_REPLICATION, NULL))
    return 0;
  for (;;)
    {
      if (!repl_backlog (ch->plan.state_dir, &unshipped, &connected))
        return -1;
      if (unshipped == 0)
        return 0;
      if (vaio_now_ms () > deadline)
        return -1;
      usleep (20000);
    }
}

/* What a swap may leave to finish while the guest's I/O is held: the
 * cache's dirty bytes, the replica's backlog.  Small enough to ship or
 * destage in a moment.
 */
#define PREDRAIN_BOUND (1024 * 1024)

/* Before the pause, with the guest's I/O still running: a cache being
 * removed or re-laid out destages (its drain file), and a replica of a
 * replication filter being removed catches up, until what is left is at
 * most PREDRAIN_BOUND, within --timeout.  Otherwise the swap is refused
 * before anything stops (why says what did not drain): a long destage or
 * shipping must not run with the guest's I/O held, and end in an abort.
 */
static int
drain_before_pause (const struct change *ch, const struct vaio_apply_options *o,
                    char *why, size_t len)
{
  const struct vaio_plan_disk *p = &ch->plan;
  uint64_t deadline = vaio_now_ms () + (uint64_t)o->timeout_ms, dirty = 0,
           unshipped = 0, connected = 0;
  bool cache = (cache_layout_change (ch) != NULL
                || (ch->old.has_class[VAIO_CLASS_CACHING]
                    && !plan_has (p, VAIO_CLASS_CACHING, NULL)))
               && cache_publishes_stats (p->state_dir);
  bool repl = ch->old.has_class[VAIO_CLASS_REPLICATION]
              && !plan_has (p, VAIO_CLASS_REPLICATION, NULL) && !o->force;
  char *drain = cache ? drain_file (ch) : NULL;
  int fd, r = -1;

  if (cache && drain
      && (fd = open (drain, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) >= 0)
    close (fd);
  for (;;)
    {
      bool cache_ok = true, repl_ok = true;

      if (cache
          && !gauge (p->state_dir, VAIO_CLASS_CACHING, "dirty_bytes", &dirty))
        {
          if (!o->force)
            {
              snprintf (why, len,
                        "cannot read the cache's stats (%s/caching/stats) to "
                        "tell how much it still has to destage",
                        p->state_dir);
              break;
            }
          dirty = 0; /* --force: left to the paused destage */
        }
      if (repl && !repl_backlog (p->state_dir, &unshipped, &connected))
        {
          snprintf (why, len,
                    "cannot read the replication filter's stats to tell "
                    "whether its journal is shipped");
          break;
        }
      cache_ok = !cache || dirty <= PREDRAIN_BOUND;
      repl_ok = !repl || unshipped <= PREDRAIN_BOUND;
      if (cache_ok && repl_ok)
        {
          r = 0;
          break;
        }
      if (vaio_now_ms () > deadline)
        {
          if (!cache_ok)
            snprintf (why, len,
                      "the cache being removed or re-laid out still holds "
                      "%llu dirty bytes after %d s of destaging",
                      (unsigned long long)dirty, o->timeout_ms / 1000);
          else
            snprintf (why, len,
                      "the replica is still %llu bytes behind (%s) after %d "
                      "s; use --force to drop what it has not received",
                      (unsigned long long)unshipped,
                      connected ? "connected" : "not connected",
                      o->timeout_ms / 1000);
          break;
        }
      usleep (20000);
    }
  /* Refused: the cache goes back to its usual watermarks.  Otherwise the
   * paused destage keeps the drain going.
   */
  if (r == -1 && drain)
    unlink (drain);
  free (drain);
  return r;
}

static void
kill_and_wait (pid_t pid)
{
  kill (pid, SIGKILL);
  for (int i = 0; i < 500 && vaio_disk_pid_alive (pid); i++)
    usleep (10000);
}

/* Start the old argv again after a failed swap, and put back the old
 * running record: it, not the new plan, describes what runs now.
 */
/* The "env TMPDIR=..." line of a running record (the old chain's
 * environment, which the new plan's may not match), or NULL.
 */
static char *
recorded_env (const char *raw)
{
  const char *l = raw ? strstr (raw, "\nenv ") : NULL;

  if (raw && strncmp (raw, "env ", 4) == 0)
    l = raw;
  else if (l)
    l++;
  return l ? strndup (l + 4, strcspn (l + 4, "\n")) : NULL;
}

static void
rollback (const struct change *ch, int listen_fd, struct vaio_diag *diag)
{
  struct vaio_plan_disk old = ch->plan;
  char **argv = calloc (ch->old.argc + 1, sizeof *argv);

  if (argv == NULL)
    return;
  memcpy (argv, ch->old.argv, ch->old.argc * sizeof *argv);
  old.argv = argv;
  old.argc = ch->old.argc;
  old.tmpdir_env = recorded_env (ch->old.raw);
  if (vaio_disk_restart_on (&old, listen_fd, 10000, ch->old.has_class, diag) > 0
      && vaio_disk_write_record (ch->plan.state_dir, ch->old.raw) == 0)
    vaio_diag_add (diag, NULL, "%s/%s: rolled back to the previous chain",
                   ch->plan.vm->name, ch->plan.disk->name);
  free (argv);
  free (old.tmpdir_env);
}

/* After a destage that reached zero dirty bytes, with the old chain
 * gone, a cache whose layout changes is removed, so the new chain creates
 * it empty.
 */
static void
empty_relaid_cache (const struct change *ch, bool clean)
{
  const char *layout = cache_layout_change (ch);
  char *file;

  if (layout == NULL || (file = old_cache_file (&ch->old)) == NULL)
    return;
  /* --force past unreadable stats: nothing says the cache holds no dirty
   * data, so it stays (the new chain refuses it, and apply rolls back).
   */
  if (!clean)
    fprintf (stderr,
             "vaioctl: %s/%s: %s changed, but the cache (%s) could not be "
             "confirmed clean: left in place\n",
             ch->plan.vm->name, ch->plan.disk->name, layout, file);
  else if (unlink (file) == 0)
    printf ("%s/%s: %s changed: the cache (%s) was destaged and starts "
            "empty\n",
            ch->plan.vm->name, ch->plan.disk->name, layout, file);
  else if (errno != ENOENT)
    fprintf (stderr, "vaioctl: %s/%s: removing %s: %s\n", ch->plan.vm->name,
             ch->plan.disk->name, file, strerror (errno));
  free (file);
}

/* A new chain that failed to start may have created its cache, laid out
 * for it: the old chain would refuse that file.  It never served, so the
 * file holds nothing of the guest's: removed, the old chain starts on an
 * empty cache as the new one did.
 */
static void
drop_new_cache (const struct change *ch, bool clean)
{
  char *file;

  if (clean && cache_layout_change (ch) != NULL
      && (file = old_cache_file (&ch->old)) != NULL)
    {
      unlink (file);
      free (file);
    }
}

static void
block_stop_signals (bool block)
{
  sigset_t set;

  sigemptyset (&set);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGHUP);
  sigprocmask (block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static int
swap_disk (struct change *ch, const struct vaio_apply_options *o)
{
  struct vaio_diag diag = { 0 };
  const struct vaio_plan_disk *p = &ch->plan;
  uint64_t t0;
  const char *step = NULL;
  char why[512];
  bool clean = false;
  int r = -1, fr, listen_fd;

  /* Formatting a new LUKS image (key derivation) needs no held I/O; it
   * comes before the drain, which would otherwise have a second or two
   * to fall behind again.
   */
  if (ch->conv && vaio_convert_prepare (ch->conv) == -1)
    return -1;
  if (drain_before_pause (ch, o, why, sizeof why) == -1)
    {
      if (ch->conv)
        vaio_convert_abandon (ch->conv);
      fprintf (stderr,
               "vaioctl: %s/%s: swap refused before pausing: %s; nothing was "
               "stopped, the old chain (pid %ld) serves on\n",
               p->vm->name, p->disk->name, why, (long)ch->pid);
      return -1;
    }
  t0 = vaio_now_ms ();
  if (pause_command (p->pause_socket, 'p', o->timeout_ms) == -1)
    step = "pause (drain in-flight requests)";
  else
    {
      resume_on_signal (p->pause_socket);
      if ((fr = flush_disk (p, o->timeout_ms)) != 0)
        step = fr == -2 ? "flush (timed out)" : "flush";
      else if (wait_cache_clean (ch, o, &clean) == -1)
        step = "destage the cache being removed or re-laid out";
      /* The destage cleared the dirty entries in memory; a flush writes
       * the metadata saying so, which is what the next start reads to
       * tell whether the cache left behind holds dirty data.
       */
      else if (clean && (fr = flush_disk (p, o->timeout_ms)) != 0)
        step = fr == -2 ? "flush after the destage (timed out)"
                        : "flush after the destage";
      else if (wait_replica_caught_up (ch, o) == -1)
        step = "ship the journal of the replication filter being removed";
    }
  if (step)
    {
      /* Nothing was dropped yet: resume and leave the old chain serving. */
      bool resumed = pause_command (p->pause_socket, 'r', o->timeout_ms) == 0;

      resume_on_signal (NULL);
      if (ch->conv)
        vaio_convert_abandon (ch->conv);
      /* The old chain serves on: its cache back to its usual watermarks
       * (an abort before wait_cache_clean leaves the drain file).
       */
      drop_drain_file (ch);
      if (resumed)
        fprintf (stderr,
                 "vaioctl: %s/%s: swap aborted at %s after I/O was held "
                 "%llu ms; old chain still serving\n",
                 p->vm->name, p->disk->name, step,
                 (unsigned long long)(vaio_now_ms () - t0));
      else
        fprintf (stderr,
                 "vaioctl: %s/%s: swap aborted at %s (I/O held %llu ms so "
                 "far), and the old chain did not resume: its I/O is still "
                 "held; resume it by writing 'r' to %s (e.g. with socat) or "
                 "restart it with vaioctl down/up\n",
                 p->vm->name, p->disk->name, step,
                 (unsigned long long)(vaio_now_ms () - t0), p->pause_socket);
      return -1;
    }
  /* From here until a chain serves again, a signal must not end apply
   * half-way (old chain gone, new one not started, or the socket path
   * taken over by a listener that dies with us): it waits until then.
   */
  block_stop_signals (true);
  /* A client that reconnects from now on (QEMU tries at once when the
   * old chain drops it, then only after a second) waits in the new
   * socket's backlog for the new chain.
   */
  listen_fd = vaio_disk_take_over_socket (p);
  kill_and_wait (ch->pid);
  resume_on_signal (NULL);
  empty_relaid_cache (ch, clean);
  /* The image is converted only once nothing holds writes it lacks: a
   * cache in the old chain drained to zero dirty bytes (or has no stats:
   * nbdkit's own writes back on flush).
   */
  if (ch->conv
      && vaio_convert_run (ch->conv,
                           clean || !ch->old.has_class[VAIO_CLASS_CACHING]
                               || !cache_publishes_stats (p->state_dir))
             == -1)
    rollback (ch, listen_fd, &diag);
  else if (vaio_disk_start_on (p, listen_fd, o->timeout_ms, &diag) > 0)
    {
      if (ch->conv)
        vaio_convert_commit (ch->conv);
      printf ("%s/%s: swapped chain (pid %ld -> %ld); I/O held %llu ms\n",
              p->vm->name, p->disk->name, (long)ch->pid,
              (long)vaio_disk_pid (p->pidfile),
              (unsigned long long)(vaio_now_ms () - t0));
      r = 0;
    }
  else
    {
      drop_new_cache (ch, clean);
      if (ch->conv == NULL || vaio_convert_undo (ch->conv) == 0)
        rollback (ch, listen_fd, &diag);
    }
  if (listen_fd >= 0)
    close (listen_fd);
  block_stop_signals (false);
  vaio_diag_print (&diag, stderr);
  vaio_diag_free (&diag);
  return r;
}

static void print_live_changes (const struct change *ch);

/* A filter parameter word: key=value, not an nbdkit option (--x=y). */
static bool
param_word (const char *w)
{
  return w[0] != '-' && strchr (w, '=') != NULL;
}

/* The value of the parameter the word "key=value" sets, among argv. */
static const char *
word_value (char *const *argv, size_t argc, const char *word)
{
  size_t klen = (size_t)(strchr (word, '=') - word);

  for (size_t i = 0; i < argc; i++)
    if (param_word (argv[i]) && strncmp (argv[i], word, klen + 1) == 0)
      return argv[i] + klen + 1;
  return NULL;
}

/* What a swap changes besides the classes: each parameter set, changed
 * or unset (values only: a secret parameter's value is a path), whether
 * encryption moves, and whether the filters themselves (their binaries,
 * their order) differ.
 */
static void
print_swap_details (const struct change *ch)
{
  const struct vaio_plan_disk *p = &ch->plan;
  const struct running *r = &ch->old;
  int new_pos = -1;
  bool any = false, filters_differ = false;

  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    any |= r->has_class[c] != plan_has (p, c, NULL);

  for (size_t i = 0; i < p->argc; i++)
    if (param_word (p->argv[i]))
      {
        const char *was = word_value (r->argv, r->argc, p->argv[i]);
        const char *eq = strchr (p->argv[i], '=');
        if (was == NULL)
          printf (" set %s;", p->argv[i]);
        else if (strcmp (was, eq + 1) != 0)
          printf (" change %.*s: %s -> %s;", (int)(eq - p->argv[i]), p->argv[i],
                  was, eq + 1);
        any |= was == NULL || strcmp (was, eq + 1) != 0;
      }
  for (size_t i = 0; i < r->argc; i++)
    if (param_word (r->argv[i]) && !word_value (p->argv, p->argc, r->argv[i]))
      {
        printf (" unset %.*s;", (int)(strchr (r->argv[i], '=') - r->argv[i]),
                r->argv[i]);
        any = true;
      }
  plan_has (p, VAIO_CLASS_ENCRYPTION, &new_pos);
  if (enc_position (r->enc_pos, r->n_filters)
      && enc_position (new_pos, p->n_chain)
      && enc_position (r->enc_pos, r->n_filters)
             != enc_position (new_pos, p->n_chain))
    {
      printf (" move encryption %s -> %s;",
              enc_position (r->enc_pos, r->n_filters) == 1 ? "first" : "last",
              enc_position (new_pos, p->n_chain) == 1 ? "first" : "last");
      any = true;
    }
  /* A filter of a kept class whose version or build differs. */
  for (size_t j = 0; j < p->n_chain; j++)
    for (size_t i = 0; i < r->n_filters && i < VAIO_CLASS_COUNT + 1; i++)
      {
        char cls[32], name[256], ver[64], sha[80];
        if (r->filter_line[i] == NULL
            || sscanf (r->filter_line[i], "%31s %255s %63s %79s", cls, name,
                       ver, sha)
                   != 4
            || strcmp (cls, vaio_class_name (p->chain[j])) != 0)
          continue;
        if (strcmp (name, p->filters[j]->name) == 0
            && (strcmp (ver, p->filters[j]->version) != 0
                || strcmp (sha, p->filters[j]->sha256) != 0))
          {
            printf (" upgrade %s %s %s -> %s%s;", cls, name, ver,
                    p->filters[j]->version,
                    strcmp (sha, p->filters[j]->sha256) != 0
                        ? " (another build: sha256 differs)"
                        : "");
            any = true;
          }
      }
  /* --filter= words: the binaries and their order. */
  for (size_t i = 0, j = 0;; i++, j++)
    {
      while (i < r->argc && strncmp (r->argv[i], "--filter=", 9) != 0)
        i++;
      while (j < p->argc && strncmp (p->argv[j], "--filter=", 9) != 0)
        j++;
      if (i >= r->argc || j >= p->argc)
        break;
      if (strcmp (r->argv[i], p->argv[j]) != 0)
        filters_differ = true;
    }
  if (filters_differ && !any)
    printf (" filter binaries or their order differ;");
  else if (!any && !filters_differ)
    printf (" other nbdkit options differ;");
}

static void
describe (const struct change *ch)
{
  const struct vaio_plan_disk *p = &ch->plan;

  printf ("%s/%s: ", p->vm->name, p->disk->name);
  switch (ch->kind)
    {
    case CHANGE_NONE:
      printf ("unchanged (pid %ld)\n", (long)ch->pid);
      return;
    case CHANGE_START:
      printf ("start (not running)\n");
      return;
    case CHANGE_LIVE:
      printf ("change live parameters without a restart:");
      print_live_changes (ch);
      return;
    case CHANGE_SWAP:
      printf ("swap chain:");
      for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
        {
          bool was = ch->old.has_class[c], now = plan_has (p, c, NULL);
          if (was && !now)
            printf (" remove %s (%s);", vaio_class_name (c),
                    ch->old.filter_name[c]);
          else if (!was && now)
            printf (" add %s;", vaio_class_name (c));
          else if (was && now)
            printf (" keep %s;", vaio_class_name (c));
        }
      print_swap_details (ch);
      printf ("\n");
      if (ch->conv)
        vaio_convert_describe (ch->conv, stdout);
      return;
    }
}

/* The filter position in the plan whose live parameter the argv word
 * "key=value" sets, or -1.
 */
static int
live_param_owner (const struct vaio_plan_disk *p, const char *word)
{
  const char *eq = strchr (word, '=');

  if (eq == NULL)
    return -1;
  for (size_t i = 0; i < p->n_chain; i++)
    for (size_t k = 0; k < p->filters[i]->n_params; k++)
      {
        const struct vaio_param_spec *ps = &p->filters[i]->params[k];
        if (ps->live && strlen (ps->name) == (size_t)(eq - word)
            && strncmp (ps->name, word, (size_t)(eq - word)) == 0)
          return (int)i;
      }
  return -1;
}

/* Index of the next word at or after i that is not a live parameter. */
static size_t
skip_live (const struct vaio_plan_disk *p, char *const *argv, size_t argc,
           size_t i)
{
  while (i < argc && live_param_owner (p, argv[i]) >= 0)
    i++;
  return i;
}

/* The words that are not live parameters (filters, their order, every
 * other setting) are the same and in the same order.  Live parameters
 * may be added, removed, changed or moved: a policy is a YAML map, so
 * their order in argv means nothing.
 */
static bool
same_fixed_words (const struct running *r, const struct vaio_plan_disk *p)
{
  size_t i = 0, j = 0;

  for (;;)
    {
      i = skip_live (p, r->argv, r->argc, i);
      j = skip_live (p, p->argv, p->argc, j);
      if (i == r->argc || j == p->argc)
        return i == r->argc && j == p->argc;
      if (strcmp (r->argv[i], p->argv[j]) != 0)
        return false;
      i++;
      j++;
    }
}

/* Some live parameter of the filter at pos has another value (or is set
 * in one argv only).
 */
static bool
live_filter_changed (const struct running *r, const struct vaio_plan_disk *p,
                     size_t pos)
{
  const struct vaio_manifest *m = p->filters[pos];

  for (size_t k = 0; k < m->n_params; k++)
    if (m->params[k].live
        && !same_value (argv_value (r->argv, r->argc, m->params[k].name),
                        argv_value (p->argv, p->argc, m->params[k].name)))
      return true;
  return false;
}

/* A live change is possible when only live parameters differ and every
 * live parameter the new plan drops has a manifest default to go back
 * to: the filter keeps a value the settings file does not mention, so
 * without a default there is nothing to write and the disk is swapped.
 */
static bool
only_live_changes (const struct running *r, const struct vaio_plan_disk *p)
{
  if (!same_fixed_words (r, p))
    return false;
  for (size_t pos = 0; pos < p->n_chain; pos++)
    for (size_t k = 0; k < p->filters[pos]->n_params; k++)
      {
        const struct vaio_param_spec *ps = &p->filters[pos]->params[k];
        if (ps->live && ps->default_value == NULL
            && argv_value (r->argv, r->argc, ps->name) != NULL
            && argv_value (p->argv, p->argc, ps->name) == NULL)
          return false;
      }
  return true;
}

/* The live parameters that differ: set or changed ones as key=value in
 * the new argv's order, then removed ones with the default they go back
 * to.  Secret parameters are paths, so nothing printed here is secret.
 */
static void
print_live_changes (const struct change *ch)
{
  const struct vaio_plan_disk *p = &ch->plan;
  bool any = false;

  for (size_t i = 0; i < p->argc; i++)
    {
      const char *eq = strchr (p->argv[i], '=');
      char key[256];
      if (eq == NULL || live_param_owner (p, p->argv[i]) < 0
          || (size_t)(eq - p->argv[i]) >= sizeof key)
        continue;
      snprintf (key, sizeof key, "%.*s", (int)(eq - p->argv[i]), p->argv[i]);
      if (!same_value (argv_value (ch->old.argv, ch->old.argc, key), eq + 1))
        {
          printf (" %s", p->argv[i]);
          any = true;
        }
    }
  for (size_t pos = 0; pos < p->n_chain; pos++)
    for (size_t k = 0; k < p->filters[pos]->n_params; k++)
      {
        const struct vaio_param_spec *ps = &p->filters[pos]->params[k];
        if (ps->live && argv_value (ch->old.argv, ch->old.argc, ps->name)
            && argv_value (p->argv, p->argc, ps->name) == NULL)
          {
            printf (" %s removed (back to its default %s)", ps->name,
                    ps->default_value);
            any = true;
          }
      }
  if (!any)
    printf (" none (only their order differs)");
  printf ("\n");
}

/* Write <state>/<class>/settings for the filter at position pos: every
 * live parameter of the filter, with its value in argv (the plan's, or
 * the old record's to restore it) or else its manifest default, as
 * key=value lines, atomically.  Every one, because the filter keeps the
 * value of a key the file leaves out: a removed limit must be written
 * as its default to be lifted.
 */
static int
write_settings (const struct vaio_plan_disk *p, char *const *argv, size_t argc,
                size_t pos)
{
  const struct vaio_manifest *m = p->filters[pos];
  char *path = NULL, *tmp = NULL;
  FILE *fp;
  int r = -1;

  if (asprintf (&path, "%s/%s/settings", p->state_dir,
                vaio_class_name (p->chain[pos]))
          == -1
      || asprintf (&tmp, "%s.tmp", path) == -1)
    goto out;
  fp = fopen (tmp, "w");
  if (fp == NULL)
    goto out;
  fchmod (fileno (fp), 0600);
  fprintf (fp, "# written by vaioctl apply\n");
  for (size_t k = 0; k < m->n_params; k++)
    {
      const struct vaio_param_spec *ps = &m->params[k];
      const char *v = argv_value (argv, argc, ps->name);
      if (ps->live && (v || ps->default_value))
        fprintf (fp, "%s=%s\n", ps->name, v ? v : ps->default_value);
    }
  if (fclose (fp) == 0 && rename (tmp, path) == 0)
    r = 0;
out:
  if (r == -1 && tmp)
    unlink (tmp);
  free (path);
  free (tmp);
  return r;
}

/* A filter that takes live settings may acknowledge each reading of its
 * settings file through two counters in its stats file.  Without them
 * (a third-party filter), a written file is all apply can vouch for.
 */
struct settings_ack
{
  bool known;
  uint64_t reloads, errors;
};

#define SETTINGS_ACK_WAIT_MS 3000

static struct settings_ack
settings_ack_read (const struct vaio_plan_disk *p, size_t pos)
{
  struct settings_ack a = { 0 };

  a.known
      = gauge (p->state_dir, p->chain[pos], "settings-reloads", &a.reloads)
        && gauge (p->state_dir, p->chain[pos], "settings-errors", &a.errors);
  return a;
}

/* Wait until the filter has read the file written after `before` was
 * taken.  0: taken (or the filter does not say), -1: refused, -2: not
 * read in time.
 */
static int
settings_ack_wait (const struct vaio_plan_disk *p, size_t pos,
                   struct settings_ack before)
{
  uint64_t deadline = vaio_now_ms () + SETTINGS_ACK_WAIT_MS;

  if (!before.known)
    return 0;
  for (;;)
    {
      struct settings_ack now = settings_ack_read (p, pos);

      if (now.known && now.errors != before.errors)
        return -1;
      if (now.known && now.reloads != before.reloads)
        return 0;
      if (vaio_now_ms () > deadline)
        return -2;
      usleep (20000);
    }
}

/* Write the settings of one filter and see them taken; on a refusal put
 * the old ones back, so that the file, the filter and the running record
 * keep agreeing.
 */
static int
apply_live_filter (const struct change *ch, size_t pos)
{
  const struct vaio_plan_disk *p = &ch->plan;
  const char *cls = vaio_class_name (p->chain[pos]);
  struct settings_ack before = settings_ack_read (p, pos);
  int r;

  if (write_settings (p, p->argv, p->argc, pos) == -1)
    {
      fprintf (stderr, "vaioctl: %s/%s: cannot write the %s settings: %m\n",
               p->vm->name, p->disk->name, cls);
      return -1;
    }
  r = settings_ack_wait (p, pos, before);
  if (r == 0)
    return 0;
  if (r == -1)
    fprintf (stderr,
             "vaioctl: %s/%s: %s refused the new %s settings and keeps the "
             "old ones (its log says why: %s)\n",
             p->vm->name, p->disk->name, p->filters[pos]->name, cls,
             p->logfile);
  else
    fprintf (stderr,
             "vaioctl: %s/%s: %s did not read its new %s settings within "
             "%d ms; restoring the old ones\n",
             p->vm->name, p->disk->name, p->filters[pos]->name, cls,
             SETTINGS_ACK_WAIT_MS);
  before = settings_ack_read (p, pos);
  if (write_settings (p, ch->old.argv, ch->old.argc, pos) == -1
      || settings_ack_wait (p, pos, before) != 0)
    fprintf (stderr,
             "vaioctl: %s/%s: the old %s settings could not be restored\n",
             p->vm->name, p->disk->name, cls);
  return -1;
}

static int
apply_live (const struct change *ch)
{
  const struct vaio_plan_disk *p = &ch->plan;
  bool touched[VAIO_CLASS_COUNT] = { false };

  for (size_t pos = 0; pos < p->n_chain; pos++)
    touched[pos] = live_filter_changed (&ch->old, p, pos);
  for (size_t pos = 0; pos < p->n_chain; pos++)
    if (touched[pos] && apply_live_filter (ch, pos) == -1)
      return -1;
  if (vaio_disk_record_running (p) == -1)
    return -1;
  printf ("%s/%s: changed live (pid %ld unchanged):", p->vm->name,
          p->disk->name, (long)ch->pid);
  print_live_changes (ch);
  return 0;
}

static int
classify (const struct vaio_config *cfg, const struct vaio_host_filters *hf,
          const struct vaio_vm *vm, const struct vaio_disk *d,
          struct change *ch, struct vaio_diag *diag)
{
  memset (ch, 0, sizeof *ch);
  if (vaio_plan_disk (cfg, hf, vm, d, &ch->plan, diag) == -1)
    return -1;
  ch->pid = vaio_disk_pid (ch->plan.pidfile);
  if (ch->pid == 0)
    ch->kind = CHANGE_START;
  else if (running_parse (ch->plan.state_dir, &ch->old) == -1)
    {
      vaio_diag_add (diag, NULL,
                     "%s/%s: running (pid %ld) but its running record is "
                     "missing; stop it with vaioctl down first",
                     vm->name, d->name, (long)ch->pid);
      return -1;
    }
  else
    ch->kind = !same_filters (&ch->old, &ch->plan)       ? CHANGE_SWAP
               : same_argv (&ch->old, &ch->plan)         ? CHANGE_NONE
               : only_live_changes (&ch->old, &ch->plan) ? CHANGE_LIVE
                                                         : CHANGE_SWAP;
  return 0;
}

/* Stop a disk no longer in the config as `down` does: flush first (a
 * write-back filter would otherwise lose what it holds), then SIGTERM.
 * Only its paths are known: the default socket and state dir.
 */
/* Where a disk the config no longer names serves: the --unix=, --port=
 * and --ipaddr= its running record's argv gives (an explicit socket: or
 * port: is not where `up` puts sockets by default), else the default
 * socket <vmdir>/<disk>.sock.  d->address is set from the record and
 * owned by the caller.
 */
static int
recorded_endpoint (const char *state_dir, const char *vmdir,
                   struct vaio_disk *d, char **socket)
{
  struct running r;
  const char *v;

  *socket = NULL;
  if (running_parse (state_dir, &r) == 0)
    {
      if ((v = argv_value (r.argv, r.argc, "--unix")) != NULL)
        *socket = strdup (v);
      else if ((v = argv_value (r.argv, r.argc, "--port")) != NULL)
        {
          d->port = atoi (v);
          if ((v = argv_value (r.argv, r.argc, "--ipaddr")) != NULL)
            d->address = strdup (v);
        }
    }
  running_free (&r);
  if (*socket == NULL && d->port == 0
      && asprintf (socket, "%s/%s.sock", vmdir, d->name) == -1)
    return -1;
  return 0;
}

static void
stop_removed_disk (char *vm_name, char *disk_name, const char *vmdir,
                   const struct vaio_apply_options *o)
{
  struct vaio_vm vm = { .name = vm_name };
  struct vaio_disk d = { .name = disk_name };
  struct vaio_plan_disk p = { .vm = &vm, .disk = &d };
  struct vaio_diag diag = { 0 };
  pid_t pid;
  int r = -1;

  if (asprintf (&p.state_dir, "%s/%s", vmdir, disk_name) != -1
      && asprintf (&p.pidfile, "%s/nbdkit.pid", p.state_dir) != -1
      && recorded_endpoint (p.state_dir, vmdir, &d, &p.socket) == 0)
    {
      pid = vaio_disk_pid (p.pidfile);
      r = vaio_disk_stop (&p, o->timeout_ms, &diag);
      vaio_diag_print (&diag, stderr);
      if (r >= 0)
        printf ("%s/%s: stopped (no longer in the config; pid %ld)%s\n",
                vm_name, disk_name, (long)pid,
                r == 1 ? ", NOT flushed" : ", flushed");
      else
        fprintf (stderr, "vaioctl: %s/%s: nbdkit (pid %ld) still runs\n",
                 vm_name, disk_name, (long)pid);
    }
  vaio_diag_free (&diag);
  free (p.state_dir);
  free (p.pidfile);
  free (p.socket);
  free (d.address);
}

/* Stop every disk still running under a host's state dir that the config
 * no longer names (a VM or disk removed from the YAML).  The pidfile and
 * socket are where `up` put them: <state>/vms/VM/DISK{/nbdkit.pid,.sock}.
 */
static void
stop_unconfigured (const struct vaio_config *cfg, const struct vaio_host *h,
                   const struct vaio_apply_options *o)
{
  char *vmsdir, *pidfile;
  DIR *vms, *vmd;
  struct dirent *ve, *de;

  if (asprintf (&vmsdir, "%s/vms", h->state_dir) == -1)
    return;
  vms = opendir (vmsdir);
  while (vms && (ve = readdir (vms)) != NULL)
    {
      char *vmdir;
      if (ve->d_name[0] == '.'
          || asprintf (&vmdir, "%s/%s", vmsdir, ve->d_name) == -1)
        continue;
      vmd = opendir (vmdir);
      while (vmd && (de = readdir (vmd)) != NULL)
        {
          pid_t pid;
          if (de->d_name[0] == '.'
              || vaio_config_names_disk (cfg, h, ve->d_name, de->d_name)
              || asprintf (&pidfile, "%s/%s/nbdkit.pid", vmdir, de->d_name)
                     == -1)
            continue;
          pid = vaio_disk_pid (pidfile);
          if (pid > 0 && o->dry_run)
            printf ("%s/%s: stop (no longer in the config; pid %ld)\n",
                    ve->d_name, de->d_name, (long)pid);
          else if (pid > 0)
            stop_removed_disk (ve->d_name, de->d_name, vmdir, o);
          free (pidfile);
        }
      if (vmd)
        closedir (vmd);
      free (vmdir);
    }
  if (vms)
    closedir (vms);
  free (vmsdir);
}

int
vaio_apply (const struct vaio_config *cfg, const struct vaio_host_filters *hf,
            const struct vaio_apply_options *o)
{
  struct vaio_diag diag = { 0 };
  struct change *ch;
  size_t n = 0, total = 0;
  int r = 0;

  for (size_t v = 0; v < cfg->n_vms; v++)
    total += cfg->vms[v].n_disks;
  ch = calloc (total + 1, sizeof *ch);
  if (ch == NULL)
    return -1;

  /* Classify and check every disk before touching any. */
  for (size_t v = 0; v < cfg->n_vms; v++)
    for (size_t i = 0; i < cfg->vms[v].n_disks; i++)
      {
        if (classify (cfg, hf, &cfg->vms[v], &cfg->vms[v].disks[i], &ch[n],
                      &diag)
            == -1)
          r = -1;
        else if ((ch[n].kind == CHANGE_START || ch[n].kind == CHANGE_SWAP)
                 && vaio_host_in_maintenance (ch[n].plan.host))
          {
            /* As `up`: a host in maintenance starts no chain. */
            vaio_diag_add (&diag, NULL,
                           "vaioctl: %s/%s: host '%s' is in maintenance "
                           "mode; not %s",
                           ch[n].plan.vm->name, ch[n].plan.disk->name,
                           ch[n].plan.host->name,
                           ch[n].kind == CHANGE_START
                               ? "starting"
                               : "starting its new chain (swap)");
            r = -1;
          }
        else if (ch[n].kind == CHANGE_SWAP
                 && check_swap_safe (&ch[n], o, &diag) == -1)
          r = -1;
        else if (ch[n].kind == CHANGE_START
                 && vaio_disk_check_state (&ch[n].plan, false, &diag) == -1)
          r = -1;
        n++;
      }
  if (r == -1)
    {
      vaio_diag_print (&diag, stderr);
      fprintf (stderr, "vaioctl: apply refused: nothing was changed\n");
      goto out;
    }

  for (size_t i = 0; i < n; i++)
    {
      if (o->dry_run || ch[i].kind == CHANGE_NONE)
        {
          describe (&ch[i]);
          continue;
        }
      if (ch[i].kind == CHANGE_START)
        {
          struct vaio_diag d2 = { 0 };
          pid_t pid = vaio_disk_start (&ch[i].plan, o->timeout_ms, &d2);
          vaio_diag_print (&d2, stderr);
          vaio_diag_free (&d2);
          if (pid > 0)
            printf ("%s/%s: started (pid %ld)\n", ch[i].plan.vm->name,
                    ch[i].plan.disk->name, (long)pid);
          else
            r = -1;
        }
      else if (ch[i].kind == CHANGE_LIVE)
        {
          if (apply_live (&ch[i]) == -1)
            r = -1;
        }
      else if (swap_disk (&ch[i], o) == -1)
        r = -1;
    }
  for (size_t h = 0; h < cfg->n_hosts; h++)
    stop_unconfigured (cfg, &cfg->hosts[h], o);

out:
  for (size_t i = 0; i < n; i++)
    {
      vaio_plan_disk_free (&ch[i].plan);
      running_free (&ch[i].old);
      vaio_convert_free (ch[i].conv);
    }
  free (ch);
  vaio_diag_free (&diag);
  return r;
}

/* vaio-nbd supervisor: start, find and stop one nbdkit per VM disk. */
#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "meta.h"
#include "supervise.h"

static void
sleep_ms (int ms)
{
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

  nanosleep (&ts, NULL);
}

uint64_t
vaio_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Signed, for deadlines that may have passed. */
static int64_t
now_ms (void)
{
  return (int64_t)vaio_now_ms ();
}

/* Milliseconds left until deadline, at least 0. */
static int
left_ms (int64_t deadline)
{
  int64_t left = deadline - now_ms ();

  return left > 0 ? (int)(left > INT32_MAX ? INT32_MAX : left) : 0;
}

int
vaio_mkdir_private (const char *dir)
{
  char *copy = strdup (dir), *p;
  int r = 0;

  if (copy == NULL)
    return -1;
  /* Parents are created 0755-or-umask like mkdir -p; only the leaf, the
   * directory that holds this VM's (or disk's) state, must be private.
   */
  for (p = copy + 1; (p = strchr (p, '/')) != NULL; p++)
    {
      *p = '\0';
      if (mkdir (copy, 0755) == -1 && errno != EEXIST)
        r = -1;
      *p = '/';
    }
  if (mkdir (copy, 0700) == -1 && errno != EEXIST)
    r = -1;
  else if (chmod (copy, 0700) == -1)
    r = -1;
  free (copy);
  return r;
}

/* A process is our nbdkit if it is alive, not a zombie, and its comm is
 * "nbdkit": a pidfile left by a crash may name a recycled pid.
 */
static bool
is_live_nbdkit (pid_t pid)
{
  char path[64], buf[512];
  FILE *fp;
  bool ok = false;

  snprintf (path, sizeof path, "/proc/%ld/stat", (long)pid);
  fp = fopen (path, "r");
  if (fp == NULL)
    return false;
  if (fgets (buf, sizeof buf, fp) != NULL)
    {
      char *open = strchr (buf, '('), *close = strrchr (buf, ')');
      if (open && close && close[1] == ' ')
        ok = strncmp (open + 1, "nbdkit", (size_t)(close - open - 1)) == 0
             && close - open - 1 == 6 && close[2] != 'Z' && close[2] != 'X';
    }
  fclose (fp);
  return ok;
}

/* Exists and is not a zombie, whatever it runs: nbdkit may be reached
 * through a wrapper (its name is then not "nbdkit" until the last exec).
 */
static bool
is_live (pid_t pid)
{
  char path[64], buf[512], *close;
  FILE *fp;
  bool ok = false;

  snprintf (path, sizeof path, "/proc/%ld/stat", (long)pid);
  fp = fopen (path, "r");
  if (fp == NULL)
    return false;
  if (fgets (buf, sizeof buf, fp) != NULL
      && (close = strrchr (buf, ')')) != NULL && close[1] == ' ')
    ok = close[2] != 'Z' && close[2] != 'X';
  fclose (fp);
  return ok;
}

bool
vaio_disk_pid_alive (pid_t pid)
{
  return pid > 0 && is_live_nbdkit (pid);
}

pid_t
vaio_disk_pid (const char *pidfile)
{
  FILE *fp = fopen (pidfile, "r");
  long pid = 0;

  if (fp == NULL)
    return 0;
  if (fscanf (fp, "%ld", &pid) != 1 || pid <= 1)
    pid = 0;
  fclose (fp);
  if (pid && !is_live_nbdkit ((pid_t)pid))
    pid = 0;
  return (pid_t)pid;
}

/* Connect a unix socket to path and make sure the process listening on
 * it is pid: after a swap the socket path is reused, and an old chain
 * (held by the pause filter) must never pass for the new one.
 */
static int
connect_unix_of (const char *path, pid_t pid, char *err, size_t errlen)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  struct ucred cred = { 0 };
  socklen_t len = sizeof cred;
  int fd;

  if (strlen (path) >= sizeof sun.sun_path)
    {
      snprintf (err, errlen, "socket path too long: %s", path);
      return -1;
    }
  strcpy (sun.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1 || connect (fd, (struct sockaddr *)&sun, sizeof sun) == -1)
    {
      snprintf (err, errlen, "connect %s: %m", path);
      if (fd >= 0)
        close (fd);
      return -1;
    }
  if (pid > 0
      && (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1
          || cred.pid != pid))
    {
      snprintf (err, errlen, "%s is served by pid %ld, not by nbdkit pid %ld",
                path, (long)cred.pid, (long)pid);
      close (fd);
      return -1;
    }
  return fd;
}

/* Drive an asynchronous libnbd handle until its connection is ready (or
 * dead), for at most timeout_ms.
 */
static int
nbd_wait_ready (struct nbd_handle *nbd, int timeout_ms, char *err,
                size_t errlen)
{
  int64_t deadline = now_ms () + timeout_ms;

  while (nbd_aio_is_connecting (nbd) > 0 || nbd_aio_is_created (nbd) > 0)
    {
      int r = nbd_poll (nbd, left_ms (deadline));
      if (r == -1)
        break;
      if (r == 0 && left_ms (deadline) == 0)
        {
          snprintf (err, errlen, "no NBD handshake within %d ms", timeout_ms);
          return -1;
        }
    }
  if (nbd_aio_is_ready (nbd) > 0)
    return 0;
  snprintf (err, errlen, "NBD handshake failed: %s",
            nbd_get_error () ? nbd_get_error () : "connection closed");
  return -1;
}

/* An NBD connection to the disk, handshake done, within timeout_ms.  For a
 * unix socket the listener must be pid (when pid > 0).  NULL with err set
 * on failure.
 */
static struct nbd_handle *
disk_connect (const struct vaio_plan_disk *p, pid_t pid, int timeout_ms,
              char *err, size_t errlen)
{
  struct nbd_handle *nbd = nbd_create ();
  int r = -1;

  if (nbd == NULL)
    {
      snprintf (err, errlen, "libnbd: %s", nbd_get_error ());
      return NULL;
    }
  if (p->disk->port == 0)
    {
      int fd = connect_unix_of (p->socket, pid, err, errlen);
      /* libnbd runs the handshake as far as it can inside this call, so
       * a refusal may already show here.
       */
      /* The handle owns fd from here on, even when the call fails. */
      if (fd >= 0 && (r = nbd_aio_connect_socket (nbd, fd)) == -1)
        snprintf (err, errlen, "NBD handshake failed: %s", nbd_get_error ());
    }
  else
    {
      char port[16];
      snprintf (port, sizeof port, "%d", p->disk->port);
      r = nbd_aio_connect_tcp (
          nbd, p->disk->address ? p->disk->address : "127.0.0.1", port);
      if (r == -1)
        snprintf (err, errlen, "connect port %s: %s", port, nbd_get_error ());
    }
  if (r == -1 || nbd_wait_ready (nbd, timeout_ms, err, errlen) == -1)
    {
      nbd_close (nbd);
      return NULL;
    }
  return nbd;
}

/* Does the disk serve?  A bare connect() succeeds as soon as nbdkit
 * listens, before any filter has opened: a luks filter with a wrong
 * passphrase, or a cache refusing its cache file, fail every NBD
 * handshake while nbdkit listens on.  Serving means a client completes
 * the handshake and learns the export's size.  0, or -1 with err set.
 */
static int
disk_serves (const struct vaio_plan_disk *p, pid_t pid, int timeout_ms,
             char *err, size_t errlen)
{
  struct nbd_handle *nbd = disk_connect (p, pid, timeout_ms, err, errlen);
  int64_t size;

  if (nbd == NULL)
    return -1;
  size = nbd_get_size (nbd);
  if (size < 0)
    snprintf (err, errlen, "cannot read the export size: %s", nbd_get_error ());
  nbd_close (nbd);
  return size < 0 ? -1 : 0;
}

/* The last lines nbdkit logged since offset since (why it failed), for
 * error messages: the tail, since a chain that keeps refusing handshakes
 * logs one error per attempt and the newest say the most.
 */
static void
log_tail (const char *logfile, long since, struct vaio_diag *diag,
          const char *who)
{
  enum
  {
    TAIL_BYTES = 4096,
    TAIL_LINES = 12
  };
  char buf[TAIL_BYTES + 1], *lines[TAIL_LINES], *line, *save = NULL;
  FILE *fp = fopen (logfile, "r");
  long start = since, end;
  size_t n, count = 0;

  if (fp == NULL)
    return;
  if (fseek (fp, 0, SEEK_END) == 0 && (end = ftell (fp)) - since > TAIL_BYTES)
    start = end - TAIL_BYTES;
  fseek (fp, start, SEEK_SET);
  n = fread (buf, 1, TAIL_BYTES, fp);
  fclose (fp);
  buf[n] = '\0';
  line = buf;
  if (start > since && (line = strchr (buf, '\n')) != NULL)
    line++; /* began mid-line */
  for (line = line ? strtok_r (line, "\n", &save) : NULL; line;
       line = strtok_r (NULL, "\n", &save))
    lines[count++ % TAIL_LINES] = line;
  for (size_t i = count > TAIL_LINES ? count - TAIL_LINES : 0; i < count; i++)
    vaio_diag_add (diag, NULL, "%s: nbdkit: %s", who, lines[i % TAIL_LINES]);
}

int
vaio_disk_write_record (const char *state_dir, const char *text)
{
  char *tmp, *path;
  FILE *fp;
  int r = -1;

  if (asprintf (&tmp, "%s/.running.tmp", state_dir) == -1)
    return -1;
  if (asprintf (&path, "%s/running", state_dir) == -1)
    {
      free (tmp);
      return -1;
    }
  fp = fopen (tmp, "w");
  if (fp != NULL)
    {
      fchmod (fileno (fp), 0600);
      fputs (text, fp);
      if (fclose (fp) == 0 && rename (tmp, path) == 0)
        r = 0;
    }
  free (tmp);
  free (path);
  return r;
}

int
vaio_disk_record_running (const struct vaio_plan_disk *p)
{
  char *text = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&text, &len);
  int r;

  if (fp == NULL)
    return -1;
  fprintf (fp, "policy %s\n", p->policy->name);
  for (size_t i = 0; i < p->n_chain; i++)
    fprintf (fp, "filter %s %s %s %s\n", vaio_class_name (p->chain[i]),
             p->filters[i]->name, p->filters[i]->version,
             p->filters[i]->sha256);
  if (p->tmpdir_env)
    fprintf (fp, "env %s\n", p->tmpdir_env);
  for (size_t i = 0; i < p->argc; i++)
    fprintf (fp, "argv %s\n", p->argv[i]);
  if (fclose (fp) != 0)
    {
      free (text);
      return -1;
    }
  r = vaio_disk_write_record (p->state_dir, text);
  free (text);
  return r;
}

char *
vaio_disk_running_record (const char *state_dir)
{
  char *path, *buf = NULL;
  size_t len = 0;
  FILE *fp;

  if (asprintf (&path, "%s/running", state_dir) == -1)
    return NULL;
  fp = fopen (path, "r");
  free (path);
  if (fp == NULL)
    return NULL;
  if (getdelim (&buf, &len, '\0', fp) == -1)
    {
      free (buf);
      buf = NULL;
    }
  fclose (fp);
  return buf;
}

/* An explicit socket's directory, when it does not exist yet, is made
 * owner-only like the VM's directory (validate kept other VMs' sockets
 * out of it).  One that exists is left as it is: it may be /run.
 */
static int
make_socket_dir (const struct vaio_plan_disk *p, struct vaio_diag *diag)
{
  const char *slash = p->socket ? strrchr (p->socket, '/') : NULL;
  char *dir;
  struct stat st;
  int r = 0;

  if (slash == NULL || slash == p->socket)
    return 0;
  dir = strndup (p->socket, (size_t)(slash - p->socket));
  if (dir == NULL)
    return -1;
  if (stat (dir, &st) == -1 && vaio_mkdir_private (dir) == -1)
    {
      vaio_diag_add (diag, NULL, "%s: cannot create the socket's directory: %m",
                     dir);
      r = -1;
    }
  free (dir);
  return r;
}

static int
make_dirs (const struct vaio_plan_disk *p, const bool *has,
           struct vaio_diag *diag)
{
  char *dir;

  if (vaio_mkdir_private (p->vm_dir) == -1
      || vaio_mkdir_private (p->state_dir) == -1)
    {
      vaio_diag_add (diag, NULL, "%s: cannot create state directory: %m",
                     p->state_dir);
      return -1;
    }
  if (make_socket_dir (p, diag) == -1)
    return -1;
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    {
      if (!has[c])
        continue;
      if (asprintf (&dir, "%s/%s", p->state_dir, vaio_class_name (c)) == -1)
        return -1;
      if (vaio_mkdir_private (dir) == -1)
        {
          vaio_diag_add (diag, NULL, "%s: cannot create: %m", dir);
          free (dir);
          return -1;
        }
      free (dir);
    }
  return 0;
}

/* --- Filter state a chain leaves behind ---
 *
 * A replication filter keeps its journal and change bitmap, a vaio-cache
 * its cache, across restarts: that is what makes a restart cheap.  But
 * the state is only current while every write reaches the disk through
 * that filter.  A chain started without it (replication or caching
 * removed, by apply or by down/edit/up) writes the image behind the
 * state's back: when the class comes back, the old bitmap tells the
 * replication filter the replica is in sync (it is not: no full sync),
 * and a cleanly stopped cache serves every block it holds (older than
 * the image).  So each start records in <state>/chain-classes the classes
 * of the chain it starts ("class NAME" lines, and "cache PATH" for a
 * vaio-cache file), before nbdkit runs; the next start compares.  A class
 * the recorded chain lacked has stale state: it is set aside
 * (<class>.stale-<unix time>): replication then syncs the whole disk,
 * the cache starts empty.  Without a record (state from before it was
 * kept) existing state may be stale, and is set aside the same way.
 *
 * A cache may hold dirty data, the only copy of acknowledged writes: it
 * is never set aside with them, and a chain without caching does not
 * start on an image older than its cache.  What vaio-cache's metadata
 * says decides (nbdkit-filters/caching/meta.h): a superblock written by a
 * clean shutdown counts its dirty blocks; after a kill, the metadata
 * blocks' dirty entries are what vaio-cache would load and destage.
 */

struct last_chain
{
  bool known;   /* chain-classes, or the running record, was read */
  bool classes; /* it was chain-classes: cache is what that chain used */
  bool had[VAIO_CLASS_COUNT];
  char cache[4096 + 8]; /* "" when the chain recorded no cache file */
  char image[4096 + 8]; /* the image it served; "" when not recorded */
};

static void
read_last_chain (const char *state_dir, struct last_chain *l)
{
  char path[4096], line[4096 + 8], name[64];
  enum vaio_class c;
  FILE *fp;

  memset (l, 0, sizeof *l);
  snprintf (path, sizeof path, "%s/chain-classes", state_dir);
  fp = fopen (path, "r");
  /* A disk started before chain-classes was kept, and running now: its
   * running record names the chain's filters and its image.
   */
  l->classes = fp != NULL;
  if (fp == NULL)
    {
      snprintf (path, sizeof path, "%s/running", state_dir);
      fp = fopen (path, "r");
    }
  if (fp == NULL)
    return;
  l->known = true;
  while (fgets (line, sizeof line, fp))
    {
      line[strcspn (line, "\n")] = '\0';
      if ((sscanf (line, "class %63s", name) == 1
           || sscanf (line, "filter %63s", name) == 1)
          && vaio_class_parse (name, &c) == 0)
        l->had[c] = true;
      else if (strncmp (line, "argv file=", 10) == 0)
        snprintf (l->image, sizeof l->image, "%s", line + 10);
      else if (strncmp (line, "cache ", 6) == 0)
        snprintf (l->cache, sizeof l->cache, "%s", line + 6);
      else if (strncmp (line, "image ", 6) == 0)
        snprintf (l->image, sizeof l->image, "%s", line + 6);
    }
  fclose (fp);
}

/* The value of "key=value" among the plan's argv, or NULL. */
static const char *
plan_param (const struct vaio_plan_disk *p, const char *key)
{
  size_t len = strlen (key);

  for (size_t i = 0; i < p->argc; i++)
    if (strncmp (p->argv[i], key, len) == 0 && p->argv[i][len] == '=')
      return p->argv[i] + len + 1;
  return NULL;
}

/* Where the plan's vaio-cache keeps its cache (cache-device, cache-file,
 * else cache.img in cache-state-dir); "" when the plan names none (no
 * vaio-cache: nbdkit's cache filter keeps nothing across restarts).
 */
static void
plan_cache_path (const struct vaio_plan_disk *p, char *buf, size_t len)
{
  const char *v;

  buf[0] = '\0';
  if ((v = plan_param (p, "cache-device")) != NULL
      || (v = plan_param (p, "cache-file")) != NULL)
    snprintf (buf, len, "%s", v);
  else if ((v = plan_param (p, "cache-state-dir")) != NULL)
    snprintf (buf, len, "%s/cache.img", v);
}

/* The whole of a small text file, or NULL (missing). */
static char *
read_text (const char *path)
{
  FILE *fp = fopen (path, "r");
  char *buf = NULL;
  size_t len = 0;

  if (fp == NULL)
    return NULL;
  if (getdelim (&buf, &len, '\0', fp) == -1)
    {
      free (buf);
      buf = strdup ("");
    }
  fclose (fp);
  return buf;
}

/* A new file for writing, owner-only from the start (a leftover from a
 * crash is replaced).
 */
static FILE *
open_private (const char *path)
{
  int fd;
  FILE *fp;

  unlink (path);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd == -1)
    return NULL;
  if ((fp = fdopen (fd, "w")) == NULL)
    close (fd);
  return fp;
}

/* A start that failed puts the record it replaced back: the chain it
 * names did not serve, and the one that runs next (a rollback) must be
 * compared with the last chain that did.
 */
static void
restore_chain_classes (const struct vaio_plan_disk *p, const char *prev)
{
  char path[4096], tmp[4200];
  FILE *fp;

  snprintf (path, sizeof path, "%s/chain-classes", p->state_dir);
  if (prev == NULL)
    {
      unlink (path);
      return;
    }
  snprintf (tmp, sizeof tmp, "%s/.chain-classes.tmp", p->state_dir);
  fp = open_private (tmp);
  if (fp == NULL)
    return;
  fputs (prev, fp);
  if (fflush (fp) != 0 || fsync (fileno (fp)) != 0)
    {
      fclose (fp);
      unlink (tmp);
      return;
    }
  if (fclose (fp) != 0 || rename (tmp, path) == -1)
    unlink (tmp);
}

static int
write_chain_classes (const struct vaio_plan_disk *p, const bool *has)
{
  char path[4096], tmp[4200], cache[4096];
  FILE *fp;

  snprintf (path, sizeof path, "%s/chain-classes", p->state_dir);
  snprintf (tmp, sizeof tmp, "%s/.chain-classes.tmp", p->state_dir);
  fp = open_private (tmp);
  if (fp == NULL)
    return -1;
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    if (has[c])
      fprintf (fp, "class %s\n", vaio_class_name (c));
  plan_cache_path (p, cache, sizeof cache);
  if (has[VAIO_CLASS_CACHING] && cache[0])
    fprintf (fp, "cache %s\n", cache);
  fprintf (fp, "image %s\n", p->disk->image);
  if (fflush (fp) != 0 || fsync (fileno (fp)) != 0)
    {
      fclose (fp);
      unlink (tmp);
      return -1;
    }
  if (fclose (fp) != 0 || rename (tmp, path) == -1)
    {
      unlink (tmp);
      return -1;
    }
  return 0;
}

enum cache_verdict
{
  CACHE_ABSENT, /* no cache, or one never written */
  CACHE_CLEAN,  /* no dirty data */
  CACHE_DIRTY,  /* holds writes not in the image */
  CACHE_UNKNOWN /* unreadable or corrupt: may hold dirty data */
};

/* Read both copies of a record (zeros past the end of the file). */
static int
read_rec (int fd, uint64_t off0, uint64_t off1, unsigned char *a,
          unsigned char *b)
{
  ssize_t n;

  memset (a, 0, VCACHE_REC_SIZE);
  memset (b, 0, VCACHE_REC_SIZE);
  if ((n = pread (fd, a, VCACHE_REC_SIZE, (off_t)off0)) < 0
      || (n = pread (fd, b, VCACHE_REC_SIZE, (off_t)off1)) < 0)
    return -1;
  return 0; /* short reads leave zeros: a record never written */
}

/* Dirty blocks vaio-cache's metadata records: what a start after a kill
 * would load as dirty and destage.  -1: a metadata block is unreadable.
 */
static int64_t
cache_dirty_entries (int fd, const struct vcache_super *sb, char *why,
                     size_t len)
{
  static unsigned char a[VCACHE_REC_SIZE], b[VCACHE_REC_SIZE];
  struct vcache_entry e0[VCACHE_ENTRIES_PER_MD], e1[VCACHE_ENTRIES_PER_MD];
  int64_t dirty = 0;

  if ((uint64_t)sb->n_md_blocks * VCACHE_ENTRIES_PER_MD < sb->n_slots)
    {
      snprintf (why, len, "its superblock's geometry is inconsistent");
      return -1;
    }
  for (uint32_t i = 0; i < sb->n_md_blocks; i++)
    {
      uint32_t first = i * VCACHE_ENTRIES_PER_MD;
      unsigned n = sb->n_slots - first < VCACHE_ENTRIES_PER_MD
                       ? sb->n_slots - first
                       : VCACHE_ENTRIES_PER_MD;
      uint64_t seq0 = 0, seq1 = 0, gen0 = 0, gen1 = 0;
      const char *why0 = "", *why1 = "";
      bool ok0, ok1;
      int pick;

      if (sb->n_slots <= first)
        break;
      if (read_rec (fd, vcache_md_offset (i, 0), vcache_md_offset (i, 1), a, b)
          == -1)
        {
          snprintf (why, len, "cannot read metadata block %u: %m", i);
          return -1;
        }
      ok0 = vcache_md_decode (a, i, e0, n, &seq0, &gen0, &why0) == 0;
      ok1 = vcache_md_decode (b, i, e1, n, &seq1, &gen1, &why1) == 0;
      pick = vcache_pick_copy (ok0, seq0, ok1, seq1);
      if (pick == -1)
        {
          snprintf (why, len, "its metadata block %u is corrupt (%s / %s)", i,
                    why0, why1);
          return -1;
        }
      for (unsigned k = 0; k < n; k++)
        {
          uint32_t f = pick ? e1[k].flags : e0[k].flags;
          if ((f & VCACHE_ENTRY_VALID) && (f & VCACHE_ENTRY_DIRTY))
            dirty++;
        }
    }
  return dirty;
}

static enum cache_verdict
cache_verdict (const char *path, char *why, size_t len)
{
  static unsigned char a[VCACHE_REC_SIZE], b[VCACHE_REC_SIZE];
  struct vcache_super s0, s1, sb;
  uint64_t seq0 = 0, seq1 = 0;
  const char *why0 = "", *why1 = "";
  enum cache_verdict v;
  bool ok0, ok1;
  int fd, pick;
  int64_t dirty;

  why[0] = '\0';
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1 && errno == ENOENT)
    return CACHE_ABSENT;
  if (fd == -1)
    {
      snprintf (why, len, "it cannot be opened: %m");
      return CACHE_UNKNOWN;
    }
  if (read_rec (fd, vcache_super_offset (0), vcache_super_offset (1), a, b)
      == -1)
    {
      snprintf (why, len, "its superblock cannot be read: %m");
      close (fd);
      return CACHE_UNKNOWN;
    }
  if (vcache_rec_is_blank (a) && vcache_rec_is_blank (b))
    {
      close (fd);
      return CACHE_ABSENT;
    }
  /* Decode first: seq0 and seq1 are passed by value. */
  ok0 = vcache_super_decode (a, &s0, &seq0, &why0) == 0;
  ok1 = vcache_super_decode (b, &s1, &seq1, &why1) == 0;
  pick = vcache_pick_copy (ok0, seq0, ok1, seq1);
  if (pick == -1)
    {
      snprintf (why, len, "its superblock is corrupt (%s / %s)", why0, why1);
      close (fd);
      return CACHE_UNKNOWN;
    }
  sb = pick ? s1 : s0;
  if (sb.clean == 1)
    {
      v = sb.dirty_slots ? CACHE_DIRTY : CACHE_CLEAN;
      if (sb.dirty_slots)
        snprintf (why, len,
                  "holds %llu dirty blocks (its last shutdown did not "
                  "destage them)",
                  (unsigned long long)sb.dirty_slots);
    }
  else if ((dirty = cache_dirty_entries (fd, &sb, why, len)) == -1)
    v = CACHE_UNKNOWN;
  else
    {
      v = dirty ? CACHE_DIRTY : CACHE_CLEAN;
      if (dirty)
        snprintf (why, len, "holds %lld dirty blocks (its nbdkit was killed)",
                  (long long)dirty);
    }
  close (fd);
  return v;
}

static bool
exists (const char *path)
{
  return access (path, F_OK) == 0;
}

/* Rename what to <what>.stale-<unix time> (-N when that is taken), the
 * new name in aside.
 */
static int
set_aside (const char *what, char *aside, size_t len)
{
  long long t = (long long)time (NULL);

  snprintf (aside, len, "%s.stale-%lld", what, t);
  for (int n = 1; exists (aside) && n < 1000; n++)
    snprintf (aside, len, "%s.stale-%lld-%d", what, t, n);
  return rename (what, aside);
}

/* A vaio-cache on a device cannot be renamed: blank its superblock
 * records, which vaio-cache reads as a new cache to format.
 */
static int
blank_cache_device (const char *dev)
{
  static const unsigned char zero[2 * VCACHE_REC_SIZE];
  int fd = open (dev, O_WRONLY | O_CLOEXEC), r = -1;

  if (fd == -1)
    return -1;
  if (pwrite (fd, zero, sizeof zero, 0) == (ssize_t)sizeof zero
      && fsync (fd) == 0)
    r = 0;
  close (fd);
  return r;
}

/* The state of class c, left by the last chain, is current for the
 * chain p starts: that chain had the class and served the same image.
 */
static bool
state_current (const struct last_chain *l, enum vaio_class c,
               const struct vaio_plan_disk *p)
{
  return l->known && l->had[c]
         && (l->image[0] == '\0' || strcmp (l->image, p->disk->image) == 0);
}

static const char *
stale_reason (const struct last_chain *l, enum vaio_class c, char *buf,
              size_t len)
{
  if (l->known && l->had[c])
    snprintf (buf, len,
              "the last chain started on this disk served another image "
              "(%s), so this state describes that image",
              l->image);
  else if (l->known)
    snprintf (buf, len,
              "the last chain started on this disk ran without %s, so "
              "writes made meanwhile bypassed it",
              vaio_class_name (c));
  else
    snprintf (buf, len,
              "no record says which filters the last chain on this disk "
              "had (chain-classes is missing), so writes may have bypassed "
              "it");
  return buf;
}

/* Set aside a class's stale state dir, saying so and why. */
static int
set_aside_class (const struct vaio_plan_disk *p, enum vaio_class c,
                 const char *reason, const char *then, struct vaio_diag *diag)
{
  char dir[4096], aside[4200];

  snprintf (dir, sizeof dir, "%s/%s", p->state_dir, vaio_class_name (c));
  if (!exists (dir))
    return 0;
  if (set_aside (dir, aside, sizeof aside) == -1)
    {
      vaio_diag_add (diag, NULL, "%s/%s: cannot set aside stale %s: %m",
                     p->vm->name, p->disk->name, dir);
      return -1;
    }
  printf ("%s/%s: %s state set aside (%s -> %s): %s; %s\n", p->vm->name,
          p->disk->name, vaio_class_name (c), dir, aside, reason, then);
  fflush (stdout);
  return 0;
}

/* The replication filter's state is all in its state dir. */
static int
prepare_replication (const struct vaio_plan_disk *p, const struct last_chain *l,
                     bool move, struct vaio_diag *diag)
{
  char dir[4096], reason[4608];

  snprintf (dir, sizeof dir, "%s/replication", p->state_dir);
  if (state_current (l, VAIO_CLASS_REPLICATION, p) || !exists (dir) || !move)
    return 0;
  return set_aside_class (
      p, VAIO_CLASS_REPLICATION,
      stale_reason (l, VAIO_CLASS_REPLICATION, reason, sizeof reason),
      "the replica gets a full initial sync", diag);
}

/* Starting with caching: a cache the last chain did not use is stale. */
static int
prepare_caching (const struct vaio_plan_disk *p, const struct last_chain *l,
                 bool move, struct vaio_diag *diag)
{
  char dir[4096], cache[4096], why[512], reason[4608], aside[4200];
  enum cache_verdict v;
  bool in_dir, moved;
  struct stat st = { 0 };

  snprintf (dir, sizeof dir, "%s/caching", p->state_dir);
  plan_cache_path (p, cache, sizeof cache);
  in_dir
      = strncmp (cache, dir, strlen (dir)) == 0 && cache[strlen (dir)] == '/';
  /* The same class is not enough: a cache the last chain did not use
   * (another cache-file, or nbdkit's cache filter in between) missed the
   * writes made through the other one.
   */
  moved = state_current (l, VAIO_CLASS_CACHING, p) && l->classes
          && strcmp (l->cache, cache) != 0;
  if (state_current (l, VAIO_CLASS_CACHING, p) && !moved)
    return 0;
  /* Moved: only the planned cache, if it exists, is stale; the state
   * dir is the current chain's.
   */
  if (!(cache[0] && exists (cache)) && (moved || !exists (dir)))
    return 0;
  if (moved)
    snprintf (reason, sizeof reason,
              "the last chain started on this disk cached in %s, not "
              "here, so writes made meanwhile bypassed this cache",
              l->cache[0] ? l->cache : "a cache of nbdkit's own filter");
  else
    stale_reason (l, VAIO_CLASS_CACHING, reason, sizeof reason);
  v = cache[0] ? cache_verdict (cache, why, sizeof why) : CACHE_ABSENT;
  if (v == CACHE_DIRTY || v == CACHE_UNKNOWN)
    {
      vaio_diag_add (diag, NULL,
                     "%s/%s: refusing to start with caching: the cache %s "
                     "may be stale (%s), but %s: its blocks may be older "
                     "than the image (destaging them would overwrite newer "
                     "data) or the only copy of acknowledged writes "
                     "(discarding them would lose them); vaioctl does "
                     "neither: move the cache aside by hand once you know "
                     "which holds the newest data",
                     p->vm->name, p->disk->name, cache, reason,
                     why[0] ? why : "it may hold dirty data");
      return -1;
    }
  if (!move)
    return 0;
  if (cache[0] && (!in_dir || moved) && exists (cache))
    {
      int r = stat (cache, &st) == 0 && S_ISBLK (st.st_mode)
                  ? blank_cache_device (cache)
                  : set_aside (cache, aside, sizeof aside);
      if (r == -1)
        {
          vaio_diag_add (diag, NULL,
                         "%s/%s: cannot set aside stale cache %s: %m",
                         p->vm->name, p->disk->name, cache);
          return -1;
        }
      printf ("%s/%s: stale cache %s %s: %s; it starts empty\n", p->vm->name,
              p->disk->name, cache,
              S_ISBLK (st.st_mode) ? "blanked (its superblock zeroed)"
                                   : "set aside",
              reason);
    }
  if (moved)
    return 0;
  return set_aside_class (p, VAIO_CLASS_CACHING, reason,
                          "the cache starts empty", diag);
}

/* Starting without caching: the image alone must be the newest data. */
static int
check_no_dirty_cache (const struct vaio_plan_disk *p,
                      const struct last_chain *l, struct vaio_diag *diag)
{
  char cache[4200], why[512];
  enum cache_verdict v;

  if (l->cache[0])
    snprintf (cache, sizeof cache, "%s", l->cache);
  else
    snprintf (cache, sizeof cache, "%s/caching/cache.img", p->state_dir);
  v = cache_verdict (cache, why, sizeof why);
  if (v != CACHE_DIRTY && v != CACHE_UNKNOWN)
    return 0;
  vaio_diag_add (diag, NULL,
                 "%s/%s: refusing to start without caching: the cache %s "
                 "%s: writes that are not in the image yet, so the guest "
                 "would read older data; bring the disk up with its caching "
                 "policy so the cache destages (vaioctl down destages it), "
                 "then remove caching",
                 p->vm->name, p->disk->name, cache,
                 v == CACHE_DIRTY ? why
                                  : "cannot be read to tell whether it "
                                    "holds dirty data");
  if (v == CACHE_UNKNOWN)
    vaio_diag_add (diag, NULL, "%s/%s: %s: %s", p->vm->name, p->disk->name,
                   cache, why);
  return -1;
}

/* Before a chain with classes has starts: refuse (-1, diag) when the
 * filter state left behind cannot be used or dropped safely, and (move)
 * set aside state that is stale.  cache_in_use: the running chain still
 * serves through that cache (a swap destages it before the new chain
 * starts), so its present dirty data is not a reason to refuse.
 */
static int
prepare_class_state (const struct vaio_plan_disk *p, const bool *has, bool move,
                     bool cache_in_use, struct vaio_diag *diag)
{
  struct last_chain l;
  int r = 0;

  read_last_chain (p->state_dir, &l);
  if (has[VAIO_CLASS_CACHING])
    r = prepare_caching (p, &l, move, diag);
  else if (!cache_in_use)
    r = check_no_dirty_cache (p, &l, diag);
  if (r == 0 && has[VAIO_CLASS_REPLICATION])
    r = prepare_replication (p, &l, move, diag);
  return r;
}

int
vaio_disk_check_state (const struct vaio_plan_disk *p, bool cache_in_use,
                       struct vaio_diag *diag)
{
  bool has[VAIO_CLASS_COUNT] = { false };

  for (size_t i = 0; i < p->n_chain; i++)
    has[p->chain[i]] = true;
  return prepare_class_state (p, has, false, cache_in_use, diag);
}

static int
pidfd_of (pid_t pid)
{
  return (int)syscall (SYS_pidfd_open, pid, 0);
}

/* SIGKILL the process behind pidfd (whatever it is doing: not yet
 * exec'd, starting, serving) and wait up to 5 s until it is gone, so the
 * socket is free for whatever starts next on it.
 */
static void
kill_pidfd (int pidfd)
{
  struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

  syscall (SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  poll (&pfd, 1, 5000);
}

/* Double fork so nbdkit is not our child (it outlives vaioctl), in its
 * own session, stdin from /dev/null, stdout and stderr to the log.  The
 * intermediate child sends nbdkit's pid through one pipe.  The other,
 * close-on-exec, reaches end-of-file when the grandchild's exec succeeded,
 * or carries its errno when exec failed (two pipes: the grandchild may
 * report before the intermediate child does).  So we know nbdkit runs,
 * however slowly the exec came: a fixed grace period guessed wrong and
 * left a stray nbdkit.  Returns the pid, with *exec_errno 0 once exec'd,
 * ETIMEDOUT if not exec'd within timeout_ms, or exec's errno; -1 when
 * nothing was started.
 */
/* In the child, before exec: the listener becomes fd 3 with
 * LISTEN_FDS/LISTEN_PID set, nbdkit's socket activation.  listen() again
 * makes this process (nbdkit after the exec) the socket's peer
 * credentials, so clients can still check who serves it.
 */
static void
hand_over_listener (int listen_fd, int *keep_fd)
{
  char pid[32];

  if (*keep_fd == 3)
    *keep_fd = fcntl (*keep_fd, F_DUPFD_CLOEXEC, 4);
  if (listen_fd != 3)
    dup2 (listen_fd, 3);
  fcntl (3, F_SETFD, 0);
  listen (3, SOMAXCONN);
  snprintf (pid, sizeof pid, "%ld", (long)getpid ());
  setenv ("LISTEN_PID", pid, 1);
  setenv ("LISTEN_FDS", "1", 1);
}

/* The plan's argv without --unix=PATH: nbdkit refuses -U together with
 * socket activation.  Called in the child only (the copy is not freed).
 */
static char **
argv_without_unix (const struct vaio_plan_disk *p)
{
  char **argv = calloc (p->argc + 1, sizeof *argv);
  size_t n = 0;

  if (argv == NULL)
    return p->argv;
  for (size_t i = 0; i < p->argc; i++)
    if (strncmp (p->argv[i], "--unix=", 7) != 0)
      argv[n++] = p->argv[i];
  return argv;
}

/* nbdkit sets its umask to 022 before it binds its socket (the child's
 * 077 does not survive), so the socket is made owner-only here once
 * nbdkit has bound it.  The directory holding it is 0700 already.
 */
static void
restrict_socket (const struct vaio_plan_disk *p)
{
  struct stat st;

  if (p->socket && lstat (p->socket, &st) == 0 && S_ISSOCK (st.st_mode))
    chmod (p->socket, 0600);
}

static pid_t
spawn_detached (const struct vaio_plan_disk *p, int logfd, int listen_fd,
                int timeout_ms, int *exec_errno)
{
  int64_t deadline = now_ms () + timeout_ms;
  struct pollfd pfd;
  int pids[2], exec[2] = { -1, -1 }, e = 0;
  pid_t child, pid = -1;
  ssize_t n;

  if (pipe2 (pids, O_CLOEXEC) == -1)
    return -1;
  if (pipe2 (exec, O_CLOEXEC) == -1 || (child = fork ()) == -1)
    {
      close (pids[0]);
      close (pids[1]);
      if (exec[0] >= 0)
        {
          close (exec[0]);
          close (exec[1]);
        }
      return -1;
    }
  if (child == 0)
    {
      pid_t gc;
      setsid ();
      gc = fork ();
      if (gc == 0)
        {
          int null = open ("/dev/null", O_RDONLY);
          sigset_t none;

          /* exec keeps the signal mask: apply blocks SIGTERM while it
           * swaps, and an nbdkit started then would ignore down's
           * SIGTERM (killed after --timeout, its filters never closed).
           */
          sigemptyset (&none);
          sigprocmask (SIG_SETMASK, &none, NULL);
          dup2 (null, 0);
          dup2 (logfd, 1);
          dup2 (logfd, 2);
          umask (077);
          if (p->tmpdir_env)
            putenv (p->tmpdir_env);
          if (listen_fd >= 0)
            {
              hand_over_listener (listen_fd, &exec[1]);
              execvp (p->argv[0], argv_without_unix (p));
            }
          else
            execvp (p->argv[0], p->argv);
          e = errno;
          dprintf (2, "vaioctl: exec %s: %m\n", p->argv[0]);
          if (write (exec[1], &e, sizeof e) != (ssize_t)sizeof e)
            _exit (126);
          _exit (127);
        }
      if (write (pids[1], &gc, sizeof gc) != (ssize_t)sizeof gc)
        _exit (1);
      _exit (gc == -1);
    }
  close (pids[1]);
  close (exec[1]);
  if (read (pids[0], &pid, sizeof pid) != (ssize_t)sizeof pid || pid <= 0)
    pid = -1;
  close (pids[0]);
  waitpid (child, NULL, 0);
  *exec_errno = ETIMEDOUT;
  pfd.fd = exec[0];
  pfd.events = POLLIN;
  while (pid > 0 && poll (&pfd, 1, left_ms (deadline)) == 1)
    {
      n = read (exec[0], &e, sizeof e);
      if (n == -1 && errno == EINTR)
        continue;
      *exec_errno = n == (ssize_t)sizeof e ? e : 0;
      break;
    }
  close (exec[0]);
  return pid;
}

/* 0 when path is absent or a socket (not following a symlink), else -1
 * (errno EEXIST when something else is there).
 */
static int
socket_or_absent (const char *path)
{
  struct stat st;

  if (lstat (path, &st) == -1)
    return errno == ENOENT ? 0 : -1;
  if (S_ISSOCK (st.st_mode))
    return 0;
  errno = EEXIST;
  return -1;
}

/* Remove path only if it is a socket: a socket path that names an image
 * or any other file by mistake must never cost that file.  0 when
 * removed or absent, else -1 (EEXIST: not a socket, left in place).
 */
static int
unlink_socket (const char *path)
{
  if (socket_or_absent (path) == -1)
    return -1;
  return unlink (path) == -1 && errno != ENOENT ? -1 : 0;
}

/* Remove what a previous nbdkit of this disk left: a socket (unless it is
 * the listener being handed over) or pidfile (nbdkit would fail to bind,
 * or we would think it is up), and settings
 * files written by `apply` for the previous process (they would override
 * the parameters this one starts with).
 */
static void
remove_leftovers (const struct vaio_plan_disk *p, const bool *has,
                  bool keep_socket)
{
  if (p->socket && !keep_socket)
    unlink_socket (p->socket);
  unlink (p->pidfile);
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    {
      char *settings;
      if (has[c]
          && asprintf (&settings, "%s/%s/settings", p->state_dir,
                       vaio_class_name (c))
                 != -1)
        {
          unlink (settings);
          free (settings);
        }
    }
  /* A drain request left by an apply that died mid-swap would have the
   * new chain's cache destage everything, write-back in name only.
   */
  if (has[VAIO_CLASS_CACHING])
    {
      char *drain;
      if (asprintf (&drain, "%s/caching/drain", p->state_dir) != -1)
        {
          unlink (drain);
          free (drain);
        }
    }
}

/* Wait until the nbdkit we started serves (see disk_serves), until
 * deadline.  Handshakes that fail are retried with a growing pause (a
 * refusing chain logs an error for each).  0, or -1 with why set.
 */
static int
wait_serving (const struct vaio_plan_disk *p, pid_t pid, int64_t deadline,
              char *why, size_t len)
{
  int backoff = 50;
  bool tried = false;

  snprintf (why, len, "nbdkit did not write its pidfile");
  for (;;)
    {
      int nap = 20;
      if (!is_live (pid))
        {
          /* After a refused handshake, say so: that is what killed it. */
          size_t n = tried ? strlen (why) : 0;
          snprintf (why + n, len - n, "%snbdkit exited", n ? "; then " : "");
          return -1;
        }
      if (vaio_disk_pid (p->pidfile) == pid)
        {
          int t = left_ms (deadline);
          /* Each attempt gets at least 0.5 s: one started just before
           * the deadline must be able to finish a healthy handshake.
           */
          if (disk_serves (p, pid,
                           t < 500    ? 500
                           : t > 5000 ? 5000
                                      : t,
                           why, len)
              == 0)
            return 0;
          tried = true;
          nap = backoff;
          backoff = backoff * 2 > 500 ? 500 : backoff * 2;
        }
      if (left_ms (deadline) == 0)
        return -1;
      sleep_ms (nap < left_ms (deadline) ? nap : left_ms (deadline));
    }
}

pid_t
vaio_disk_start (const struct vaio_plan_disk *p, int timeout_ms,
                 struct vaio_diag *diag)
{
  return vaio_disk_start_on (p, -1, timeout_ms, diag);
}

int
vaio_disk_take_over_socket (const struct vaio_plan_disk *p)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  mode_t old_mask;
  int fd, bound;

  if (p->socket == NULL
      || snprintf (sun.sun_path, sizeof sun.sun_path, "%s.next", p->socket)
             >= (int)sizeof sun.sun_path)
    return -1;
  /* rename replaces whatever is at the socket path: only a socket may
   * be there (and only a socket is removed at <socket>.next).
   */
  if (unlink_socket (sun.sun_path) == -1 || socket_or_absent (p->socket) == -1)
    return -1;
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1)
    return -1;
  /* Owner-only from the start: the socket takes the umask at bind. */
  old_mask = umask (077);
  bound = bind (fd, (struct sockaddr *)&sun, sizeof sun);
  umask (old_mask);
  if (bound == -1 || listen (fd, SOMAXCONN) == -1
      || rename (sun.sun_path, p->socket) == -1)
    {
      unlink_socket (sun.sun_path);
      close (fd);
      return -1;
    }
  return fd;
}

static void
plan_classes (const struct vaio_plan_disk *p, bool *has)
{
  memset (has, 0, VAIO_CLASS_COUNT * sizeof *has);
  for (size_t i = 0; i < p->n_chain; i++)
    has[p->chain[i]] = true;
}

pid_t
vaio_disk_start_on (const struct vaio_plan_disk *p, int listen_fd,
                    int timeout_ms, struct vaio_diag *diag)
{
  bool has[VAIO_CLASS_COUNT];

  plan_classes (p, has);
  return vaio_disk_restart_on (p, listen_fd, timeout_ms, has, diag);
}

pid_t
vaio_disk_restart_on (const struct vaio_plan_disk *p, int listen_fd,
                      int timeout_ms, const bool *has, struct vaio_diag *diag)
{
  int64_t deadline = now_ms () + timeout_ms;
  char who[512], why[4200], *prev_classes;
  long log_start;
  pid_t pid;
  int logfd, pidfd, pidfd_errno, exec_errno = 0;

  snprintf (who, sizeof who, "%s/%s", p->vm->name, p->disk->name);
  if (prepare_class_state (p, has, true, false, diag) == -1
      || make_dirs (p, has, diag) == -1)
    return -1;
  remove_leftovers (p, has, listen_fd >= 0);
  logfd = open (p->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (logfd == -1)
    {
      vaio_diag_add (diag, NULL, "%s: %s: %m", who, p->logfile);
      return -1;
    }
  /* Recorded before nbdkit runs: once it serves, writes bypass the
   * state of every class it lacks.
   */
  snprintf (why, sizeof why, "%s/chain-classes", p->state_dir);
  prev_classes = read_text (why);
  if (write_chain_classes (p, has) == -1)
    {
      vaio_diag_add (diag, NULL,
                     "%s: cannot record the chain's classes in "
                     "%s/chain-classes: %m",
                     who, p->state_dir);
      close (logfd);
      free (prev_classes);
      return -1;
    }
  log_start = lseek (logfd, 0, SEEK_END);
  pid = spawn_detached (p, logfd, listen_fd, timeout_ms, &exec_errno);
  close (logfd);
  if (pid <= 0)
    {
      vaio_diag_add (diag, NULL, "%s: cannot start nbdkit: %m", who);
      restore_chain_classes (p, prev_classes);
      free (prev_classes);
      return -1;
    }
  /* From here on, every failure kills what we started: a process left
   * behind would serve the disk with nobody knowing.
   */
  pidfd = pidfd_of (pid);
  pidfd_errno = errno;
  if (exec_errno == ETIMEDOUT)
    snprintf (why, sizeof why, "nbdkit was not even exec'd within %d ms",
              timeout_ms);
  else if (exec_errno != 0)
    snprintf (why, sizeof why, "cannot run %s: %s", p->argv[0],
              strerror (exec_errno));
  if (exec_errno == 0 && wait_serving (p, pid, deadline, why, sizeof why) == 0)
    {
      restrict_socket (p);
      if (pidfd >= 0)
        close (pidfd);
      if (vaio_disk_record_running (p) == -1)
        vaio_diag_add (diag, NULL, "%s: cannot record running state: %m", who);
      free (prev_classes);
      return pid;
    }
  vaio_diag_add (diag, NULL,
                 "%s: failed: nbdkit (pid %ld) does not serve: %s (log: %s)",
                 who, (long)pid, why, p->logfile);
  log_tail (p->logfile, log_start, diag, who);
  if (pidfd >= 0)
    {
      kill_pidfd (pidfd);
      close (pidfd);
    }
  else if (pidfd_errno != ESRCH) /* no pidfd, but it may still run */
    kill (pid, SIGKILL);
  remove_leftovers (p, has, listen_fd >= 0);
  restore_chain_classes (p, prev_classes);
  free (prev_classes);
  return -1;
}

int
vaio_disk_paths (const struct vaio_config *cfg, const struct vaio_vm *vm,
                 const struct vaio_disk *d, struct vaio_plan_disk *p,
                 struct vaio_diag *diag)
{
  memset (p, 0, sizeof *p);
  p->vm = vm;
  p->disk = d;
  p->host = vaio_config_host (cfg, vm->host);
  p->policy = vaio_config_policy (cfg, d->policy);
  if (p->host == NULL)
    {
      vaio_diag_add (diag, &d->loc, "disk '%s/%s': unknown host '%s'", vm->name,
                     d->name, vm->host);
      return -1;
    }
  p->vm_dir = vaio_vm_dir (p->host, vm);
  p->state_dir = vaio_disk_state_dir (p->host, d);
  p->socket = vaio_disk_socket (p->host, d); /* NULL for TCP */
  if (p->vm_dir == NULL || p->state_dir == NULL
      || (d->port == 0 && p->socket == NULL)
      || asprintf (&p->pidfile, "%s/nbdkit.pid", p->state_dir) == -1
      || asprintf (&p->logfile, "%s/nbdkit.log", p->state_dir) == -1
      || asprintf (&p->pause_socket, "%s/pause.sock", p->state_dir) == -1)
    {
      vaio_diag_add (diag, &d->loc, "disk '%s/%s': out of memory", vm->name,
                     d->name);
      vaio_plan_disk_free (p);
      return -1;
    }
  return 0;
}

/* Flush the disk over a side connection before it is stopped: nbdkit's
 * SIGTERM closes its filters but does not flush them, and a write-back
 * cache (nbdkit's cache=writeback) would drop what it holds.  Bounded by
 * timeout_ms.  0 (flushed, or nothing to flush), or -1 with why set.
 */
static int
flush_disk (const struct vaio_plan_disk *p, pid_t pid, int timeout_ms,
            char *why, size_t len)
{
  int64_t deadline = now_ms () + timeout_ms;
  struct nbd_handle *nbd = disk_connect (p, pid, timeout_ms, why, len);
  int64_t cookie;
  int r = -1;

  if (nbd == NULL)
    return -1;
  if (nbd_can_flush (nbd) <= 0 || nbd_is_read_only (nbd) > 0)
    r = 0;
  else if ((cookie = nbd_aio_flush (nbd, (nbd_completion_callback){ 0 }, 0))
           == -1)
    snprintf (why, len, "flush: %s", nbd_get_error ());
  else
    {
      int done;
      while ((done = nbd_aio_command_completed (nbd, (uint64_t)cookie)) == 0
             && left_ms (deadline) > 0)
        if (nbd_poll (nbd, left_ms (deadline)) == -1)
          {
            done = -1; /* the connection failed: say why */
            break;
          }
      if (done == 1)
        r = 0;
      else if (done == 0)
        snprintf (why, len, "flush did not complete within %d ms", timeout_ms);
      else
        snprintf (why, len, "flush: %s", nbd_get_error ());
    }
  nbd_close (nbd);
  return r;
}

int
vaio_disk_stop (const struct vaio_plan_disk *p, int timeout_ms,
                struct vaio_diag *diag)
{
  pid_t pid = vaio_disk_pid (p->pidfile);
  char *running, why[1024];
  int flushed = 0;

  if (pid > 0)
    {
      flushed = flush_disk (p, pid, timeout_ms, why, sizeof why);
      if (flushed == -1)
        vaio_diag_add (diag, NULL,
                       "%s/%s: could not flush before stopping: %s; "
                       "stopping anyway (writes a write-back filter still "
                       "held may be lost)",
                       p->vm->name, p->disk->name, why);
      kill (pid, SIGTERM);
      for (int waited = 0; is_live_nbdkit (pid) && waited < timeout_ms;
           waited += 20)
        sleep_ms (20);
      if (is_live_nbdkit (pid))
        {
          vaio_diag_add (diag, NULL,
                         "%s/%s: nbdkit (pid %ld) did not exit within %d ms "
                         "of SIGTERM; killed",
                         p->vm->name, p->disk->name, (long)pid, timeout_ms);
          kill (pid, SIGKILL);
          for (int waited = 0; is_live_nbdkit (pid) && waited < 5000;
               waited += 20)
            sleep_ms (20);
        }
    }
  if (is_live_nbdkit (pid))
    return -1;
  unlink (p->pidfile);
  if (p->socket && unlink_socket (p->socket) == -1 && errno == EEXIST)
    vaio_diag_add (diag, NULL,
                   "%s/%s: %s is not a socket: left in place (the config's "
                   "'socket' names some other file)",
                   p->vm->name, p->disk->name, p->socket);
  if (asprintf (&running, "%s/running", p->state_dir) != -1)
    {
      unlink (running);
      free (running);
    }
  return flushed == -1 ? 1 : 0;
}

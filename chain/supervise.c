/* vaio-nbd supervisor: start, find and stop one nbdkit per VM disk. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervise.h"

static void
sleep_ms (int ms)
{
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

  nanosleep (&ts, NULL);
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

/* Exists and is not a zombie, whatever its name: until the grandchild
 * has exec'd nbdkit it is still a "vaioctl", which on a loaded host can
 * last longer than any grace period.
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

static bool
disk_accepts (const struct vaio_plan_disk *p)
{
  int fd = -1;
  bool ok = false;

  if (p->disk->port == 0)
    {
      struct sockaddr_un sun = { .sun_family = AF_UNIX };
      if (strlen (p->socket) >= sizeof sun.sun_path)
        return false;
      strcpy (sun.sun_path, p->socket);
      fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      ok = fd >= 0 && connect (fd, (struct sockaddr *)&sun, sizeof sun) == 0;
    }
  else
    {
      struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
      char port[16];
      snprintf (port, sizeof port, "%d", p->disk->port);
      if (getaddrinfo (p->disk->address ? p->disk->address : "127.0.0.1", port,
                       &hints, &ai)
          != 0)
        return false;
      fd = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      ok = fd >= 0 && connect (fd, ai->ai_addr, ai->ai_addrlen) == 0;
      freeaddrinfo (ai);
    }
  if (fd >= 0)
    close (fd);
  return ok;
}

/* What nbdkit logged since offset since (its start-up errors), for error
 * messages.
 */
static void
log_since (const char *logfile, long since, struct vaio_diag *diag,
           const char *who)
{
  char buf[2048], *line, *save = NULL;
  FILE *fp = fopen (logfile, "r");
  size_t n;

  if (fp == NULL)
    return;
  fseek (fp, since, SEEK_SET);
  n = fread (buf, 1, sizeof buf - 1, fp);
  fclose (fp);
  buf[n] = '\0';
  for (line = strtok_r (buf, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    vaio_diag_add (diag, NULL, "%s: nbdkit: %s", who, line);
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

static int
make_dirs (const struct vaio_plan_disk *p, struct vaio_diag *diag)
{
  char *dir;

  if (vaio_mkdir_private (p->vm_dir) == -1
      || vaio_mkdir_private (p->state_dir) == -1)
    {
      vaio_diag_add (diag, NULL, "%s: cannot create state directory: %m",
                     p->state_dir);
      return -1;
    }
  for (size_t i = 0; i < p->n_chain; i++)
    {
      if (asprintf (&dir, "%s/%s", p->state_dir, vaio_class_name (p->chain[i]))
          == -1)
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

/* Double fork so nbdkit is not our child (it outlives vaioctl), in its
 * own session, stdin from /dev/null, stdout and stderr to the log.
 * Returns nbdkit's pid through a pipe from the intermediate child.
 */
static pid_t
spawn_detached (const struct vaio_plan_disk *p, int logfd)
{
  int pfd[2], status;
  pid_t child, pid = -1;

  if (pipe2 (pfd, O_CLOEXEC) == -1)
    return -1;
  child = fork ();
  if (child == -1)
    {
      close (pfd[0]);
      close (pfd[1]);
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
          dup2 (null, 0);
          dup2 (logfd, 1);
          dup2 (logfd, 2);
          umask (077);
          execvp (p->argv[0], p->argv);
          dprintf (2, "vaioctl: exec %s: %m\n", p->argv[0]);
          _exit (127);
        }
      if (write (pfd[1], &gc, sizeof gc) != (ssize_t)sizeof gc)
        _exit (1);
      _exit (gc == -1);
    }
  close (pfd[1]);
  if (read (pfd[0], &pid, sizeof pid) != (ssize_t)sizeof pid)
    pid = -1;
  close (pfd[0]);
  waitpid (child, &status, 0);
  return pid;
}

pid_t
vaio_disk_start (const struct vaio_plan_disk *p, int timeout_ms,
                 struct vaio_diag *diag)
{
  char who[512];
  long log_start;
  pid_t pid;
  int logfd;

  snprintf (who, sizeof who, "%s/%s", p->vm->name, p->disk->name);
  if (make_dirs (p, diag) == -1)
    return -1;
  /* A socket or pidfile left by a killed nbdkit would make nbdkit fail
   * to bind or make us think it is up: nothing serves them, remove.
   * Settings files written by `apply` for the previous process would
   * override the parameters this one starts with: remove them too.
   */
  if (p->socket)
    unlink (p->socket);
  unlink (p->pidfile);
  for (size_t i = 0; i < p->n_chain; i++)
    {
      char *settings;
      if (asprintf (&settings, "%s/%s/settings", p->state_dir,
                    vaio_class_name (p->chain[i]))
          != -1)
        {
          unlink (settings);
          free (settings);
        }
    }

  logfd = open (p->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (logfd == -1)
    {
      vaio_diag_add (diag, NULL, "%s: %s: %m", who, p->logfile);
      return -1;
    }
  log_start = lseek (logfd, 0, SEEK_END);
  pid = spawn_detached (p, logfd);
  close (logfd);
  if (pid <= 0)
    {
      vaio_diag_add (diag, NULL, "%s: cannot start nbdkit: %m", who);
      return -1;
    }

  for (int waited = 0; waited <= timeout_ms; waited += 20)
    {
      if (vaio_disk_pid (p->pidfile) == pid && disk_accepts (p))
        {
          if (vaio_disk_record_running (p) == -1)
            vaio_diag_add (diag, NULL, "%s: cannot record running state: %m",
                           who);
          return pid;
        }
      if (!is_live (pid))
        break;
      sleep_ms (20);
    }
  vaio_diag_add (diag, NULL, "%s: nbdkit did not start serving (log: %s)", who,
                 p->logfile);
  log_since (p->logfile, log_start, diag, who);
  if (is_live (pid))
    kill (pid, SIGKILL);
  return -1;
}

int
vaio_disk_stop (const struct vaio_plan_disk *p, int timeout_ms,
                struct vaio_diag *diag)
{
  pid_t pid = vaio_disk_pid (p->pidfile);
  char *running;

  if (pid > 0)
    {
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
  if (p->socket)
    unlink (p->socket);
  if (asprintf (&running, "%s/running", p->state_dir) != -1)
    {
      unlink (running);
      free (running);
    }
  return 0;
}

/* vaio-replication: connecting to the replica target, and refusing a
 * target that is this very server.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>

#include "repl.h"

struct nbd_handle *
target_connect (int timeout_ms, bool *fatal, char *err, size_t errlen)
{
  uint64_t deadline = vaio_stats_now_ns () + (uint64_t)timeout_ms * 1000000;
  struct nbd_handle *nbd;
  int64_t size;

  *fatal = false;
  nbd = nbd_create ();
  if (nbd == NULL)
    {
      snprintf (err, errlen, "nbd_create: %s", nbd_get_error ());
      return NULL;
    }
  /* The PSK file is handed to GnuTLS by path: its content never passes
   * through our memory or our messages.
   */
  if (repl.psk_file
      && (nbd_set_tls (nbd, LIBNBD_TLS_REQUIRE) == -1
          || nbd_set_tls_psk_file (nbd, repl.psk_file) == -1))
    goto error;
  if (nbd_aio_connect_uri (nbd, repl.target) == -1)
    goto error;
  while (nbd_aio_is_connecting (nbd))
    {
      uint64_t now = vaio_stats_now_ns ();
      if (now >= deadline)
        {
          snprintf (err, errlen, "%s: connection timed out", repl.target);
          nbd_close (nbd);
          return NULL;
        }
      if (nbd_poll (nbd, (int)((deadline - now) / 1000000) + 1) == -1)
        goto error;
    }
  if (!nbd_aio_is_ready (nbd))
    goto error;

  size = nbd_get_size (nbd);
  if (size == -1)
    goto error;
  if ((uint64_t)size < repl.disk_size)
    {
      snprintf (err, errlen,
                "repl-target %s is smaller (%lld bytes) than the source "
                "disk (%llu bytes)",
                repl.target, (long long)size,
                (unsigned long long)repl.disk_size);
      *fatal = true;
      nbd_close (nbd);
      return NULL;
    }
  if (nbd_is_read_only (nbd) == 1)
    {
      snprintf (err, errlen, "repl-target %s is read-only", repl.target);
      *fatal = true;
      nbd_close (nbd);
      return NULL;
    }
  return nbd;

error:
  snprintf (err, errlen, "repl-target %s: %s", repl.target,
            nbd_get_error () ? nbd_get_error () : "connection failed");
  nbd_close (nbd);
  return NULL;
}

/* Value of query parameter key in uri, or NULL (malloced). */
static char *
uri_query (const char *uri, const char *key)
{
  const char *q = strchr (uri, '?');
  size_t klen = strlen (key);

  while (q != NULL)
    {
      q++;
      if (strncmp (q, key, klen) == 0 && q[klen] == '=')
        {
          const char *v = q + klen + 1;
          return strndup (v, strcspn (v, "&"));
        }
      q = strchr (q, '&');
    }
  return NULL;
}

/* Does this process hold a socket with this inode? */
static bool
own_socket_inode (unsigned long inode)
{
  char want[64], link[PATH_MAX], path[PATH_MAX];
  struct dirent *d;
  bool found = false;
  DIR *dir;

  snprintf (want, sizeof want, "socket:[%lu]", inode);
  dir = opendir ("/proc/self/fd");
  if (dir == NULL)
    return false;
  while (!found && (d = readdir (dir)) != NULL)
    {
      ssize_t n;
      snprintf (path, sizeof path, "/proc/self/fd/%s", d->d_name);
      n = readlink (path, link, sizeof link - 1);
      if (n > 0)
        {
          link[n] = '\0';
          found = strcmp (link, want) == 0;
        }
    }
  closedir (dir);
  return found;
}

/* Is sock_path a Unix socket this process listens on? */
static bool
own_unix_socket (const char *sock_path)
{
  char line[PATH_MAX + 128], real_target[PATH_MAX], real_own[PATH_MAX];
  bool found = false;
  FILE *fp;

  if (realpath (sock_path, real_target) == NULL)
    return false;
  fp = fopen ("/proc/net/unix", "re");
  if (fp == NULL)
    return false;
  while (!found && fgets (line, sizeof line, fp))
    {
      unsigned long inode;
      char p[PATH_MAX];
      if (sscanf (line, "%*s %*s %*s %*s %*s %*s %lu %4095s", &inode, p) != 2)
        continue;
      if (realpath (p, real_own) != NULL && strcmp (real_own, real_target) == 0
          && own_socket_inode (inode))
        found = true;
    }
  fclose (fp);
  return found;
}

/* Is port a TCP port this process listens on? */
static bool
own_tcp_port (unsigned port)
{
  static const char *files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
  char line[512];
  bool found = false;

  for (size_t f = 0; f < 2 && !found; f++)
    {
      FILE *fp = fopen (files[f], "re");
      if (fp == NULL)
        continue;
      while (!found && fgets (line, sizeof line, fp))
        {
          unsigned lport, st;
          unsigned long inode;
          char *colon = strchr (line, ':');
          if (colon == NULL
              || sscanf (colon + 1, "%*[^:]:%x %*s %x %*s %*s %*s %*s %*s %lu",
                         &lport, &st, &inode)
                     != 3)
            continue;
          if (st == 0x0A && lport == port && own_socket_inode (inode))
            found = true;
        }
      fclose (fp);
    }
  return found;
}

static bool
is_loopback_host (const char *host, size_t len)
{
  return (len == 9 && strncmp (host, "localhost", 9) == 0)
         || (len >= 4 && strncmp (host, "127.", 4) == 0)
         || (len == 5 && strncmp (host, "[::1]", 5) == 0);
}

int
target_is_self (const char *uri, char *err, size_t errlen)
{
  char *sock = uri_query (uri, "socket");
  int self = 0;

  if (sock != NULL)
    {
      self = own_unix_socket (sock);
      free (sock);
    }
  else if (strncmp (uri, "nbd://", 6) == 0 || strncmp (uri, "nbds://", 7) == 0)
    {
      const char *host = strstr (uri, "://") + 3, *end, *at, *hend;
      /* No port in the URI means NBD's registered port. */
      unsigned port = 10809;

      end = host + strcspn (host, "/?");
      at = memchr (host, '@', (size_t)(end - host));
      if (at)
        host = at + 1;
      hend = host[0] == '[' ? memchr (host, ']', (size_t)(end - host)) : host;
      hend = hend ? memchr (hend, ':', (size_t)(end - hend)) : NULL;
      if (hend != NULL)
        port = (unsigned)strtoul (hend + 1, NULL, 10);
      else
        hend = end;
      if (is_loopback_host (host, (size_t)(hend - host)))
        self = own_tcp_port (port);
    }
  if (self)
    snprintf (err, errlen,
              "repl-target %s is this server's own socket: the replica "
              "cannot be the source",
              uri);
  return self;
}

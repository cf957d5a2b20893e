/* vaio-nbd: the VAIO rules and cross-references of a parsed config; see
 * the comment above vaio_validate in model.h.  Every problem is reported,
 * each at the location of the key that causes it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "units.h"
#include "yamlutil.h"

struct vcheck
{
  const struct vaio_config *cfg;
  const struct vaio_host_filters *hf; /* NULL: inventory unavailable */
  struct vaio_diag *diag;
};

static void
check_references (struct vcheck *v)
{
  const struct vaio_config *cfg = v->cfg;

  for (size_t i = 0; i < cfg->n_vms; i++)
    {
      const struct vaio_vm *vm = &cfg->vms[i];

      if (vaio_config_host (cfg, vm->host) == NULL)
        vaio_diag_add (v->diag, &vm->host_loc,
                       "unknown host '%s' for 'host' in vm '%s'", vm->host,
                       vm->name);
      for (size_t j = 0; j < vm->n_disks; j++)
        {
          const struct vaio_disk *d = &vm->disks[j];
          if (vaio_config_policy (cfg, d->policy) == NULL)
            vaio_diag_add (v->diag, &d->policy_loc,
                           "unknown policy '%s' for 'policy' in disk '%s' of "
                           "vm '%s'",
                           d->policy, d->name, vm->name);
        }
    }
}

/* ---- policy settings against the manifest of the host's filter ---- */

char *
vaio_setting_file (const struct vaio_config *cfg,
                   const struct vaio_param_spec *ps, const char *value)
{
  size_t n = ps->prefix ? strlen (ps->prefix) : 0;

  if (n && strncmp (value, ps->prefix, n) == 0)
    value += n;
  return yu_resolve_path (cfg->dir, value);
}

/* A secret goes to nbdkit as the path of an owner-only file, never as
 * itself (argv is readable by every user on the host).  When the value
 * names no file it may well be the secret itself, so the message does
 * not repeat it: the location says where it is.
 */
static void
check_secret (struct vcheck *v, const struct vaio_param_spec *ps,
              const struct vaio_setting *s, const char *where)
{
  char *path = vaio_setting_file (v->cfg, ps, s->value);
  struct stat st;

  if (path == NULL)
    {
      vaio_diag_add (v->diag, &s->loc, "out of memory");
      return;
    }
  if (stat (path, &st) == -1)
    vaio_diag_add (v->diag, &s->loc,
                   "'%s' in %s must be the path of a file holding the secret, "
                   "never the secret itself: %s (the value is not shown)",
                   s->key, where, strerror (errno));
  else if (!S_ISREG (st.st_mode))
    vaio_diag_add (v->diag, &s->loc,
                   "secret file '%s' for '%s' in %s is not a regular file",
                   path, s->key, where);
  else if (st.st_mode & (S_IRGRP | S_IROTH))
    vaio_diag_add (v->diag, &s->loc,
                   "secret file '%s' for '%s' in %s has mode %04o: it is "
                   "readable by others; chmod 600",
                   path, s->key, where, (unsigned)(st.st_mode & 07777));
  else if (st.st_mode & (S_IRWXG | S_IRWXO))
    vaio_diag_add (v->diag, &s->loc,
                   "secret file '%s' for '%s' in %s has mode %04o: it is "
                   "accessible by others; chmod 600",
                   path, s->key, where, (unsigned)(st.st_mode & 07777));
  free (path);
}

static bool
is_fd_param (const char *key)
{
  size_t n = strlen (key);

  return n >= 3 && strcmp (key + n - 3, "-fd") == 0;
}

/* NBD URI schemes (NBD URI specification): plain, TLS, unix, vsock. */
static bool
is_nbd_uri (const char *s)
{
  static const char *const schemes[]
      = { "nbd://",       "nbds://",      "nbd+unix://",
          "nbds+unix://", "nbd+vsock://", "nbds+vsock://" };

  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strncmp (s, schemes[i], strlen (schemes[i])) == 0)
      return true;
  return false;
}

static const char *
enum_values (const struct vaio_param_spec *ps, char *buf, size_t len)
{
  size_t used = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < ps->n_values && used < len; i++)
    used += (size_t)snprintf (buf + used, len - used, "%s%s", i ? ", " : "",
                              ps->values[i]);
  return buf;
}

static void
check_value (struct vcheck *v, const struct vaio_param_spec *ps,
             const struct vaio_setting *s, const char *where)
{
  uint64_t u;
  bool b;
  char buf[512];

  switch (ps->type)
    {
    case VAIO_PARAM_STRING:
    case VAIO_PARAM_PATH:
      break;
    case VAIO_PARAM_SIZE:
      if (vaio_parse_size (s->value, &u) == -1)
        vaio_diag_add (
            v->diag, &s->loc,
            errno == ERANGE
                ? "size '%s' for '%s' in %s is too large"
                : "bad size '%s' for '%s' in %s (expected digits "
                  "and an optional B, S (512-byte sectors), K, M, G, T, P "
                  "or E, e.g. 64M)",
            s->value, s->key, where);
      break;
    case VAIO_PARAM_DURATION:
      if (vaio_parse_duration (s->value, &u) == -1)
        vaio_diag_add (v->diag, &s->loc,
                       errno == ERANGE
                           ? "duration '%s' for '%s' in %s is too large"
                           : "bad duration '%s' for '%s' in %s (expected "
                             "digits and a unit: ns, us, ms, s, m or h, e.g. "
                             "30ms)",
                       s->value, s->key, where);
      break;
    case VAIO_PARAM_BOOL:
      if (vaio_parse_bool (s->value, &b) == -1)
        vaio_diag_add (v->diag, &s->loc,
                       "bad boolean '%s' for '%s' in %s (expected true/false, "
                       "yes/no, on/off or 1/0)",
                       s->value, s->key, where);
      break;
    case VAIO_PARAM_INT:
      /* A descriptor number for a secret: a bad value may be the secret
       * itself, so it is not repeated (as check_secret).
       */
      if (vaio_parse_uint (s->value, &u) == -1 && is_fd_param (s->key))
        vaio_diag_add (v->diag, &s->loc,
                       "bad file descriptor number for '%s' in %s (the value "
                       "is not shown)",
                       s->key, where);
      else if (vaio_parse_uint (s->value, &u) == -1)
        vaio_diag_add (v->diag, &s->loc,
                       "bad integer '%s' for '%s' in %s (expected a "
                       "non-negative decimal integer)",
                       s->value, s->key, where);
      break;
    case VAIO_PARAM_ENUM:
      for (size_t i = 0; i < ps->n_values; i++)
        if (strcmp (s->value, ps->values[i]) == 0)
          return;
      vaio_diag_add (v->diag, &s->loc,
                     "bad value '%s' for '%s' in %s (expected one of: %s)",
                     s->value, s->key, where,
                     enum_values (ps, buf, sizeof buf));
      break;
    case VAIO_PARAM_SECRET:
      check_secret (v, ps, s, where);
      break;
    case VAIO_PARAM_URI:
      if (!is_nbd_uri (s->value))
        vaio_diag_add (v->diag, &s->loc,
                       "bad NBD URI '%s' for '%s' in %s (expected nbd://, "
                       "nbds://, nbd+unix://, nbds+unix://, nbd+vsock:// or "
                       "nbds+vsock://)",
                       s->value, s->key, where);
      break;
    }
}

static const char *
param_names (const struct vaio_manifest *m, char *buf, size_t len)
{
  size_t used = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < m->n_params && used < len; i++)
    if (!m->state_param || strcmp (m->params[i].name, m->state_param) != 0)
      used += (size_t)snprintf (buf + used, len - used, "%s%s",
                                used ? ", " : "", m->params[i].name);
  return used ? buf : "none";
}

static bool
rule_sets (const struct vaio_class_rule *r, const char *key)
{
  for (size_t i = 0; i < r->n_settings; i++)
    if (strcmp (r->settings[i].key, key) == 0)
      return true;
  return false;
}

/* One class rule of a policy against the filter of that class on one
 * host.
 */
static void
check_rule (struct vcheck *v, const struct vaio_policy *pol, enum vaio_class c,
            const struct vaio_manifest *m)
{
  const struct vaio_class_rule *r = &pol->rules[c];
  char where[320], buf[1024];

  snprintf (where, sizeof where, "policy '%.100s' %s (filter '%.100s')",
            pol->name, vaio_class_name (c), m->name);
  for (size_t i = 0; i < r->n_settings; i++)
    {
      const struct vaio_setting *s = &r->settings[i];
      const struct vaio_param_spec *ps = vaio_manifest_param (m, s->key);

      if (m->state_param && strcmp (s->key, m->state_param) == 0)
        vaio_diag_add (v->diag, &s->loc,
                       "'%s' in %s is the filter's state directory, set by "
                       "vaioctl for each disk; remove it from the policy",
                       s->key, where);
      else if (ps == NULL)
        vaio_diag_add (v->diag, &s->loc,
                       "unknown parameter '%s' in %s (expected one of: %s)",
                       s->key, where, param_names (m, buf, sizeof buf));
      else
        check_value (v, ps, s, where);
    }
  for (size_t i = 0; i < m->n_params; i++)
    {
      const struct vaio_param_spec *ps = &m->params[i];
      if (ps->required && !rule_sets (r, ps->name)
          && !(m->state_param && strcmp (ps->name, m->state_param) == 0))
        vaio_diag_add (v->diag, &r->loc,
                       "missing required parameter '%s' in %s", ps->name,
                       where);
    }
}

static bool
host_uses_policy (const struct vaio_config *cfg, const char *host,
                  const char *policy)
{
  for (size_t i = 0; i < cfg->n_vms; i++)
    if (strcmp (cfg->vms[i].host, host) == 0)
      for (size_t j = 0; j < cfg->vms[i].n_disks; j++)
        if (strcmp (cfg->vms[i].disks[j].policy, policy) == 0)
          return true;
  return false;
}

/* Each (host, policy) pair in use: the policy's classes must be installed
 * on the host, and its settings must suit that host's filters.
 */
static void
check_policies_on_hosts (struct vcheck *v)
{
  const struct vaio_config *cfg = v->cfg;

  for (size_t h = 0; h < cfg->n_hosts; h++)
    for (size_t p = 0; p < cfg->n_policies; p++)
      {
        const struct vaio_policy *pol = &cfg->policies[p];

        if (!host_uses_policy (cfg, cfg->hosts[h].name, pol->name))
          continue;
        for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
          {
            const struct vaio_manifest *m = v->hf[h].by_class[c];

            if (!pol->rules[c].present)
              continue;
            if (m == NULL)
              vaio_diag_add (v->diag, &pol->rules[c].loc,
                             "policy '%s' uses class '%s', but host '%s' has "
                             "no %s filter installed",
                             pol->name, vaio_class_name (c), cfg->hosts[h].name,
                             vaio_class_name (c));
            else
              check_rule (v, pol, (enum vaio_class)c, m);
          }
      }
}

/* ---- images and endpoints ---- */

static void
check_image (struct vcheck *v, const struct vaio_disk *d)
{
  struct stat st;

  if (stat (d->image, &st) == -1)
    vaio_diag_add (v->diag, &d->image_loc,
                   "image '%s' for disk '%s' of vm '%s': %s", d->image, d->name,
                   d->vm->name, strerror (errno));
  else if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode))
    vaio_diag_add (v->diag, &d->image_loc,
                   "image '%s' for disk '%s' of vm '%s' is not a regular "
                   "file or block device",
                   d->image, d->name, d->vm->name);
}

/* ---- TCP endpoints ----
 *
 * An address is an IPv4 or IPv6 literal or a host name (resolved, as
 * nbdkit's --ipaddr is); endpoints are compared by what they resolve to,
 * so localhost and 127.0.0.1 on one port are one endpoint.
 */
enum
{
  MAX_ADDRS = 16
};

struct endpoint
{
  size_t n;
  bool wildcard; /* 0.0.0.0 or ::: every address of the host */
  struct
  {
    int family;
    unsigned char bytes[16];
  } a[MAX_ADDRS];
};

/* RFC 1123 host name: dot-separated labels of letters, digits and
 * hyphens, no label empty, starting or ending with a hyphen.
 */
static bool
is_host_name (const char *s)
{
  size_t label = 0, n = strlen (s);

  if (n == 0 || n > 253)
    return false;
  for (size_t i = 0; i <= n; i++)
    {
      if (s[i] == '.' || s[i] == '\0')
        {
          if (label == 0 || label > 63 || s[i - 1] == '-')
            return false;
          label = 0;
        }
      else if (isalnum ((unsigned char)s[i]) || (s[i] == '-' && label > 0))
        label++;
      else
        return false;
    }
  return true;
}

static void
endpoint_add (struct endpoint *ep, int family, const void *bytes)
{
  static const unsigned char zero[16];
  size_t len = family == AF_INET ? 4 : 16;

  if (memcmp (bytes, zero, len) == 0)
    ep->wildcard = true;
  if (ep->n == MAX_ADDRS)
    return;
  ep->a[ep->n].family = family;
  memcpy (ep->a[ep->n].bytes, bytes, len);
  ep->n++;
}

/* Resolve d->address into ep; on failure report at the address and
 * return -1.
 */
static int
resolve_endpoint (struct vcheck *v, const struct vaio_disk *d,
                  struct endpoint *ep)
{
  const char *a = d->address, *why = NULL;
  unsigned char buf[16];
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *r;
  int e;

  memset (ep, 0, sizeof *ep);
  if (inet_pton (AF_INET, a, buf) == 1)
    endpoint_add (ep, AF_INET, buf);
  else if (inet_pton (AF_INET6, a, buf) == 1)
    endpoint_add (ep, AF_INET6, buf);
  else if (strspn (a, "0123456789.") == strlen (a))
    why = "not an IPv4 address";
  else if (strchr (a, ':'))
    why = "not an IPv6 address";
  else if (!is_host_name (a))
    why = "not an IP address or host name";
  else if ((e = getaddrinfo (a, NULL, &hints, &res)) != 0)
    {
      vaio_diag_add (v->diag, &d->address_loc,
                     "bad address '%s' for 'address' in disk '%s' of vm "
                     "'%s': cannot resolve it: %s",
                     a, d->name, d->vm->name, gai_strerror (e));
      return -1;
    }
  else
    {
      for (r = res; r; r = r->ai_next)
        if (r->ai_family == AF_INET)
          endpoint_add (ep, AF_INET,
                        &((struct sockaddr_in *)(void *)r->ai_addr)->sin_addr);
        else if (r->ai_family == AF_INET6)
          endpoint_add (
              ep, AF_INET6,
              &((struct sockaddr_in6 *)(void *)r->ai_addr)->sin6_addr);
      freeaddrinfo (res);
    }
  if (why)
    {
      vaio_diag_add (v->diag, &d->address_loc,
                     "bad address '%s' for 'address' in disk '%s' of vm "
                     "'%s': %s",
                     a, d->name, d->vm->name, why);
      return -1;
    }
  return 0;
}

/* A wildcard listens on every address, so it clashes with any other
 * address on the same port.
 */
static bool
same_endpoint (const struct vaio_disk *a, const struct endpoint *ea,
               const struct vaio_disk *b, const struct endpoint *eb)
{
  if (a->port == 0 || a->port != b->port || ea->n == 0 || eb->n == 0)
    return false;
  if (ea->wildcard || eb->wildcard)
    return true;
  for (size_t i = 0; i < ea->n; i++)
    for (size_t j = 0; j < eb->n; j++)
      if (ea->a[i].family == eb->a[j].family
          && memcmp (ea->a[i].bytes, eb->a[j].bytes,
                     ea->a[i].family == AF_INET ? 4 : 16)
                 == 0)
        return true;
  return false;
}

/* What each disk occupies; two disks must never share any of it.  The
 * canonical forms (symlinks in what exists resolved) are what is
 * compared: two spellings of one file are one file.
 */
struct claim
{
  const struct vaio_disk *disk;
  const struct vaio_host *host; /* NULL: unknown host */
  char *image;                  /* canonical when it exists */
  char *socket;                 /* as nbdkit binds it; NULL for TCP */
  char *sock_canon;
  char *state_dir; /* NULL for unknown host */
  char *state_canon;
  char *vm_canon;           /* the VM's directory */
  struct endpoint endpoint; /* n == 0: unix socket, or unresolved */
};

/* The path with the symlinks of its existing part resolved; what does
 * not exist yet is appended as written (already normalized lexically).
 */
static char *
canon_path (const char *path)
{
  char *r = realpath (path, NULL), *parent, *cp;
  const char *slash = strrchr (path, '/');

  if (r != NULL)
    return r;
  if (slash == NULL || slash == path)
    return strdup (path);
  parent = strndup (path, (size_t)(slash - path));
  cp = parent ? canon_path (parent) : NULL;
  if (cp == NULL
      || asprintf (&r, "%s%s", strcmp (cp, "/") == 0 ? "" : cp, slash) == -1)
    r = NULL;
  free (parent);
  free (cp);
  return r;
}

/* Is path dir itself or below it? */
static bool
under (const char *path, const char *dir)
{
  size_t n = dir ? strlen (dir) : 0;

  return path && n && strncmp (path, dir, n) == 0
         && (path[n] == '/' || path[n] == '\0');
}

static void
report_shared (struct vcheck *v, const struct vaio_loc *loc, const char *what,
               const char *value, const struct claim *now,
               const struct claim *first)
{
  vaio_diag_add (v->diag, loc,
                 "disk '%s' of vm '%s' uses %s '%s', already used by disk "
                 "'%s' of vm '%s' (line %u)",
                 now->disk->name, now->disk->vm->name, what, value,
                 first->disk->name, first->disk->vm->name,
                 first->disk->loc.line);
}

static bool
same (const char *a, const char *b)
{
  return a && b && strcmp (a, b) == 0;
}

static void
check_shared (struct vcheck *v, const struct claim *cl, size_t n)
{
  char endpoint[300];

  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < i; j++)
      {
        const struct vaio_disk *d = cl[i].disk, *e = cl[j].disk;

        if (same (cl[i].image, cl[j].image))
          report_shared (v, &d->image_loc, "image", cl[i].image, &cl[i],
                         &cl[j]);
        if (same (cl[i].sock_canon, cl[j].sock_canon))
          report_shared (v, d->socket ? &d->socket_loc : &d->loc, "socket",
                         cl[i].socket, &cl[i], &cl[j]);
        if (same_endpoint (d, &cl[i].endpoint, e, &cl[j].endpoint))
          {
            snprintf (endpoint, sizeof endpoint, "%.200s:%d", d->address,
                      d->port);
            report_shared (v, &d->port_loc, "TCP endpoint", endpoint, &cl[i],
                           &cl[j]);
          }
        if (same (cl[i].state_canon, cl[j].state_canon))
          report_shared (v, &d->loc, "state directory", cl[i].state_dir, &cl[i],
                         &cl[j]);
      }
}

static void
claim_disk (struct vcheck *v, const struct vaio_disk *d, struct claim *c)
{
  const struct vaio_host *h = vaio_config_host (v->cfg, d->vm->host);
  char *vm_dir;

  c->disk = d;
  c->host = h;
  /* Two spellings of one file (a/../b, symlinks) are one image. */
  c->image = realpath (d->image, NULL);
  if (c->image == NULL)
    c->image = strdup (d->image);
  if (h != NULL)
    {
      c->socket = vaio_disk_socket (h, d);
      c->state_dir = vaio_disk_state_dir (h, d);
      vm_dir = vaio_vm_dir (h, d->vm);
      c->state_canon = c->state_dir ? canon_path (c->state_dir) : NULL;
      c->vm_canon = vm_dir ? canon_path (vm_dir) : NULL;
      free (vm_dir);
    }
  else if (d->socket != NULL)
    c->socket = strdup (d->socket);
  if (c->socket != NULL)
    c->sock_canon = canon_path (c->socket);
  if (d->port != 0 && d->address != NULL)
    resolve_endpoint (v, d, &c->endpoint);
}

/* ---- where a unix socket may be ----
 *
 * vaioctl removes a stale socket before nbdkit binds it, and a VM's
 * directory (0700) is what keeps other users off its sockets.  So a
 * socket must be nothing else (no image, nothing inside a disk's state),
 * must not be put among another VM's files, and two VMs never share a
 * socket directory.
 */

/* sun_path holds the path and its NUL. */
#define SUN_PATH_MAX (sizeof ((struct sockaddr_un *)0)->sun_path - 1)

/* nbdkit binds the socket, `apply` binds <socket>.next beside it during a
 * swap, and the pause filter binds <disk-state>/pause.sock.
 */
static void
check_socket_lengths (struct vcheck *v, const struct claim *c,
                      const struct vaio_loc *at)
{
  const struct vaio_disk *d = c->disk;
  size_t n = strlen (c->socket);

  if (n + strlen (".next") > SUN_PATH_MAX)
    vaio_diag_add (v->diag, at,
                   "socket '%s' of disk '%s' of vm '%s' is too long for a "
                   "unix socket: %zu bytes, at most %zu (apply binds "
                   "'<socket>.next', %zu bytes at most); %s",
                   c->socket, d->name, d->vm->name, n,
                   SUN_PATH_MAX - strlen (".next"), SUN_PATH_MAX,
                   d->socket ? "use a shorter 'socket'"
                             : "use a shorter 'state-dir' or set 'socket'");
}

static void
check_pause_socket_length (struct vcheck *v, const struct claim *c)
{
  const struct vaio_disk *d = c->disk;

  if (c->state_dir
      && strlen (c->state_dir) + strlen ("/pause.sock") > SUN_PATH_MAX)
    vaio_diag_add (v->diag, &c->host->state_dir_loc,
                   "pause socket '%s/pause.sock' of disk '%s' of vm '%s' is "
                   "too long for a unix socket: %zu bytes, at most %zu; use a "
                   "shorter 'state-dir'",
                   c->state_dir, d->name, d->vm->name,
                   strlen (c->state_dir) + strlen ("/pause.sock"),
                   SUN_PATH_MAX);
}

/* Below a host's state dir, a socket belongs in its own VM's directory
 * only: elsewhere it would sit among another VM's files (readable to
 * that VM's clients) or the host's own (installed/, datastores/).
 */
static void
check_socket_in_host_dirs (struct vcheck *v, const struct claim *c,
                           const struct vaio_loc *at)
{
  const struct vaio_disk *d = c->disk;

  for (size_t h = 0; h < v->cfg->n_hosts; h++)
    {
      const struct vaio_host *host = &v->cfg->hosts[h];
      char *hd = canon_path (host->state_dir), *vms = NULL;
      const char *rest;
      size_t n;

      if (hd == NULL || asprintf (&vms, "%s/vms/", hd) == -1)
        vms = NULL;
      if (vms && under (c->sock_canon, hd)
          && !under (c->sock_canon, c->vm_canon))
        {
          n = strlen (vms);
          rest
              = strncmp (c->sock_canon, vms, n) == 0 ? c->sock_canon + n : NULL;
          if (rest && strchr (rest, '/'))
            vaio_diag_add (v->diag, at,
                           "socket '%s' of disk '%s' of vm '%s' is inside the "
                           "directory of vm '%.*s' (%s%.*s): a VM's directory "
                           "holds its own disks only",
                           c->socket, d->name, d->vm->name,
                           (int)(strchr (rest, '/') - rest), rest, vms,
                           (int)(strchr (rest, '/') - rest), rest);
          else
            vaio_diag_add (v->diag, at,
                           "socket '%s' of disk '%s' of vm '%s' is inside the "
                           "state directory '%s' of host '%s' but outside the "
                           "vm's own directory '%s'",
                           c->socket, d->name, d->vm->name, host->state_dir,
                           host->name, c->vm_canon);
          free (hd);
          free (vms);
          return;
        }
      free (hd);
      free (vms);
    }
}

/* Report the first overlap only: one misplaced socket, one message. */
static bool
check_socket_overlaps (struct vcheck *v, const struct claim *cl, size_t n,
                       size_t i, const struct vaio_loc *at)
{
  const struct claim *c = &cl[i];
  const struct vaio_disk *d = c->disk;

  for (size_t j = 0; j < n; j++)
    {
      const struct vaio_disk *e = cl[j].disk;
      if (same (c->sock_canon, cl[j].image))
        vaio_diag_add (v->diag, at,
                       "socket '%s' of disk '%s' of vm '%s' is the image of "
                       "disk '%s' of vm '%s' (line %u)",
                       c->socket, d->name, d->vm->name, e->name, e->vm->name,
                       e->loc.line);
      else if (under (c->sock_canon, cl[j].state_canon))
        vaio_diag_add (v->diag, at,
                       "socket '%s' of disk '%s' of vm '%s' is inside the "
                       "state directory '%s' of disk '%s' of vm '%s' "
                       "(line %u)",
                       c->socket, d->name, d->vm->name, cl[j].state_dir,
                       e->name, e->vm->name, e->loc.line);
      else
        continue;
      return true;
    }
  return false;
}

static char *
parent_of (const char *path)
{
  const char *slash = path ? strrchr (path, '/') : NULL;

  return slash ? strndup (path, (size_t)(slash - path)) : NULL;
}

/* A directory's mode is what keeps other users off the sockets in it:
 * two VMs' sockets in one directory would be reachable alike.
 */
static void
check_socket_dir_shared (struct vcheck *v, const struct claim *cl, size_t i,
                         const struct vaio_loc *at)
{
  const struct claim *c = &cl[i];
  char *dir = parent_of (c->sock_canon);

  for (size_t j = 0; dir && j < i; j++)
    {
      const struct vaio_disk *e = cl[j].disk;
      char *other = parent_of (cl[j].sock_canon);
      bool clash = other && strcmp (dir, other) == 0
                   && (strcmp (e->vm->name, c->disk->vm->name) != 0
                       || c->host != cl[j].host)
                   && !same (c->sock_canon, cl[j].sock_canon);
      free (other);
      if (clash)
        {
          vaio_diag_add (v->diag, at,
                         "socket '%s' of disk '%s' of vm '%s' is in directory "
                         "'%s' with the socket of disk '%s' of vm '%s' (line "
                         "%u): each VM's sockets need a directory of their "
                         "own",
                         c->socket, c->disk->name, c->disk->vm->name, dir,
                         e->name, e->vm->name, e->loc.line);
          break;
        }
    }
  free (dir);
}

static void
check_sockets (struct vcheck *v, const struct claim *cl, size_t n)
{
  struct stat st;

  for (size_t i = 0; i < n; i++)
    {
      const struct claim *c = &cl[i];
      const struct vaio_disk *d = c->disk;
      const struct vaio_loc *at = d->socket ? &d->socket_loc
                                  : c->host ? &c->host->state_dir_loc
                                            : &d->loc;

      if (c->host != NULL)
        check_pause_socket_length (v, c);
      if (c->socket == NULL || c->host == NULL || c->sock_canon == NULL)
        continue;
      check_socket_lengths (v, c, at);
      if (lstat (c->socket, &st) == 0 && !S_ISSOCK (st.st_mode))
        vaio_diag_add (v->diag, d->socket ? &d->socket_loc : &d->loc,
                       "socket '%s' of disk '%s' of vm '%s' exists and is not "
                       "a socket: vaioctl never replaces or removes anything "
                       "but a socket there",
                       c->socket, d->name, d->vm->name);
      if (!check_socket_overlaps (v, cl, n, i, at))
        check_socket_in_host_dirs (v, c, at);
      check_socket_dir_shared (v, cl, i, at);
    }
}

static void
check_disks (struct vcheck *v)
{
  const struct vaio_config *cfg = v->cfg;
  struct claim *cl;
  size_t n = 0, k = 0;

  for (size_t i = 0; i < cfg->n_vms; i++)
    n += cfg->vms[i].n_disks;
  cl = calloc (n ? n : 1, sizeof *cl);
  if (cl == NULL)
    {
      vaio_diag_add (v->diag, NULL, "%s: out of memory", cfg->file);
      return;
    }
  for (size_t i = 0; i < cfg->n_vms; i++)
    for (size_t j = 0; j < cfg->vms[i].n_disks; j++)
      {
        check_image (v, &cfg->vms[i].disks[j]);
        claim_disk (v, &cfg->vms[i].disks[j], &cl[k++]);
      }
  check_shared (v, cl, n);
  check_sockets (v, cl, n);
  for (size_t i = 0; i < n; i++)
    {
      free (cl[i].image);
      free (cl[i].socket);
      free (cl[i].sock_canon);
      free (cl[i].state_dir);
      free (cl[i].state_canon);
      free (cl[i].vm_canon);
    }
  free (cl);
}

static void
check_host_state_dirs (struct vcheck *v)
{
  const struct vaio_config *cfg = v->cfg;

  for (size_t i = 0; i < cfg->n_hosts; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp (cfg->hosts[i].state_dir, cfg->hosts[j].state_dir) == 0)
        {
          vaio_diag_add (v->diag, &cfg->hosts[i].loc,
                         "host '%s' uses state-dir '%s', already used by "
                         "host '%s' (line %u)",
                         cfg->hosts[i].name, cfg->hosts[i].state_dir,
                         cfg->hosts[j].name, cfg->hosts[j].loc.line);
          break;
        }
}

int
vaio_validate (const struct vaio_config *cfg,
               const struct vaio_host_filters *hf, struct vaio_diag *diag)
{
  struct vcheck v = { .cfg = cfg, .hf = hf, .diag = diag };
  size_t before = diag->n;

  check_references (&v);
  /* Without an inventory (it failed to load, and said why) the filter
   * rules cannot be checked; everything else still is.
   */
  if (hf != NULL)
    check_policies_on_hosts (&v);
  check_host_state_dirs (&v);
  check_disks (&v);
  return diag->n == before ? 0 : -1;
}

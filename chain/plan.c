/* vaio-nbd planner: one nbdkit command line per VM disk.
 *
 *   nbdkit -f --unix SOCK -P PIDFILE --filter=pause
 *          --filter=OUTERMOST.so … --filter=INNERMOST.so
 *          file file=IMAGE
 *          <class settings as key=value, filter by filter>
 *          <state-param>=<disk-state>/<class>   for filters that keep state
 *          pause-control=<disk-state>/pause.sock
 *
 * The same argv is what `vaioctl up` executes, so `vaioctl plan` output
 * run by hand serves the same chain.  Secrets travel as file paths only
 * (with the manifest's prefix, e.g. passphrase=+FILE): the manifest
 * types them VAIO_PARAM_SECRET and validation made sure the file exists
 * and is owner-only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "yamlutil.h"

struct argv_builder
{
  char **v;
  size_t n, cap;
  bool failed;
};

static void
argv_add (struct argv_builder *b, char *owned)
{
  if (owned == NULL || b->failed)
    goto oom;
  if (b->n + 2 > b->cap)
    {
      size_t cap = b->cap ? b->cap * 2 : 16;
      char **v = realloc (b->v, cap * sizeof *v);
      if (v == NULL)
        goto oom;
      b->v = v;
      b->cap = cap;
    }
  b->v[b->n++] = owned;
  b->v[b->n] = NULL;
  return;
oom:
  free (owned);
  b->failed = true;
}

static void argv_addf (struct argv_builder *b, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
argv_addf (struct argv_builder *b, const char *fmt, ...)
{
  va_list ap;
  char *s;

  va_start (ap, fmt);
  if (vasprintf (&s, fmt, ap) == -1)
    s = NULL;
  va_end (ap);
  argv_add (b, s);
}

const struct vaio_host_filters *
vaio_plan_host_filters (const struct vaio_config *cfg,
                        const struct vaio_host_filters *hf, const char *host)
{
  for (size_t i = 0; i < cfg->n_hosts; i++)
    if (strcmp (hf[i].host->name, host) == 0)
      return &hf[i];
  return NULL;
}

/* Relative paths in policy settings are relative to the config file,
 * like every other path in it; a manifest's prefix goes in front of the
 * absolute path (passphrase=+/abs/file for nbdkit's luks filter).
 */
static char *
setting_value (const struct vaio_config *cfg, const struct vaio_manifest *m,
               const struct vaio_setting *s)
{
  const struct vaio_param_spec *spec = vaio_manifest_param (m, s->key);
  char *file, *v;

  if (spec == NULL
      || (spec->type != VAIO_PARAM_PATH && spec->type != VAIO_PARAM_SECRET)
      || s->value[0] == '\0')
    return strdup (s->value);
  file = vaio_setting_file (cfg, spec, s->value);
  if (file == NULL || spec->prefix == NULL)
    return file;
  if (asprintf (&v, "%s%s", spec->prefix, file) == -1)
    v = NULL;
  free (file);
  return v;
}

/* `sioc-datastore: NAME` (no '/') names a datastore of the host: every
 * disk whose policy names it shares the segment
 * <host state-dir>/datastores/NAME.seg (vaio-sioc creates the directory,
 * 0700).  A value with a '/' stays a path, relative to the config file.
 */
static bool
is_datastore_name (const struct vaio_setting *s)
{
  return strcmp (s->key, "sioc-datastore") == 0 && s->value[0] != '\0'
         && strchr (s->value, '/') == NULL;
}

static char *
datastore_segment (const struct vaio_plan_disk *p, const char *name)
{
  char *v;

  if (asprintf (&v, "%s/datastores/%s.seg", p->host->state_dir, name) == -1)
    return NULL;
  return v;
}

static void
add_filter_params (struct argv_builder *b, const struct vaio_config *cfg,
                   const struct vaio_plan_disk *p, size_t pos)
{
  const struct vaio_manifest *m = p->filters[pos];
  const struct vaio_class_rule *r = &p->policy->rules[p->chain[pos]];

  for (size_t i = 0; i < r->n_settings; i++)
    {
      char *v = is_datastore_name (&r->settings[i])
                    ? datastore_segment (p, r->settings[i].value)
                    : setting_value (cfg, m, &r->settings[i]);
      if (v == NULL)
        {
          b->failed = true;
          return;
        }
      argv_addf (b, "%s=%s", r->settings[i].key, v);
      free (v);
    }
  if (m->state_param)
    argv_addf (b, "%s=%s/%s", m->state_param, p->state_dir,
               vaio_class_name (p->chain[pos]));
}

static int
build_argv (const struct vaio_config *cfg, struct vaio_plan_disk *p)
{
  struct argv_builder b = { 0 };

  argv_add (&b, strdup ("nbdkit"));
  argv_add (&b, strdup ("-f"));
  if (p->disk->port)
    {
      argv_addf (&b, "--ipaddr=%s",
                 p->disk->address ? p->disk->address : "127.0.0.1");
      argv_addf (&b, "--port=%d", p->disk->port);
    }
  else
    argv_addf (&b, "--unix=%s", p->socket);
  argv_addf (&b, "--pidfile=%s", p->pidfile);
  /* nbdkit's pause filter, outermost, is how `vaioctl apply` quiesces a
   * disk before swapping its chain: it holds new requests and answers on
   * its control socket once in-flight ones have drained.
   */
  argv_add (&b, strdup ("--filter=pause"));
  for (size_t i = 0; i < p->n_chain; i++)
    argv_addf (&b, "--filter=%s", p->filters[i]->path);
  argv_add (&b, strdup ("file"));
  argv_addf (&b, "file=%s", p->disk->image);
  for (size_t i = 0; i < p->n_chain; i++)
    add_filter_params (&b, cfg, p, i);
  argv_addf (&b, "pause-control=%s", p->pause_socket);

  if (b.failed)
    {
      for (size_t i = 0; i < b.n; i++)
        free (b.v[i]);
      free (b.v);
      return -1;
    }
  p->argv = b.v;
  p->argc = b.n;
  return 0;
}

/* A caching filter that is not told where its state goes (no state-param
 * in its manifest: nbdkit's own cache filter) puts its cache file in
 * $TMPDIR; point that at the filter's state dir like any other's.
 */
static int
set_tmpdir (struct vaio_plan_disk *p)
{
  for (size_t i = 0; i < p->n_chain; i++)
    if (p->chain[i] == VAIO_CLASS_CACHING && p->filters[i]->state_param == NULL)
      return asprintf (&p->tmpdir_env, "TMPDIR=%s/%s", p->state_dir,
                       vaio_class_name (p->chain[i]))
                     == -1
                 ? -1
                 : 0;
  return 0;
}

int
vaio_plan_disk (const struct vaio_config *cfg,
                const struct vaio_host_filters *hf, const struct vaio_vm *vm,
                const struct vaio_disk *d, struct vaio_plan_disk *p,
                struct vaio_diag *diag)
{
  const struct vaio_host_filters *h;
  bool present[VAIO_CLASS_COUNT];

  memset (p, 0, sizeof *p);
  p->vm = vm;
  p->disk = d;
  h = vaio_plan_host_filters (cfg, hf, vm->host);
  p->policy = vaio_config_policy (cfg, d->policy);
  if (h == NULL || p->policy == NULL)
    {
      vaio_diag_add (diag, &d->loc, "disk '%s/%s': unknown host or policy",
                     vm->name, d->name);
      return -1;
    }
  p->host = h->host;

  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    present[c] = p->policy->rules[c].present;
  p->n_chain = vaio_class_chain_order (
      present, p->policy->allow_cleartext_filters, p->chain);
  for (size_t i = 0; i < p->n_chain; i++)
    {
      p->filters[i] = h->by_class[p->chain[i]];
      if (p->filters[i] == NULL)
        {
          vaio_diag_add (diag, &p->policy->rules[p->chain[i]].loc,
                         "policy '%s' uses class '%s' but host '%s' has no "
                         "%s filter installed",
                         p->policy->name, vaio_class_name (p->chain[i]),
                         p->host->name, vaio_class_name (p->chain[i]));
          return -1;
        }
    }

  p->vm_dir = vaio_vm_dir (p->host, vm);
  p->state_dir = vaio_disk_state_dir (p->host, d);
  p->socket = vaio_disk_socket (p->host, d); /* NULL for TCP */
  if (p->vm_dir == NULL || p->state_dir == NULL
      || asprintf (&p->pidfile, "%s/nbdkit.pid", p->state_dir) == -1
      || asprintf (&p->logfile, "%s/nbdkit.log", p->state_dir) == -1
      || asprintf (&p->pause_socket, "%s/pause.sock", p->state_dir) == -1
      || build_argv (cfg, p) == -1 || set_tmpdir (p) == -1)
    {
      vaio_diag_add (diag, &d->loc, "disk '%s/%s': out of memory", vm->name,
                     d->name);
      vaio_plan_disk_free (p);
      return -1;
    }
  return 0;
}

void
vaio_plan_disk_free (struct vaio_plan_disk *p)
{
  if (p->argv)
    for (size_t i = 0; i < p->argc; i++)
      free (p->argv[i]);
  free (p->argv);
  free (p->vm_dir);
  free (p->state_dir);
  free (p->socket);
  free (p->pidfile);
  free (p->logfile);
  free (p->pause_socket);
  free (p->tmpdir_env);
  memset (p, 0, sizeof *p);
}

/* Quote a word for a POSIX shell when it holds anything but the safe set. */
static void
shell_quote (FILE *fp, const char *w)
{
  if (*w != '\0'
      && strspn (w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                    "VWXYZ0123456789-_./=:,+@%")
             == strlen (w))
    {
      fputs (w, fp);
      return;
    }
  fputc ('\'', fp);
  for (; *w; w++)
    if (*w == '\'')
      fputs ("'\\''", fp);
    else
      fputc (*w, fp);
  fputc ('\'', fp);
}

char *
vaio_plan_shell_line (const struct vaio_plan_disk *p)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);

  if (fp == NULL)
    return NULL;
  if (p->tmpdir_env)
    {
      fputs ("TMPDIR=", fp);
      shell_quote (fp, p->tmpdir_env + strlen ("TMPDIR="));
      fputc (' ', fp);
    }
  for (size_t i = 0; i < p->argc; i++)
    {
      if (i)
        fputc (' ', fp);
      shell_quote (fp, p->argv[i]);
    }
  fclose (fp);
  return buf;
}

/* nbdkit creates neither the socket's and pidfile's directory nor the
 * filters' state directories; `up` makes them (owner-only) before it
 * starts nbdkit, and a hand run needs the same.
 */
char *
vaio_plan_mkdir_line (const struct vaio_plan_disk *p)
{
  char *buf = NULL, *dir;
  size_t len = 0;
  FILE *fp = open_memstream (&buf, &len);
  bool ok = true;

  if (fp == NULL)
    return NULL;
  fputs ("mkdir -p -m 0700 ", fp);
  shell_quote (fp, p->vm_dir);
  fputc (' ', fp);
  shell_quote (fp, p->state_dir);
  /* An explicit socket elsewhere: up makes its directory when missing
   * (mkdir -p leaves an existing one as it is).
   */
  if (p->socket && (dir = strrchr (p->socket, '/')) != NULL && dir != p->socket
      && ((size_t)(dir - p->socket) != strlen (p->vm_dir)
          || strncmp (p->socket, p->vm_dir, strlen (p->vm_dir)) != 0))
    {
      char *sd = strndup (p->socket, (size_t)(dir - p->socket));
      if (sd == NULL)
        ok = false;
      else
        {
          fputc (' ', fp);
          shell_quote (fp, sd);
          free (sd);
        }
    }
  for (size_t i = 0; i < p->n_chain; i++)
    {
      if (asprintf (&dir, "%s/%s", p->state_dir, vaio_class_name (p->chain[i]))
          == -1)
        {
          ok = false;
          break;
        }
      fputc (' ', fp);
      shell_quote (fp, dir);
      free (dir);
    }
  fclose (fp);
  if (!ok)
    {
      free (buf);
      return NULL;
    }
  return buf;
}

char *
vaio_plan_uri (const struct vaio_plan_disk *p)
{
  char *uri;

  if (p->disk->port)
    {
      if (asprintf (&uri, "nbd://%s:%d",
                    p->disk->address ? p->disk->address : "127.0.0.1",
                    p->disk->port)
          == -1)
        return NULL;
    }
  else if (asprintf (&uri, "nbd+unix:///?socket=%s", p->socket) == -1)
    return NULL;
  return uri;
}

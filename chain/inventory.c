/* vaio-nbd: installed filters per host.
 *
 * A host's filters come from two places: the manifests its config entry
 * lists (declarative), and <state>/installed/<name>.yaml written by
 * `vaioctl filter install` (imperative, persistent across runs).  The
 * VAIO rule holds over the union: one filter per class per host.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inventory.h"
#include "plan.h"
#include "supervise.h"

char *
vaio_installed_dir (const struct vaio_host *h)
{
  char *p;

  if (asprintf (&p, "%s/installed", h->state_dir) == -1)
    return NULL;
  return p;
}

static char *
maintenance_file (const struct vaio_host *h)
{
  char *p;

  if (asprintf (&p, "%s/maintenance", h->state_dir) == -1)
    return NULL;
  return p;
}

bool
vaio_host_in_maintenance (const struct vaio_host *h)
{
  char *p = maintenance_file (h);
  bool on = p && access (p, F_OK) == 0;

  free (p);
  return on;
}

int
vaio_host_set_maintenance (const struct vaio_host *h, bool on)
{
  char *p = maintenance_file (h);
  int r = 0;

  if (p == NULL || vaio_mkdir_private (h->state_dir) == -1)
    r = -1;
  else if (on)
    {
      FILE *fp = fopen (p, "w");
      if (fp == NULL || fclose (fp) != 0)
        r = -1;
    }
  else if (unlink (p) == -1 && errno != ENOENT)
    r = -1;
  free (p);
  return r;
}

/* Add manifest m to the host's table, or report the class conflict at
 * at (the config's filters: entry), or at the manifest when NULL.
 */
static int
host_filters_add (struct vaio_host_filters *hf, struct vaio_manifest *m,
                  const struct vaio_loc *at, struct vaio_diag *diag)
{
  struct vaio_manifest *old = hf->by_class[m->class_];

  if (old == NULL)
    {
      hf->by_class[m->class_] = m;
      return 0;
    }
  if (strcmp (old->name, m->name) == 0 && strcmp (old->sha256, m->sha256) == 0)
    {
      vaio_manifest_free (m); /* the same package listed twice */
      return 0;
    }
  vaio_diag_add (diag, at ? at : &m->loc,
                 "host '%s': cannot install filter '%s' (class %s): filter "
                 "'%s' %s (%s) of class %s is already installed; one filter "
                 "per class per host",
                 hf->host->name, m->name, vaio_class_name (m->class_),
                 old->name, old->version, old->file,
                 vaio_class_name (old->class_));
  vaio_manifest_free (m);
  return -1;
}

/* at: where the config's filters: list names file, NULL for installed/.
 * A manifest that is not there is the config's error, so it is reported
 * at the config's entry, naming the key.
 *
 * A manifest whose .so fails its sha256 is still entered in the table,
 * and the load fails: the commands that start chains refuse to go on,
 * while status can show the disks that use it as out of compliance and
 * the in-use checks still see it.
 */
static int
load_one (struct vaio_host_filters *hf, const char *file,
          const struct vaio_loc *at, struct vaio_diag *diag)
{
  struct vaio_manifest *m;
  int intact;

  if (at && access (file, R_OK) == -1)
    {
      vaio_diag_add (diag, at,
                     "filter manifest '%s' for 'filters' in host '%s': %s",
                     file, hf->host->name, strerror (errno));
      return -1;
    }
  m = vaio_manifest_load (file, diag);
  if (m == NULL)
    return -1;
  intact = vaio_manifest_verify_at (m, at, diag);
  if (host_filters_add (hf, m, at, diag) == -1)
    return -1;
  return intact;
}

static int
yaml_name (const struct dirent *d)
{
  size_t n = strlen (d->d_name);

  return d->d_name[0] != '.' && n > 5
         && strcmp (d->d_name + n - 5, ".yaml") == 0;
}

static int
load_installed (struct vaio_host_filters *hf, struct vaio_diag *diag)
{
  char *dir = vaio_installed_dir (hf->host), *file;
  struct dirent **names;
  int n, r = 0;

  if (dir == NULL)
    return -1;
  n = scandir (dir, &names, yaml_name, alphasort);
  for (int i = 0; i < n; i++)
    {
      if (asprintf (&file, "%s/%s", dir, names[i]->d_name) == -1)
        r = -1;
      else
        {
          if (load_one (hf, file, NULL, diag) == -1)
            r = -1;
          free (file);
        }
      free (names[i]);
    }
  if (n >= 0)
    free (names);
  free (dir);
  return r;
}

int
vaio_host_filters_load (const struct vaio_config *cfg,
                        struct vaio_host_filters *hf, struct vaio_diag *diag)
{
  int r = 0;

  for (size_t i = 0; i < cfg->n_hosts; i++)
    {
      const struct vaio_host *h = &cfg->hosts[i];
      memset (&hf[i], 0, sizeof hf[i]);
      hf[i].host = h;
      for (size_t j = 0; j < h->n_filter_files; j++)
        if (load_one (&hf[i], h->filter_files[j], &h->filter_locs[j], diag)
            == -1)
          r = -1;
      if (load_installed (&hf[i], diag) == -1)
        r = -1;
    }
  return r;
}

void
vaio_host_filters_free (struct vaio_host_filters *hf, size_t n)
{
  for (size_t i = 0; i < n; i++)
    for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
      vaio_manifest_free (hf[i].by_class[c]);
}

/* Does a running record have a "filter CLASS NAME ..." line with this
 * class (c < VAIO_CLASS_COUNT) or this name (name != NULL)?
 */
static bool
record_uses (const char *rec, int c, const char *name)
{
  for (const char *l = rec; l && *l;
       l = strchr (l, '\n') ? strchr (l, '\n') + 1 : NULL)
    {
      char cls[32], nm[256];
      if (sscanf (l, "filter %31s %255s ", cls, nm) != 2)
        continue;
      if ((c < VAIO_CLASS_COUNT && strcmp (cls, vaio_class_name (c)) == 0)
          || (name && strcmp (nm, name) == 0))
        return true;
    }
  return false;
}

/* Append "label" to the NULL-terminated list *out (of *n) when the disk
 * whose state dir is state runs (a live nbdkit in its pidfile) and uses
 * class c or the filter called name (see record_uses), or runs at all when
 * c == VAIO_CLASS_COUNT and name == NULL.
 */
static void
add_if_user (char ***out, size_t *n, const char *state, const char *label,
             int c, const char *name)
{
  char *pidfile, *rec, **grown;
  bool uses;

  if (*out == NULL || asprintf (&pidfile, "%s/nbdkit.pid", state) == -1)
    return;
  rec = vaio_disk_running_record (state);
  uses = vaio_disk_pid (pidfile) > 0
         && ((c == VAIO_CLASS_COUNT && name == NULL)
             || record_uses (rec, c, name));
  free (rec);
  free (pidfile);
  if (!uses || (grown = realloc (*out, (*n + 2) * sizeof **out)) == NULL)
    return;
  *out = grown;
  if (((*out)[*n] = strdup (label)) != NULL)
    (*out)[++*n] = NULL;
}

static int
visible (const struct dirent *d)
{
  return d->d_name[0] != '.';
}

/* Disks still running under the host's state dir that the config no
 * longer names (a VM or disk removed from the YAML): their chains run on
 * whatever filters they were started with, so they count as users too.
 * Where `up` put them: <state>/vms/VM/DISK/{nbdkit.pid,running}.
 */
static void
add_unconfigured_users (const struct vaio_config *cfg,
                        const struct vaio_host *h, int c, const char *name,
                        char ***out, size_t *n)
{
  struct dirent **vms = NULL, **disks;
  char *vmsdir, *vmdir, *state, *label;
  int nv, nd;

  if (asprintf (&vmsdir, "%s/vms", h->state_dir) == -1)
    return;
  nv = scandir (vmsdir, &vms, visible, alphasort);
  for (int i = 0; i < nv; i++)
    {
      if (asprintf (&vmdir, "%s/%s", vmsdir, vms[i]->d_name) != -1)
        {
          nd = scandir (vmdir, &disks, visible, alphasort);
          for (int j = 0; j < nd; j++)
            {
              if (!vaio_config_names_disk (cfg, h, vms[i]->d_name,
                                           disks[j]->d_name)
                  && asprintf (&state, "%s/%s", vmdir, disks[j]->d_name) != -1)
                {
                  if (asprintf (&label, "%s/%s (no longer in the config)",
                                vms[i]->d_name, disks[j]->d_name)
                      != -1)
                    {
                      add_if_user (out, n, state, label, c, name);
                      free (label);
                    }
                  free (state);
                }
              free (disks[j]);
            }
          if (nd >= 0)
            free (disks);
          free (vmdir);
        }
      free (vms[i]);
    }
  if (nv >= 0)
    free (vms);
  free (vmsdir);
}

/* Running disks of host h that use class c or the filter called name (see
 * record_uses), or every running disk when c == VAIO_CLASS_COUNT and
 * name == NULL: the config's disks first, then those it no longer names.
 */
static char **
running_users (const struct vaio_config *cfg, const struct vaio_host *h, int c,
               const char *name)
{
  char **out = calloc (1, sizeof *out), *state, *label;
  size_t n = 0;

  for (size_t v = 0; out && v < cfg->n_vms; v++)
    {
      const struct vaio_vm *vm = &cfg->vms[v];
      if (strcmp (vm->host, h->name) != 0)
        continue;
      for (size_t d = 0; d < vm->n_disks; d++)
        {
          state = vaio_disk_state_dir (h, &vm->disks[d]);
          if (state != NULL
              && asprintf (&label, "%s/%s", vm->name, vm->disks[d].name) != -1)
            {
              add_if_user (&out, &n, state, label, c, name);
              free (label);
            }
          free (state);
        }
    }
  add_unconfigured_users (cfg, h, c, name, &out, &n);
  return out;
}

char **
vaio_host_running_disks (const struct vaio_config *cfg,
                         const struct vaio_host *h, int c)
{
  return running_users (cfg, h, c, NULL);
}

static void
free_strv (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

/* Refuse to change a filter that running disks use, unless the host is
 * in maintenance mode (where the operator has taken responsibility).  A
 * disk uses it when its running chain has a filter called name (whatever
 * class it runs as: a re-install may change the class) or, for c <
 * VAIO_CLASS_COUNT, any filter of class c.
 */
static int
check_not_in_use (const struct vaio_config *cfg, const struct vaio_host *h,
                  int c, const char *name, const char *what,
                  struct vaio_diag *diag)
{
  char **users;
  int r = 0;

  if (vaio_host_in_maintenance (h))
    return 0;
  users = running_users (cfg, h, c, name);
  if (users && users[0])
    {
      vaio_diag_add (diag, NULL,
                     "host '%s': cannot %s filter '%s': in use by running "
                     "disk %s%s; stop the disks or put the host in "
                     "maintenance mode (vaioctl host maintenance %s on)",
                     h->name, what, name, users[0],
                     users[1] ? " and others" : "", h->name);
      r = -1;
    }
  free_strv (users);
  return r;
}

/* A YAML double-quoted scalar: only the backslash and the quote need
 * escaping in a path (no control characters reach here: the manifest
 * parser took it from a scalar, and the .so was found there).
 */
static void
write_quoted_path (FILE *out, const char *path)
{
  fputs ("path: \"", out);
  for (const char *c = path; *c; c++)
    {
      if (*c == '"' || *c == '\\')
        fputc ('\\', out);
      fputc (*c, out);
    }
  fputs ("\"\n", out);
}

/* The copy is written line by line, which works for the block style our
 * manifests use; read it back to be sure it describes the same filter at
 * the same absolute path before it replaces anything.
 */
static bool
same_filter (const struct vaio_manifest *m, const char *copy,
             struct vaio_diag *diag)
{
  struct vaio_diag quiet = { 0 };
  struct vaio_manifest *c = vaio_manifest_load (copy, &quiet);
  bool same = c && strcmp (c->name, m->name) == 0
              && strcmp (c->path, m->path) == 0
              && strcmp (c->sha256, m->sha256) == 0;

  if (!same)
    vaio_diag_add (diag, NULL,
                   "%s: cannot install it: the path of its .so could not be "
                   "made absolute in the installed copy (write 'path:' as a "
                   "top-level key on a line of its own)",
                   m->file);
  vaio_manifest_free (c);
  vaio_diag_free (&quiet);
  return same;
}

/* The installed copy is the manifest with its path made absolute, so it
 * stays valid wherever the original manifest lives.
 */
static int
write_installed_copy (const struct vaio_manifest *m, const char *dest,
                      struct vaio_diag *diag)
{
  FILE *in = fopen (m->file, "r"), *out;
  char *line = NULL, *tmp;
  size_t cap = 0;
  int r = 0;

  if (in == NULL || asprintf (&tmp, "%s.tmp", dest) == -1)
    {
      vaio_diag_add (diag, NULL, "%s: %m", m->file);
      if (in)
        fclose (in);
      return -1;
    }
  out = fopen (tmp, "w");
  if (out == NULL)
    {
      vaio_diag_add (diag, NULL, "%s: %m", tmp);
      fclose (in);
      free (tmp);
      return -1;
    }
  fchmod (fileno (out), 0600);
  while (getline (&line, &cap, in) != -1)
    {
      if (strncmp (line, "path:", 5) == 0)
        write_quoted_path (out, m->path);
      else
        fputs (line, out);
    }
  free (line);
  fclose (in);
  if (fclose (out) != 0)
    {
      vaio_diag_add (diag, NULL, "%s: %m", tmp);
      r = -1;
    }
  else if (!same_filter (m, tmp, diag))
    r = -1;
  else if (rename (tmp, dest) == -1)
    {
      vaio_diag_add (diag, NULL, "%s: %m", dest);
      r = -1;
    }
  if (r == -1)
    unlink (tmp);
  free (tmp);
  return r;
}

/* The config's filters: list declares the host's filters too: installing
 * another package under a declared name (another .so, another sha256)
 * would leave the host with two of them, and every later validate would
 * fail.  The config entry is what has to change.  0, or -1 + diag.
 */
static int
check_not_declared_otherwise (const struct vaio_host *h,
                              const struct vaio_manifest *m,
                              struct vaio_diag *diag)
{
  int r = 0;

  for (size_t j = 0; j < h->n_filter_files; j++)
    {
      struct vaio_diag quiet = { 0 };
      struct vaio_manifest *dm
          = vaio_manifest_load (h->filter_files[j], &quiet);
      if (dm && strcmp (dm->name, m->name) == 0
          && strcmp (dm->sha256, m->sha256) != 0)
        {
          vaio_diag_add (diag, &h->filter_locs[j],
                         "host '%s': refusing to install '%s' from %s: the "
                         "config declares filter '%s' here as %s, with "
                         "another sha256; change the host's filters list "
                         "instead",
                         h->name, m->name, m->file, dm->name, dm->file);
          r = -1;
        }
      vaio_manifest_free (dm);
      vaio_diag_free (&quiet);
    }
  return r;
}

int
vaio_filter_install (const struct vaio_config *cfg, const struct vaio_host *h,
                     const char *file, struct vaio_diag *diag)
{
  struct vaio_host_filters hf = { .host = h };
  struct vaio_manifest *m = vaio_manifest_load (file, diag), *old;
  char *dir = NULL, *dest = NULL;
  int r = -1;

  if (m == NULL)
    return -1;
  if (vaio_manifest_verify (m, diag) == -1
      || check_not_declared_otherwise (h, m, diag) == -1)
    goto out;
  for (size_t j = 0; j < h->n_filter_files; j++)
    load_one (&hf, h->filter_files[j], &h->filter_locs[j], diag);
  load_installed (&hf, diag);
  /* What this replaces is the filter of the same name, whatever class it
   * was installed (or runs) as: disks running that name, or the class of
   * the installed one, keep the install from going on.
   */
  if (check_not_in_use (cfg, h, VAIO_CLASS_COUNT, m->name, "upgrade", diag)
      == -1)
    goto out;
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    if (hf.by_class[c] && strcmp (hf.by_class[c]->name, m->name) == 0
        && check_not_in_use (cfg, h, (int)c, m->name, "upgrade", diag) == -1)
      goto out;
  old = hf.by_class[m->class_];
  if (old && strcmp (old->name, m->name) != 0)
    {
      vaio_diag_add (diag, NULL,
                     "host '%s': refusing to install '%s' (class %s): "
                     "filter '%s' %s by %s is already installed for class "
                     "%s; one filter per class per host",
                     h->name, m->name, vaio_class_name (m->class_), old->name,
                     old->version, old->vendor, vaio_class_name (m->class_));
      goto out;
    }

  dir = vaio_installed_dir (h);
  if (dir == NULL || vaio_mkdir_private (h->state_dir) == -1
      || vaio_mkdir_private (dir) == -1
      || asprintf (&dest, "%s/%s.yaml", dir, m->name) == -1)
    {
      vaio_diag_add (diag, NULL, "host '%s': cannot create %s: %m", h->name,
                     dir ? dir : h->state_dir);
      goto out;
    }
  r = write_installed_copy (m, dest, diag);

out:
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    vaio_manifest_free (hf.by_class[c]);
  vaio_manifest_free (m);
  free (dir);
  free (dest);
  return r;
}

int
vaio_filter_uninstall (const struct vaio_config *cfg, const struct vaio_host *h,
                       const char *name, struct vaio_diag *diag)
{
  struct vaio_host_filters hf = { .host = h };
  char *dir = vaio_installed_dir (h), *dest = NULL;
  const struct vaio_manifest *m = NULL;
  int r = -1;

  load_installed (&hf, diag);
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    if (hf.by_class[c] && strcmp (hf.by_class[c]->name, name) == 0)
      m = hf.by_class[c];
  if (m == NULL)
    {
      bool declared = false;
      for (size_t j = 0; j < h->n_filter_files; j++)
        {
          struct vaio_diag quiet = { 0 };
          struct vaio_manifest *dm
              = vaio_manifest_load (h->filter_files[j], &quiet);
          if (dm && strcmp (dm->name, name) == 0)
            {
              vaio_diag_add (diag, &h->filter_locs[j],
                             "host '%s': filter '%s' is declared in the "
                             "config, not installed with vaioctl: remove it "
                             "from the host's filters list there",
                             h->name, name);
              declared = true;
            }
          vaio_manifest_free (dm);
          vaio_diag_free (&quiet);
        }
      if (!declared)
        vaio_diag_add (diag, NULL, "host '%s': no installed filter named '%s'",
                       h->name, name);
      goto out;
    }
  if (check_not_in_use (cfg, h, (int)m->class_, m->name, "uninstall", diag)
      == -1)
    goto out;
  if (dir == NULL || asprintf (&dest, "%s/%s.yaml", dir, m->name) == -1)
    goto out;
  if (unlink (dest) == -1)
    vaio_diag_add (diag, NULL, "%s: %m", dest);
  else
    r = 0;

out:
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    vaio_manifest_free (hf.by_class[c]);
  free (dir);
  free (dest);
  return r;
}

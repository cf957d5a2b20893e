/* vaio-nbd: filter manifests (one YAML file per filter) and the integrity
 * check of the .so they describe.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "units.h"
#include "yamlutil.h"

#define WHAT_LEN 320

static const char *const manifest_keys[]
    = { "name",   "class",       "vendor",     "version", "path",
        "sha256", "state-param", "parameters", NULL };
static const char *const param_keys[]
    = { "name", "type",    "required", "values", "description",
        "live", "default", "prefix",   NULL };

static const char *const type_names[] = {
  [VAIO_PARAM_STRING] = "string",     [VAIO_PARAM_SIZE] = "size",
  [VAIO_PARAM_DURATION] = "duration", [VAIO_PARAM_BOOL] = "bool",
  [VAIO_PARAM_INT] = "int",           [VAIO_PARAM_ENUM] = "enum",
  [VAIO_PARAM_PATH] = "path",         [VAIO_PARAM_SECRET] = "secret",
  [VAIO_PARAM_URI] = "uri",
};
#define N_TYPES (sizeof type_names / sizeof type_names[0])

struct mparse
{
  struct yu_doc *y;
  struct vaio_diag *diag;
  struct vaio_manifest *m;
  char *dir; /* absolute directory of the manifest */
};

static void
oom (struct mparse *p)
{
  struct vaio_loc whole = { .file = p->y->file };

  vaio_diag_add (p->diag, &whole, "out of memory");
}

static char *
dup_or_oom (struct mparse *p, const char *s)
{
  char *d = s ? strdup (s) : NULL;

  if (s && d == NULL)
    oom (p);
  return d;
}

static int
parse_type (const char *s, enum vaio_param_type *t)
{
  for (size_t i = 0; i < N_TYPES; i++)
    if (strcmp (s, type_names[i]) == 0)
      {
        *t = (enum vaio_param_type)i;
        return 0;
      }
  return -1;
}

static bool
is_sha256 (const char *s)
{
  size_t i;

  for (i = 0; s[i]; i++)
    if (!isxdigit ((unsigned char)s[i]))
      return false;
  return i == 64;
}

static char *
get_name (struct mparse *p, yaml_node_t *map, const char *what,
          const char *kind)
{
  struct vaio_loc loc;
  const char *s = yu_get_string (p->y, map, "name", what, true, &loc, p->diag);

  if (s == NULL)
    return NULL;
  if (!yu_valid_name (s))
    {
      vaio_diag_add (p->diag, &loc, "bad %s name '%s': names must match %s",
                     kind, s, YU_NAME_RULE);
      return NULL;
    }
  return dup_or_oom (p, s);
}

static void
parse_values (struct mparse *p, yaml_node_t *map, const char *what,
              struct vaio_param_spec *ps)
{
  yaml_node_t *seq = yu_get (p->y, map, "values", NULL);
  struct vaio_loc loc;
  size_t n;

  if (seq == NULL)
    {
      if (ps->type == VAIO_PARAM_ENUM)
        {
          loc = yu_loc (p->y, map);
          vaio_diag_add (p->diag, &loc,
                         "missing required key 'values' in %s (type enum)",
                         what);
        }
      return;
    }
  loc = yu_loc (p->y, seq);
  if (ps->type != VAIO_PARAM_ENUM)
    {
      vaio_diag_add (p->diag, &loc,
                     "'values' in %s is only allowed with type enum", what);
      return;
    }
  if (yu_expect_kind (p->y, seq, YAML_SEQUENCE_NODE, "values", what, p->diag)
      == -1)
    return;
  n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
  if (n == 0)
    {
      vaio_diag_add (p->diag, &loc, "'values' in %s must not be empty", what);
      return;
    }
  ps->values = calloc (n, sizeof *ps->values);
  if (ps->values == NULL)
    {
      oom (p);
      return;
    }
  ps->n_values = n;
  for (size_t i = 0; i < n; i++)
    {
      yaml_node_t *item = yu_node (p->y, seq->data.sequence.items.start[i]);
      const char *s = yu_scalar (item);

      loc = yu_loc (p->y, item);
      if (s == NULL || yu_is_null (item) || s[0] == '\0')
        {
          vaio_diag_add (p->diag, &loc,
                         "each entry of 'values' in %s must be a non-empty "
                         "scalar, not %s",
                         what, yu_kind_name (item));
          continue;
        }
      for (size_t j = 0; j < i; j++)
        if (ps->values[j] && strcmp (ps->values[j], s) == 0)
          vaio_diag_add (p->diag, &loc, "duplicate value '%s' in %s", s, what);
      ps->values[i] = dup_or_oom (p, s);
    }
}

/* A prefix is put before a file's path on nbdkit's command line, so it
 * only means something for the two types that name a file.
 */
static void
parse_prefix (struct mparse *p, yaml_node_t *map, const char *what,
              struct vaio_param_spec *ps)
{
  struct vaio_loc loc;
  const char *s
      = yu_get_string (p->y, map, "prefix", what, false, &loc, p->diag);

  if (s == NULL)
    return;
  if (ps->type != VAIO_PARAM_PATH && ps->type != VAIO_PARAM_SECRET)
    vaio_diag_add (p->diag, &loc,
                   "'prefix' in %s is only allowed with type path or secret",
                   what);
  else if (s[0] == '\0')
    vaio_diag_add (p->diag, &loc, "'prefix' in %s must not be empty", what);
  else
    ps->prefix = dup_or_oom (p, s);
}

static void
parse_param (struct mparse *p, yaml_node_t *map, struct vaio_param_spec *ps)
{
  const char *name = yu_scalar (yu_get (p->y, map, "name", NULL));
  const char *s;
  struct vaio_loc loc;
  char what[WHAT_LEN];

  if (name && name[0] != '\0' && !yu_is_null (yu_get (p->y, map, "name", NULL)))
    snprintf (what, sizeof what, "parameter '%.100s'", name);
  else
    snprintf (what, sizeof what, "parameter");
  if (yu_check_map (p->y, map, what, param_keys, p->diag) == -1
      && map->type != YAML_MAPPING_NODE)
    return;
  ps->name = get_name (p, map, what, "parameter");
  s = yu_get_string (p->y, map, "type", what, true, &loc, p->diag);
  if (s != NULL && parse_type (s, &ps->type) == -1)
    {
      vaio_diag_add (p->diag, &loc,
                     "unknown type '%s' for 'type' in %s (expected one of: "
                     "string, size, duration, bool, int, enum, path, secret, "
                     "uri)",
                     s, what);
      return;
    }
  s = yu_get_string (p->y, map, "required", what, false, &loc, p->diag);
  if (s != NULL && vaio_parse_bool (s, &ps->required) == -1)
    vaio_diag_add (p->diag, &loc,
                   "bad boolean '%s' for 'required' in %s (expected "
                   "true/false, yes/no, on/off or 1/0)",
                   s, what);
  s = yu_get_string (p->y, map, "live", what, false, &loc, p->diag);
  if (s != NULL && vaio_parse_bool (s, &ps->live) == -1)
    vaio_diag_add (p->diag, &loc,
                   "bad boolean '%s' for 'live' in %s (expected "
                   "true/false, yes/no, on/off or 1/0)",
                   s, what);
  s = yu_get_string (p->y, map, "description", what, false, NULL, p->diag);
  ps->description = dup_or_oom (p, s ? s : "");
  /* The value the filter uses when a policy leaves the parameter out:
   * `vaioctl apply` writes it into the settings file when a policy drops
   * a live parameter, so the filter goes back to it without a restart.
   */
  s = yu_get_string (p->y, map, "default", what, false, NULL, p->diag);
  if (s != NULL)
    ps->default_value = dup_or_oom (p, s);
  parse_values (p, map, what, ps);
  parse_prefix (p, map, what, ps);
}

static void
parse_params (struct mparse *p, yaml_node_t *root)
{
  struct vaio_manifest *m = p->m;
  yaml_node_t *seq = yu_get (p->y, root, "parameters", NULL);
  size_t n;

  if (seq == NULL
      || yu_expect_kind (p->y, seq, YAML_SEQUENCE_NODE, "parameters",
                         "manifest", p->diag)
             == -1)
    return;
  n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
  if (n == 0)
    return;
  m->params = calloc (n, sizeof *m->params);
  if (m->params == NULL)
    {
      oom (p);
      return;
    }
  m->n_params = n;
  for (size_t i = 0; i < n; i++)
    {
      yaml_node_t *item = yu_node (p->y, seq->data.sequence.items.start[i]);
      struct vaio_loc loc = yu_loc (p->y, item);

      if (item->type != YAML_MAPPING_NODE)
        {
          vaio_diag_add (p->diag, &loc,
                         "each entry of 'parameters' in manifest must be a "
                         "mapping (a parameter), not %s",
                         yu_kind_name (item));
          continue;
        }
      parse_param (p, item, &m->params[i]);
      for (size_t j = 0; j < i && m->params[i].name; j++)
        if (m->params[j].name
            && strcmp (m->params[i].name, m->params[j].name) == 0)
          vaio_diag_add (p->diag, &loc, "duplicate parameter name '%s'",
                         m->params[i].name);
    }
}

static void
parse_manifest (struct mparse *p, yaml_node_t *root)
{
  struct vaio_manifest *m = p->m;
  struct vaio_loc loc;
  const char *s;

  m->loc = yu_loc (p->y, root);
  if (yu_check_map (p->y, root, "manifest", manifest_keys, p->diag) == -1
      && root->type != YAML_MAPPING_NODE)
    return;
  m->name = get_name (p, root, "manifest", "filter");
  s = yu_get_string (p->y, root, "class", "manifest", true, &loc, p->diag);
  if (s != NULL && vaio_class_parse (s, &m->class_) == -1)
    vaio_diag_add (p->diag, &loc,
                   "unknown class '%s' for 'class' in manifest (expected one "
                   "of: %s)",
                   s, vaio_class_names ());
  m->vendor = dup_or_oom (
      p, yu_get_string (p->y, root, "vendor", "manifest", true, NULL, p->diag));
  m->version = dup_or_oom (p, yu_get_string (p->y, root, "version", "manifest",
                                             true, NULL, p->diag));
  s = yu_get_string (p->y, root, "path", "manifest", true, NULL, p->diag);
  if (s != NULL && (m->path = yu_resolve_path (p->dir, s)) == NULL)
    oom (p);
  s = yu_get_string (p->y, root, "sha256", "manifest", true, &loc, p->diag);
  if (s != NULL && !is_sha256 (s))
    vaio_diag_add (p->diag, &loc,
                   "bad sha256 '%s' in manifest: must be 64 hex digits", s);
  else if (s != NULL && (m->sha256 = dup_or_oom (p, s)) != NULL)
    for (char *c = m->sha256; *c; c++)
      *c = (char)tolower ((unsigned char)*c);
  s = yu_get_string (p->y, root, "state-param", "manifest", false, &loc,
                     p->diag);
  if (s != NULL && !yu_valid_name (s))
    vaio_diag_add (p->diag, &loc,
                   "bad name '%s' for 'state-param' in manifest: names must "
                   "match %s",
                   s, YU_NAME_RULE);
  else
    m->state_param = dup_or_oom (p, s);
  parse_params (p, root);
}

struct vaio_manifest *
vaio_manifest_load (const char *file, struct vaio_diag *diag)
{
  struct vaio_manifest *m = calloc (1, sizeof *m);
  struct vaio_loc whole = { .file = file };
  struct yu_doc y;
  struct mparse p = { .y = &y, .diag = diag, .m = m };
  size_t before = diag->n;

  if (m == NULL || (m->file = strdup (file)) == NULL)
    {
      vaio_diag_add (diag, &whole, "out of memory");
      vaio_manifest_free (m);
      return NULL;
    }
  if (yu_load (&y, m->file, diag) == 0)
    {
      p.dir = yu_abs_dir (m->file);
      if (p.dir == NULL)
        vaio_diag_add (diag, &whole, "cannot resolve its directory: %s",
                       strerror (errno));
      else
        parse_manifest (&p, yu_root (&y));
    }
  free (p.dir);
  yu_free (&y);
  if (diag->n != before)
    {
      vaio_manifest_free (m);
      return NULL;
    }
  return m;
}

void
vaio_manifest_free (struct vaio_manifest *m)
{
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->n_params; i++)
    {
      struct vaio_param_spec *ps = &m->params[i];
      free (ps->name);
      for (size_t j = 0; j < ps->n_values; j++)
        free (ps->values[j]);
      free (ps->values);
      free (ps->description);
      free (ps->default_value);
      free (ps->prefix);
    }
  free (m->params);
  free (m->file);
  free (m->name);
  free (m->vendor);
  free (m->version);
  free (m->path);
  free (m->sha256);
  free (m->state_param);
  free (m);
}

const struct vaio_param_spec *
vaio_manifest_param (const struct vaio_manifest *m, const char *name)
{
  for (size_t i = 0; i < m->n_params; i++)
    if (strcmp (m->params[i].name, name) == 0)
      return &m->params[i];
  return NULL;
}

int
vaio_sha256_file (const char *path, char out[65])
{
  unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  EVP_MD_CTX *ctx;
  ssize_t r;
  int fd, saved;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return -1;
  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL || EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) != 1)
    {
      errno = ENOMEM;
      goto fail;
    }
  while ((r = read (fd, buf, sizeof buf)) != 0)
    {
      if (r == -1 && errno == EINTR)
        continue;
      if (r == -1)
        goto fail;
      if (EVP_DigestUpdate (ctx, buf, (size_t)r) != 1)
        {
          errno = EIO;
          goto fail;
        }
    }
  if (EVP_DigestFinal_ex (ctx, md, &md_len) != 1 || md_len != 32)
    {
      errno = EIO;
      goto fail;
    }
  for (unsigned i = 0; i < md_len; i++)
    snprintf (out + 2 * i, 3, "%02x", md[i]);
  EVP_MD_CTX_free (ctx);
  close (fd);
  return 0;

fail:
  saved = errno;
  EVP_MD_CTX_free (ctx);
  close (fd);
  errno = saved;
  return -1;
}

int
vaio_manifest_verify_at (const struct vaio_manifest *m,
                         const struct vaio_loc *at, struct vaio_diag *diag)
{
  char actual[65], who[4200];

  /* Listed in a config's filters: the error is the config's to fix, at
   * that entry (naming the manifest); installed ones are named by file.
   */
  if (at)
    snprintf (who, sizeof who, "filter manifest %.4000s", m->file);
  else
    snprintf (who, sizeof who, "%.4000s", m->file);
  if (vaio_sha256_file (m->path, actual) == -1)
    {
      vaio_diag_add (diag, at, "%s: cannot check the integrity of %s: %s", who,
                     m->path, strerror (errno));
      return -1;
    }
  if (strcmp (actual, m->sha256) != 0)
    {
      vaio_diag_add (diag, at,
                     "%s: integrity check failed for %s: sha256 is %s, "
                     "manifest says %s",
                     who, m->path, actual, m->sha256);
      return -1;
    }
  return 0;
}

int
vaio_manifest_verify (const struct vaio_manifest *m, struct vaio_diag *diag)
{
  return vaio_manifest_verify_at (m, NULL, diag);
}

/* vaio-nbd: the cluster config (YAML) → struct vaio_config.
 *
 * Schema only: kinds, unknown and duplicate keys, required keys, names,
 * ports, booleans.  Cross-references and filter parameters are checked
 * later by vaio_validate against the installed manifests.  Every problem
 * is reported (not only the first); any problem means no config.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"
#include "yamlutil.h"

/* A label for messages, e.g. "host 'h1'"; long names are cut in the
 * label only (the offending value is quoted in full where it matters).
 */
#define WHAT_LEN 320

struct parse
{
  struct yu_doc *y;
  struct vaio_diag *diag;
  struct vaio_config *cfg;
};

static const char *const top_keys[]
    = { "cluster", "hosts", "policies", "vms", NULL };
static const char *const host_keys[] = { "name", "state-dir", "filters", NULL };
static const char *const policy_keys[]
    = { "name",        "allow-cleartext-filters",
        "replication", "caching",
        "sioc",        "encryption",
        NULL };
static const char *const vm_keys[] = { "name", "host", "disks", NULL };
static const char *const disk_keys[]
    = { "name", "image", "policy", "socket", "port", "address", NULL };

static void
oom (struct parse *p)
{
  struct vaio_loc whole = { .file = p->y->file };

  vaio_diag_add (p->diag, &whole, "out of memory");
}

static char *
dup_or_oom (struct parse *p, const char *s)
{
  char *d = strdup (s);

  if (d == NULL)
    oom (p);
  return d;
}

/* "host 'h1'", or just "host" while the name is missing.  An invalid
 * name is still shown: it is what the user wrote and will look for.
 */
static void
describe (struct parse *p, yaml_node_t *map, const char *kind,
          const char *parent, char what[WHAT_LEN])
{
  yaml_node_t *n = yu_get (p->y, map, "name", NULL);
  const char *name = yu_scalar (n);

  if (name == NULL || yu_is_null (n) || name[0] == '\0')
    snprintf (what, WHAT_LEN, "%s%s%.200s", kind, parent ? " of " : "",
              parent ? parent : "");
  else
    snprintf (what, WHAT_LEN, "%s '%.100s'%s%.200s", kind, name,
              parent ? " of " : "", parent ? parent : "");
}

/* A required name, a path component (see YU_NAME_RULE).  kind and
 * parent label a bad one: "bad disk name '..' in vm 'vm1'".
 */
static char *
parse_name (struct parse *p, yaml_node_t *map, const char *key,
            const char *what, const char *kind, const char *parent)
{
  struct vaio_loc here;
  const char *s = yu_get_string (p->y, map, key, what, true, &here, p->diag);

  if (s == NULL)
    return NULL;
  if (!yu_valid_name (s))
    {
      vaio_diag_add (p->diag, &here,
                     "bad %s name '%s'%s%s: names must match %s", kind, s,
                     parent ? " in " : "", parent ? parent : "", YU_NAME_RULE);
      return NULL;
    }
  return dup_or_oom (p, s);
}

/* A path, relative ones resolved against the config's directory. */
static char *
parse_path (struct parse *p, yaml_node_t *map, const char *key,
            const char *what, bool required, struct vaio_loc *loc)
{
  const char *s = yu_get_string (p->y, map, key, what, required, loc, p->diag);
  char *abs;

  if (s == NULL)
    return NULL;
  abs = yu_resolve_path (p->cfg->dir, s);
  if (abs == NULL)
    oom (p);
  return abs;
}

/* The sequence under key, or NULL (absent, or wrong kind: reported). */
static yaml_node_t *
get_sequence (struct parse *p, yaml_node_t *map, const char *key,
              const char *what, bool required)
{
  yaml_node_t *v = yu_get (p->y, map, key, NULL);
  struct vaio_loc loc;

  if (v == NULL)
    {
      if (required)
        {
          loc = yu_loc (p->y, map);
          vaio_diag_add (p->diag, &loc, "missing required key '%s' in %s", key,
                         what);
        }
      return NULL;
    }
  if (yu_expect_kind (p->y, v, YAML_SEQUENCE_NODE, key, what, p->diag) == -1)
    return NULL;
  return v;
}

static size_t
seq_len (const yaml_node_t *seq)
{
  return seq ? (size_t)(seq->data.sequence.items.top
                        - seq->data.sequence.items.start)
             : 0;
}

static yaml_node_t *
seq_item (struct parse *p, yaml_node_t *seq, size_t i)
{
  return yu_node (p->y, seq->data.sequence.items.start[i]);
}

/* Entries of hosts, policies, vms and disks are mappings; say which list
 * a stray scalar or sequence sits in.
 */
static bool
entry_is_mapping (struct parse *p, yaml_node_t *item, const char *list,
                  const char *what, const char *kind)
{
  struct vaio_loc loc = yu_loc (p->y, item);

  if (item->type == YAML_MAPPING_NODE)
    return true;
  vaio_diag_add (p->diag, &loc,
                 "each entry of '%s' in %s must be a mapping (a %s), not %s",
                 list, what, kind, yu_kind_name (item));
  return false;
}

/* ---- hosts ---- */

static void
parse_host_filters (struct parse *p, yaml_node_t *map, const char *what,
                    struct vaio_host *h)
{
  yaml_node_t *seq = get_sequence (p, map, "filters", what, false);
  size_t n = seq_len (seq);

  if (n == 0)
    return;
  h->filter_files = calloc (n, sizeof *h->filter_files);
  h->filter_locs = calloc (n, sizeof *h->filter_locs);
  if (h->filter_files == NULL || h->filter_locs == NULL)
    {
      oom (p);
      return;
    }
  h->n_filter_files = n;
  for (size_t i = 0; i < n; i++)
    {
      yaml_node_t *item = seq_item (p, seq, i);
      struct vaio_loc loc = yu_loc (p->y, item);
      const char *s = yu_scalar (item);

      h->filter_locs[i] = loc;
      if (s == NULL || yu_is_null (item) || s[0] == '\0')
        {
          vaio_diag_add (p->diag, &loc,
                         "each entry of 'filters' in %s must be a manifest "
                         "path, not %s",
                         what, yu_kind_name (item));
          continue;
        }
      h->filter_files[i] = yu_resolve_path (p->cfg->dir, s);
      if (h->filter_files[i] == NULL)
        oom (p);
    }
}

static void
parse_host (struct parse *p, yaml_node_t *map, struct vaio_host *h)
{
  char what[WHAT_LEN];

  describe (p, map, "host", NULL, what);
  h->loc = yu_loc (p->y, map);
  /* entry_is_mapping made sure map is a mapping; keep going after a
     bad key to report the rest too. */
  yu_check_map (p->y, map, what, host_keys, p->diag);
  h->name = parse_name (p, map, "name", what, "host", NULL);
  h->state_dir
      = parse_path (p, map, "state-dir", what, true, &h->state_dir_loc);
  parse_host_filters (p, map, what, h);
}

/* ---- policies ---- */

static void
parse_setting (struct parse *p, yaml_node_t *key, yaml_node_t *value,
               const char *what, struct vaio_setting *s)
{
  const char *k = yu_scalar (key), *v = yu_scalar (value);

  s->loc = yu_loc (p->y, key);
  if (k == NULL)
    return; /* reported by yu_check_map */
  if (v == NULL)
    {
      vaio_diag_add (p->diag, &s->loc,
                     "setting '%s' in %s must be a scalar, not %s", k, what,
                     yu_kind_name (value));
      return;
    }
  if (yu_is_null (value))
    {
      vaio_diag_add (p->diag, &s->loc, "setting '%s' in %s has no value", k,
                     what);
      return;
    }
  s->key = dup_or_oom (p, k);
  s->value = dup_or_oom (p, v);
}

/* A class rule: a mapping of settings, or empty ("on, with defaults"). */
static void
parse_class_rule (struct parse *p, yaml_node_t *policy, enum vaio_class c,
                  const char *policy_what, struct vaio_class_rule *rule)
{
  const char *cname = vaio_class_name (c);
  yaml_node_t *key, *v = yu_get (p->y, policy, cname, &key);
  char what[WHAT_LEN];
  size_t n;

  if (v == NULL)
    return;
  rule->present = true;
  rule->loc = yu_loc (p->y, key);
  if (yu_is_null (v))
    return;
  snprintf (what, sizeof what, "%.250s %s", policy_what, cname);
  if (v->type != YAML_MAPPING_NODE)
    {
      struct vaio_loc loc = yu_loc (p->y, v);
      vaio_diag_add (p->diag, &loc,
                     "'%s' in %s must be a mapping of settings (or empty), "
                     "not %s",
                     cname, policy_what, yu_kind_name (v));
      return;
    }
  if (yu_check_map (p->y, v, what, NULL, p->diag) == -1)
    return;
  n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
  if (n == 0)
    return;
  rule->settings = calloc (n, sizeof *rule->settings);
  if (rule->settings == NULL)
    {
      oom (p);
      return;
    }
  rule->n_settings = n;
  for (size_t i = 0; i < n; i++)
    {
      yaml_node_pair_t *pair = &v->data.mapping.pairs.start[i];
      parse_setting (p, yu_node (p->y, pair->key), yu_node (p->y, pair->value),
                     what, &rule->settings[i]);
    }
}

static void
parse_policy (struct parse *p, yaml_node_t *map, struct vaio_policy *pol)
{
  const char *s;
  struct vaio_loc loc;
  char what[WHAT_LEN];

  describe (p, map, "policy", NULL, what);
  pol->loc = yu_loc (p->y, map);
  /* entry_is_mapping made sure map is a mapping; keep going after a
     bad key to report the rest too. */
  yu_check_map (p->y, map, what, policy_keys, p->diag);
  pol->name = parse_name (p, map, "name", what, "policy", NULL);
  s = yu_get_string (p->y, map, "allow-cleartext-filters", what, false, &loc,
                     p->diag);
  if (s != NULL && vaio_parse_bool (s, &pol->allow_cleartext_filters) == -1)
    vaio_diag_add (p->diag, &loc,
                   "bad boolean '%s' for 'allow-cleartext-filters' in %s "
                   "(expected true/false, yes/no, on/off or 1/0)",
                   s, what);
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    parse_class_rule (p, map, (enum vaio_class)c, what, &pol->rules[c]);
}

/* ---- vms and disks ---- */

static void
parse_port (struct parse *p, yaml_node_t *map, const char *what,
            struct vaio_disk *d)
{
  const char *s
      = yu_get_string (p->y, map, "port", what, false, &d->port_loc, p->diag);
  uint64_t v;

  if (s == NULL)
    return;
  /* Decimal digits without a leading zero: "010809" would be octal to
   * some readers and 10809 to others.
   */
  if (s[0] < '1' || s[0] > '9' || strspn (s, "0123456789") != strlen (s)
      || strlen (s) > 5 || vaio_parse_uint (s, &v) == -1 || v > 65535)
    {
      vaio_diag_add (p->diag, &d->port_loc,
                     "bad port '%s' for 'port' in %s: must be a decimal "
                     "integer 1..65535 without leading zeros",
                     s, what);
      return;
    }
  d->port = (int)v;
}

/* A disk is served on a unix socket (default) or on TCP address:port. */
static void
parse_endpoint (struct parse *p, yaml_node_t *map, const char *what,
                struct vaio_disk *d)
{
  struct vaio_loc addr_loc;
  const char *addr;

  d->socket = parse_path (p, map, "socket", what, false, &d->socket_loc);
  parse_port (p, map, what, d);
  addr = yu_get_string (p->y, map, "address", what, false, &addr_loc, p->diag);
  if (d->socket != NULL && d->port != 0)
    vaio_diag_add (p->diag, &d->port_loc,
                   "'port' and 'socket' in %s are mutually exclusive", what);
  if (addr != NULL && yu_get (p->y, map, "port", NULL) == NULL)
    vaio_diag_add (p->diag, &addr_loc,
                   "'address' in %s needs 'port' (a disk on a unix socket "
                   "has no address)",
                   what);
  if (d->port != 0)
    {
      d->address = dup_or_oom (p, addr ? addr : "127.0.0.1");
      d->address_loc = addr ? addr_loc : d->port_loc;
    }
}

static void
parse_disk (struct parse *p, yaml_node_t *map, const char *vm_what,
            struct vaio_vm *vm, struct vaio_disk *d)
{
  const char *s;
  char what[WHAT_LEN];

  describe (p, map, "disk", vm_what, what);
  d->vm = vm;
  d->loc = yu_loc (p->y, map);
  /* entry_is_mapping made sure map is a mapping; keep going after a
     bad key to report the rest too. */
  yu_check_map (p->y, map, what, disk_keys, p->diag);
  d->name = parse_name (p, map, "name", what, "disk", vm_what);
  d->image = parse_path (p, map, "image", what, true, &d->image_loc);
  s = yu_get_string (p->y, map, "policy", what, true, &d->policy_loc, p->diag);
  if (s != NULL)
    d->policy = dup_or_oom (p, s);
  parse_endpoint (p, map, what, d);
}

static void
check_duplicate_disks (struct parse *p, const struct vaio_vm *vm,
                       const char *vm_what)
{
  for (size_t i = 0; i < vm->n_disks; i++)
    for (size_t j = 0; j < i && vm->disks[i].name; j++)
      if (vm->disks[j].name
          && strcmp (vm->disks[i].name, vm->disks[j].name) == 0)
        {
          vaio_diag_add (p->diag, &vm->disks[i].loc,
                         "duplicate disk name '%s' in %s (first defined at "
                         "line %u)",
                         vm->disks[i].name, vm_what, vm->disks[j].loc.line);
          break;
        }
}

static void
parse_vm (struct parse *p, yaml_node_t *map, struct vaio_vm *vm)
{
  yaml_node_t *seq;
  const char *s;
  char what[WHAT_LEN];
  size_t n;

  describe (p, map, "vm", NULL, what);
  vm->loc = yu_loc (p->y, map);
  /* entry_is_mapping made sure map is a mapping; keep going after a
     bad key to report the rest too. */
  yu_check_map (p->y, map, what, vm_keys, p->diag);
  vm->name = parse_name (p, map, "name", what, "vm", NULL);
  s = yu_get_string (p->y, map, "host", what, true, &vm->host_loc, p->diag);
  if (s != NULL)
    vm->host = dup_or_oom (p, s);
  seq = get_sequence (p, map, "disks", what, true);
  n = seq_len (seq);
  if (n == 0)
    return;
  vm->disks = calloc (n, sizeof *vm->disks);
  if (vm->disks == NULL)
    {
      oom (p);
      return;
    }
  vm->n_disks = n;
  for (size_t i = 0; i < n; i++)
    {
      yaml_node_t *item = seq_item (p, seq, i);

      vm->disks[i].vm = vm;
      vm->disks[i].loc = yu_loc (p->y, item);
      if (entry_is_mapping (p, item, "disks", what, "disk"))
        parse_disk (p, item, what, vm, &vm->disks[i]);
    }
  check_duplicate_disks (p, vm, what);
}

/* ---- top level ---- */

/* Reports a name used twice in one list (hosts, policies or vms), at the
 * second definition, pointing back at the first.
 */
static void
check_duplicate_name (struct parse *p, const char *kind, const char *name,
                      const struct vaio_loc *loc, const char *first_name,
                      const struct vaio_loc *first)
{
  if (name && first_name && strcmp (name, first_name) == 0)
    vaio_diag_add (p->diag, loc,
                   "duplicate %s name '%s' (first defined at line %u)", kind,
                   name, first->line);
}

/* Parse the items of the sequence under key with fn into a new array of
 * elem-sized objects.  Sets *array and *n so the config owns partial
 * results (and frees them) even after errors.
 */
typedef void (*item_fn) (struct parse *, yaml_node_t *, void *);

static void
parse_list (struct parse *p, yaml_node_t *root, const char *key,
            const char *kind, bool required, size_t elem, void **array,
            size_t *n, item_fn fn)
{
  yaml_node_t *seq = get_sequence (p, root, key, "config", required);
  size_t len = seq_len (seq);

  if (len == 0)
    return;
  *array = calloc (len, elem);
  if (*array == NULL)
    {
      oom (p);
      return;
    }
  *n = len;
  for (size_t i = 0; i < len; i++)
    {
      yaml_node_t *item = seq_item (p, seq, i);

      if (entry_is_mapping (p, item, key, "config", kind))
        fn (p, item, (char *)*array + i * elem);
    }
}

static void
host_item (struct parse *p, yaml_node_t *n, void *h)
{
  parse_host (p, n, h);
}

static void
policy_item (struct parse *p, yaml_node_t *n, void *pol)
{
  parse_policy (p, n, pol);
}

static void
vm_item (struct parse *p, yaml_node_t *n, void *vm)
{
  parse_vm (p, n, vm);
}

static void
check_duplicate_names (struct parse *p)
{
  const struct vaio_config *c = p->cfg;

  for (size_t i = 0; i < c->n_hosts; i++)
    for (size_t j = 0; j < i; j++)
      check_duplicate_name (p, "host", c->hosts[i].name, &c->hosts[i].loc,
                            c->hosts[j].name, &c->hosts[j].loc);
  for (size_t i = 0; i < c->n_policies; i++)
    for (size_t j = 0; j < i; j++)
      check_duplicate_name (p, "policy", c->policies[i].name,
                            &c->policies[i].loc, c->policies[j].name,
                            &c->policies[j].loc);
  for (size_t i = 0; i < c->n_vms; i++)
    for (size_t j = 0; j < i; j++)
      check_duplicate_name (p, "vm", c->vms[i].name, &c->vms[i].loc,
                            c->vms[j].name, &c->vms[j].loc);
}

static void
parse_root (struct parse *p, yaml_node_t *root)
{
  struct vaio_config *c = p->cfg;
  void *arr;

  if (yu_check_map (p->y, root, "config", top_keys, p->diag) == -1
      && root->type != YAML_MAPPING_NODE)
    return;
  c->cluster = parse_name (p, root, "cluster", "config", "cluster", NULL);

  arr = NULL;
  parse_list (p, root, "hosts", "host", true, sizeof (struct vaio_host), &arr,
              &c->n_hosts, host_item);
  c->hosts = arr;
  arr = NULL;
  parse_list (p, root, "policies", "policy", false, sizeof (struct vaio_policy),
              &arr, &c->n_policies, policy_item);
  c->policies = arr;
  arr = NULL;
  parse_list (p, root, "vms", "vm", false, sizeof (struct vaio_vm), &arr,
              &c->n_vms, vm_item);
  c->vms = arr;
  check_duplicate_names (p);
}

struct vaio_config *
vaio_config_load (const char *file, struct vaio_diag *diag)
{
  struct vaio_config *cfg = calloc (1, sizeof *cfg);
  struct yu_doc y;
  struct parse p = { .y = &y, .diag = diag, .cfg = cfg };
  size_t before = diag->n;

  if (cfg == NULL || (cfg->file = strdup (file)) == NULL)
    {
      struct vaio_loc whole = { .file = file };
      vaio_diag_add (diag, &whole, "out of memory");
      vaio_config_free (cfg);
      return NULL;
    }
  if (yu_load (&y, cfg->file, diag) == 0)
    {
      cfg->dir = yu_abs_dir (cfg->file);
      if (cfg->dir == NULL)
        {
          struct vaio_loc whole = { .file = file };
          vaio_diag_add (diag, &whole, "cannot resolve its directory: %s",
                         strerror (errno));
        }
      else
        parse_root (&p, yu_root (&y));
    }
  yu_free (&y);
  if (diag->n != before)
    {
      vaio_config_free (cfg);
      return NULL;
    }
  return cfg;
}

static void
free_host (struct vaio_host *h)
{
  free (h->name);
  free (h->state_dir);
  for (size_t i = 0; i < h->n_filter_files; i++)
    free (h->filter_files[i]);
  free (h->filter_files);
  free (h->filter_locs);
}

static void
free_policy (struct vaio_policy *pol)
{
  free (pol->name);
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    {
      struct vaio_class_rule *r = &pol->rules[c];
      for (size_t i = 0; i < r->n_settings; i++)
        {
          free (r->settings[i].key);
          free (r->settings[i].value);
        }
      free (r->settings);
    }
}

static void
free_vm (struct vaio_vm *vm)
{
  free (vm->name);
  free (vm->host);
  for (size_t i = 0; i < vm->n_disks; i++)
    {
      struct vaio_disk *d = &vm->disks[i];
      free (d->name);
      free (d->image);
      free (d->policy);
      free (d->socket);
      free (d->address);
    }
  free (vm->disks);
}

void
vaio_config_free (struct vaio_config *cfg)
{
  if (cfg == NULL)
    return;
  for (size_t i = 0; i < cfg->n_hosts; i++)
    free_host (&cfg->hosts[i]);
  free (cfg->hosts);
  for (size_t i = 0; i < cfg->n_policies; i++)
    free_policy (&cfg->policies[i]);
  free (cfg->policies);
  for (size_t i = 0; i < cfg->n_vms; i++)
    free_vm (&cfg->vms[i]);
  free (cfg->vms);
  free (cfg->cluster);
  free (cfg->dir);
  free (cfg->file);
  free (cfg);
}

const struct vaio_host *
vaio_config_host (const struct vaio_config *cfg, const char *name)
{
  for (size_t i = 0; name && i < cfg->n_hosts; i++)
    if (cfg->hosts[i].name && strcmp (cfg->hosts[i].name, name) == 0)
      return &cfg->hosts[i];
  return NULL;
}

const struct vaio_policy *
vaio_config_policy (const struct vaio_config *cfg, const char *name)
{
  for (size_t i = 0; name && i < cfg->n_policies; i++)
    if (cfg->policies[i].name && strcmp (cfg->policies[i].name, name) == 0)
      return &cfg->policies[i];
  return NULL;
}

bool
vaio_config_names_disk (const struct vaio_config *cfg,
                        const struct vaio_host *h, const char *vm,
                        const char *disk)
{
  for (size_t v = 0; v < cfg->n_vms; v++)
    if (strcmp (cfg->vms[v].name, vm) == 0
        && strcmp (cfg->vms[v].host, h->name) == 0)
      for (size_t i = 0; i < cfg->vms[v].n_disks; i++)
        if (strcmp (cfg->vms[v].disks[i].name, disk) == 0)
          return true;
  return false;
}

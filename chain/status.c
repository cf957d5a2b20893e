/* vaio-nbd status views.  Each view is built once as a JSON object
 * (json-c) and then either printed as JSON or rendered as text, so the
 * two outputs can never disagree.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inventory.h"
#include "plan.h"
#include "stats.h"
#include "status.h"
#include "supervise.h"
#include "units.h"

static const char *const op_names[VAIO_OP_COUNT]
    = { "read", "write", "zero", "trim", "flush" };

static json_object *
manifest_json (const struct vaio_manifest *m)
{
  json_object *o = json_object_new_object ();

  json_object_object_add (o, "name", json_object_new_string (m->name));
  json_object_object_add (o, "class",
                          json_object_new_string (vaio_class_name (m->class_)));
  json_object_object_add (o, "vendor", json_object_new_string (m->vendor));
  json_object_object_add (o, "version", json_object_new_string (m->version));
  json_object_object_add (o, "path", json_object_new_string (m->path));
  json_object_object_add (o, "sha256", json_object_new_string (m->sha256));
  return o;
}

/* The host view: each host's installed filters as vSphere lists them
 * (Name, Vendor, Version, Type), plus where each comes from.
 */
static json_object *
hosts_json (const struct vaio_config *cfg, const struct vaio_host_filters *hf)
{
  json_object *hosts = json_object_new_array ();

  for (size_t i = 0; i < cfg->n_hosts; i++)
    {
      json_object *h = json_object_new_object (),
                  *fl = json_object_new_array ();
      json_object_object_add (h, "name",
                              json_object_new_string (hf[i].host->name));
      json_object_object_add (h, "state_dir",
                              json_object_new_string (hf[i].host->state_dir));
      for (unsigned k = 0; k < VAIO_CLASS_COUNT; k++)
        if (hf[i].by_class[k])
          {
            const struct vaio_manifest *m = hf[i].by_class[k];
            json_object *f = json_object_new_object ();
            json_object_object_add (f, "Name",
                                    json_object_new_string (m->name));
            json_object_object_add (f, "Vendor",
                                    json_object_new_string (m->vendor));
            json_object_object_add (f, "Version",
                                    json_object_new_string (m->version));
            json_object_object_add (
                f, "Type",
                json_object_new_string (vaio_class_name (m->class_)));
            json_object_object_add (f, "path",
                                    json_object_new_string (m->path));
            json_object_object_add (f, "sha256",
                                    json_object_new_string (m->sha256));
            json_object_array_add (fl, f);
          }
      json_object_object_add (h, "filters", fl);
      json_object_array_add (hosts, h);
    }
  return hosts;
}

static json_object *
cluster_json (const struct vaio_config *cfg, const struct vaio_host_filters *hf)
{
  json_object *c = json_object_new_object (), *hosts = json_object_new_array ();

  json_object_object_add (
      c, "name", json_object_new_string (cfg->cluster ? cfg->cluster : ""));
  for (size_t i = 0; i < cfg->n_hosts; i++)
    {
      json_object *h = json_object_new_object (),
                  *fl = json_object_new_array ();
      json_object_object_add (h, "name",
                              json_object_new_string (hf[i].host->name));
      json_object_object_add (h, "state_dir",
                              json_object_new_string (hf[i].host->state_dir));
      json_object_object_add (
          h, "maintenance",
          json_object_new_boolean (vaio_host_in_maintenance (hf[i].host)));
      for (unsigned k = 0; k < VAIO_CLASS_COUNT; k++)
        if (hf[i].by_class[k])
          json_object_array_add (fl, manifest_json (hf[i].by_class[k]));
      json_object_object_add (h, "filters", fl);
      json_object_array_add (hosts, h);
    }
  json_object_object_add (c, "hosts", hosts);
  return c;
}

/* Stats of one filter of a running disk: per-op totals, latency
 * percentiles, and its class-specific counters by name.
 */
static json_object *
stats_json (const char *state_dir, enum vaio_class c)
{
  struct vaio_stats_snapshot snap;
  char path[4096], err[512];
  json_object *o, *ops, *ctr;

  snprintf (path, sizeof path, "%s/%s/stats", state_dir, vaio_class_name (c));
  if (access (path, F_OK) != 0)
    return NULL;
  o = json_object_new_object ();
  if (vaio_stats_read (path, &snap, err, sizeof err) == -1)
    {
      json_object_object_add (o, "error", json_object_new_string (err));
      return o;
    }
  ops = json_object_new_object ();
  for (unsigned i = 0; i < VAIO_OP_COUNT; i++)
    {
      const struct vaio_stats_op_counters *k = &snap.body.op[i];
      json_object *op = json_object_new_object ();
      json_object_object_add (op, "ops", json_object_new_uint64 (k->ops));
      json_object_object_add (op, "bytes", json_object_new_uint64 (k->bytes));
      json_object_object_add (op, "errors", json_object_new_uint64 (k->errors));
      json_object_object_add (op, "latency_p50_us",
                              json_object_new_double (vaio_stats_percentile_us (
                                  k->latency_hist, 0.50)));
      json_object_object_add (op, "latency_p99_us",
                              json_object_new_double (vaio_stats_percentile_us (
                                  k->latency_hist, 0.99)));
      json_object_object_add (ops, op_names[i], op);
    }
  json_object_object_add (o, "ops", ops);
  ctr = json_object_new_object ();
  for (unsigned i = 0; i < snap.header.n_counters; i++)
    json_object_object_add (ctr, snap.header.counter_names[i],
                            json_object_new_uint64 (snap.body.counters[i]));
  json_object_object_add (o, "counters", ctr);
  return o;
}

/* The "argv " words of a running record, in order.  Caller frees the
 * array (the words point into *text, which the caller frees too).
 */
static char **
record_argv (const char *rec, char **text, size_t *n)
{
  char **v, *save = NULL, *line;

  *n = 0;
  *text = strdup (rec);
  v = calloc (strlen (rec) / 5 + 2, sizeof *v);
  if (*text == NULL || v == NULL)
    {
      free (v);
      return NULL;
    }
  for (line = strtok_r (*text, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    if (strncmp (line, "argv ", 5) == 0)
      v[(*n)++] = line + 5;
  return v;
}

/* A filter parameter word: key=value, not an nbdkit option (--x=y). */
static bool
param_word (const char *w)
{
  return w[0] != '-' && strchr (w, '=') != NULL;
}

static const char *
word_value (char *const *v, size_t n, const char *word)
{
  size_t klen = (size_t)(strchr (word, '=') - word);

  for (size_t i = 0; i < n; i++)
    if (param_word (v[i]) && strncmp (v[i], word, klen + 1) == 0)
      return v[i] + klen + 1;
  return NULL;
}

/* The running command line against the planned one: the filters in the
 * same order (the other words, in order), and each filter parameter with
 * the same value (a policy is a YAML map: their order means nothing).
 * A live change that was refused or rolled back shows here.
 */
static bool
settings_differ (const struct vaio_plan_disk *p, const char *rec, char *why,
                 size_t len)
{
  char *text = NULL, **rv;
  size_t rn, i = 0, j = 0;
  bool differ = false;

  rv = record_argv (rec, &text, &rn);
  if (rv == NULL)
    {
      free (text);
      return false;
    }
  for (;;)
    {
      while (i < rn && param_word (rv[i]))
        i++;
      while (j < p->argc && param_word (p->argv[j]))
        j++;
      if (i == rn || j == p->argc)
        {
          differ = i != rn || j != p->argc;
          break;
        }
      if (strcmp (rv[i], p->argv[j]) != 0)
        {
          differ = true;
          break;
        }
      i++;
      j++;
    }
  if (differ)
    snprintf (why, len,
              "running chain's filters or their order differ from the "
              "policy's; run vaioctl apply");
  for (i = 0; !differ && i < p->argc; i++)
    if (param_word (p->argv[i]))
      {
        const char *have = word_value (rv, rn, p->argv[i]);
        const char *eq = strchr (p->argv[i], '=');
        if (have == NULL || strcmp (have, eq + 1) != 0)
          {
            snprintf (why, len,
                      "running %.*s is %s, the policy wants %s; run "
                      "vaioctl apply",
                      (int)(eq - p->argv[i]), p->argv[i], have ? have : "unset",
                      eq + 1);
            differ = true;
          }
      }
  for (i = 0; !differ && i < rn; i++)
    if (param_word (rv[i]) && word_value (p->argv, p->argc, rv[i]) == NULL)
      {
        snprintf (why, len,
                  "running chain sets %s, the policy leaves it unset; run "
                  "vaioctl apply",
                  rv[i]);
        differ = true;
      }
  free (rv);
  free (text);
  return differ;
}

/* Does the running record match what the policy asks for now? */
static const char *
compliance (const struct vaio_plan_disk *p, const char *rec, char *why,
            size_t len)
{
  char line[512];

  if (rec == NULL)
    {
      snprintf (why, len, "no running record");
      return "unknown";
    }
  for (size_t i = 0; i < p->n_chain; i++)
    {
      /* A .so altered since install: the package no longer matches. */
      struct vaio_diag quiet = { 0 };
      bool intact = vaio_manifest_verify (p->filters[i], &quiet) == 0;
      if (!intact)
        snprintf (why, len, "%s filter %s fails its integrity check: %s",
                  vaio_class_name (p->chain[i]), p->filters[i]->name,
                  quiet.n ? quiet.msgs[0] : "");
      vaio_diag_free (&quiet);
      if (!intact)
        return "noncompliant";
    }
  for (size_t i = 0; i < p->n_chain; i++)
    {
      snprintf (line, sizeof line, "filter %s %s %s %s\n",
                vaio_class_name (p->chain[i]), p->filters[i]->name,
                p->filters[i]->version, p->filters[i]->sha256);
      if (strstr (rec, line) == NULL)
        {
          snprintf (why, len,
                    "running chain lacks %s filter %s %s; run vaioctl apply",
                    vaio_class_name (p->chain[i]), p->filters[i]->name,
                    p->filters[i]->version);
          return "noncompliant";
        }
    }
  /* Same count: a filter removed from the policy still runs otherwise. */
  size_t n = 0;
  for (const char *s = rec; (s = strstr (s, "filter ")) != NULL; s++)
    if (s == rec || s[-1] == '\n')
      n++;
  if (n != p->n_chain)
    {
      snprintf (why, len, "running chain has %zu filters, policy wants %zu", n,
                p->n_chain);
      return "noncompliant";
    }
  if (settings_differ (p, rec, why, len))
    return "noncompliant";
  why[0] = '\0';
  return "compliant";
}

/* One filter of a chain as status shows it. */
struct chain_entry
{
  char cls[32], name[256], version[128];
};

/* The "filter CLASS NAME VERSION SHA256" lines of a running record: the
 * chain `up` (or apply) started, guest → disk.  Returns how many.
 */
static size_t
record_chain (const char *rec, struct chain_entry *out, size_t max)
{
  size_t n = 0;

  for (const char *l = rec; l && *l;
       l = strchr (l, '\n') ? strchr (l, '\n') + 1 : NULL)
    if (n < max
        && sscanf (l, "filter %31s %255s %127s", out[n].cls, out[n].name,
                   out[n].version)
               == 3)
      n++;
  return n;
}

static size_t
plan_chain (const struct vaio_plan_disk *p, struct chain_entry *out)
{
  for (size_t i = 0; i < p->n_chain; i++)
    {
      snprintf (out[i].cls, sizeof out[i].cls, "%s",
                vaio_class_name (p->chain[i]));
      snprintf (out[i].name, sizeof out[i].name, "%s", p->filters[i]->name);
      snprintf (out[i].version, sizeof out[i].version, "%s",
                p->filters[i]->version);
    }
  return p->n_chain;
}

static bool
chains_equal (const struct chain_entry *a, size_t na,
              const struct chain_entry *b, size_t nb)
{
  if (na != nb)
    return false;
  for (size_t i = 0; i < na; i++)
    if (strcmp (a[i].cls, b[i].cls) != 0 || strcmp (a[i].name, b[i].name) != 0
        || strcmp (a[i].version, b[i].version) != 0)
      return false;
  return true;
}

/* The --filter= words of a command line, in order, one per line:
 * from /proc/PID/cmdline (NUL-separated) when rec is NULL, else from
 * the record's "argv" lines.  NULL when the process is unreadable.
 */
static char *
filter_words (pid_t pid, const char *rec)
{
  char *out = NULL, *word = NULL, path[64];
  size_t olen = 0, cap = 0;
  FILE *fp, *o;

  if (rec)
    fp = fmemopen ((void *)rec, strlen (rec), "r");
  else
    {
      snprintf (path, sizeof path, "/proc/%ld/cmdline", (long)pid);
      fp = fopen (path, "r");
    }
  if (fp == NULL)
    return NULL;
  o = open_memstream (&out, &olen);
  if (o == NULL)
    {
      fclose (fp);
      return NULL;
    }
  while (getdelim (&word, &cap, rec ? '\n' : '\0', fp) != -1)
    {
      const char *w = word;
      word[strcspn (word, "\n")] = '\0';
      if (rec && strncmp (w, "argv ", 5) != 0)
        continue;
      if (rec)
        w += 5;
      if (strncmp (w, "--filter=", 9) == 0)
        fprintf (o, "%s\n", w);
    }
  free (word);
  fclose (fp);
  fclose (o);
  return out;
}

/* Does nbdkit pid run the filters its running record names, in the same
 * order?  A record left by another process, or edited, would make status
 * show a chain that does not run.  True when the process cannot be read
 * (it exited meanwhile: its state says so).
 */
static bool
process_matches_record (pid_t pid, const char *rec, char *why, size_t len)
{
  char *have = filter_words (pid, NULL), *want = filter_words (0, rec);
  bool ok = have == NULL || want == NULL || strcmp (have, want) == 0;

  if (!ok)
    {
      for (char *s = have; *s; s++)
        if (*s == '\n' && s[1])
          *s = ' ';
      for (char *s = want; *s; s++)
        if (*s == '\n' && s[1])
          *s = ' ';
      have[strcspn (have, "\n")] = want[strcspn (want, "\n")] = '\0';
      snprintf (why, len,
                "nbdkit (pid %ld) runs %s but its running record says %s",
                (long)pid, have, want);
    }
  free (have);
  free (want);
  return ok;
}

static json_object *
chain_json (const struct chain_entry *c, size_t n, const char *state_dir,
            bool with_stats)
{
  json_object *arr = json_object_new_array ();

  for (size_t i = 0; i < n; i++)
    {
      json_object *f = json_object_new_object (), *st;
      enum vaio_class cls;
      json_object_object_add (f, "class", json_object_new_string (c[i].cls));
      json_object_object_add (f, "filter", json_object_new_string (c[i].name));
      json_object_object_add (f, "version",
                              json_object_new_string (c[i].version));
      if (with_stats && vaio_class_parse (c[i].cls, &cls) == 0
          && (st = stats_json (state_dir, cls)) != NULL)
        json_object_object_add (f, "stats", st);
      json_object_array_add (arr, f);
    }
  return arr;
}

/* One disk.  error: why it could not be planned (p then holds only its
 * paths).  A running disk's chain is what its running record says runs
 * (checked against the process's own --filter= arguments), not what the
 * policy asks for now; when the two differ the policy's chain is shown
 * as planned_chain and the disk is out of compliance.
 */
static json_object *
disk_json (const struct vaio_plan_disk *p, const char *error, int *problems)
{
  json_object *d = json_object_new_object ();
  pid_t pid = vaio_disk_pid (p->pidfile);
  bool stale = pid == 0 && access (p->pidfile, F_OK) == 0;
  const char *state = pid ? "running" : stale ? "dead" : "stopped";
  char *uri = error ? NULL : vaio_plan_uri (p), *rec = NULL, why[1024] = "";
  const char *comp = "not running";
  struct chain_entry run[VAIO_CLASS_COUNT * 2], plan[VAIO_CLASS_COUNT];
  size_t n_run = 0, n_plan = error ? 0 : plan_chain (p, plan);
  bool from_record = false;

  if (pid)
    {
      rec = vaio_disk_running_record (p->state_dir);
      from_record = rec != NULL;
      if (rec)
        n_run = record_chain (rec, run, sizeof run / sizeof run[0]);
      if (error)
        {
          snprintf (why, sizeof why, "%s", error);
          comp = "unknown";
        }
      else
        comp = compliance (p, rec, why, sizeof why);
      if (rec && !process_matches_record (pid, rec, why, sizeof why))
        comp = "noncompliant";
    }
  if (stale || error || (pid && strcmp (comp, "compliant") != 0))
    (*problems)++;

  json_object_object_add (d, "name", json_object_new_string (p->disk->name));
  json_object_object_add (d, "policy",
                          json_object_new_string (p->disk->policy));
  json_object_object_add (d, "image", json_object_new_string (p->disk->image));
  json_object_object_add (d, "uri", json_object_new_string (uri ? uri : ""));
  json_object_object_add (
      d, "socket", p->disk->port ? NULL : json_object_new_string (p->socket));
  json_object_object_add (d, "state_dir",
                          json_object_new_string (p->state_dir));
  json_object_object_add (d, "state", json_object_new_string (state));
  json_object_object_add (d, "pid", json_object_new_int64 (pid));
  json_object_object_add (d, "compliance", json_object_new_string (comp));
  if (why[0])
    json_object_object_add (d, "compliance_detail",
                            json_object_new_string (why));
  if (error)
    json_object_object_add (d, "error", json_object_new_string (error));
  json_object_object_add (
      d, "chain_source",
      json_object_new_string (from_record ? "running" : "policy"));
  if (from_record)
    {
      json_object_object_add (d, "chain",
                              chain_json (run, n_run, p->state_dir, true));
      if (!error && !chains_equal (run, n_run, plan, n_plan))
        json_object_object_add (d, "planned_chain",
                                chain_json (plan, n_plan, NULL, false));
    }
  else
    json_object_object_add (d, "chain",
                            chain_json (plan, n_plan, p->state_dir, pid != 0));
  free (uri);
  free (rec);
  return d;
}

/* The first message of a diag, for a disk that cannot be planned. */
static const char *
diag_first (const struct vaio_diag *diag)
{
  return diag->n ? diag->msgs[0] : "cannot plan this disk";
}

static json_object *
vms_json (const struct vaio_config *cfg, const struct vaio_host_filters *hf,
          int *problems)
{
  json_object *vms = json_object_new_array ();

  for (size_t v = 0; v < cfg->n_vms; v++)
    {
      const struct vaio_vm *vm = &cfg->vms[v];
      json_object *o = json_object_new_object (),
                  *disks = json_object_new_array ();
      json_object_object_add (o, "name", json_object_new_string (vm->name));
      json_object_object_add (o, "host", json_object_new_string (vm->host));
      for (size_t i = 0; i < vm->n_disks; i++)
        {
          struct vaio_plan_disk p;
          struct vaio_diag diag = { 0 };
          struct vaio_diag quiet = { 0 };
          /* A disk that cannot be planned is still shown (with why), and
           * from its paths, whether it runs.
           */
          if (vaio_plan_disk (cfg, hf, vm, &vm->disks[i], &p, &diag) == 0)
            {
              json_object_array_add (disks, disk_json (&p, NULL, problems));
              vaio_plan_disk_free (&p);
            }
          else if (vaio_disk_paths (cfg, vm, &vm->disks[i], &p, &quiet) == 0)
            {
              json_object_array_add (
                  disks, disk_json (&p, diag_first (&diag), problems));
              vaio_plan_disk_free (&p);
            }
          else
            {
              json_object *d = json_object_new_object ();
              json_object_object_add (
                  d, "name", json_object_new_string (vm->disks[i].name));
              json_object_object_add (
                  d, "error", json_object_new_string (diag_first (&diag)));
              json_object_array_add (disks, d);
              (*problems)++;
            }
          vaio_diag_free (&quiet);
          vaio_diag_free (&diag);
        }
      json_object_object_add (o, "disks", disks);
      json_object_array_add (vms, o);
    }
  return vms;
}

static const char *
jstr (json_object *o, const char *key)
{
  json_object *v;

  if (!json_object_object_get_ex (o, key, &v))
    return "";
  return json_object_get_string (v);
}

static json_object *
jget (json_object *o, const char *key)
{
  json_object *v = NULL;

  json_object_object_get_ex (o, key, &v);
  return v;
}

static void
print_cluster (json_object *c, FILE *fp)
{
  json_object *hosts = jget (c, "hosts");

  fprintf (fp, "Cluster %s\n", jstr (c, "name"));
  fprintf (fp, "  %-16s %-12s %s\n", "HOST", "MODE", "I/O FILTERS INSTALLED");
  for (size_t i = 0; i < json_object_array_length (hosts); i++)
    {
      json_object *h = json_object_array_get_idx (hosts, i), *fl;
      fl = jget (h, "filters");
      fprintf (fp, "  %-16s %-12s", jstr (h, "name"),
               json_object_get_boolean (jget (h, "maintenance")) ? "maintenance"
                                                                 : "connected");
      for (size_t k = 0; k < json_object_array_length (fl); k++)
        {
          json_object *f = json_object_array_get_idx (fl, k);
          fprintf (fp, "%s%s (%s)", k ? ", " : " ", jstr (f, "name"),
                   jstr (f, "class"));
        }
      if (json_object_array_length (fl) == 0)
        fprintf (fp, " (none)");
      fputc ('\n', fp);
    }
}

static void
print_hosts (json_object *hosts, FILE *fp)
{
  for (size_t i = 0; i < json_object_array_length (hosts); i++)
    {
      json_object *h = json_object_array_get_idx (hosts, i);
      json_object *fl = jget (h, "filters");
      fprintf (fp, "Host %s  (state %s)\n", jstr (h, "name"),
               jstr (h, "state_dir"));
      fprintf (fp, "  %-20s %-12s %-10s %s\n", "NAME", "VENDOR", "VERSION",
               "TYPE");
      for (size_t k = 0; k < json_object_array_length (fl); k++)
        {
          json_object *f = json_object_array_get_idx (fl, k);
          fprintf (fp, "  %-20s %-12s %-10s %s\n", jstr (f, "Name"),
                   jstr (f, "Vendor"), jstr (f, "Version"), jstr (f, "Type"));
        }
    }
}

static void
print_chain (json_object *chain, FILE *fp)
{
  if (chain == NULL)
    {
      fprintf (fp, "-\n");
      return;
    }
  for (size_t k = 0; k < json_object_array_length (chain); k++)
    fprintf (fp, "%s -> ",
             jstr (json_object_array_get_idx (chain, k), "filter"));
  fprintf (fp, "file\n");
}

/* v in unit, one decimal below 10 (1.5 ms, 1.5 s), whole above (15 s):
 * enough to read a lag against an RPO at a glance.
 */
static void
fmt_num (char *buf, size_t len, double v, const char *unit)
{
  if (v < 10 && v != (double)(uint64_t)v)
    snprintf (buf, len, "%.1f%s", v, unit);
  else
    snprintf (buf, len, "%.0f%s", v, unit);
}

static void
fmt_us (char *buf, size_t len, uint64_t us)
{
  if (us < 1000)
    snprintf (buf, len, "%llu us", (unsigned long long)us);
  else if (us < 1000000)
    fmt_num (buf, len, us / 1e3, " ms");
  else if (us < 60000000)
    fmt_num (buf, len, us / 1e6, " s");
  else if (us < 3600000000ULL)
    fmt_num (buf, len, us / 6e7, " min");
  else
    fmt_num (buf, len, us / 3.6e9, " h");
}

/* A counter of a filter's stats (as stats_json put it); 0 when absent. */
static uint64_t
counter (json_object *ctr, const char *key)
{
  json_object *v = jget (ctr, key);

  return v ? json_object_get_uint64 (v) : 0;
}

/* Resync progress or change tracking, when the filter is not journaling:
 * with the replica connected the dirty regions are being copied, without
 * it they only accumulate.
 */
static void
print_repl_tracking (json_object *ctr, FILE *fp)
{
  uint64_t total = counter (ctr, "resync_total_bytes");
  uint64_t done = counter (ctr, "resync_done_bytes");
  char a[32], b[32];

  if (!counter (ctr, "tracking"))
    return;
  if (counter (ctr, "replica_connected") && total)
    {
      fprintf (fp, ", resync %u%% (%s of %s)",
               (unsigned)(done >= total ? 100 : done * 100 / total),
               vaio_format_size (done, a, sizeof a),
               vaio_format_size (total, b, sizeof b));
    }
  else
    {
      fprintf (fp, ", tracking changes (%s dirty)",
               vaio_format_size (counter (ctr, "dirty_bytes"), a, sizeof a));
    }
}

/* One line for a running replication filter, from its stats: whether the
 * replica is connected, lag now / p50 / p99, the RPO and whether the lag
 * is over it, and resync or change tracking.
 */
static void
print_repl_line (json_object *f, FILE *fp)
{
  json_object *st = jget (f, "stats"), *ctr = jget (st, "counters");
  char now[32], p50[32], p99[32], rpo[32];

  fprintf (fp, "  %-10s replication: ", "");
  if (st == NULL || (ctr == NULL && jget (st, "error") == NULL))
    {
      fprintf (fp, "no stats yet (state not recovered)\n");
      return;
    }
  if (ctr == NULL)
    {
      fprintf (fp, "stats unreadable: %s\n", jstr (st, "error"));
      return;
    }
  fmt_us (now, sizeof now, counter (ctr, "lag_us"));
  fmt_us (p50, sizeof p50, counter (ctr, "lag_p50_us"));
  fmt_us (p99, sizeof p99, counter (ctr, "lag_p99_us"));
  fmt_us (rpo, sizeof rpo, counter (ctr, "rpo_us"));
  fprintf (fp, "replica %s, lag %s (p50 %s, p99 %s), RPO %s%s",
           counter (ctr, "replica_connected") ? "connected" : "not connected",
           now, p50, p99, rpo, counter (ctr, "over_rpo") ? " OVER RPO" : "");
  print_repl_tracking (ctr, fp);
  fputc ('\n', fp);
}

/* The replication line of each replication filter of a running disk's
 * chain (a stopped disk has no figures to show).
 */
static void
print_repl (json_object *d, FILE *fp)
{
  json_object *chain = jget (d, "chain");

  if (strcmp (jstr (d, "state"), "running") != 0)
    return;
  for (size_t k = 0; k < json_object_array_length (chain); k++)
    {
      json_object *f = json_object_array_get_idx (chain, k);
      if (strcmp (jstr (f, "class"), "replication") == 0)
        print_repl_line (f, fp);
    }
}

static void
print_vms (json_object *vms, FILE *fp)
{
  for (size_t v = 0; v < json_object_array_length (vms); v++)
    {
      json_object *vm = json_object_array_get_idx (vms, v);
      json_object *disks = jget (vm, "disks");
      fprintf (fp, "VM %s  (host %s)\n", jstr (vm, "name"), jstr (vm, "host"));
      fprintf (fp, "  %-10s %-10s %-8s %-8s %-12s %s\n", "DISK", "POLICY",
               "STATE", "PID", "COMPLIANCE", "CHAIN (guest -> disk)");
      for (size_t i = 0; i < json_object_array_length (disks); i++)
        {
          json_object *d = json_object_array_get_idx (disks, i);
          json_object *chain = jget (d, "chain");
          fprintf (fp, "  %-10s %-10s %-8s %-8s %-12s ", jstr (d, "name"),
                   jstr (d, "policy"), jstr (d, "state"), jstr (d, "pid"),
                   jstr (d, "compliance"));
          print_chain (chain, fp);
          if (jget (d, "planned_chain"))
            {
              fprintf (fp, "  %-10s planned by the policy: ", "");
              print_chain (jget (d, "planned_chain"), fp);
            }
          if (jget (d, "error"))
            fprintf (fp, "  %-10s error: %s\n", "", jstr (d, "error"));
          fprintf (fp, "  %-10s uri %s\n", "", jstr (d, "uri"));
          print_repl (d, fp);
          if (jget (d, "compliance_detail"))
            fprintf (fp, "  %-10s %s\n", "", jstr (d, "compliance_detail"));
        }
    }
}

int
vaio_status (const struct vaio_config *cfg, const struct vaio_host_filters *hf,
             enum vaio_view view, bool json, FILE *fp)
{
  json_object *root = json_object_new_object ();
  int problems = 0;

  if (view == VAIO_VIEW_ALL || view == VAIO_VIEW_CLUSTER)
    json_object_object_add (root, "cluster", cluster_json (cfg, hf));
  if (view == VAIO_VIEW_ALL || view == VAIO_VIEW_HOST)
    json_object_object_add (root, "hosts", hosts_json (cfg, hf));
  if (view == VAIO_VIEW_ALL || view == VAIO_VIEW_VM)
    json_object_object_add (root, "vms", vms_json (cfg, hf, &problems));

  if (json)
    fprintf (fp, "%s\n",
             json_object_to_json_string_ext (root, JSON_C_TO_STRING_PRETTY));
  else
    {
      if (view == VAIO_VIEW_ALL || view == VAIO_VIEW_CLUSTER)
        print_cluster (jget (root, "cluster"), fp);
      if (view == VAIO_VIEW_ALL || view == VAIO_VIEW_HOST)
        print_hosts (jget (root, "hosts"), fp);
      if (view == VAIO_VIEW_ALL || view == VAIO_VIEW_VM)
        print_vms (jget (root, "vms"), fp);
    }
  json_object_put (root);
  return problems ? 1 : 0;
}

/* ---- vaioctl top ---- */

struct top_disk
{
  struct vaio_plan_disk plan; /* only paths when error is set */
  char *error;                /* why the disk could not be planned */
  pid_t pid_prev, pid_cur;
  bool had[VAIO_CLASS_COUNT], have[VAIO_CLASS_COUNT];
  struct vaio_stats_snapshot prev[VAIO_CLASS_COUNT], cur[VAIO_CLASS_COUNT];
};

static bool
top_read (struct top_disk *t, size_t pos, struct vaio_stats_snapshot *snap)
{
  char path[4096], err[512];

  snprintf (path, sizeof path, "%s/%s/stats", t->plan.state_dir,
            vaio_class_name (t->plan.chain[pos]));
  return vaio_stats_read (path, snap, err, sizeof err) == 0;
}

static void
top_sample (struct top_disk *t, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      t[i].pid_prev = t[i].pid_cur;
      t[i].pid_cur = vaio_disk_pid (t[i].plan.pidfile);
      for (size_t k = 0; k < t[i].plan.n_chain; k++)
        {
          t[i].prev[k] = t[i].cur[k];
          t[i].had[k] = t[i].have[k];
          t[i].have[k] = top_read (&t[i], k, &t[i].cur[k]) && t[i].pid_cur > 0;
        }
    }
}

/* The counters of filter k run on from the previous sample: both
 * samples were read, from the same stats file (a swapped or restarted
 * disk's new process creates a new one, counting from zero), and no
 * counter went down.  Otherwise a rate would subtract new counters from
 * old ones and wrap.
 */
static bool
top_continuous (const struct top_disk *t, size_t k)
{
  const struct vaio_stats_snapshot *a = &t->prev[k], *b = &t->cur[k];

  if (!t->had[k] || !t->have[k] || a->header.pid != b->header.pid
      || a->header.created_unix_ns != b->header.created_unix_ns)
    return false;
  for (unsigned op = 0; op < VAIO_OP_COUNT; op++)
    if (b->body.op[op].ops < a->body.op[op].ops
        || b->body.op[op].bytes < a->body.op[op].bytes)
      return false;
  return true;
}

/* One filter's gauges, and its hit ratio over the interval where it
 * counts hits, under the filter's class: cache and replication both
 * publish dirty_bytes.
 */
static json_object *
top_filter_json (const struct top_disk *t, size_t k)
{
  const struct vaio_stats_snapshot *s = &t->cur[k];
  json_object *f = json_object_new_object ();
  int hits = vaio_stats_counter_index (s, "hits");
  int misses = vaio_stats_counter_index (s, "misses");

  for (unsigned i = 0; i < s->header.n_counters; i++)
    if (s->header.counter_kinds[i] == VAIO_GAUGE)
      json_object_object_add (f, s->header.counter_names[i],
                              json_object_new_uint64 (s->body.counters[i]));
  if (hits >= 0 && misses >= 0 && !top_continuous (t, k))
    json_object_object_add (f, "hit_ratio", NULL);
  else if (hits >= 0 && misses >= 0)
    {
      uint64_t h = s->body.counters[hits] - t->prev[k].body.counters[hits];
      uint64_t m = s->body.counters[misses] - t->prev[k].body.counters[misses];
      /* No lookups in the interval: no ratio, not a ratio of 0. */
      json_object_object_add (
          f, "hit_ratio",
          h + m ? json_object_new_double ((double)h / (double)(h + m)) : NULL);
    }
  return f;
}

/* Figures for one disk from the outermost filter that publishes stats
 * (nearest the guest: what the guest sees), plus every filter's gauges
 * by class.  A chain of filters that publish nothing (nbdkit's own) has
 * no figures: null, not zero.  Nor has an interval in which the disk
 * restarted: "restarted" says so.
 */
static json_object *
top_disk_json (const struct top_disk *t, double secs)
{
  json_object *o = json_object_new_object (),
              *extra = json_object_new_object ();
  uint64_t ops = 0, bytes = 0, hist[VAIO_STATS_LAT_BUCKETS] = { 0 };
  size_t src = t->plan.n_chain;
  bool restarted = false;

  json_object_object_add (o, "disk", json_object_new_string (t->plan.vm->name));
  json_object_object_add (o, "name",
                          json_object_new_string (t->plan.disk->name));
  /* A filter may create its stats file some time after the disk starts
   * (replication, once connected): take the outermost one read twice.
   */
  for (size_t k = 0; k < t->plan.n_chain && src == t->plan.n_chain; k++)
    if (t->had[k] && t->have[k])
      src = k;
  restarted = (t->pid_prev != 0 && t->pid_prev != t->pid_cur)
              || (src < t->plan.n_chain && !top_continuous (t, src));
  if (src < t->plan.n_chain && !restarted)
    {
      for (unsigned op = 0; op < VAIO_OP_COUNT; op++)
        {
          const struct vaio_stats_op_counters *a = &t->prev[src].body.op[op],
                                              *b = &t->cur[src].body.op[op];
          if (op == VAIO_OP_FLUSH)
            continue;
          ops += b->ops - a->ops;
          bytes += b->bytes - a->bytes;
          for (unsigned h = 0; h < VAIO_STATS_LAT_BUCKETS; h++)
            hist[h] += b->latency_hist[h] >= a->latency_hist[h]
                           ? b->latency_hist[h] - a->latency_hist[h]
                           : 0;
        }
      json_object_object_add (o, "iops", json_object_new_double (ops / secs));
      json_object_object_add (
          o, "mib_s", json_object_new_double (bytes / secs / 1048576.0));
      json_object_object_add (
          o, "latency_p99_us",
          json_object_new_double (vaio_stats_percentile_us (hist, 0.99)));
    }
  else
    {
      json_object_object_add (o, "iops", NULL);
      json_object_object_add (o, "mib_s", NULL);
      json_object_object_add (o, "latency_p99_us", NULL);
    }
  json_object_object_add (o, "interval_s", json_object_new_double (secs));
  json_object_object_add (o, "restarted", json_object_new_boolean (restarted));
  if (t->error)
    json_object_object_add (o, "error", json_object_new_string (t->error));
  for (size_t k = 0; k < t->plan.n_chain; k++)
    if (t->have[k])
      json_object_object_add (extra, vaio_class_name (t->plan.chain[k]),
                              top_filter_json (t, k));
  json_object_object_add (o, "filters", extra);
  return o;
}

/* On a terminal each table replaces the last (cursor home, clear
 * screen), as top(1) does; into a pipe or file the tables follow one
 * another, so a log or a test keeps every sample.
 */
static void
top_print_text (json_object *arr, double secs, FILE *fp)
{
  time_t now = time (NULL);
  char ts[32];

  if (isatty (fileno (fp)))
    fputs ("\033[H\033[2J", fp);
  strftime (ts, sizeof ts, "%H:%M:%S", localtime (&now));
  fprintf (fp, "vaioctl top  %s  (over %.2f s)\n%-24s %10s %10s %10s  %s\n", ts,
           secs, "VM/DISK", "IOPS", "MiB/s", "p99(us)", "FILTER FIGURES");
  for (size_t i = 0; i < json_object_array_length (arr); i++)
    {
      json_object *d = json_object_array_get_idx (arr, i);
      char name[256];
      snprintf (name, sizeof name, "%s/%s", jstr (d, "disk"), jstr (d, "name"));
      if (jget (d, "error"))
        fprintf (fp, "%-24s %10s %10s %10s  (error: %s)", name, "-", "-", "-",
                 jstr (d, "error"));
      else if (json_object_get_boolean (jget (d, "restarted")))
        fprintf (fp, "%-24s %10s %10s %10s  (restarted in this interval)", name,
                 "-", "-", "-");
      else if (jget (d, "iops") == NULL
               && json_object_object_length (jget (d, "filters")) > 0)
        fprintf (fp, "%-24s %10s %10s %10s  (no rate yet)", name, "-", "-",
                 "-");
      else if (jget (d, "iops") == NULL)
        fprintf (fp,
                 "%-24s %10s %10s %10s  (no filter in this chain "
                 "publishes stats)",
                 name, "-", "-", "-");
      else
        fprintf (fp, "%-24s %10.0f %10.1f %10.0f ", name,
                 json_object_get_double (jget (d, "iops")),
                 json_object_get_double (jget (d, "mib_s")),
                 json_object_get_double (jget (d, "latency_p99_us")));
      json_object_object_foreach (jget (d, "filters"), cls, figs)
      {
        json_object_object_foreach (figs, key, val)
        {
          fprintf (fp, " %s.%s=%s", cls, key,
                   val ? json_object_get_string (val) : "-");
        }
      }
      fputc ('\n', fp);
    }
  fflush (fp);
}

static double
monotonic_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Plan every disk; one that cannot be planned is kept with its paths
 * and the reason, so top shows it rather than leaving it out.
 */
static struct top_disk *
top_disks (const struct vaio_config *cfg, const struct vaio_host_filters *hf,
           size_t *n)
{
  struct top_disk *t = NULL;

  *n = 0;
  for (size_t v = 0; v < cfg->n_vms; v++)
    for (size_t i = 0; i < cfg->vms[v].n_disks; i++)
      {
        const struct vaio_vm *vm = &cfg->vms[v];
        struct vaio_diag diag = { 0 }, quiet = { 0 };
        struct top_disk *grown = realloc (t, (*n + 1) * sizeof *t);
        if (grown == NULL)
          return t;
        t = grown;
        memset (&t[*n], 0, sizeof t[*n]);
        if (vaio_plan_disk (cfg, hf, vm, &vm->disks[i], &t[*n].plan, &diag)
            == 0)
          (*n)++;
        else if (vaio_disk_paths (cfg, vm, &vm->disks[i], &t[*n].plan, &quiet)
                 == 0)
          {
            t[*n].error = strdup (diag_first (&diag));
            (*n)++;
          }
        else
          vaio_diag_print (&diag, stderr);
        vaio_diag_free (&quiet);
        vaio_diag_free (&diag);
      }
  return t;
}

int
vaio_top (const struct vaio_config *cfg, const struct vaio_host_filters *hf,
          unsigned iterations, unsigned interval_ms, bool json, FILE *fp)
{
  size_t n;
  struct top_disk *t = top_disks (cfg, hf, &n);
  struct timespec ts
      = { interval_ms / 1000, (long)(interval_ms % 1000) * 1000000 };
  double prev_s, now_s;

  top_sample (t, n);
  prev_s = monotonic_s ();
  for (unsigned it = 0; iterations == 0 || it < iterations; it++)
    {
      json_object *arr = json_object_new_array ();
      nanosleep (&ts, NULL);
      top_sample (t, n);
      /* Rates over the time that passed between the two samples, not the
       * interval asked for: sleeping and reading the stats files take
       * their own time, and a loaded host oversleeps.
       */
      now_s = monotonic_s ();
      for (size_t i = 0; i < n; i++)
        json_object_array_add (arr, top_disk_json (&t[i], now_s - prev_s));
      if (json)
        fprintf (fp, "%s\n",
                 json_object_to_json_string_ext (arr, JSON_C_TO_STRING_PLAIN));
      else
        top_print_text (arr, now_s - prev_s, fp);
      fflush (fp);
      json_object_put (arr);
      prev_s = now_s;
    }
  for (size_t i = 0; i < n; i++)
    {
      vaio_plan_disk_free (&t[i].plan);
      free (t[i].error);
    }
  free (t);
  return 0;
}

/* vaio-nbd unit test: the cluster config parser (chain/config.c).
 *
 * A good config must parse into exactly the values it spells; every
 * configs/bad-*.yaml must fail with exactly the message in its sibling
 * .expect file (@DIR@ standing for the fixture directory).
 */
#include <check.h>
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chainutil.h"
#include "testutil.h"
#include "units.h"
#include "yamlutil.h"

/* good*.yaml fixtures: good_configs_validate checks them all. */
#define MIN_GOOD_CONFIGS 3

/* At least this many malformed configs must be found and checked, so a
 * broken glob cannot turn the test into one that always passes.
 */
#define MIN_BAD_CONFIGS 20

static char *
joined (const char *dir, const char *rel)
{
  char *p;

  ck_assert_int_ne (asprintf (&p, "%s/%s", dir, rel), -1);
  return p;
}

static void
assert_loc (const struct vaio_loc *loc, const char *file, unsigned line,
            unsigned column)
{
  ck_assert_str_eq (loc->file, file);
  ck_assert_uint_eq (loc->line, line);
  ck_assert_uint_eq (loc->column, column);
}

START_TEST (good_config_values)
{
  char *file = tu_fixture ("good.yaml"), *dir = tu_fixture ("");
  struct vaio_diag diag = { 0 };
  struct vaio_config *cfg = vaio_config_load (file, &diag);
  char real[PATH_MAX], *p;

  ck_assert_msg (cfg != NULL, "good.yaml: %s", diag.n ? diag.msgs[0] : "?");
  ck_assert_uint_eq (diag.n, 0);
  dir[strlen (dir) - 1] = '\0'; /* drop the trailing '/' */
  ck_assert_ptr_nonnull (realpath (dir, real));
  ck_assert_str_eq (cfg->file, file);
  ck_assert_str_eq (cfg->dir, real);
  ck_assert_str_eq (cfg->cluster, "lab");

  ck_assert_uint_eq (cfg->n_hosts, 2);
  ck_assert_str_eq (cfg->hosts[0].name, "host1");
  p = joined (real, "state/host1");
  ck_assert_str_eq (cfg->hosts[0].state_dir, p);
  free (p);
  ck_assert_uint_eq (cfg->hosts[0].n_filter_files, 3);
  p = joined (real, "manifests/repl.yaml");
  ck_assert_str_eq (cfg->hosts[0].filter_files[1], p);
  free (p);
  assert_loc (&cfg->hosts[0].filter_locs[1], file, 6, 37);
  assert_loc (&cfg->hosts[0].loc, file, 4, 5);
  ck_assert_str_eq (cfg->hosts[1].state_dir, "/var/tmp/vaio-test-host2");
  ck_assert_uint_eq (cfg->hosts[1].n_filter_files, 1);

  ck_assert_uint_eq (cfg->n_policies, 2);
  {
    const struct vaio_policy *gold = vaio_config_policy (cfg, "gold");
    const struct vaio_class_rule *r;

    ck_assert_ptr_eq (gold, &cfg->policies[0]);
    ck_assert (gold->allow_cleartext_filters);
    r = &gold->rules[VAIO_CLASS_REPLICATION];
    ck_assert (r->present);
    ck_assert_uint_eq (r->n_settings, 2);
    ck_assert_str_eq (r->settings[0].key, "repl-target");
    ck_assert_str_eq (r->settings[0].value,
                      "nbd+unix:///?socket=/tmp/replica.sock");
    ck_assert_str_eq (r->settings[1].key, "repl-sync");
    ck_assert_str_eq (r->settings[1].value, "on");
    assert_loc (&r->loc, file, 14, 5);
    assert_loc (&r->settings[1].loc, file, 16, 7);
    r = &gold->rules[VAIO_CLASS_CACHING];
    ck_assert (r->present);
    ck_assert_uint_eq (r->n_settings, 2);
    ck_assert_str_eq (r->settings[0].value, "64M");
    ck_assert_str_eq (r->settings[1].key, "cache-mode");
    ck_assert_str_eq (r->settings[1].value, "writeback");
    /* "sioc:" with nothing: the class is on, with its defaults. */
    ck_assert (gold->rules[VAIO_CLASS_SIOC].present);
    ck_assert_uint_eq (gold->rules[VAIO_CLASS_SIOC].n_settings, 0);
    ck_assert (!gold->rules[VAIO_CLASS_ENCRYPTION].present);
    ck_assert (!cfg->policies[1].allow_cleartext_filters);
    ck_assert (!cfg->policies[1].rules[VAIO_CLASS_REPLICATION].present);
  }
  ck_assert_ptr_null (vaio_config_policy (cfg, "silver"));
  ck_assert_ptr_eq (vaio_config_host (cfg, "host2"), &cfg->hosts[1]);
  ck_assert_ptr_null (vaio_config_host (cfg, "host3"));

  ck_assert_uint_eq (cfg->n_vms, 2);
  {
    const struct vaio_vm *vm1 = &cfg->vms[0], *vm2 = &cfg->vms[1];

    ck_assert_str_eq (vm1->name, "vm1");
    ck_assert_str_eq (vm1->host, "host1");
    assert_loc (&vm1->host_loc, file, 23, 11);
    ck_assert_uint_eq (vm1->n_disks, 2);
    ck_assert_ptr_eq (vm1->disks[0].vm, vm1);
    ck_assert_str_eq (vm1->disks[0].name, "disk0");
    p = joined (real, "images/vm1.img");
    ck_assert_str_eq (vm1->disks[0].image, p);
    free (p);
    ck_assert_str_eq (vm1->disks[0].policy, "gold");
    ck_assert_ptr_null (vm1->disks[0].socket); /* default, see paths.c */
    ck_assert_int_eq (vm1->disks[0].port, 0);
    ck_assert_ptr_null (vm1->disks[0].address);
    p = joined (real, "sockets/vm1-disk1.sock");
    ck_assert_str_eq (vm1->disks[1].socket, p);
    free (p);
    assert_loc (&vm1->disks[1].socket_loc, file, 31, 17);

    ck_assert_uint_eq (vm2->n_disks, 1);
    ck_assert_int_eq (vm2->disks[0].port, 10809);
    ck_assert_str_eq (vm2->disks[0].address, "127.0.0.1");
    ck_assert_ptr_null (vm2->disks[0].socket);
    assert_loc (&vm2->disks[0].port_loc, file, 38, 15);

    /* Derived paths (paths.c) from the parsed values. */
    p = vaio_disk_socket (&cfg->hosts[0], &vm1->disks[0]);
    {
      char *want = joined (real, "state/host1/vms/vm1/disk0.sock");
      ck_assert_str_eq (p, want);
      free (want);
    }
    free (p);
    ck_assert_ptr_null (vaio_disk_socket (&cfg->hosts[1], &vm2->disks[0]));
  }
  vaio_config_free (cfg);
  vaio_diag_free (&diag);
  free (file);
  free (dir);
}
END_TEST

static const struct vaio_setting *
setting (const struct vaio_config *cfg, const char *policy, enum vaio_class c,
         const char *key)
{
  const struct vaio_policy *pol = vaio_config_policy (cfg, policy);

  ck_assert_msg (pol != NULL, "no policy %s", policy);
  for (size_t i = 0; i < pol->rules[c].n_settings; i++)
    if (strcmp (pol->rules[c].settings[i].key, key) == 0)
      return &pol->rules[c].settings[i];
  ck_abort_msg ("policy %s has no %s", policy, key);
  return NULL;
}

static struct vaio_config *
load_good (const char *file)
{
  struct vaio_diag diag = { 0 };
  struct vaio_config *cfg = vaio_config_load (file, &diag);

  ck_assert_msg (cfg != NULL, "%s: %s", file, diag.n ? diag.msgs[0] : "?");
  ck_assert_uint_eq (diag.n, 0);
  vaio_diag_free (&diag);
  return cfg;
}

static int
is_good_fixture (const struct dirent *e)
{
  size_t n = strlen (e->d_name);

  return strncmp (e->d_name, "good", 4) == 0 && n > 5
         && strcmp (e->d_name + n - 5, ".yaml") == 0;
}

/* Every good*.yaml parses and validates without a single message. */
START_TEST (good_configs_validate)
{
  char *dir = tu_fixture ("");
  struct dirent **list;
  int n;

  dir[strlen (dir) - 1] = '\0';
  n = scandir (dir, &list, is_good_fixture, alphasort);
  ck_assert_int_ge (n, MIN_GOOD_CONFIGS);
  for (int i = 0; i < n; i++)
    {
      char *file = joined (dir, list[i]->d_name);
      char *text = cu_check_config (file, dir);
      ck_assert_msg (strcmp (text, "") == 0, "%s: %s", list[i]->d_name, text);
      free (text);
      free (file);
      free (list[i]);
    }
  free (list);
  free (dir);
}
END_TEST

/* Disks served over TCP: the port, the address (127.0.0.1 when none is
 * given), and no unix socket, given or derived.
 */
START_TEST (good_tcp_values)
{
  char *file = tu_fixture ("good-tcp.yaml");
  struct vaio_config *cfg = load_good (file);
  const struct vaio_vm *web = &cfg->vms[0], *db = &cfg->vms[1];

  ck_assert_str_eq (cfg->cluster, "tcp-lab");
  ck_assert_uint_eq (cfg->n_hosts, 2);
  ck_assert_uint_eq (cfg->n_vms, 2);
  ck_assert_str_eq (web->host, "h1");
  ck_assert_str_eq (db->host, "h2");
  ck_assert_uint_eq (web->n_disks, 2);
  ck_assert_str_eq (web->disks[0].name, "root");
  ck_assert_int_eq (web->disks[0].port, 10809);
  ck_assert_str_eq (web->disks[0].address, "127.0.0.1");
  ck_assert_int_eq (web->disks[1].port, 10810);
  ck_assert_str_eq (web->disks[1].address, "0.0.0.0");
  ck_assert_uint_eq (db->n_disks, 1);
  ck_assert_int_eq (db->disks[0].port, 65535);
  ck_assert_str_eq (db->disks[0].address, "::1");
  assert_loc (&db->disks[0].port_loc, file, 28, 15);
  for (size_t v = 0; v < cfg->n_vms; v++)
    for (size_t i = 0; i < cfg->vms[v].n_disks; i++)
      {
        ck_assert_ptr_null (cfg->vms[v].disks[i].socket);
        ck_assert_ptr_null (vaio_disk_socket (
            vaio_config_host (cfg, cfg->vms[v].host), &cfg->vms[v].disks[i]));
      }
  ck_assert_str_eq (
      setting (cfg, "cached", VAIO_CLASS_CACHING, "cache-size")->value, "16M");
  ck_assert_str_eq (
      setting (cfg, "limited", VAIO_CLASS_SIOC, "sioc-latency")->value, "20ms");
  vaio_config_free (cfg);
  free (file);
}
END_TEST

/* A size in each unit and a duration in each unit: kept as written (the
 * filter gets that text), and read by the shared parser as the number
 * the validator checks.
 */
START_TEST (good_units_values)
{
  static const struct
  {
    const char *policy, *key, *text;
    bool is_size;
    uint64_t value;
  } cases[] = {
    { "plain", "cache-size", "65536", true, 65536 },
    { "b", "cache-size", "4096B", true, 4096 },
    { "k", "cache-size", "64k", true, 64 << 10 },
    { "m", "cache-size", "2M", true, 2 << 20 },
    { "g", "cache-size", "1g", true, 1ULL << 30 },
    { "t", "cache-size", "3T", true, 3ULL << 40 },
    { "p", "cache-size", "1P", true, 1ULL << 50 },
    { "e", "cache-size", "7E", true, 7ULL << 60 },
    { "s", "cache-size", "100s", true, 100 * 512 },
    { "plain", "cache-flush-interval", "250ns", false, 250 },
    { "plain", "sioc-latency", "30us", false, 30000 },
    { "b", "cache-flush-interval", "30ms", false, 30000000 },
    { "b", "sioc-latency", "2s", false, 2000000000ULL },
    { "k", "cache-flush-interval", "5m", false, 300000000000ULL },
    { "k", "sioc-latency", "1h", false, 3600000000000ULL },
  };
  char *file = tu_fixture ("good-units.yaml");
  struct vaio_config *cfg = load_good (file);

  ck_assert_uint_eq (cfg->n_policies, 9);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      enum vaio_class c = strncmp (cases[i].key, "sioc", 4) == 0
                              ? VAIO_CLASS_SIOC
                              : VAIO_CLASS_CACHING;
      const struct vaio_setting *st
          = setting (cfg, cases[i].policy, c, cases[i].key);
      uint64_t v = 0;
      ck_assert_str_eq (st->value, cases[i].text);
      ck_assert_int_eq (cases[i].is_size ? vaio_parse_size (st->value, &v)
                                         : vaio_parse_duration (st->value, &v),
                        0);
      ck_assert_msg (v == cases[i].value, "%s: %" PRIu64 ", want %" PRIu64,
                     cases[i].text, v, cases[i].value);
    }
  vaio_config_free (cfg);
  free (file);
}
END_TEST

/* allow-cleartext-filters in its boolean spellings (and absent): parsed
 * per policy, and it moves encryption from first to last in the chain.
 * Written to a scratch directory: the key file must be owner-only, which
 * a file from git is not.
 */
START_TEST (good_cleartext_values)
{
  static const struct
  {
    const char *policy;
    bool allow;
  } want[] = {
    { "default", false }, { "t", true },  { "yes", true },
    { "on", true },       { "f", false }, { "no", false },
  };
  char *dir = tu_mkdtemp (), *crypt = tu_fixture ("manifests/crypt.yaml"),
       *cache = tu_fixture ("manifests/cache.yaml"), *yaml, *file, *text;
  struct vaio_config *cfg;

  free (tu_write_file (dir, "key", "secret\n", 0600));
  ck_assert_int_ne (
      asprintf (
          &yaml,
          "cluster: clear\n"
          "hosts:\n"
          "  - { name: h, state-dir: st, filters: [ %s, %s ] }\n"
          "policies:\n"
          "  - { name: default, encryption: { crypt-key-file: key }, "
          "caching: { cache-size: 1M } }\n"
          "  - { name: t, allow-cleartext-filters: true, encryption: { "
          "crypt-key-file: key }, caching: { cache-size: 1M } }\n"
          "  - { name: 'yes', allow-cleartext-filters: yes, encryption: { "
          "crypt-key-file: key }, caching: { cache-size: 1M } }\n"
          "  - { name: 'on', allow-cleartext-filters: on, encryption: { "
          "crypt-key-file: key }, caching: { cache-size: 1M } }\n"
          "  - { name: f, allow-cleartext-filters: false, encryption: { "
          "crypt-key-file: key }, caching: { cache-size: 1M } }\n"
          "  - { name: 'no', allow-cleartext-filters: no, encryption: { "
          "crypt-key-file: key }, caching: { cache-size: 1M } }\n"
          "vms:\n"
          "  - name: vm\n"
          "    host: h\n"
          "    disks:\n"
          "      - { name: d1, image: d1.img, policy: default }\n"
          "      - { name: d2, image: d2.img, policy: t }\n"
          "      - { name: d3, image: d3.img, policy: 'yes' }\n"
          "      - { name: d4, image: d4.img, policy: 'on' }\n"
          "      - { name: d5, image: d5.img, policy: f }\n"
          "      - { name: d6, image: d6.img, policy: 'no' }\n",
          crypt, cache),
      -1);
  for (int i = 1; i <= 6; i++)
    {
      char name[16];
      snprintf (name, sizeof name, "d%d.img", i);
      free (tu_write_file (dir, name, "", 0600));
    }
  file = tu_write_file (dir, "c.yaml", yaml, 0600);
  text = cu_check_config (file, dir);
  ck_assert_msg (strcmp (text, "") == 0, "cleartext config: %s", text);
  free (text);
  cfg = load_good (file);
  ck_assert_uint_eq (cfg->n_policies, 6);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    {
      const struct vaio_policy *pol = vaio_config_policy (cfg, want[i].policy);
      bool present[VAIO_CLASS_COUNT];
      enum vaio_class order[VAIO_CLASS_COUNT];
      ck_assert_ptr_nonnull (pol);
      ck_assert_msg (pol->allow_cleartext_filters == want[i].allow, "%s",
                     want[i].policy);
      for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
        present[c] = pol->rules[c].present;
      ck_assert_uint_eq (
          vaio_class_chain_order (present, pol->allow_cleartext_filters, order),
          2);
      ck_assert_int_eq (order[want[i].allow ? 1 : 0], VAIO_CLASS_ENCRYPTION);
      ck_assert_int_eq (order[want[i].allow ? 0 : 1], VAIO_CLASS_CACHING);
    }
  vaio_config_free (cfg);
  tu_rmrf (dir);
  free (file);
  free (yaml);
  free (crypt);
  free (cache);
  free (dir);
}
END_TEST

/* The shipped examples (every .yaml in configs/) parse with no message, and
 * demo.yaml into the values the README describes.
 */
static int
is_yaml (const struct dirent *e)
{
  size_t n = strlen (e->d_name);

  return n > 5 && strcmp (e->d_name + n - 5, ".yaml") == 0;
}

START_TEST (shipped_examples_parse)
{
  const char *src = getenv ("VAIO_SRC");
  char *dir, *demo;
  struct dirent **list;
  struct vaio_config *cfg;
  int n;

  ck_assert_ptr_nonnull (src);
  dir = joined (src, "configs");
  n = scandir (dir, &list, is_yaml, alphasort);
  ck_assert_int_ge (n, 1);
  for (int i = 0; i < n; i++)
    {
      char *file = joined (dir, list[i]->d_name);
      vaio_config_free (load_good (file));
      free (file);
      free (list[i]);
    }
  free (list);

  demo = joined (dir, "demo.yaml");
  cfg = load_good (demo);
  ck_assert_str_eq (cfg->cluster, "demo");
  ck_assert_uint_eq (cfg->n_hosts, 1);
  ck_assert_uint_eq (cfg->hosts[0].n_filter_files, 4);
  ck_assert_uint_eq (cfg->n_policies, 2);
  ck_assert_uint_eq (cfg->n_vms, 2);
  ck_assert_str_eq (cfg->vms[0].disks[0].policy, "gold");
  ck_assert_str_eq (cfg->vms[1].disks[0].policy, "silver");
  for (unsigned c = 0; c < VAIO_CLASS_COUNT; c++)
    ck_assert (vaio_config_policy (cfg, "gold")->rules[c].present);
  ck_assert (!vaio_config_policy (cfg, "gold")->allow_cleartext_filters);
  ck_assert (!vaio_config_policy (cfg, "silver")
                  ->rules[VAIO_CLASS_ENCRYPTION]
                  .present);
  ck_assert_str_eq (
      setting (cfg, "gold", VAIO_CLASS_REPLICATION, "repl-rpo")->value, "15s");
  ck_assert_str_eq (
      setting (cfg, "silver", VAIO_CLASS_SIOC, "sioc-limit-iops")->value,
      "2000");
  vaio_config_free (cfg);
  free (demo);
  free (dir);
}
END_TEST

static int
is_bad_fixture (const struct dirent *e)
{
  size_t n = strlen (e->d_name);

  return strncmp (e->d_name, "bad-", 4) == 0 && n > 9
         && strcmp (e->d_name + n - 5, ".yaml") == 0;
}

static char *
expected_for (const char *file)
{
  char *expect, *text;
  size_t n;

  ck_assert_int_ne (
      asprintf (&expect, "%.*s.expect", (int)(strlen (file) - 5), file), -1);
  text = tu_read_file (expect);
  ck_assert_msg (text != NULL, "%s: missing .expect file", expect);
  free (expect);
  n = strlen (text);
  while (n > 0 && text[n - 1] == '\n')
    text[--n] = '\0';
  ck_assert_msg (n > 0, "%s: empty .expect file", file);
  return text;
}

START_TEST (bad_configs_give_exact_messages)
{
  char *dir = tu_fixture ("");
  struct dirent **list;
  int n, failures = 0;

  dir[strlen (dir) - 1] = '\0';
  n = scandir (dir, &list, is_bad_fixture, alphasort);
  ck_assert_int_ge (n, MIN_BAD_CONFIGS);
  for (int i = 0; i < n; i++)
    {
      char *file = joined (dir, list[i]->d_name);
      char *want = expected_for (file);
      char *got = cu_check_config (file, dir);

      if (strcmp (got, want) != 0)
        {
          fprintf (stderr, "%s:\n  expected: %s\n  got:      %s\n",
                   list[i]->d_name, want, got);
          failures++;
        }
      free (file);
      free (want);
      free (got);
      free (list[i]);
    }
  free (list);
  free (dir);
  ck_assert_msg (failures == 0, "%d of %d bad configs gave other messages",
                 failures, n);
}
END_TEST

START_TEST (missing_file)
{
  char *dir = tu_mkdtemp (), *file = joined (dir, "nope.yaml");
  struct vaio_diag diag = { 0 };
  char *text;

  ck_assert_ptr_null (vaio_config_load (file, &diag));
  text = cu_diag_text (&diag, dir, "@TMP@");
  ck_assert_str_eq (text,
                    "@TMP@/nope.yaml: cannot open: No such file or directory");
  free (text);
  vaio_diag_free (&diag);
  free (file);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

/* A config named by a relative path resolves its paths against its own
 * directory, not against the current directory.
 */
START_TEST (relative_config_path)
{
  char *dir = tu_mkdtemp (), cwd[PATH_MAX], real[PATH_MAX], *want, *sub;
  struct vaio_diag diag = { 0 };
  struct vaio_config *cfg;

  ck_assert_ptr_nonnull (realpath (dir, real));
  sub = joined (dir, "sub");
  ck_assert_int_eq (mkdir (sub, 0700), 0);
  free (sub);
  free (tu_write_file (dir, "sub/c.yaml",
                       "cluster: c\nhosts:\n  - name: h\n    state-dir: st\n",
                       0600));
  ck_assert_ptr_nonnull (getcwd (cwd, sizeof cwd));
  ck_assert_int_eq (chdir (dir), 0);
  cfg = vaio_config_load ("sub/c.yaml", &diag);
  ck_assert_int_eq (chdir (cwd), 0);
  ck_assert_msg (cfg != NULL, "%s", diag.n ? diag.msgs[0] : "?");
  want = joined (real, "sub/st");
  ck_assert_str_eq (cfg->hosts[0].state_dir, want);
  ck_assert_str_eq (cfg->file, "sub/c.yaml");
  free (want);
  vaio_config_free (cfg);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

/* Relative paths resolve against the config's directory and are
 * normalized lexically, so two spellings of one path compare equal.
 */
START_TEST (path_normalization)
{
  static const char *const cases[][3] = {
    { "/a/b", "c", "/a/b/c" },
    { "/a/b", "./c/", "/a/b/c" },
    { "/a/b", "../c", "/a/c" },
    { "/a/b", "../../../c", "/c" },
    { "/a", "x//y/./z/..", "/a/x/y" },
    { "/", ".", "/" },
    { "/a", "/abs/../x", "/x" },
    { "/a/b", "c/..", "/a/b" },
    { "/a", "...", "/a/..." },
    { "/a", "..x/y", "/a/..x/y" },
    { "/tmp/d", "a.img", "/tmp/d/a.img" },
    { "/a", "//x//", "/x" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      char *p = yu_resolve_path (cases[i][0], cases[i][1]);
      ck_assert_msg (strcmp (p, cases[i][2]) == 0, "%s + %s: got %s",
                     cases[i][0], cases[i][1], p);
      free (p);
    }
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("config");
  TCase *tc = tcase_create ("config");
  SRunner *sr;
  int failed;

  tcase_add_test (tc, good_config_values);
  tcase_add_test (tc, good_configs_validate);
  tcase_add_test (tc, good_tcp_values);
  tcase_add_test (tc, good_units_values);
  tcase_add_test (tc, good_cleartext_values);
  tcase_add_test (tc, shipped_examples_parse);
  tcase_add_test (tc, bad_configs_give_exact_messages);
  tcase_add_test (tc, missing_file);
  tcase_add_test (tc, relative_config_path);
  tcase_add_test (tc, path_normalization);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

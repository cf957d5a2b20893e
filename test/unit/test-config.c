/* vaio-nbd unit test: the cluster config parser (chain/config.c).
 *
 * A good config must parse into exactly the values it spells; every
 * configs/bad-*.yaml must fail with exactly the message in its sibling
 * .expect file (@DIR@ standing for the fixture directory).
 */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chainutil.h"
#include "testutil.h"
#include "yamlutil.h"

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

START_TEST (good_config_validates)
{
  char *file = tu_fixture ("good.yaml"), *dir = tu_fixture ("");
  char *text;

  dir[strlen (dir) - 1] = '\0';
  text = cu_check_config (file, dir);
  ck_assert_msg (strcmp (text, "") == 0, "good.yaml: %s", text);
  free (text);
  free (file);
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
  tcase_add_test (tc, good_config_validates);
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

/* vaio-nbd unit test: the planner (chain/plan.c) turns a validated config
 * into the exact nbdkit command line of each disk: pause filter first,
 * then the policy's filters in canonical class order (encryption first,
 * or last with allow-cleartext-filters), settings in class order, the
 * state-param of each stateful filter, and the pause control socket.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainutil.h"
#include "plan.h"
#include "testutil.h"

struct fixture
{
  char *dir;
  struct vaio_config *cfg;
  struct vaio_host_filters *hf;
};

static void
load (struct fixture *f, const char *policies_and_vms)
{
  struct vaio_diag diag = { 0 };
  char *m = tu_fixture ("manifests"), *yaml, *file;

  f->dir = tu_mkdtemp ();
  free (tu_write_file (f->dir, "a.img", "", 0600));
  free (tu_write_file (f->dir, "pw", "secret", 0600));
  ck_assert_int_ne (
      asprintf (&yaml,
                "cluster: lab\n"
                "hosts:\n"
                "  - name: host1\n"
                "    state-dir: state\n"
                "    filters: [%s/cache.yaml, %s/repl.yaml, %s/crypt.yaml,"
                " %s/sioc.yaml]\n"
                "%s",
                m, m, m, m, policies_and_vms),
      -1);
  file = tu_write_file (f->dir, "c.yaml", yaml, 0600);
  f->cfg = vaio_config_load (file, &diag);
  ck_assert_msg (f->cfg != NULL, "parse: %s", diag.n ? diag.msgs[0] : "?");
  f->hf = cu_host_filters (f->cfg);
  ck_assert_msg (vaio_validate (f->cfg, f->hf, &diag) == 0, "validate: %s",
                 diag.n ? diag.msgs[0] : "?");
  vaio_diag_free (&diag);
  free (yaml);
  free (file);
  free (m);
}

static void
unload (struct fixture *f)
{
  cu_host_filters_free (f->hf, f->cfg->n_hosts);
  vaio_config_free (f->cfg);
  tu_rmrf (f->dir);
  free (f->dir);
}

/* The plan's command line with the scratch dir and the fixture manifests'
 * dir replaced by placeholders.
 */
static char *
plan_line (struct fixture *f, size_t vm, size_t disk)
{
  struct vaio_plan_disk p;
  struct vaio_diag diag = { 0 };
  char *line, *a, *b, *m = tu_fixture ("manifests");

  ck_assert_int_eq (vaio_plan_disk (f->cfg, f->hf, &f->cfg->vms[vm],
                                    &f->cfg->vms[vm].disks[disk], &p, &diag),
                    0);
  line = vaio_plan_shell_line (&p);
  a = tu_replace (line, f->dir, "@TMP@");
  b = tu_replace (a, m, "@MAN@");
  vaio_plan_disk_free (&p);
  free (line);
  free (a);
  free (m);
  return b;
}

static const char vms[] = "vms:\n"
                          "  - name: vm1\n"
                          "    host: host1\n"
                          "    disks:\n"
                          "      - name: disk0\n"
                          "        image: a.img\n"
                          "        policy: p\n";

START_TEST (test_encryption_first_by_default)
{
  struct fixture f;
  char *body, *line;

  ck_assert_int_ne (asprintf (&body,
                              "policies:\n"
                              "  - name: p\n"
                              "    sioc: { sioc-latency: 30ms }\n"
                              "    caching: { cache-size: 64M }\n"
                              "    encryption: { crypt-key-file: pw }\n"
                              "    replication: { repl-target: "
                              "'nbd://127.0.0.1:10810' }\n"
                              "%s",
                              vms),
                    -1);
  load (&f, body);
  line = plan_line (&f, 0, 0);
  ck_assert_str_eq (
      line, "nbdkit -f --unix=@TMP@/state/vms/vm1/disk0.sock "
            "--pidfile=@TMP@/state/vms/vm1/disk0/nbdkit.pid --filter=pause "
            "--filter=@MAN@/nbdkit-test-crypt-filter.so "
            "--filter=/nonexistent/nbdkit-test-repl-filter.so "
            "--filter=@MAN@/nbdkit-test-cache-filter.so "
            "--filter=@MAN@/nbdkit-test-sioc-filter.so "
            "file file=@TMP@/a.img crypt-key-file=@TMP@/pw "
            "repl-target=nbd://127.0.0.1:10810 "
            "repl-state-dir=@TMP@/state/vms/vm1/disk0/replication "
            "cache-size=64M cache-state-dir=@TMP@/state/vms/vm1/disk0/caching "
            "sioc-latency=30ms "
            "pause-control=@TMP@/state/vms/vm1/disk0/pause.sock");
  free (line);
  free (body);
  unload (&f);
}
END_TEST

/* A hand run needs the directories `up` creates: the mkdir line names the
 * VM's and the disk's directory and one per filter in chain order, all
 * 0700.
 */
START_TEST (test_mkdir_line)
{
  struct fixture f;
  struct vaio_plan_disk p;
  struct vaio_diag diag = { 0 };
  char *raw, *line;

  load (&f, "policies:\n"
            "  - name: p\n"
            "    sioc: { sioc-latency: 30ms }\n"
            "    caching: { cache-size: 64M }\n"
            "vms:\n"
            "  - name: vm1\n"
            "    host: host1\n"
            "    disks:\n"
            "      - name: disk0\n"
            "        image: a.img\n"
            "        policy: p\n");
  ck_assert_int_eq (vaio_plan_disk (f.cfg, f.hf, &f.cfg->vms[0],
                                    &f.cfg->vms[0].disks[0], &p, &diag),
                    0);
  raw = vaio_plan_mkdir_line (&p);
  line = tu_replace (raw, f.dir, "@TMP@");
  ck_assert_str_eq (line, "mkdir -p -m 0700 @TMP@/state/vms/vm1 "
                          "@TMP@/state/vms/vm1/disk0 "
                          "@TMP@/state/vms/vm1/disk0/caching "
                          "@TMP@/state/vms/vm1/disk0/sioc");
  free (raw);
  free (line);
  vaio_plan_disk_free (&p);
  unload (&f);
}
END_TEST

START_TEST (test_encryption_last_with_cleartext_filters)
{
  struct fixture f;
  char *body, *line;

  ck_assert_int_ne (asprintf (&body,
                              "policies:\n"
                              "  - name: p\n"
                              "    allow-cleartext-filters: true\n"
                              "    encryption: { crypt-key-file: pw }\n"
                              "    caching: { cache-size: 1G }\n"
                              "%s",
                              vms),
                    -1);
  load (&f, body);
  line = plan_line (&f, 0, 0);
  ck_assert_ptr_nonnull (strstr (line, "--filter=pause "
                                       "--filter=@MAN@/nbdkit-test-cache-"
                                       "filter.so "
                                       "--filter=@MAN@/nbdkit-test-crypt-"
                                       "filter.so file "));
  free (line);
  free (body);
  unload (&f);
}
END_TEST

START_TEST (test_tcp_disk_and_uri)
{
  struct fixture f;
  struct vaio_plan_disk p;
  struct vaio_diag diag = { 0 };
  char *line, *uri;

  load (&f, "policies:\n"
            "  - name: p\n"
            "vms:\n"
            "  - name: vm1\n"
            "    host: host1\n"
            "    disks:\n"
            "      - name: disk0\n"
            "        image: a.img\n"
            "        policy: p\n"
            "        port: 10900\n");
  line = plan_line (&f, 0, 0);
  ck_assert_ptr_nonnull (
      strstr (line, "nbdkit -f --ipaddr=127.0.0.1 --port=10900 --pidfile="));
  ck_assert_ptr_nonnull (strstr (line, "--filter=pause file file=@TMP@/a.img"));
  ck_assert_int_eq (vaio_plan_disk (f.cfg, f.hf, &f.cfg->vms[0],
                                    &f.cfg->vms[0].disks[0], &p, &diag),
                    0);
  uri = vaio_plan_uri (&p);
  ck_assert_str_eq (uri, "nbd://127.0.0.1:10900");
  free (uri);
  vaio_plan_disk_free (&p);
  free (line);
  unload (&f);
}
END_TEST

START_TEST (test_shell_quoting)
{
  struct fixture f;
  char *line;

  load (&f, "policies:\n"
            "  - name: p\n"
            "    encryption: { crypt-key-file: pw, crypt-label: \"it's a "
            "disk; rm -rf /\" }\n"
            "vms:\n"
            "  - name: vm1\n"
            "    host: host1\n"
            "    disks:\n"
            "      - name: disk0\n"
            "        image: a.img\n"
            "        policy: p\n");
  line = plan_line (&f, 0, 0);
  /* One shell word, the quote escaped: pasting it runs nothing else. */
  ck_assert_ptr_nonnull (
      strstr (line, " 'crypt-label=it'\\''s a disk; rm -rf /' "));
  free (line);
  unload (&f);
}
END_TEST

/* nbdkit's luks filter, through its shipped manifest, gets the passphrase
 * as +FILE with FILE absolute, however the policy spells the path; the
 * passphrase itself is nowhere on the command line.
 */
START_TEST (luks_passphrase_as_plus_file)
{
  struct vaio_diag diag = { 0 };
  struct vaio_config *cfg;
  struct vaio_host_filters *hf;
  struct vaio_plan_disk p;
  char *dir = tu_mkdtemp (), *man = cu_shipped_manifest (dir, "nbdkit-luks");
  char *yaml, *file, *line[2];

  free (tu_write_file (dir, "a.img", "", 0600));
  free (tu_write_file (dir, "b.img", "", 0600));
  free (tu_write_file (dir, "pw", "hunter2", 0600));
  ck_assert_int_ne (asprintf (&yaml,
                              "cluster: lab\n"
                              "hosts:\n"
                              "  - name: host1\n"
                              "    state-dir: state\n"
                              "    filters: [%s]\n"
                              "policies:\n"
                              "  - name: p\n"
                              "    encryption: { passphrase: pw }\n"
                              "  - name: q\n"
                              "    encryption: { passphrase: +./pw }\n"
                              "vms:\n"
                              "  - name: vm1\n"
                              "    host: host1\n"
                              "    disks:\n"
                              "      - { name: d0, image: a.img, policy: p }\n"
                              "      - { name: d1, image: b.img, policy: q }\n",
                              man),
                    -1);
  file = tu_write_file (dir, "c.yaml", yaml, 0600);
  cfg = vaio_config_load (file, &diag);
  ck_assert_msg (cfg != NULL, "parse: %s", diag.n ? diag.msgs[0] : "?");
  hf = cu_host_filters (cfg);
  ck_assert_msg (vaio_validate (cfg, hf, &diag) == 0, "validate: %s",
                 diag.n ? diag.msgs[0] : "?");
  for (size_t i = 0; i < 2; i++)
    {
      char *raw;

      ck_assert_int_eq (vaio_plan_disk (cfg, hf, &cfg->vms[0],
                                        &cfg->vms[0].disks[i], &p, &diag),
                        0);
      raw = vaio_plan_shell_line (&p);
      line[i] = tu_replace (raw, dir, "@TMP@");
      free (raw);
      vaio_plan_disk_free (&p);
    }
  ck_assert_ptr_nonnull (strstr (line[0], " file file=@TMP@/a.img "
                                          "passphrase=+@TMP@/pw "
                                          "pause-control="));
  ck_assert_ptr_nonnull (strstr (line[1], " file file=@TMP@/b.img "
                                          "passphrase=+@TMP@/pw "
                                          "pause-control="));
  for (size_t i = 0; i < 2; i++)
    {
      ck_assert_ptr_null (strstr (line[i], "hunter2"));
      free (line[i]);
    }
  cu_host_filters_free (hf, cfg->n_hosts);
  vaio_config_free (cfg);
  vaio_diag_free (&diag);
  free (yaml);
  free (file);
  free (man);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

/* vaio-sioc: `sioc-datastore: NAME` names a datastore in the host's
 * state dir; a value with a '/' is still a path relative to the config.
 */
static char *
sioc_plan (const char *datastore)
{
  struct fixture f;
  char *body, *line;

  ck_assert_int_ne (asprintf (&body,
                              "policies:\n"
                              "  - name: p\n"
                              "    sioc: { sioc-datastore: %s }\n"
                              "%s",
                              datastore, vms),
                    -1);
  load (&f, body);
  line = plan_line (&f, 0, 0);
  free (body);
  unload (&f);
  return line;
}

START_TEST (test_sioc_datastore_name)
{
  char *line = sioc_plan ("ds1");

  ck_assert_ptr_nonnull (
      strstr (line, " sioc-datastore=@TMP@/state/datastores/ds1.seg "));
  free (line);
  line = sioc_plan ("shared/ds1.seg");
  ck_assert_ptr_nonnull (
      strstr (line, " sioc-datastore=@TMP@/shared/ds1.seg "));
  free (line);
}
END_TEST

static Suite *
plan_suite (void)
{
  Suite *s = suite_create ("plan");
  TCase *tc = tcase_create ("plan");

  tcase_add_test (tc, test_encryption_first_by_default);
  tcase_add_test (tc, test_encryption_last_with_cleartext_filters);
  tcase_add_test (tc, test_mkdir_line);
  tcase_add_test (tc, test_tcp_disk_and_uri);
  tcase_add_test (tc, test_shell_quoting);
  tcase_add_test (tc, luks_passphrase_as_plus_file);
  tcase_add_test (tc, test_sioc_datastore_name);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (plan_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

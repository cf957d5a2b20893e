/* vaio-nbd unit test: the host filter inventory (chain/inventory.c)
 * through the real loader, vaio_host_filters_load: the manifests a
 * host's `filters:` list names, each checked against its .so's sha256,
 * and VAIO's one filter per class per host.  Errors about the list
 * point at the config's entry (file:line:column), not at the manifest.
 *
 * The ".so" files are a few bytes of text: the loader hashes them, it
 * never loads them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chainutil.h"
#include "testutil.h"

/* dir/NAME.so holding NAME, and dir/NAME.yaml describing it. */
static void
package (const char *dir, const char *name, const char *class_)
{
  char *so, *yaml, sha[65], file[64];

  snprintf (file, sizeof file, "%s.so", name);
  so = tu_write_file (dir, file, name, 0600);
  ck_assert_int_eq (vaio_sha256_file (so, sha), 0);
  ck_assert_int_ne (asprintf (&yaml,
                              "name: %s\n"
                              "class: %s\n"
                              "vendor: acme\n"
                              "version: 1.0\n"
                              "path: %s.so\n"
                              "sha256: %s\n",
                              name, class_, name, sha),
                    -1);
  snprintf (file, sizeof file, "%s.yaml", name);
  free (tu_write_file (dir, file, yaml, 0600));
  free (so);
  free (yaml);
}

/* Load the config body (hosts only) from dir and its host filters with
 * the real loader; returns the loader's result and, in *text, every
 * message with dir as @TMP@.
 */
static int
load (const char *dir, const char *hosts, struct vaio_config **cfg,
      struct vaio_host_filters **hf, char **text)
{
  struct vaio_diag diag = { 0 };
  char *yaml, *file;
  int r;

  ck_assert_int_ne (asprintf (&yaml, "cluster: lab\nhosts:\n%s", hosts), -1);
  file = tu_write_file (dir, "c.yaml", yaml, 0600);
  *cfg = vaio_config_load (file, &diag);
  ck_assert_msg (*cfg != NULL, "parse: %s", diag.n ? diag.msgs[0] : "?");
  *hf = calloc ((*cfg)->n_hosts + 1, sizeof **hf);
  ck_assert_ptr_nonnull (*hf);
  r = vaio_host_filters_load (*cfg, *hf, &diag);
  *text = cu_diag_text (&diag, dir, "@TMP@");
  vaio_diag_free (&diag);
  free (yaml);
  free (file);
  return r;
}

static void
unload (struct vaio_config *cfg, struct vaio_host_filters *hf)
{
  vaio_host_filters_free (hf, cfg->n_hosts);
  free (hf);
  vaio_config_free (cfg);
}

/* A host may list one filter per class; listing the same package twice
 * is not a second filter.
 */
START_TEST (one_filter_per_class_loads)
{
  char *dir = tu_mkdtemp (), *text;
  struct vaio_config *cfg;
  struct vaio_host_filters *hf;

  package (dir, "cache-a", "caching");
  package (dir, "rate-a", "sioc");
  ck_assert_int_eq (load (dir,
                          "  - name: host1\n"
                          "    state-dir: state\n"
                          "    filters:\n"
                          "      - cache-a.yaml\n"
                          "      - rate-a.yaml\n"
                          "      - ./cache-a.yaml\n",
                          &cfg, &hf, &text),
                    0);
  ck_assert_str_eq (text, "");
  ck_assert_str_eq (hf[0].by_class[VAIO_CLASS_CACHING]->name, "cache-a");
  ck_assert_str_eq (hf[0].by_class[VAIO_CLASS_SIOC]->name, "rate-a");
  ck_assert_ptr_null (hf[0].by_class[VAIO_CLASS_REPLICATION]);
  ck_assert_ptr_null (hf[0].by_class[VAIO_CLASS_ENCRYPTION]);
  free (text);
  unload (cfg, hf);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

/* A second filter of a class is refused naming both, at the config's
 * entry that lists it; a missing manifest is reported at its entry with
 * the key.  The other host is unaffected.
 */
START_TEST (second_filter_of_class_and_missing_manifest)
{
  char *dir = tu_mkdtemp (), *text;
  struct vaio_config *cfg;
  struct vaio_host_filters *hf;

  package (dir, "cache-a", "caching");
  package (dir, "cache-b", "caching");
  package (dir, "rate-a", "sioc");
  ck_assert_int_eq (load (dir,
                          "  - name: host1\n"
                          "    state-dir: state/host1\n"
                          "    filters:\n"
                          "      - cache-a.yaml\n"
                          "      - rate-a.yaml\n"
                          "      - cache-b.yaml\n"
                          "  - name: host2\n"
                          "    state-dir: state/host2\n"
                          "    filters: [cache-b.yaml, nowhere/x.yaml]\n",
                          &cfg, &hf, &text),
                    -1);
  ck_assert_str_eq (
      text, "@TMP@/c.yaml:8:9: host 'host1': cannot install filter 'cache-b' "
            "(class caching): filter 'cache-a' 1.0 (@TMP@/cache-a.yaml) of "
            "class caching is already installed; one filter per class per "
            "host\n"
            "@TMP@/c.yaml:11:29: filter manifest '@TMP@/nowhere/x.yaml' for "
            "'filters' in host 'host2': No such file or directory");
  ck_assert_str_eq (hf[0].by_class[VAIO_CLASS_CACHING]->name, "cache-a");
  ck_assert_str_eq (hf[1].by_class[VAIO_CLASS_CACHING]->name, "cache-b");
  free (text);
  unload (cfg, hf);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

/* A listed manifest whose .so fails its sha256 is reported at the
 * config's entry that lists it, naming the manifest and both digests.
 */
START_TEST (integrity_failure_at_config_entry)
{
  char *dir = tu_mkdtemp (), *text, sha[65], orig[65], *so, *expect;
  struct vaio_config *cfg;
  struct vaio_host_filters *hf;

  package (dir, "cache-a", "caching");
  so = tu_write_file (dir, "cache-a.so", "cache-a", 0600);
  ck_assert_int_eq (vaio_sha256_file (so, orig), 0);
  free (so);
  so = tu_write_file (dir, "cache-a.so", "altered", 0600);
  ck_assert_int_eq (vaio_sha256_file (so, sha), 0);
  ck_assert_int_eq (load (dir,
                          "  - name: host1\n"
                          "    state-dir: state\n"
                          "    filters: [cache-a.yaml]\n",
                          &cfg, &hf, &text),
                    -1);
  ck_assert_int_ne (
      asprintf (&expect,
                "@TMP@/c.yaml:5:15: filter manifest @TMP@/cache-a.yaml: "
                "integrity check failed for @TMP@/cache-a.so: sha256 is %s, "
                "manifest says %s",
                sha, orig),
      -1);
  ck_assert_str_eq (text, expect);
  free (so);
  free (expect);
  free (text);
  unload (cfg, hf);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("inventory");
  TCase *tc = tcase_create ("inventory");
  SRunner *sr;
  int failed;

  tcase_add_test (tc, one_filter_per_class_loads);
  tcase_add_test (tc, second_filter_of_class_and_missing_manifest);
  tcase_add_test (tc, integrity_failure_at_config_entry);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* vaio-nbd unit test: filter manifests and their integrity check
 * (chain/manifest.c).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chainutil.h"
#include "testutil.h"

/* sha256 known answers (FIPS 180-2 examples). */
#define SHA_EMPTY                                                              \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC                                                                \
  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_MILLION_A                                                          \
  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

START_TEST (good_manifest_values)
{
  char *file = tu_fixture ("manifests/cache.yaml");
  char *dir = tu_fixture ("manifests"), real[4096], *want;
  struct vaio_diag diag = { 0 };
  struct vaio_manifest *m = vaio_manifest_load (file, &diag);
  const struct vaio_param_spec *ps;

  ck_assert_msg (m != NULL, "%s", diag.n ? diag.msgs[0] : "?");
  ck_assert_ptr_nonnull (realpath (dir, real));
  ck_assert_str_eq (m->file, file);
  ck_assert_str_eq (m->name, "test-cache");
  ck_assert_int_eq (m->class_, VAIO_CLASS_CACHING);
  ck_assert_str_eq (m->vendor, "vaio-nbd");
  ck_assert_str_eq (m->version, "0.1.0");
  ck_assert_int_ne (asprintf (&want, "%s/nbdkit-test-cache-filter.so", real),
                    -1);
  ck_assert_str_eq (m->path, want); /* relative: against the manifest */
  free (want);
  ck_assert_str_eq (m->sha256, "0000000000000000000000000000000000000000"
                               "000000000000000000000000");
  ck_assert_str_eq (m->state_param, "cache-state-dir");
  ck_assert_uint_eq (m->n_params, 4);
  ck_assert_uint_eq (m->loc.line, 2);

  ps = vaio_manifest_param (m, "cache-size");
  ck_assert_ptr_eq (ps, &m->params[1]);
  ck_assert_int_eq (ps->type, VAIO_PARAM_SIZE);
  ck_assert (ps->required);
  ck_assert_str_eq (ps->description, "bytes of cache");
  ps = vaio_manifest_param (m, "cache-mode");
  ck_assert_int_eq (ps->type, VAIO_PARAM_ENUM);
  ck_assert (!ps->required);
  ck_assert_uint_eq (ps->n_values, 2);
  ck_assert_str_eq (ps->values[0], "writeback");
  ck_assert_str_eq (ps->values[1], "writethrough");
  ps = vaio_manifest_param (m, "cache-flush-interval");
  ck_assert_int_eq (ps->type, VAIO_PARAM_DURATION);
  ck_assert (!ps->required); /* default */
  ck_assert (ps->live);
  ck_assert (!vaio_manifest_param (m, "cache-size")->live); /* default */
  ck_assert_ptr_null (vaio_manifest_param (m, "cache-bogus"));
  vaio_manifest_free (m);
  free (file);
  free (dir);
}
END_TEST

/* An absolute path is kept; an upper-case digest is stored lower-case. */
START_TEST (absolute_path_and_digest_case)
{
  char *file = tu_fixture ("manifests/repl.yaml");
  struct vaio_diag diag = { 0 };
  struct vaio_manifest *m = vaio_manifest_load (file, &diag);

  ck_assert_msg (m != NULL, "%s", diag.n ? diag.msgs[0] : "?");
  ck_assert_int_eq (m->class_, VAIO_CLASS_REPLICATION);
  ck_assert_str_eq (m->path, "/nonexistent/nbdkit-test-repl-filter.so");
  ck_assert_str_eq (m->sha256, "abcdef0123456789abcdef0123456789"
                               "abcdef0123456789abcdef0123456789");
  ck_assert_int_eq (vaio_manifest_param (m, "repl-target")->type,
                    VAIO_PARAM_URI);
  vaio_manifest_free (m);
  free (file);
}
END_TEST

#define GOOD_HEAD "name: f\nclass: caching\nvendor: v\nversion: 1\npath: f.so\n"
#define ZEROS     "0000000000000000000000000000000000000000000000000000000000000000"

/* A path or secret parameter may carry the prefix nbdkit wants in front
 * of the file's path (luks: passphrase=+FILE); others have none.
 */
START_TEST (parameter_prefix)
{
  char *dir = tu_mkdtemp ();
  char *file = tu_write_file (dir, "m.yaml",
                              GOOD_HEAD "sha256: " ZEROS "\n"
                                        "parameters:\n"
                                        "  - name: passphrase\n"
                                        "    type: secret\n"
                                        "    prefix: '+'\n"
                                        "  - name: log\n"
                                        "    type: path\n"
                                        "    prefix: log=\n"
                                        "  - name: key\n"
                                        "    type: secret\n",
                              0600);
  struct vaio_diag diag = { 0 };
  struct vaio_manifest *m = vaio_manifest_load (file, &diag);

  ck_assert_msg (m != NULL, "%s", diag.n ? diag.msgs[0] : "?");
  ck_assert_str_eq (vaio_manifest_param (m, "passphrase")->prefix, "+");
  ck_assert_str_eq (vaio_manifest_param (m, "log")->prefix, "log=");
  ck_assert_ptr_null (vaio_manifest_param (m, "key")->prefix);
  vaio_manifest_free (m);
  free (file);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

static const struct
{
  const char *yaml, *expect;
} bad_manifests[] = {
  { GOOD_HEAD "sha256: " ZEROS "\nauthor: me\n",
    "@TMP@/m.yaml:7:1: unknown key 'author' in manifest (expected one of: "
    "name, class, vendor, version, path, sha256, state-param, parameters)" },
  { GOOD_HEAD, "@TMP@/m.yaml:1:1: missing required key 'sha256' in "
               "manifest" },
  { "name: f\nclass: compression\nvendor: v\nversion: 1\npath: f.so\n"
    "sha256: " ZEROS "\n",
    "@TMP@/m.yaml:2:8: unknown class 'compression' for 'class' in manifest "
    "(expected one of: replication, caching, sioc, encryption)" },
  { GOOD_HEAD "sha256: abc123\n",
    "@TMP@/m.yaml:6:9: bad sha256 'abc123' in manifest: must be 64 hex "
    "digits" },
  { GOOD_HEAD "sha256: "
              "zz00000000000000000000000000000000000000000000000000000000000000"
              "\n",
    "@TMP@/m.yaml:6:9: bad sha256 "
    "'zz00000000000000000000000000000000000000000000000000000000000000' in "
    "manifest: must be 64 hex digits" },
  { GOOD_HEAD "sha256: " ZEROS "\nparameters:\n  - name: x\n    type: float\n",
    "@TMP@/m.yaml:9:11: unknown type 'float' for 'type' in parameter 'x' "
    "(expected one of: string, size, duration, bool, int, enum, path, "
    "secret, uri)" },
  { GOOD_HEAD "sha256: " ZEROS
              "\nparameters:\n  - name: mode\n    type: enum\n",
    "@TMP@/m.yaml:8:5: missing required key 'values' in parameter 'mode' "
    "(type enum)" },
  { GOOD_HEAD "sha256: " ZEROS
              "\nparameters:\n  - name: n\n    type: int\n    values: [1]\n",
    "@TMP@/m.yaml:10:13: 'values' in parameter 'n' is only allowed with type "
    "enum" },
  { GOOD_HEAD "sha256: " ZEROS
              "\nparameters:\n  - name: mode\n    type: enum\n    values: []\n",
    "@TMP@/m.yaml:10:13: 'values' in parameter 'mode' must not be empty" },
  { GOOD_HEAD "sha256: " ZEROS "\nparameters:\n  - name: a\n    type: int\n"
              "  - name: a\n    type: size\n",
    "@TMP@/m.yaml:10:5: duplicate parameter name 'a'" },
  { GOOD_HEAD "sha256: " ZEROS "\nparameters:\n  name: a\n",
    "@TMP@/m.yaml:8:3: 'parameters' in manifest must be a sequence, not a "
    "mapping" },
  { GOOD_HEAD "sha256: " ZEROS
              "\nparameters:\n  - name: a\n    type: int\n    initial: 3\n",
    "@TMP@/m.yaml:10:5: unknown key 'initial' in parameter 'a' (expected "
    "one of: name, type, required, values, description, live, default, "
    "prefix)" },
  { GOOD_HEAD "sha256: " ZEROS
              "\nparameters:\n  - name: n\n    type: string\n    prefix: "
              "'+'\n",
    "@TMP@/m.yaml:10:13: 'prefix' in parameter 'n' is only allowed with type "
    "path or secret" },
  { GOOD_HEAD "sha256: " ZEROS
              "\nparameters:\n  - name: pw\n    type: secret\n    prefix: "
              "''\n",
    "@TMP@/m.yaml:10:13: 'prefix' in parameter 'pw' must not be empty" },
  { GOOD_HEAD "sha256: " ZEROS
              "\nparameters:\n  - name: a\n    type: int\n    live: maybe\n",
    "@TMP@/m.yaml:10:11: bad boolean 'maybe' for 'live' in parameter 'a' "
    "(expected true/false, yes/no, on/off or 1/0)" },
  { GOOD_HEAD "sha256: " ZEROS
              "\nparameters:\n  - name: a\n    type: int\n    required: "
              "sometimes\n",
    "@TMP@/m.yaml:10:15: bad boolean 'sometimes' for 'required' in "
    "parameter 'a' (expected true/false, yes/no, on/off or 1/0)" },
  { "name: My_Filter\nclass: caching\nvendor: v\nversion: 1\npath: f.so\n"
    "sha256: " ZEROS "\n",
    "@TMP@/m.yaml:1:7: bad filter name 'My_Filter': names must match "
    "[a-z0-9][a-z0-9_.-]*" },
  { GOOD_HEAD "sha256: " ZEROS "\nstate-param: ../x\n",
    "@TMP@/m.yaml:7:14: bad name '../x' for 'state-param' in manifest: "
    "names must match [a-z0-9][a-z0-9_.-]*" },
  { GOOD_HEAD "sha256: " ZEROS "\nname: g\n",
    "@TMP@/m.yaml:7:1: duplicate key 'name' in manifest (first at line 1)" },
  { "name: f\nclass: [caching\n",
    "@TMP@/m.yaml:3:1: YAML syntax error: did not find expected ',' or ']' "
    "(while parsing a flow sequence at line 2, column 8)" },
  { "", "@TMP@/m.yaml: empty file" },
  { GOOD_HEAD "sha256: " ZEROS "\nparameters: [size]\n",
    "@TMP@/m.yaml:7:14: each entry of 'parameters' in manifest must be a "
    "mapping (a parameter), not a scalar" },
  { "- name: f\n", "@TMP@/m.yaml:1:1: manifest must be a mapping, not a "
                   "sequence" },
};

START_TEST (bad_manifest)
{
  char *dir = tu_mkdtemp ();
  char *file = tu_write_file (dir, "m.yaml", bad_manifests[_i].yaml, 0600);
  struct vaio_diag diag = { 0 };
  char *text;

  ck_assert_ptr_null (vaio_manifest_load (file, &diag));
  text = cu_diag_text (&diag, dir, "@TMP@");
  ck_assert_str_eq (text, bad_manifests[_i].expect);
  free (text);
  vaio_diag_free (&diag);
  free (file);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

START_TEST (sha256_known_answers)
{
  char *dir = tu_mkdtemp (), *big, *path, out[65];

  path = tu_write_file (dir, "empty", "", 0600);
  ck_assert_int_eq (vaio_sha256_file (path, out), 0);
  ck_assert_str_eq (out, SHA_EMPTY);
  free (path);
  path = tu_write_file (dir, "abc", "abc", 0600);
  ck_assert_int_eq (vaio_sha256_file (path, out), 0);
  ck_assert_str_eq (out, SHA_ABC);
  free (path);
  /* Larger than the read buffer: the digest must be streamed. */
  big = malloc (1000001);
  ck_assert_ptr_nonnull (big);
  memset (big, 'a', 1000000);
  big[1000000] = '\0';
  path = tu_write_file (dir, "million", big, 0600);
  ck_assert_int_eq (vaio_sha256_file (path, out), 0);
  ck_assert_str_eq (out, SHA_MILLION_A);
  free (path);
  free (big);
  errno = 0;
  ck_assert_int_eq (vaio_sha256_file ("/nonexistent/vaio-file", out), -1);
  ck_assert_int_eq (errno, ENOENT);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

static int
unlink_so (const char *dir)
{
  char *path;
  int r;

  ck_assert_int_ne (asprintf (&path, "%s/f.so", dir), -1);
  r = unlink (path);
  free (path);
  return r;
}

/* A manifest for dir/f.so with the given digest. */
static struct vaio_manifest *
manifest_for (const char *dir, const char *sha)
{
  struct vaio_diag diag = { 0 };
  struct vaio_manifest *m;
  char *yaml, *file;

  ck_assert_int_ne (asprintf (&yaml, GOOD_HEAD "sha256: %s\n", sha), -1);
  file = tu_write_file (dir, "m.yaml", yaml, 0600);
  m = vaio_manifest_load (file, &diag);
  ck_assert_msg (m != NULL, "%s", diag.n ? diag.msgs[0] : "?");
  free (yaml);
  free (file);
  return m;
}

START_TEST (verify_ok_and_mismatch)
{
  char *dir = tu_mkdtemp (), *text;
  struct vaio_diag diag = { 0 };
  struct vaio_manifest *m;

  free (tu_write_file (dir, "f.so", "abc", 0600));
  m = manifest_for (dir, SHA_ABC);
  ck_assert_int_eq (vaio_manifest_verify (m, &diag), 0);
  ck_assert_uint_eq (diag.n, 0);
  vaio_manifest_free (m);

  /* One byte changed in the .so: caught, both digests named. */
  free (tu_write_file (dir, "f.so", "abd", 0600));
  m = manifest_for (dir, SHA_ABC);
  ck_assert_int_eq (vaio_manifest_verify (m, &diag), -1);
  text = cu_diag_text (&diag, dir, "@TMP@");
  ck_assert_str_eq (text, "@TMP@/m.yaml: integrity check failed for "
                          "@TMP@/f.so: sha256 is "
                          "a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b6"
                          "5cbe86298449c9, manifest says " SHA_ABC);
  free (text);
  vaio_diag_free (&diag);
  vaio_manifest_free (m);

  /* The .so is gone. */
  ck_assert_int_eq (unlink_so (dir), 0);
  m = manifest_for (dir, SHA_ABC);
  ck_assert_int_eq (vaio_manifest_verify (m, &diag), -1);
  text = cu_diag_text (&diag, dir, "@TMP@");
  ck_assert_str_eq (text, "@TMP@/m.yaml: cannot check the integrity of "
                          "@TMP@/f.so: No such file or directory");
  free (text);
  vaio_diag_free (&diag);
  vaio_manifest_free (m);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("manifest");
  TCase *tc = tcase_create ("manifest");
  SRunner *sr;
  int failed;

  tcase_add_test (tc, good_manifest_values);
  tcase_add_test (tc, absolute_path_and_digest_case);
  tcase_add_test (tc, parameter_prefix);
  tcase_add_loop_test (tc, bad_manifest, 0,
                       (int)(sizeof bad_manifests / sizeof bad_manifests[0]));
  tcase_add_test (tc, sha256_known_answers);
  tcase_add_test (tc, verify_ok_and_mismatch);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

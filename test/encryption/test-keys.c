/* vaio-crypt unit tests: key sources (files, fds), the KEK key store
 * (owner-only files with magic, version and checksum) and the choice of
 * exactly one key source.  Messages must name files, never keys.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "keysource.h"

static char dir[] = "/tmp/vaio-crypt-keys-XXXXXX";
static char err[512];

static void
setup (void)
{
  strcpy (dir, "/tmp/vaio-crypt-keys-XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (dir));
}

static void
teardown (void)
{
  char cmd[128];

  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq (system (cmd), 0);
}

static void
write_file (const char *name, const void *data, size_t len, mode_t mode,
            char *path_out)
{
  int fd;

  sprintf (path_out, "%s/%s", dir, name);
  fd = open (path_out, O_WRONLY | O_CREAT | O_TRUNC, mode);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (write (fd, data, len), (ssize_t)len);
  close (fd);
  chmod (path_out, mode);
}

START_TEST (passphrase_and_key_files)
{
  char path[256];
  struct secret s;

  write_file ("pw", "hunter2\n", 8, 0600, path);
  ck_assert_int_eq (secret_read_file (path, true, &s, "x", err, sizeof err), 0);
  ck_assert_uint_eq (s.len, 7);
  ck_assert_mem_eq (s.data, "hunter2", 7);
  secret_free (&s);
  ck_assert_ptr_null (s.data);
  /* A key file keeps every byte, the newline and NULs included. */
  write_file ("key", "k\0y\n", 4, 0600, path);
  ck_assert_int_eq (secret_read_file (path, false, &s, "x", err, sizeof err),
                    0);
  ck_assert_uint_eq (s.len, 4);
  ck_assert_mem_eq (s.data, "k\0y\n", 4);
  secret_free (&s);
  /* Empty (after the newline) is an error naming the parameter. */
  write_file ("empty", "\n", 1, 0600, path);
  ck_assert_int_eq (secret_read_file (path, true, &s, "crypt-passphrase-file",
                                      err, sizeof err),
                    -1);
  ck_assert_ptr_nonnull (strstr (err, "crypt-passphrase-file"));
  ck_assert_ptr_nonnull (strstr (err, "empty"));
  sprintf (path, "%s/missing", dir);
  ck_assert_int_eq (
      secret_read_file (path, true, &s, "crypt-key-file", err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "crypt-key-file"));
  ck_assert_ptr_nonnull (strstr (err, "missing"));
}
END_TEST

START_TEST (secret_from_fd_large)
{
  int p[2];
  size_t n = 10000;
  uint8_t *big = malloc (n);
  struct secret s;

  memset (big, 'z', n);
  ck_assert_int_eq (pipe (p), 0);
  ck_assert_int_eq (write (p[1], big, n), (ssize_t)n);
  close (p[1]);
  ck_assert_int_eq (secret_read_fd (p[0], false, &s, "x", err, sizeof err), 0);
  close (p[0]);
  ck_assert_uint_eq (s.len, n);
  ck_assert_mem_eq (s.data, big, n);
  secret_free (&s);
  free (big);
}
END_TEST

static void
kek_file_path (const char *ks, const char *id, char *out)
{
  sprintf (out, "%s/%s.kek", ks, id);
}

START_TEST (keystore_create_load)
{
  char ks[256], path[300];
  uint8_t a[KEK_BYTES], b[KEK_BYTES];
  struct stat st;

  sprintf (ks, "%s/kms", dir);
  ck_assert_int_eq (keystore_create (ks, "kek-1", err, sizeof err), 0);
  ck_assert_int_eq (stat (ks, &st), 0);
  ck_assert_uint_eq (st.st_mode & 0777, 0700);
  kek_file_path (ks, "kek-1", path);
  ck_assert_int_eq (stat (path, &st), 0);
  ck_assert_uint_eq (st.st_mode & 0777, 0600);
  ck_assert_int_eq (st.st_size, KEK_FILE_SIZE);
  ck_assert_int_eq (keystore_load (ks, "kek-1", a, err, sizeof err), 0);
  /* A second key differs; the first is never overwritten. */
  ck_assert_int_eq (keystore_create (ks, "kek-2", err, sizeof err), 0);
  ck_assert_int_eq (keystore_load (ks, "kek-2", b, err, sizeof err), 0);
  ck_assert_int_ne (memcmp (a, b, KEK_BYTES), 0);
  ck_assert_int_eq (keystore_create (ks, "kek-1", err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "already exists"));
  ck_assert_int_eq (keystore_load (ks, "kek-1", b, err, sizeof err), 0);
  ck_assert_mem_eq (a, b, KEK_BYTES);
  ck_assert_int_eq (keystore_load (ks, "nope", b, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "no key with this id"));
  ck_assert_int_eq (keystore_create (ks, "../escape", err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "invalid"));
  ck_assert (!keystore_valid_id (".hidden"));
  ck_assert (!keystore_valid_id (""));
  ck_assert (keystore_valid_id ("kek_2026.01-a"));
}
END_TEST

START_TEST (keystore_corrupt_and_open_mode)
{
  uint8_t kek[KEK_BYTES], file[KEK_FILE_SIZE];
  char ks[256], path[300];

  memset (kek, 0x42, sizeof kek);
  kek_encode (kek, file);
  sprintf (ks, "%s", dir);
  /* A good file loads. */
  write_file ("good.kek", file, sizeof file, 0600, path);
  ck_assert_int_eq (keystore_load (ks, "good", kek, err, sizeof err), 0);
  /* A flipped key bit: checksum mismatch, named. */
  file[20] ^= 1;
  write_file ("flip.kek", file, sizeof file, 0600, path);
  ck_assert_int_eq (keystore_load (ks, "flip", kek, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "checksum mismatch"));
  ck_assert_ptr_nonnull (strstr (err, "flip.kek"));
  file[20] ^= 1;
  /* Bad magic, future version, truncated. */
  file[0] = 'X';
  write_file ("magic.kek", file, sizeof file, 0600, path);
  ck_assert_int_eq (keystore_load (ks, "magic", kek, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "not a vaio-crypt key file"));
  file[0] = 'V';
  file[8] = 9;
  write_file ("ver.kek", file, sizeof file, 0600, path);
  ck_assert_int_eq (keystore_load (ks, "ver", kek, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "version 9"));
  file[8] = 1;
  write_file ("short.kek", file, sizeof file - 1, 0600, path);
  ck_assert_int_eq (keystore_load (ks, "short", kek, err, sizeof err), -1);
  /* Readable by others: refused. */
  write_file ("open.kek", file, sizeof file, 0644, path);
  ck_assert_int_eq (keystore_load (ks, "open", kek, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "chmod 600"));
}
END_TEST

/* A key store directory others can write is refused for loading and for
 * creating a key (someone could have planted or swapped a key file).
 */
START_TEST (keystore_dir_writable_by_others)
{
  uint8_t kek[KEK_BYTES];
  char ks[300];

  snprintf (ks, sizeof ks, "%s/open-store", dir);
  ck_assert_int_eq (keystore_create (ks, "k", err, sizeof err), 0);
  ck_assert_int_eq (keystore_load (ks, "k", kek, err, sizeof err), 0);
  ck_assert_int_eq (chmod (ks, 0777), 0);
  ck_assert_int_eq (keystore_load (ks, "k", kek, err, sizeof err), -1);
  ck_assert_msg (strstr (err, "writable by group or others")
                     && strstr (err, "open-store"),
                 "unclear error: %s", err);
  ck_assert_int_eq (keystore_create (ks, "k2", err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "chmod 700"));
  ck_assert_int_eq (chmod (ks, 0755), 0);
  ck_assert_int_eq (keystore_load (ks, "k", kek, err, sizeof err), 0);
}
END_TEST

START_TEST (slot_secret_binds_kek_and_uuid)
{
  uint8_t k1[KEK_BYTES], k2[KEK_BYTES];
  struct secret a, b, c, d;

  memset (k1, 1, sizeof k1);
  memset (k2, 2, sizeof k2);
  ck_assert_int_eq (keystore_slot_secret (k1, "uuid-a", &a, err, sizeof err),
                    0);
  ck_assert_int_eq (keystore_slot_secret (k1, "uuid-a", &b, err, sizeof err),
                    0);
  ck_assert_int_eq (keystore_slot_secret (k1, "uuid-b", &c, err, sizeof err),
                    0);
  ck_assert_int_eq (keystore_slot_secret (k2, "uuid-a", &d, err, sizeof err),
                    0);
  ck_assert_uint_eq (a.len, 32);
  ck_assert_mem_eq (a.data, b.data, 32);
  ck_assert_int_ne (memcmp (a.data, c.data, 32), 0);
  ck_assert_int_ne (memcmp (a.data, d.data, 32), 0);
  secret_free (&a);
  secret_free (&b);
  secret_free (&c);
  secret_free (&d);
}
END_TEST

START_TEST (key_source_exactly_one)
{
  struct crypt_key_source ks = { .prefix = "crypt-" };
  struct crypt_key_source none = { .prefix = "crypt-" };
  struct crypt_key_source idonly = { .prefix = "crypt-" };
  char path[256];
  struct secret s;

  write_file ("pw", "pw\n", 3, 0600, path);
  ck_assert_int_eq (crypt_key_source_config (&ks, "file", "x", err, sizeof err),
                    0);
  ck_assert_int_eq (crypt_key_source_config (&ks, "crypt-passphrase-file", path,
                                             err, sizeof err),
                    1);
  ck_assert_int_eq (
      crypt_key_source_config (&ks, "crypt-key-file", path, err, sizeof err),
      -1);
  ck_assert_ptr_nonnull (strstr (err, "crypt-passphrase-file and "
                                      "crypt-key-file"));
  ck_assert_int_eq (
      crypt_key_source_config (&ks, "crypt-unknown", "v", err, sizeof err), 0);
  ck_assert_int_eq (crypt_key_source_complete (&ks, err, sizeof err), 0);
  ck_assert_int_eq (crypt_key_source_secret (&ks, "u", &s, err, sizeof err), 0);
  ck_assert_uint_eq (s.len, 2);
  secret_free (&s);
  ck_assert_ptr_nonnull (strstr (crypt_key_source_name (&ks), path));
  crypt_key_source_free (&ks);

  ck_assert_int_eq (crypt_key_source_complete (&none, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "crypt-passphrase-file"));
  ck_assert_int_eq (
      crypt_key_source_config (&idonly, "crypt-key-id", "k", err, sizeof err),
      1);
  ck_assert_int_eq (crypt_key_source_complete (&idonly, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "crypt-keystore"));
  ck_assert_int_eq (crypt_key_source_config (&idonly, "crypt-passphrase-fd",
                                             "x3", err, sizeof err),
                    -1);
  ck_assert_ptr_nonnull (strstr (err, "not a file descriptor"));
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("keys");
  TCase *tc = tcase_create ("keys");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, passphrase_and_key_files);
  tcase_add_test (tc, secret_from_fd_large);
  tcase_add_test (tc, keystore_create_load);
  tcase_add_test (tc, keystore_dir_writable_by_others);
  tcase_add_test (tc, keystore_corrupt_and_open_mode);
  tcase_add_test (tc, slot_secret_binds_kek_and_uuid);
  tcase_add_test (tc, key_source_exactly_one);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* vaio-nbd unit test: the per-disk stats file a filter publishes and
 * vaioctl reads (nbdkit-filters/common/stats.c).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats.h"
#include "testutil.h"

#define THREADS        4
#define OPS_PER_THREAD 20000
#define LATENCY_NS     100000 /* 100 µs: bucket 6, [64, 128) µs */
#define ERROR_EVERY    10

static const struct vaio_stats_counter_def defs[] = {
  { "hits", VAIO_COUNTER },
  { "dirty-bytes", VAIO_GAUGE },
};

struct fixture
{
  char *dir, *path;
  struct vaio_stats *s;
};

static void
open_fixture (struct fixture *f)
{
  f->dir = tu_mkdtemp ();
  ck_assert_int_ne (asprintf (&f->path, "%s/stats", f->dir), -1);
  f->s = vaio_stats_create (f->dir, "vaio-test", "caching", defs, 2);
  ck_assert_ptr_nonnull (f->s);
}

static void
close_fixture (struct fixture *f)
{
  vaio_stats_close (f->s);
  tu_rmrf (f->dir);
  free (f->dir);
  free (f->path);
}

static void
read_ok (const char *path, struct vaio_stats_snapshot *snap)
{
  char err[512];

  ck_assert_msg (vaio_stats_read (path, snap, err, sizeof err) == 0, "%s", err);
}

static void
assert_read_error (const char *path, const char *expect)
{
  struct vaio_stats_snapshot snap;
  char err[512], *want;

  ck_assert_int_ne (asprintf (&want, "%s: %s", path, expect), -1);
  ck_assert_int_eq (vaio_stats_read (path, &snap, err, sizeof err), -1);
  ck_assert_str_eq (err, want);
  free (want);
}

START_TEST (create_header_and_mode)
{
  struct fixture f;
  struct vaio_stats_snapshot snap;
  struct stat st;
  struct dirent *e;
  DIR *d;
  int entries = 0;

  open_fixture (&f);
  ck_assert_int_eq (stat (f.path, &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0600);
  /* The temporary file was renamed away: only "stats" is left. */
  d = opendir (f.dir);
  ck_assert_ptr_nonnull (d);
  while ((e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      {
        ck_assert_str_eq (e->d_name, "stats");
        entries++;
      }
  closedir (d);
  ck_assert_int_eq (entries, 1);

  read_ok (f.path, &snap);
  ck_assert_int_eq (memcmp (snap.header.magic, VAIO_STATS_MAGIC, 8), 0);
  ck_assert_uint_eq (snap.header.version, VAIO_STATS_VERSION);
  ck_assert_uint_eq (snap.header.pid, (uint64_t)getpid ());
  ck_assert_str_eq (snap.header.filter, "vaio-test");
  ck_assert_str_eq (snap.header.class_name, "caching");
  ck_assert_uint_eq (snap.header.n_counters, 2);
  ck_assert_int_eq (vaio_stats_counter_index (&snap, "dirty-bytes"), 1);
  ck_assert_int_eq (vaio_stats_counter_index (&snap, "hits"), 0);
  ck_assert_int_eq (vaio_stats_counter_index (&snap, "misses"), -1);
  ck_assert_uint_eq (snap.header.counter_kinds[1], VAIO_GAUGE);
  ck_assert_uint_eq (snap.body.op[VAIO_OP_READ].ops, 0);
  close_fixture (&f);
}
END_TEST

static void *
recorder (void *arg)
{
  struct vaio_stats *s = arg;

  for (unsigned i = 0; i < OPS_PER_THREAD; i++)
    {
      vaio_stats_record (s, VAIO_OP_READ, 4096, LATENCY_NS, false);
      vaio_stats_record (s, VAIO_OP_WRITE, 512, LATENCY_NS,
                         i % ERROR_EVERY == 0);
      vaio_stats_add (s, 0, 1);
    }
  return NULL;
}

/* Lock-free recording from several threads loses no update. */
START_TEST (record_from_threads_exact_totals)
{
  const uint64_t n = (uint64_t)THREADS * OPS_PER_THREAD;
  pthread_t t[THREADS];
  struct fixture f;
  struct vaio_stats_snapshot snap;
  const struct vaio_stats_op_counters *r, *w;

  open_fixture (&f);
  for (int i = 0; i < THREADS; i++)
    ck_assert_int_eq (pthread_create (&t[i], NULL, recorder, f.s), 0);
  for (int i = 0; i < THREADS; i++)
    ck_assert_int_eq (pthread_join (t[i], NULL), 0);
  vaio_stats_set (f.s, 1, 777);

  read_ok (f.path, &snap);
  r = &snap.body.op[VAIO_OP_READ];
  w = &snap.body.op[VAIO_OP_WRITE];
  ck_assert_uint_eq (r->ops, n);
  ck_assert_uint_eq (r->bytes, n * 4096);
  ck_assert_uint_eq (r->errors, 0);
  ck_assert_uint_eq (r->latency_ns_sum, n * LATENCY_NS);
  ck_assert_uint_eq (r->latency_hist[6], n);
  ck_assert_uint_eq (w->ops, n);
  ck_assert_uint_eq (w->bytes, n * 512);
  ck_assert_uint_eq (w->errors, n / ERROR_EVERY);
  ck_assert_uint_eq (snap.body.op[VAIO_OP_FLUSH].ops, 0);
  ck_assert_uint_eq (snap.body.counters[0], n);
  ck_assert_uint_eq (snap.body.counters[1], 777);
  ck_assert_uint_ne (snap.body.heartbeat_unix_ns, 0);
  ck_assert_double_eq (vaio_stats_percentile_us (r->latency_hist, 0.99), 128);
  close_fixture (&f);
}
END_TEST

START_TEST (percentiles)
{
  uint64_t hist[VAIO_STATS_LAT_BUCKETS] = { 0 };

  ck_assert_double_eq (vaio_stats_percentile_us (hist, 0.5), 0);
  hist[3] = 90;  /* [8, 16) µs */
  hist[10] = 10; /* [1024, 2048) µs */
  ck_assert_double_eq (vaio_stats_percentile_us (hist, 0.5), 16);
  ck_assert_double_eq (vaio_stats_percentile_us (hist, 0.9), 16);
  ck_assert_double_eq (vaio_stats_percentile_us (hist, 0.95), 2048);
  ck_assert_double_eq (vaio_stats_percentile_us (hist, 1.0), 2048);
  ck_assert_double_eq (vaio_stats_percentile_us (hist, 0.0), 16);
}
END_TEST

static void
poke (const char *path, off_t off, const void *buf, size_t len)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);

  ck_assert_int_ne (fd, -1);
  ck_assert_int_eq (pwrite (fd, buf, len, off), (ssize_t)len);
  close (fd);
}

START_TEST (corrupt_header_byte)
{
  struct fixture f;
  char c = 'X';

  open_fixture (&f);
  poke (f.path, offsetof (struct vaio_stats_header, filter) + 2, &c, 1);
  assert_read_error (f.path, "stats header checksum mismatch (corrupt)");
  close_fixture (&f);
}
END_TEST

START_TEST (bad_magic)
{
  struct fixture f;

  open_fixture (&f);
  poke (f.path, 0, "NOTSTATS", 8);
  assert_read_error (f.path, "not a vaio stats file (bad magic)");
  close_fixture (&f);
}
END_TEST

START_TEST (wrong_version)
{
  struct fixture f;
  uint32_t v = VAIO_STATS_VERSION + 1;

  open_fixture (&f);
  poke (f.path, offsetof (struct vaio_stats_header, version), &v, sizeof v);
  assert_read_error (f.path, "stats version 2, this vaioctl reads 1");
  close_fixture (&f);
}
END_TEST

START_TEST (short_and_missing_files)
{
  struct fixture f;
  char *missing;

  open_fixture (&f);
  ck_assert_int_eq (truncate (f.path, 100), 0);
  assert_read_error (f.path, "file too short for a stats file");
  ck_assert_int_ne (asprintf (&missing, "%s/nope", f.dir), -1);
  assert_read_error (missing, "No such file or directory");
  free (missing);
  close_fixture (&f);
}
END_TEST

START_TEST (too_many_counters)
{
  struct vaio_stats_counter_def many[VAIO_STATS_MAX_COUNTERS + 1];
  char *dir = tu_mkdtemp ();

  for (size_t i = 0; i < VAIO_STATS_MAX_COUNTERS + 1; i++)
    many[i] = (struct vaio_stats_counter_def){ "c", VAIO_COUNTER };
  errno = 0;
  ck_assert_ptr_null (
      vaio_stats_create (dir, "f", "sioc", many, VAIO_STATS_MAX_COUNTERS + 1));
  ck_assert_int_eq (errno, EINVAL);
  /* A filter without a state dir records into NULL: a no-op. */
  vaio_stats_record (NULL, VAIO_OP_READ, 1, 1, false);
  vaio_stats_add (NULL, 0, 1);
  tu_rmrf (dir);
  free (dir);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("stats");
  TCase *tc = tcase_create ("stats");
  SRunner *sr;
  int failed;

  tcase_add_test (tc, create_header_and_mode);
  tcase_add_test (tc, record_from_threads_exact_totals);
  tcase_add_test (tc, percentiles);
  tcase_add_test (tc, corrupt_header_byte);
  tcase_add_test (tc, bad_magic);
  tcase_add_test (tc, wrong_version);
  tcase_add_test (tc, short_and_missing_files);
  tcase_add_test (tc, too_many_counters);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

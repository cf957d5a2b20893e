/* vaio-nbd unit test: strict sizes, durations, booleans and integers
 * (nbdkit-filters/common/units.c), shared by vaioctl and the filters.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "units.h"

#define EiB (UINT64_C (1) << 60)

/* The size grammar is nbdkit_parse_size's (nbdkit 1.32): every spelling
 * here, good or bad, was checked against `nbdkit memory size=S`, which
 * parses with it.  A size vaioctl validates must never be one nbdkit
 * refuses at `up`.
 */
static const struct
{
  const char *s;
  uint64_t v;
} good_sizes[] = {
  { "0", 0 },
  { "10", 10 },
  { "64K", 65536 },
  { "64k", 65536 },
  { "1M", 1048576 },
  { "1m", 1048576 },
  { "2G", UINT64_C (2) << 30 },
  { "2g", UINT64_C (2) << 30 },
  { "1T", UINT64_C (1) << 40 },
  { "1t", UINT64_C (1) << 40 },
  { "1P", UINT64_C (1) << 50 },
  { "1p", UINT64_C (1) << 50 },
  { "1E", EiB },
  { "7e", 7 * EiB },
  { "1b", 1 },
  { "4096B", 4096 },
  { "512s", 262144 },
  { "1S", 512 },
  { "8388607T", (UINT64_C (8388607) << 40) },
  { "18014398509481983s", UINT64_C (18014398509481983) * 512 },
  { "9223372036854775807", INT64_MAX },
  { "007", 7 },
};

/* Malformed: EINVAL.  nbdkit refuses "KiB", "MiB", "KB" ("unknown
 * suffix"); "1.5G": no fractions.  nbdkit's strtoimax would take the
 * leading blank and '+'; a config never needs them.
 */
static const char *const invalid_sizes[] = {
  "",      "1.5G",  "-1",   "+1",   "10x", "64KB",  "64kB",  "64Ki",
  "K",     " 64K",  "64K ", "0x10", "1e3", "G1",    "64KIB", "64KiB",
  "64MiB", "64mib", "2GiB", "1Z",   "10 ", "10 iB", "1bb",   "512sec",
};

/* Above INT64_MAX (nbdkit_parse_size returns an int64_t): ERANGE. */
static const char *const huge_sizes[] = {
  "8E",
  "16E",
  "8388608T",
  "18014398509481984s",
  "9223372036854775808",
  "18446744073709551615",
  "99999999999999999999999",
};

START_TEST (size_good)
{
  uint64_t v = 12345;

  ck_assert_msg (vaio_parse_size (good_sizes[_i].s, &v) == 0, "'%s'",
                 good_sizes[_i].s);
  ck_assert_uint_eq (v, good_sizes[_i].v);
}
END_TEST

START_TEST (size_invalid)
{
  uint64_t v = 12345;

  errno = 0;
  ck_assert_msg (vaio_parse_size (invalid_sizes[_i], &v) == -1,
                 "'%s' was accepted as %llu", invalid_sizes[_i],
                 (unsigned long long)v);
  ck_assert_int_eq (errno, EINVAL);
}
END_TEST

START_TEST (size_overflow)
{
  uint64_t v = 12345;

  errno = 0;
  ck_assert_msg (vaio_parse_size (huge_sizes[_i], &v) == -1, "'%s'",
                 huge_sizes[_i]);
  ck_assert_int_eq (errno, ERANGE);
}
END_TEST

START_TEST (size_null)
{
  uint64_t v;

  ck_assert_int_eq (vaio_parse_size (NULL, &v), -1);
}
END_TEST

START_TEST (durations)
{
  static const struct
  {
    const char *s;
    uint64_t ns;
  } good[] = {
    { "0s", 0 },
    { "1ns", 1 },
    { "5us", 5000 },
    { "30ms", 30000000 },
    { "2s", 2000000000 },
    { "2m", UINT64_C (120000000000) },
    { "1h", UINT64_C (3600000000000) },
    { "18446744073709551615ns", UINT64_MAX },
    { "5124095h", UINT64_C (5124095) * UINT64_C (3600000000000) },
  };
  /* The unit is required: "10" is ambiguous. */
  static const char *const invalid[]
      = { "10", "10x", "1.5s", "-1s", "ms", "", "10 ms", "10MS", "10sec" };
  uint64_t ns;

  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    {
      ck_assert_msg (vaio_parse_duration (good[i].s, &ns) == 0, "'%s'",
                     good[i].s);
      ck_assert_uint_eq (ns, good[i].ns);
    }
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
    {
      errno = 0;
      ck_assert_msg (vaio_parse_duration (invalid[i], &ns) == -1, "'%s'",
                     invalid[i]);
      ck_assert_int_eq (errno, EINVAL);
    }
  errno = 0;
  ck_assert_int_eq (vaio_parse_duration ("5124096h", &ns), -1);
  ck_assert_int_eq (errno, ERANGE);
  errno = 0;
  ck_assert_int_eq (vaio_parse_duration ("99999999999999999999s", &ns), -1);
  ck_assert_int_eq (errno, ERANGE);
  ck_assert_int_eq (vaio_parse_duration (NULL, &ns), -1);
}
END_TEST

START_TEST (booleans)
{
  static const char *const yes[] = { "true", "yes", "on", "1" };
  static const char *const no[] = { "false", "no", "off", "0" };
  static const char *const invalid[]
      = { "", "TRUE", "y", "2", "truee", "of", " on" };
  bool b;

  for (size_t i = 0; i < 4; i++)
    {
      b = false;
      ck_assert_int_eq (vaio_parse_bool (yes[i], &b), 0);
      ck_assert (b);
      b = true;
      ck_assert_int_eq (vaio_parse_bool (no[i], &b), 0);
      ck_assert (!b);
    }
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
    {
      errno = 0;
      ck_assert_msg (vaio_parse_bool (invalid[i], &b) == -1, "'%s'",
                     invalid[i]);
      ck_assert_int_eq (errno, EINVAL);
    }
  ck_assert_int_eq (vaio_parse_bool (NULL, &b), -1);
}
END_TEST

START_TEST (unsigned_integers)
{
  static const char *const invalid[] = { "", "-1", "1K", "1.0", " 1", "x" };
  uint64_t v;

  ck_assert_int_eq (vaio_parse_uint ("0", &v), 0);
  ck_assert_uint_eq (v, 0);
  ck_assert_int_eq (vaio_parse_uint ("18446744073709551615", &v), 0);
  ck_assert_uint_eq (v, UINT64_MAX);
  errno = 0;
  ck_assert_int_eq (vaio_parse_uint ("18446744073709551616", &v), -1);
  ck_assert_int_eq (errno, ERANGE);
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
    {
      errno = 0;
      ck_assert_msg (vaio_parse_uint (invalid[i], &v) == -1, "'%s'",
                     invalid[i]);
      ck_assert_int_eq (errno, EINVAL);
    }
}
END_TEST

START_TEST (format_size)
{
  char buf[32];

  ck_assert_str_eq (vaio_format_size (0, buf, sizeof buf), "0 B");
  ck_assert_str_eq (vaio_format_size (1023, buf, sizeof buf), "1023 B");
  ck_assert_str_eq (vaio_format_size (1536, buf, sizeof buf), "1.5 KiB");
  ck_assert_str_eq (vaio_format_size (UINT64_C (1) << 30, buf, sizeof buf),
                    "1.0 GiB");
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("units");
  TCase *tc = tcase_create ("units");
  SRunner *sr;
  int failed;

  tcase_add_loop_test (tc, size_good, 0,
                       (int)(sizeof good_sizes / sizeof good_sizes[0]));
  tcase_add_loop_test (tc, size_invalid, 0,
                       (int)(sizeof invalid_sizes / sizeof invalid_sizes[0]));
  tcase_add_loop_test (tc, size_overflow, 0,
                       (int)(sizeof huge_sizes / sizeof huge_sizes[0]));
  tcase_add_test (tc, size_null);
  tcase_add_test (tc, durations);
  tcase_add_test (tc, booleans);
  tcase_add_test (tc, unsigned_integers);
  tcase_add_test (tc, format_size);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

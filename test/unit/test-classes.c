/* vaio-nbd unit test: the class model and the chain order (classes/). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "classes.h"

enum
{
  R = VAIO_CLASS_REPLICATION,
  C = VAIO_CLASS_CACHING,
  S = VAIO_CLASS_SIOC,
  E = VAIO_CLASS_ENCRYPTION,
};

START_TEST (names_round_trip)
{
  enum vaio_class c;

  for (unsigned i = 0; i < VAIO_CLASS_COUNT; i++)
    {
      ck_assert_int_eq (vaio_class_parse (vaio_class_name (i), &c), 0);
      ck_assert_int_eq (c, i);
    }
  ck_assert_str_eq (vaio_class_name (VAIO_CLASS_SIOC), "sioc");
  ck_assert_str_eq (vaio_class_name (VAIO_CLASS_COUNT), "unknown");
  ck_assert_int_eq (vaio_class_parse ("Caching", &c), -1);
  ck_assert_int_eq (vaio_class_parse ("compression", &c), -1);
  ck_assert_int_eq (vaio_class_parse ("", &c), -1);
  ck_assert_str_eq (vaio_class_names (),
                    "replication, caching, sioc, encryption");
}
END_TEST

/* The order for the classes in want[] (n of them, any order). */
static size_t
order_of (const int *want, size_t n, bool cleartext,
          enum vaio_class out[VAIO_CLASS_COUNT])
{
  bool present[VAIO_CLASS_COUNT] = { false };

  for (size_t i = 0; i < n; i++)
    present[want[i]] = true;
  return vaio_class_chain_order (present, cleartext, out);
}

static void
assert_order (const int *want, size_t n, bool cleartext, const int *expect,
              size_t n_expect)
{
  enum vaio_class out[VAIO_CLASS_COUNT];
  size_t got = order_of (want, n, cleartext, out);

  ck_assert_uint_eq (got, n_expect);
  for (size_t i = 0; i < got; i++)
    ck_assert_msg ((int)out[i] == expect[i],
                   "position %zu: got %s, expected %s", i,
                   vaio_class_name (out[i]), vaio_class_name (expect[i]));
}

START_TEST (full_chain_encryption_first)
{
  /* Default: the guest's data is encrypted before any filter sees it. */
  assert_order ((int[]){ S, C, E, R }, 4, false, (int[]){ E, R, C, S }, 4);
}
END_TEST

START_TEST (full_chain_cleartext_allowed)
{
  /* allow-cleartext-filters: encryption sits last, above the image. */
  assert_order ((int[]){ S, C, E, R }, 4, true, (int[]){ R, C, S, E }, 4);
}
END_TEST

START_TEST (subsets)
{
  assert_order ((int[]){ C, E }, 2, false, (int[]){ E, C }, 2);
  assert_order ((int[]){ C, E }, 2, true, (int[]){ C, E }, 2);
  /* VMware: replication executes before cache. */
  assert_order ((int[]){ C, R }, 2, false, (int[]){ R, C }, 2);
  assert_order ((int[]){ C, R }, 2, true, (int[]){ R, C }, 2);
  assert_order ((int[]){ S, R }, 2, false, (int[]){ R, S }, 2);
  assert_order ((int[]){ S }, 1, true, (int[]){ S }, 1);
  assert_order ((int[]){ E }, 1, true, (int[]){ E }, 1);
  assert_order ((int[]){ E }, 1, false, (int[]){ E }, 1);
  assert_order ((int[]){ 0 }, 0, false, (int[]){ 0 }, 0);
  assert_order ((int[]){ 0 }, 0, true, (int[]){ 0 }, 0);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("classes");
  TCase *tc = tcase_create ("classes");
  SRunner *sr;
  int failed;

  tcase_add_test (tc, names_round_trip);
  tcase_add_test (tc, full_chain_encryption_first);
  tcase_add_test (tc, full_chain_cleartext_allowed);
  tcase_add_test (tc, subsets);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

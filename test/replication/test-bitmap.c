/* Unit tests for the replication dirty bitmap: marking, persistence,
 * the copying set surviving a crash, and corruption handling.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitmap.h"

#define GRAN (64 * 1024)
#define DISK (1ull << 30) /* 16384 bits: one page */
#define BIG  (1ull << 32) /* 65536 bits: three pages */

static char dir[64];
static char path[256];
static char err[1024];

static void
setup (void)
{
  strcpy (dir, "/tmp/test-bitmap.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (dir));
  snprintf (path, sizeof path, "%s/bitmap", dir);
}

static void
teardown (void)
{
  unlink (path);
  rmdir (dir);
}

static struct bmap *
open_bm (uint64_t disk, uint32_t hash, bool *full, uint64_t *bad)
{
  struct bmap *b
      = bmap_open (path, disk, GRAN, hash, full, bad, err, sizeof err);
  ck_assert_msg (b != NULL, "%s", err);
  return b;
}

/* Open a fresh bitmap and clear the initial full-sync bits. */
static struct bmap *
clean_bm (uint64_t disk)
{
  bool full;
  uint64_t bad;
  struct bmap *b = open_bm (disk, 7, &full, &bad);

  ck_assert (full);
  ck_assert_uint_eq (b->n_dirty, b->nbits);
  for (int64_t bit; (bit = bmap_next_dirty (b, 0)) != -1;)
    {
      bmap_take (b, (uint64_t)bit);
      bmap_done (b, (uint64_t)bit);
    }
  ck_assert (bmap_is_clean (b));
  ck_assert_int_eq (bmap_persist (b, true, err, sizeof err), 0);
  return b;
}

START_TEST (test_fresh_is_full)
{
  struct bmap *b = clean_bm (DISK);
  bmap_close (b);
}
END_TEST

START_TEST (test_mark_ranges)
{
  struct bmap *b = clean_bm (DISK);

  ck_assert_uint_eq (bmap_mark (b, 0, 1), 1);
  ck_assert_uint_eq (bmap_mark (b, 100, 1), 0);      /* same bit */
  ck_assert_uint_eq (bmap_mark (b, GRAN - 1, 2), 1); /* straddles */
  ck_assert_uint_eq (bmap_mark (b, 10 * GRAN, 3 * GRAN), 3);
  ck_assert_uint_eq (bmap_mark (b, DISK - 1, 100), 1); /* clipped */
  ck_assert_uint_eq (b->n_dirty, 6);
  ck_assert_int_eq (bmap_next_dirty (b, 0), 0);
  ck_assert_int_eq (bmap_next_dirty (b, 2), 10);
  ck_assert_int_eq (bmap_next_dirty (b, 13), (int64_t)(DISK / GRAN - 1));
  bmap_close (b);
}
END_TEST

/* Bits being copied stay dirty in the file until done. */
START_TEST (test_persist_and_copying)
{
  struct bmap *b = clean_bm (BIG);
  bool full;
  uint64_t bad;

  bmap_mark (b, 5 * GRAN, 1);
  bmap_mark (b, 40000ull * GRAN, 1); /* second page */
  ck_assert_int_eq (bmap_persist (b, true, err, sizeof err), 0);
  bmap_take (b, 5);
  ck_assert_int_eq (bmap_persist (b, true, err, sizeof err), 0);
  bmap_close (b);

  b = open_bm (BIG, 7, &full, &bad);
  ck_assert (!full);
  ck_assert_uint_eq (bad, 0);
  ck_assert_uint_eq (b->n_dirty, 2);
  ck_assert_int_eq (bmap_next_dirty (b, 0), 5);
  ck_assert_int_eq (bmap_next_dirty (b, 6), 40000);
  bmap_take (b, 5);
  bmap_done (b, 5);
  ck_assert_int_eq (bmap_persist (b, true, err, sizeof err), 0);
  bmap_close (b);

  b = open_bm (BIG, 7, &full, &bad);
  ck_assert_uint_eq (b->n_dirty, 1);
  ck_assert_int_eq (bmap_next_dirty (b, 0), 40000);
  bmap_close (b);
}
END_TEST

START_TEST (test_untake)
{
  struct bmap *b = clean_bm (DISK);

  bmap_mark (b, 3 * GRAN, 1);
  bmap_take (b, 3);
  ck_assert_int_eq (bmap_next_dirty (b, 0), -1);
  ck_assert (!bmap_is_clean (b));
  bmap_untake (b, 3);
  ck_assert_int_eq (bmap_next_dirty (b, 0), 3);
  bmap_close (b);
}
END_TEST

static void
corrupt_byte (off_t off)
{
  int fd = open (path, O_RDWR);
  unsigned char c;

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pread (fd, &c, 1, off), 1);
  c ^= 0x01;
  ck_assert_int_eq (pwrite (fd, &c, 1, off), 1);
  close (fd);
}

/* A corrupted page comes back all dirty (over-copy, never under-copy). */
START_TEST (test_corrupt_page)
{
  struct bmap *b = clean_bm (BIG);
  bool full;
  uint64_t bad;

  bmap_close (b);
  corrupt_byte (2 * BMAP_PAGE_SIZE + 10); /* page 1 */
  b = open_bm (BIG, 7, &full, &bad);
  ck_assert (!full);
  ck_assert_uint_eq (bad, 1);
  ck_assert_int_eq (bmap_next_dirty (b, 0), BMAP_PAGE_BITS);
  ck_assert_uint_eq (b->n_dirty, BMAP_PAGE_BITS);
  bmap_close (b);
}
END_TEST

START_TEST (test_corrupt_header)
{
  struct bmap *b = clean_bm (DISK);
  bool full;
  uint64_t bad;

  bmap_close (b);
  corrupt_byte (20);
  b = bmap_open (path, DISK, GRAN, 7, &full, &bad, err, sizeof err);
  ck_assert_ptr_null (b);
  ck_assert_msg (strstr (err, path) && strstr (err, "checksum mismatch"),
                 "unclear error: %s", err);
}
END_TEST

/* Another target or disk size: the replica is unknown, full sync. */
START_TEST (test_other_target)
{
  struct bmap *b = clean_bm (DISK);
  bool full;
  uint64_t bad;

  bmap_close (b);
  b = open_bm (DISK, 8, &full, &bad);
  ck_assert (full);
  ck_assert_uint_eq (b->n_dirty, b->nbits);
  bmap_close (b);
}
END_TEST

START_TEST (test_page_codec)
{
  uint8_t bits[BMAP_PAGE_BYTES], page[BMAP_PAGE_SIZE];

  memset (bits, 0x3c, sizeof bits);
  bmap_page_encode (bits, 9, page);
  ck_assert (bmap_page_check (page, 9));
  ck_assert (!bmap_page_check (page, 8)); /* misplaced page */
  page[17] ^= 0x80;
  ck_assert (!bmap_page_check (page, 9));
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("bitmap");
  TCase *tc = tcase_create ("bitmap");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_fresh_is_full);
  tcase_add_test (tc, test_mark_ranges);
  tcase_add_test (tc, test_persist_and_copying);
  tcase_add_test (tc, test_untake);
  tcase_add_test (tc, test_corrupt_page);
  tcase_add_test (tc, test_corrupt_header);
  tcase_add_test (tc, test_other_target);
  tcase_add_test (tc, test_page_codec);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

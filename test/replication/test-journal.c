/* Unit tests for the replication journal: encode/decode, append/scan,
 * wrap-around, and corruption detection (never wrong data).
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"

#define JSIZE     (JRNL_HEADER_SIZE + 64 * 1024)
#define BIG_JSIZE (64ull << 20)

static char dir[] = "/tmp/test-journal.XXXXXX";
static char path[256];
static char err[1024];

static void
setup (void)
{
  strcpy (dir, "/tmp/test-journal.XXXXXX");
  ck_assert_ptr_nonnull (mkdtemp (dir));
  snprintf (path, sizeof path, "%s/journal", dir);
}

static void
teardown (void)
{
  unlink (path);
  rmdir (dir);
}

struct seen
{
  uint64_t seqs[4096];
  uint64_t offsets[4096];
  unsigned char first_byte[4096];
  unsigned n;
  unsigned bad;
  uint64_t bad_offset;
  unsigned orphans;
  uint64_t orphan_offset;
};

static int
on_rec (void *opaque, const struct jrnl_rec *r, uint64_t pos, const void *data)
{
  struct seen *s = opaque;

  s->seqs[s->n] = r->seq;
  s->offsets[s->n] = r->offset;
  s->first_byte[s->n] = data ? ((const unsigned char *)data)[0] : 0;
  s->n++;
  return 0;
}

static int
on_bad (void *opaque, const struct jrnl_rec *r, uint64_t pos, const void *data)
{
  struct seen *s = opaque;

  s->bad++;
  s->bad_offset = r->offset;
  return 0;
}

static int
on_orphan (void *opaque, const struct jrnl_rec *r, uint64_t pos,
           const void *data)
{
  struct seen *s = opaque;

  s->orphans++;
  s->orphan_offset = r->offset;
  return 0;
}

/* Open the journal of size bytes at path again and scan it into *s
 * (cleared first).
 */
static struct jrnl *
reopen_sized (uint64_t size, struct seen *s, jrnl_rec_fn orphan_fn, bool *lost)
{
  bool created;
  struct jrnl *j;

  memset (s, 0, sizeof *s);
  j = jrnl_open (path, size, 1 << 30, &created, err, sizeof err);
  ck_assert_msg (j != NULL, "%s", err);
  ck_assert (!created);
  ck_assert_int_eq (
      jrnl_scan (j, on_rec, on_bad, orphan_fn, s, lost, err, sizeof err), 0);
  return j;
}

static struct jrnl *
reopen_and_scan (struct seen *s, jrnl_rec_fn orphan_fn, bool *lost)
{
  return reopen_sized (JSIZE, s, orphan_fn, lost);
}

START_TEST (test_record_roundtrip)
{
  unsigned char data[100], buf[64];
  struct jrnl_rec r = { .type = JRNL_WRITE,
                        .seq = 42,
                        .timestamp_ns = 123456789,
                        .offset = 1 << 20,
                        .length = sizeof data,
                        .data_len = sizeof data,
                        .barrier = 40 },
                  out;

  memset (data, 0xab, sizeof data);
  r.data_crc = jrnl_data_crc (data, sizeof data);
  jrnl_rec_encode (&r, buf);
  ck_assert_int_eq (jrnl_rec_decode (buf, 42, &out), JRNL_OK);
  ck_assert_uint_eq (out.seq, 42);
  ck_assert_uint_eq (out.offset, 1 << 20);
  ck_assert_uint_eq (out.length, sizeof data);
  ck_assert_uint_eq (out.barrier, 40);
  ck_assert_uint_eq (out.timestamp_ns, 123456789);
  ck_assert_uint_eq (out.data_crc, r.data_crc);
  ck_assert_int_eq (jrnl_rec_decode (buf, 43, &out), JRNL_BAD_SEQ);
  buf[30] ^= 1;
  ck_assert_int_eq (jrnl_rec_decode (buf, 42, &out), JRNL_BAD_HDR_CRC);
  buf[30] ^= 1;
  buf[0] ^= 0xff;
  ck_assert_int_eq (jrnl_rec_decode (buf, 42, &out), JRNL_BAD_MAGIC);
}
END_TEST

START_TEST (test_append_scan)
{
  unsigned char data[4096];
  struct seen s = { 0 };
  struct jrnl *j;
  bool created, lost;
  uint64_t pos;

  j = jrnl_open (path, JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_msg (j != NULL, "%s", err);
  ck_assert (created);
  for (int i = 0; i < 5; i++)
    {
      struct jrnl_rec r = { .type = JRNL_WRITE,
                            .offset = (uint64_t)i * 4096,
                            .length = 4096,
                            .data_len = 4096 };
      memset (data, 'a' + i, sizeof data);
      ck_assert_int_eq (jrnl_append (j, &r, data, &pos, err, sizeof err), 0);
      ck_assert_uint_eq (r.seq, (uint64_t)i + 1);
    }
  struct jrnl_rec z = { .type = JRNL_ZERO, .offset = 0, .length = 1 << 20 };
  ck_assert_int_eq (jrnl_append (j, &z, NULL, &pos, err, sizeof err), 0);
  jrnl_close (j);

  j = jrnl_open (path, JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_msg (j != NULL, "%s", err);
  ck_assert (!created);
  ck_assert_int_eq (
      jrnl_scan (j, on_rec, on_bad, NULL, &s, &lost, err, sizeof err), 0);
  ck_assert_uint_eq (s.n, 6);
  ck_assert (!lost);
  ck_assert_uint_eq (s.bad, 0);
  for (unsigned i = 0; i < 5; i++)
    {
      ck_assert_uint_eq (s.seqs[i], i + 1);
      ck_assert_uint_eq (s.offsets[i], i * 4096);
      ck_assert_uint_eq (s.first_byte[i], 'a' + i);
    }
  ck_assert_uint_eq (j->head_seq, 7);
  jrnl_close (j);
}
END_TEST

/* The ring fills, refuses, frees up when the tail moves, wraps. */
START_TEST (test_full_and_wrap)
{
  unsigned char data[4096];
  struct seen s = { 0 };
  struct jrnl *j;
  bool created, lost;
  uint64_t pos, tail_pos = 0, tail_seq = 0;
  int n = 0, rc;

  memset (data, 'x', sizeof data);
  j = jrnl_open (path, JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_ptr_nonnull (j);
  for (;;)
    {
      struct jrnl_rec r = {
        .type = JRNL_WRITE, .length = 4096, .data_len = 4096, .offset = 0
      };
      rc = jrnl_append (j, &r, data, &pos, err, sizeof err);
      if (rc == 1)
        break;
      ck_assert_int_eq (rc, 0);
      if (n == 3)
        {
          tail_pos = pos;
          tail_seq = r.seq;
        }
      n++;
    }
  ck_assert_int_gt (n, 5);
  /* Free the first 3 records, then two more fit, wrapping round. */
  ck_assert_int_eq (
      jrnl_set_tail (j, tail_pos, tail_seq, true, err, sizeof err), 0);
  for (int i = 0; i < 2; i++)
    {
      struct jrnl_rec r = {
        .type = JRNL_WRITE, .length = 4096, .data_len = 4096, .offset = 8192
      };
      data[0] = (unsigned char)('0' + i);
      ck_assert_int_eq (jrnl_append (j, &r, data, &pos, err, sizeof err), 0);
    }
  jrnl_close (j);

  j = reopen_and_scan (&s, NULL, &lost);
  ck_assert (!lost);
  ck_assert_uint_eq (s.n, (unsigned)(n - 3 + 2));
  ck_assert_uint_eq (s.seqs[0], tail_seq);
  ck_assert_uint_eq (s.first_byte[s.n - 1], '1');
  ck_assert_uint_eq (s.first_byte[s.n - 2], '0');
  for (unsigned i = 1; i < s.n; i++)
    ck_assert_uint_eq (s.seqs[i], s.seqs[i - 1] + 1);
  jrnl_close (j);
}
END_TEST

static void
corrupt_byte (off_t off)
{
  int fd = open (path, O_RDWR);
  unsigned char b;

  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pread (fd, &b, 1, off), 1);
  b ^= 0x5a;
  ck_assert_int_eq (pwrite (fd, &b, 1, off), 1);
  close (fd);
}

static void
write_three (void)
{
  unsigned char data[4096];
  struct jrnl *j;
  bool created;
  uint64_t pos;

  j = jrnl_open (path, JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_ptr_nonnull (j);
  for (int i = 0; i < 3; i++)
    {
      struct jrnl_rec r = { .type = JRNL_WRITE,
                            .length = 4096,
                            .data_len = 4096,
                            .offset = (uint64_t)(i + 1) << 20 };
      memset (data, i, sizeof data);
      ck_assert_int_eq (jrnl_append (j, &r, data, &pos, err, sizeof err), 0);
    }
  jrnl_close (j);
}

/* A flipped payload byte: that record is reported with its range, the
 * others are still delivered; its bytes are never delivered.
 */
START_TEST (test_corrupt_payload)
{
  struct seen s = { 0 };
  struct jrnl *j;
  bool lost;

  write_three ();
  corrupt_byte (JRNL_HEADER_SIZE + jrnl_rec_size (4096) + 64 + 100);
  j = reopen_and_scan (&s, NULL, &lost);
  ck_assert_uint_eq (s.bad, 1);
  ck_assert_uint_eq (s.bad_offset, 2 << 20);
  ck_assert_uint_eq (s.n, 2);
  ck_assert_uint_eq (s.offsets[0], 1 << 20);
  ck_assert_uint_eq (s.offsets[1], 3 << 20);
  jrnl_close (j);
}
END_TEST

/* A flipped header byte: the range is unknown, the scan stops there and
 * says a later record proves the loss.
 */
START_TEST (test_corrupt_header)
{
  struct seen s = { 0 };
  struct jrnl *j;
  bool lost;

  write_three ();
  corrupt_byte (JRNL_HEADER_SIZE + jrnl_rec_size (4096) + 24);
  j = reopen_and_scan (&s, NULL, &lost);
  ck_assert_uint_eq (s.n, 1);
  ck_assert (lost);
  jrnl_close (j);
}
END_TEST

static void
zero_bytes (off_t off, size_t len)
{
  unsigned char z[JRNL_REC_HDR_SIZE] = { 0 };
  int fd = open (path, O_RDWR);

  ck_assert_int_ge (fd, 0);
  ck_assert_uint_le (len, sizeof z);
  ck_assert_int_eq (pwrite (fd, z, len, off), (ssize_t)len);
  close (fd);
}

/* A last record never written (its slot still zeros: a writer reserved
 * it and was killed before writing) is the end, not a loss.
 */
START_TEST (test_unwritten_end_is_not_loss)
{
  struct seen s = { 0 };
  struct jrnl *j;
  bool lost;

  write_three ();
  zero_bytes (JRNL_HEADER_SIZE + 2 * jrnl_rec_size (4096), JRNL_REC_HDR_SIZE);
  j = reopen_and_scan (&s, NULL, &lost);
  ck_assert_uint_eq (s.n, 2);
  ck_assert (!lost);
  jrnl_close (j);
}
END_TEST

/* A damaged header on the last record (its magic, a bad checksum) is
 * corruption, not the end: nothing after it proves the loss, but a kill
 * cannot leave a header like that, and the write it held may have been
 * acknowledged.  The whole disk must be resynchronised.
 */
START_TEST (test_corrupt_last_header_is_loss)
{
  struct seen s = { 0 };
  struct jrnl *j;
  bool lost;

  write_three ();
  corrupt_byte (JRNL_HEADER_SIZE + 2 * jrnl_rec_size (4096) + 8);
  j = reopen_and_scan (&s, NULL, &lost);
  ck_assert_uint_eq (s.n, 2);
  ck_assert (lost);
  jrnl_close (j);
}
END_TEST

START_TEST (test_corrupt_file_header)
{
  struct jrnl *j;
  bool created;

  write_three ();
  corrupt_byte (33);
  j = jrnl_open (path, JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_ptr_null (j);
  ck_assert_msg (strstr (err, "checksum mismatch") && strstr (err, path),
                 "unclear error: %s", err);

  corrupt_byte (33);
  corrupt_byte (0);
  j = jrnl_open (path, JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_ptr_null (j);
  ck_assert_msg (strstr (err, "bad magic"), "unclear error: %s", err);
}
END_TEST

START_TEST (test_wrong_disk)
{
  struct jrnl *j;
  bool created;

  write_three ();
  j = jrnl_open (path, JSIZE, 2ull << 30, &created, err, sizeof err);
  ck_assert_ptr_null (j);
  ck_assert_msg (strstr (err, "disk of"), "unclear error: %s", err);
}
END_TEST

START_TEST (test_reset)
{
  struct seen s = { 0 };
  struct jrnl *j;
  bool lost;
  unsigned char data[4096] = { 0 };
  uint64_t pos;

  write_three ();
  j = reopen_and_scan (&s, NULL, &lost);
  ck_assert_int_eq (jrnl_reset (j, err, sizeof err), 0);
  ck_assert_uint_eq (j->used, 0);
  struct jrnl_rec r = { .type = JRNL_WRITE, .length = 4096, .data_len = 4096 };
  ck_assert_int_eq (jrnl_append (j, &r, data, &pos, err, sizeof err), 0);
  ck_assert_uint_eq (r.seq, 4); /* sequence numbers survive a reset */
  jrnl_close (j);
  j = reopen_and_scan (&s, NULL, &lost);
  ck_assert_uint_eq (s.n, 1);
  ck_assert_uint_eq (s.seqs[0], 4);
  ck_assert (!lost);
  jrnl_close (j);
}
END_TEST

/* Three records reserved; the first and the third are written, the
 * second never is (its writer died before its pwritev).  The third says
 * how far the journal was complete when it was reserved.
 */
static void
write_hole (uint64_t third_committed)
{
  unsigned char data[4096];
  struct jrnl_rec r[3];
  struct jrnl_slot slot[3];
  struct jrnl *j;
  bool created;

  j = jrnl_open (path, JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_ptr_nonnull (j);
  memset (data, 7, sizeof data);
  for (int i = 0; i < 3; i++)
    {
      r[i] = (struct jrnl_rec){ .type = JRNL_WRITE,
                                .length = 4096,
                                .data_len = 4096,
                                .offset = (uint64_t)(i + 1) << 20 };
      ck_assert_int_eq (jrnl_reserve (j, &r[i], &slot[i]), 0);
      r[i].data_crc = jrnl_data_crc (data, sizeof data);
    }
  r[0].committed = 0;
  r[2].committed = third_committed;
  ck_assert_int_eq (jrnl_write (j, &r[2], data, &slot[2]), 0);
  ck_assert_int_eq (jrnl_write (j, &r[0], data, &slot[0]), 0);
  jrnl_close (j);
}

/* A hole nobody saw complete: the journal ends there, the record after
 * it is an orphan (its range is reported), nothing is lost; a reset then
 * moves the sequence numbers past the orphan.
 */
START_TEST (test_hole_orphan)
{
  unsigned char data[4096] = { 0 };
  struct seen s = { 0 };
  struct jrnl *j;
  bool lost;
  uint64_t pos;

  write_hole (1);
  j = reopen_and_scan (&s, on_orphan, &lost);
  ck_assert_uint_eq (s.n, 1);
  ck_assert (!lost);
  ck_assert_uint_eq (s.orphans, 1);
  ck_assert_uint_eq (s.orphan_offset, 3 << 20);
  ck_assert_int_eq (jrnl_reset (j, err, sizeof err), 0);
  struct jrnl_rec r = { .type = JRNL_WRITE, .length = 4096, .data_len = 4096 };
  ck_assert_int_eq (jrnl_append (j, &r, data, &pos, err, sizeof err), 0);
  ck_assert_uint_eq (r.seq, 4);
  jrnl_close (j);

  j = reopen_and_scan (&s, on_orphan, &lost);
  ck_assert_uint_eq (s.n, 1);
  ck_assert_uint_eq (s.seqs[0], 4);
  ck_assert (!lost);
  ck_assert_uint_eq (s.orphans, 0);
  jrnl_close (j);
}
END_TEST

/* A later record says the hole was once complete: it was corrupted, and
 * its range is unknown.
 */
START_TEST (test_hole_proven_lost)
{
  struct seen s = { 0 };
  struct jrnl *j;
  bool lost;

  write_hole (2);
  j = reopen_and_scan (&s, on_orphan, &lost);
  ck_assert_uint_eq (s.n, 1);
  ck_assert (lost);
  jrnl_close (j);
}
END_TEST

/* A record far past a long stretch of records never written (their
 * writers died after reserving) must still be found by the scan past the
 * end, as an orphan or as proof of a loss.
 */
static void
write_far_hole (uint64_t last_committed)
{
  enum
  {
    N = 2048
  }; /* 8.5 MiB of reservations, most never written */
  static struct jrnl_rec r[N];
  static struct jrnl_slot slot[N];
  unsigned char data[4096];
  struct jrnl *j;
  bool created;

  j = jrnl_open (path, BIG_JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_msg (j != NULL, "%s", err);
  ck_assert (created);
  memset (data, 9, sizeof data);
  for (int i = 0; i < N; i++)
    {
      r[i] = (struct jrnl_rec){ .type = JRNL_WRITE,
                                .length = 4096,
                                .data_len = 4096,
                                .offset = (uint64_t)i << 12 };
      ck_assert_int_eq (jrnl_reserve (j, &r[i], &slot[i]), 0);
      r[i].data_crc = jrnl_data_crc (data, sizeof data);
    }
  r[N - 1].committed = last_committed;
  ck_assert_int_eq (jrnl_write (j, &r[0], data, &slot[0]), 0);
  ck_assert_int_eq (jrnl_write (j, &r[N - 1], data, &slot[N - 1]), 0);
  ck_assert_uint_gt (slot[N - 1].pos, 8u << 20);
  jrnl_close (j);
}

START_TEST (test_far_orphan_found)
{
  struct seen s;
  struct jrnl *j;
  bool lost;

  write_far_hole (1);
  j = reopen_sized (BIG_JSIZE, &s, on_orphan, &lost);
  ck_assert_uint_eq (s.n, 1);
  ck_assert (!lost);
  ck_assert_uint_eq (s.orphans, 1);
  ck_assert_uint_eq (s.orphan_offset, 2047u << 12);
  jrnl_close (j);
}
END_TEST

START_TEST (test_far_loss_found)
{
  struct seen s;
  struct jrnl *j;
  bool lost;

  write_far_hole (2);
  j = reopen_sized (BIG_JSIZE, &s, on_orphan, &lost);
  ck_assert_uint_eq (s.n, 1);
  ck_assert (lost);
  jrnl_close (j);
}
END_TEST

/* A journal of the previous format is refused with a clear message. */
START_TEST (test_old_version)
{
  struct jrnl *j;
  bool created;
  int fd;
  unsigned char v = 1;

  write_three ();
  fd = open (path, O_RDWR);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (pwrite (fd, &v, 1, 8), 1);
  close (fd);
  j = jrnl_open (path, JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_ptr_null (j);
  ck_assert_msg (strstr (err, "format version 1") && strstr (err, path)
                     && strstr (err, "move the state directory aside"),
                 "unclear error: %s", err);
}
END_TEST

/* A new journal is written whole, not only preallocated: appends into
 * unwritten extents cost far more (see fill_zeros).  It is built under a
 * temporary name, and one left by a killed process is replaced.
 */
START_TEST (test_created_written_whole)
{
  char tmp[300];
  struct jrnl *j;
  bool created;
  int fd;

  snprintf (tmp, sizeof tmp, "%s.new", path);
  fd = open (tmp, O_WRONLY | O_CREAT, 0600);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (write (fd, "half-built", 10), 10);
  close (fd);
  j = jrnl_open (path, BIG_JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_msg (j != NULL, "%s", err);
  ck_assert (created);
  ck_assert_int_eq (access (tmp, F_OK), -1);
  ck_assert_int_eq (lseek (j->fd, 0, SEEK_HOLE), (off_t)BIG_JSIZE);
  jrnl_close (j);
  j = jrnl_open (path, BIG_JSIZE, 1 << 30, &created, err, sizeof err);
  ck_assert_msg (j != NULL, "%s", err);
  ck_assert (!created);
  jrnl_close (j);
}
END_TEST

START_TEST (test_owner_only)
{
  struct stat st;

  write_three ();
  ck_assert_int_eq (stat (path, &st), 0);
  ck_assert_uint_eq (st.st_mode & 0777, 0600);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("journal");
  TCase *tc = tcase_create ("journal");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_record_roundtrip);
  tcase_add_test (tc, test_append_scan);
  tcase_add_test (tc, test_full_and_wrap);
  tcase_add_test (tc, test_corrupt_payload);
  tcase_add_test (tc, test_corrupt_header);
  tcase_add_test (tc, test_unwritten_end_is_not_loss);
  tcase_add_test (tc, test_corrupt_last_header_is_loss);
  tcase_add_test (tc, test_corrupt_file_header);
  tcase_add_test (tc, test_wrong_disk);
  tcase_add_test (tc, test_reset);
  tcase_add_test (tc, test_hole_orphan);
  tcase_add_test (tc, test_hole_proven_lost);
  tcase_add_test (tc, test_far_orphan_found);
  tcase_add_test (tc, test_far_loss_found);
  tcase_add_test (tc, test_old_version);
  tcase_add_test (tc, test_created_written_whole);
  tcase_add_test (tc, test_owner_only);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

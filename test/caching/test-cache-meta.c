/* Unit tests of vaio-cache's on-disk metadata: encode/decode round trips,
 * every kind of corruption detected, copy selection, geometry.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

static struct vcache_super
sample_super (void)
{
  struct vcache_super sb = {
    .backing_size = 1ULL << 30,
    .cache_size = 256ULL << 20,
    .data_offset = 65536,
    .mount_gen = 7,
    .dirty_slots = 3,
    .max_epoch = 99,
    .block_size = 65536,
    .n_slots = 4000,
    .n_md_blocks = 24,
    .clean = 1,
  };
  strcpy (sb.disk_id, "vm1/disk0");
  return sb;
}

START_TEST (super_round_trip)
{
  unsigned char rec[VCACHE_REC_SIZE];
  struct vcache_super in = sample_super (), out;
  uint64_t seq = 0;
  const char *why = NULL;

  vcache_super_encode (&in, 42, rec);
  ck_assert_int_eq (vcache_super_decode (rec, &out, &seq, &why), 0);
  ck_assert_uint_eq (seq, 42);
  ck_assert_uint_eq (out.backing_size, in.backing_size);
  ck_assert_uint_eq (out.cache_size, in.cache_size);
  ck_assert_uint_eq (out.data_offset, in.data_offset);
  ck_assert_uint_eq (out.mount_gen, 7);
  ck_assert_uint_eq (out.dirty_slots, 3);
  ck_assert_uint_eq (out.max_epoch, 99);
  ck_assert_uint_eq (out.block_size, 65536);
  ck_assert_uint_eq (out.n_slots, 4000);
  ck_assert_uint_eq (out.n_md_blocks, 24);
  ck_assert_uint_eq (out.clean, 1);
  ck_assert_str_eq (out.disk_id, "vm1/disk0");
}
END_TEST

/* Flipping any single byte of a record must be detected. */
START_TEST (super_any_flipped_byte_detected)
{
  unsigned char rec[VCACHE_REC_SIZE];
  struct vcache_super in = sample_super (), out;
  uint64_t seq;
  const char *why;

  vcache_super_encode (&in, 1, rec);
  for (size_t i = 0; i < VCACHE_REC_SIZE; i += 7)
    {
      rec[i] ^= 0x40;
      why = NULL;
      ck_assert_int_eq (vcache_super_decode (rec, &out, &seq, &why), -1);
      ck_assert_ptr_nonnull (why);
      rec[i] ^= 0x40;
    }
  ck_assert_int_eq (vcache_super_decode (rec, &out, &seq, &why), 0);
}
END_TEST

START_TEST (super_bad_magic_named)
{
  unsigned char rec[VCACHE_REC_SIZE];
  struct vcache_super in = sample_super (), out;
  uint64_t seq;
  const char *why = NULL;

  vcache_super_encode (&in, 1, rec);
  memcpy (rec, "NOTCACHE", 8);
  ck_assert_int_eq (vcache_super_decode (rec, &out, &seq, &why), -1);
  ck_assert_str_eq (why, "bad magic");
}
END_TEST

START_TEST (md_round_trip)
{
  unsigned char rec[VCACHE_REC_SIZE];
  struct vcache_entry in[VCACHE_ENTRIES_PER_MD], out[VCACHE_ENTRIES_PER_MD];
  uint64_t seq, gen;
  const char *why = NULL;

  for (unsigned i = 0; i < VCACHE_ENTRIES_PER_MD; i++)
    {
      in[i].block = i % 3 ? i * 1000 : VCACHE_NO_BLOCK;
      in[i].epoch = i * 7;
      in[i].flags = i % 3 == 0   ? 0
                    : i % 3 == 1 ? VCACHE_ENTRY_VALID
                                 : VCACHE_ENTRY_VALID | VCACHE_ENTRY_DIRTY;
    }
  vcache_md_encode (5, 9, 3, in, VCACHE_ENTRIES_PER_MD, rec);
  ck_assert_int_eq (
      vcache_md_decode (rec, 5, out, VCACHE_ENTRIES_PER_MD, &seq, &gen, &why),
      0);
  ck_assert_uint_eq (seq, 9);
  ck_assert_uint_eq (gen, 3);
  for (unsigned i = 0; i < VCACHE_ENTRIES_PER_MD; i++)
    {
      ck_assert_uint_eq (out[i].block, in[i].block);
      ck_assert_uint_eq (out[i].epoch, in[i].epoch);
      ck_assert_uint_eq (out[i].flags, in[i].flags);
    }
}
END_TEST

START_TEST (md_wrong_place_and_count_rejected)
{
  unsigned char rec[VCACHE_REC_SIZE];
  struct vcache_entry e[4] = { { 1, 1, VCACHE_ENTRY_VALID } };
  uint64_t seq, gen;
  const char *why = NULL;

  vcache_md_encode (2, 1, 1, e, 4, rec);
  /* A record copied to another block's place is not that block. */
  ck_assert_int_eq (vcache_md_decode (rec, 3, e, 4, &seq, &gen, &why), -1);
  ck_assert_str_eq (why, "record in the wrong place");
  /* Geometry disagreement. */
  ck_assert_int_eq (vcache_md_decode (rec, 2, e, 3, &seq, &gen, &why), -1);
  /* A superblock is not a metadata block. */
  struct vcache_super sb = sample_super ();
  vcache_super_encode (&sb, 1, rec);
  ck_assert_int_eq (vcache_md_decode (rec, 0, e, 4, &seq, &gen, &why), -1);
  ck_assert_str_eq (why, "bad magic");
}
END_TEST

START_TEST (md_corrupt_entry_detected)
{
  unsigned char rec[VCACHE_REC_SIZE];
  struct vcache_entry e[8];
  uint64_t seq, gen;
  const char *why = NULL;

  for (unsigned i = 0; i < 8; i++)
    e[i] = (struct vcache_entry){ i, i, VCACHE_ENTRY_VALID };
  vcache_md_encode (0, 1, 1, e, 8, rec);
  rec[VCACHE_HEADER_SIZE + 3 * VCACHE_ENTRY_SIZE] ^= 1; /* block number */
  ck_assert_int_eq (vcache_md_decode (rec, 0, e, 8, &seq, &gen, &why), -1);
  ck_assert_str_eq (why, "checksum mismatch");
}
END_TEST

START_TEST (pick_newest_valid_copy)
{
  ck_assert_int_eq (vcache_pick_copy (true, 4, true, 5), 1);
  ck_assert_int_eq (vcache_pick_copy (true, 6, true, 5), 0);
  /* A torn newer copy falls back to the older durable one. */
  ck_assert_int_eq (vcache_pick_copy (true, 4, false, 5), 0);
  ck_assert_int_eq (vcache_pick_copy (false, 9, true, 5), 1);
  ck_assert_int_eq (vcache_pick_copy (false, 0, false, 0), -1);
}
END_TEST

START_TEST (geometry_fits)
{
  struct vcache_geom g;
  uint64_t sizes[] = { 1 << 20, 16 << 20, 1ULL << 30, 3000000 };

  for (unsigned i = 0; i < 4; i++)
    {
      ck_assert_int_eq (vcache_geometry (sizes[i], 65536, &g), 0);
      ck_assert_uint_ge (g.n_md_blocks * (uint64_t)VCACHE_ENTRIES_PER_MD,
                         g.n_slots);
      ck_assert_uint_ge (g.data_offset,
                         (2 + 2 * (uint64_t)g.n_md_blocks) * VCACHE_REC_SIZE);
      ck_assert_uint_eq (g.data_offset % 65536, 0);
      ck_assert_uint_le (g.data_offset + (uint64_t)g.n_slots * 65536, sizes[i]);
      /* Not wasteful: one more slot would not fit. */
      ck_assert_uint_gt (g.data_offset + (uint64_t)(g.n_slots + 2) * 65536,
                         sizes[i]);
    }
  ck_assert_int_eq (vcache_geometry (65536, 65536, &g), -1);
}
END_TEST

START_TEST (blank_record)
{
  unsigned char rec[VCACHE_REC_SIZE] = { 0 };

  ck_assert (vcache_rec_is_blank (rec));
  rec[4095] = 1;
  ck_assert (!vcache_rec_is_blank (rec));
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("vaio-cache-meta");
  TCase *tc = tcase_create ("meta");
  SRunner *sr;
  int failed;

  tcase_add_test (tc, super_round_trip);
  tcase_add_test (tc, super_any_flipped_byte_detected);
  tcase_add_test (tc, super_bad_magic_named);
  tcase_add_test (tc, md_round_trip);
  tcase_add_test (tc, md_wrong_place_and_count_rejected);
  tcase_add_test (tc, md_corrupt_entry_detected);
  tcase_add_test (tc, pick_newest_valid_copy);
  tcase_add_test (tc, geometry_fits);
  tcase_add_test (tc, blank_record);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

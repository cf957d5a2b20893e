/* vaio-crypt unit tests: LUKS1 header codec, keyslots, and corrupt or
 * truncated headers (each must give a clear error, never a key).
 * Images live in memory: a 2 MiB header area plus 64 KiB of payload.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "luks.h"

#define IMG_SIZE (2 * 1024 * 1024 + 65536)

struct mem_image
{
  uint8_t *data;
  size_t size;
};

static int
mem_read (void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct mem_image *m = opaque;

  if (offset + count > m->size)
    {
      errno = EIO;
      return -1;
    }
  memcpy (buf, m->data + offset, count);
  return 0;
}

static int
mem_write (void *opaque, const void *buf, size_t count, uint64_t offset)
{
  struct mem_image *m = opaque;

  if (offset + count > m->size)
    {
      errno = ENOSPC;
      return -1;
    }
  memcpy (m->data + offset, buf, count);
  return 0;
}

static const uint8_t pass1[] = "correct horse";
static const uint8_t pass2[] = "battery staple";

static struct mem_image img;
static struct luks_header hdr;
static uint8_t mk[LUKS_MAX_KEY_BYTES];
static char err[256];

/* A fresh image with pass1 in slot 0 (key_bytes 64, 1000 iterations). */
static void
setup (void)
{
  struct luks_format_params p = { .key_bytes = 64, .slot_iterations = 1000 };
  int slot;

  img.size = IMG_SIZE;
  img.data = calloc (1, img.size);
  ck_assert_ptr_nonnull (img.data);
  ck_assert_int_eq (luks_format_header (&p, &hdr, mk, err, sizeof err), 0);
  ck_assert_int_eq (luks_add_keyslot (&hdr, mk, pass1, sizeof pass1 - 1, -1,
                                      1000, mem_write, &img, &slot, err,
                                      sizeof err),
                    0);
  ck_assert_int_eq (slot, 0);
}

static void
teardown (void)
{
  free (img.data);
}

static int
decode (struct luks_header *h)
{
  return luks_header_decode (img.data, img.size, h, err, sizeof err);
}

START_TEST (format_layout_like_cryptsetup)
{
  struct luks_header h;

  ck_assert_int_eq (decode (&h), 0);
  ck_assert_str_eq (h.cipher_name, "aes");
  ck_assert_str_eq (h.cipher_mode, "xts-plain64");
  ck_assert_str_eq (h.hash_spec, "sha256");
  ck_assert_uint_eq (h.key_bytes, 64);
  /* cryptsetup's LUKS1 layout for 512-bit keys: slots every 504 sectors
   * from sector 8, payload at 4096.
   */
  ck_assert_uint_eq (h.payload_offset, 4096);
  for (unsigned i = 0; i < LUKS_NUM_KEYS; i++)
    {
      ck_assert_uint_eq (h.slots[i].key_material_offset, 8 + 504 * i);
      ck_assert_uint_eq (h.slots[i].stripes, 4000);
      ck_assert_uint_eq (h.slots[i].active,
                         i == 0 ? LUKS_KEY_ENABLED : LUKS_KEY_DISABLED);
    }
  ck_assert_uint_eq (h.slots[0].iterations, 1000);
  ck_assert_uint_eq (strlen (h.uuid), 36);
  ck_assert_int_eq (memcmp (img.data, "LUKS\xba\xbe\0\1", 8), 0);
}
END_TEST

START_TEST (encode_decode_byte_exact)
{
  struct luks_header h;
  uint8_t raw[LUKS_HEADER_SIZE];

  ck_assert_int_eq (decode (&h), 0);
  luks_header_encode (&h, raw);
  ck_assert_mem_eq (raw, img.data, LUKS_HEADER_SIZE);
}
END_TEST

START_TEST (unlock_right_and_wrong)
{
  uint8_t got[LUKS_MAX_KEY_BYTES];
  int slot = -1;

  ck_assert_int_eq (luks_unlock (&hdr, pass1, sizeof pass1 - 1, -1, mem_read,
                                 &img, got, &slot, err, sizeof err),
                    0);
  ck_assert_int_eq (slot, 0);
  ck_assert_mem_eq (got, mk, 64);

  memset (got, 0, sizeof got);
  errno = 0;
  ck_assert_int_eq (luks_unlock (&hdr, pass2, sizeof pass2 - 1, -1, mem_read,
                                 &img, got, &slot, err, sizeof err),
                    -1);
  ck_assert_int_eq (errno, EPERM);
  ck_assert_ptr_nonnull (strstr (err, "no LUKS keyslot opens"));
  /* The message never contains the passphrase. */
  ck_assert_ptr_null (strstr (err, (const char *)pass2));
  /* A slot that is not active. */
  ck_assert_int_eq (luks_unlock (&hdr, pass1, sizeof pass1 - 1, 3, mem_read,
                                 &img, got, &slot, err, sizeof err),
                    -1);
  ck_assert_ptr_nonnull (strstr (err, "keyslot 3 is not active"));
}
END_TEST

START_TEST (add_and_remove_keyslot)
{
  uint8_t got[LUKS_MAX_KEY_BYTES];
  uint8_t *material;
  struct luks_header h;
  int slot;

  ck_assert_int_eq (luks_add_keyslot (&hdr, mk, pass2, sizeof pass2 - 1, -1,
                                      1000, mem_write, &img, &slot, err,
                                      sizeof err),
                    0);
  ck_assert_int_eq (slot, 1);
  ck_assert_int_eq (decode (&h), 0);
  ck_assert_uint_eq (luks_active_slots (&h), 2);
  ck_assert_int_eq (luks_unlock (&h, pass2, sizeof pass2 - 1, -1, mem_read,
                                 &img, got, &slot, err, sizeof err),
                    0);
  ck_assert_int_eq (slot, 1);
  ck_assert_mem_eq (got, mk, 64);
  /* Slot 1 is taken now. */
  ck_assert_int_eq (luks_add_keyslot (&h, mk, pass2, sizeof pass2 - 1, 1, 1000,
                                      mem_write, &img, &slot, err, sizeof err),
                    -1);
  ck_assert_int_eq (errno, EEXIST);

  /* Remove slot 0: pass1 no longer opens, pass2 still does, and the old
   * key material is gone from the image.
   */
  material = malloc (128000);
  memcpy (material, img.data + 8 * 512, 128000);
  ck_assert_int_eq (
      luks_remove_keyslot (&h, 0, mem_write, &img, err, sizeof err), 0);
  ck_assert_int_ne (memcmp (material, img.data + 8 * 512, 128000), 0);
  free (material);
  ck_assert_int_eq (decode (&h), 0);
  ck_assert_uint_eq (h.slots[0].active, LUKS_KEY_DISABLED);
  ck_assert_int_eq (luks_unlock (&h, pass1, sizeof pass1 - 1, -1, mem_read,
                                 &img, got, &slot, err, sizeof err),
                    -1);
  ck_assert_int_eq (luks_unlock (&h, pass2, sizeof pass2 - 1, -1, mem_read,
                                 &img, got, &slot, err, sizeof err),
                    0);
  ck_assert_int_eq (
      luks_remove_keyslot (&h, 0, mem_write, &img, err, sizeof err), -1);
}
END_TEST

START_TEST (aes128_xts_256bit_keys)
{
  struct luks_format_params p
      = { .key_bytes = 32, .slot_iterations = 1000, .hash = "sha1" };
  uint8_t key[LUKS_MAX_KEY_BYTES], got[LUKS_MAX_KEY_BYTES];
  struct luks_header h, d;
  int slot;

  memset (img.data, 0, img.size);
  ck_assert_int_eq (luks_format_header (&p, &h, key, err, sizeof err), 0);
  ck_assert_uint_eq (h.payload_offset, 4096);
  ck_assert_uint_eq (h.slots[1].key_material_offset, 8 + 256);
  ck_assert_int_eq (luks_add_keyslot (&h, key, pass1, sizeof pass1 - 1, 5, 1000,
                                      mem_write, &img, &slot, err, sizeof err),
                    0);
  ck_assert_int_eq (decode (&d), 0);
  ck_assert_str_eq (d.hash_spec, "sha1");
  ck_assert_int_eq (luks_unlock (&d, pass1, sizeof pass1 - 1, -1, mem_read,
                                 &img, got, &slot, err, sizeof err),
                    0);
  ck_assert_int_eq (slot, 5);
  ck_assert_mem_eq (got, key, 32);
}
END_TEST

/* Corrupt one thing in a copy of the header; decode must fail with a
 * message containing `want`.
 */
static void
expect_corrupt (size_t off, const void *bytes, size_t n, uint64_t size,
                const char *want)
{
  uint8_t raw[LUKS_HEADER_SIZE];
  struct luks_header h;

  memcpy (raw, img.data, sizeof raw);
  memcpy (raw + off, bytes, n);
  err[0] = '\0';
  ck_assert_int_eq (luks_header_decode (raw, size, &h, err, sizeof err), -1);
  if (strstr (err, want) == NULL)
    ck_abort_msg ("offset %zu: error '%s' does not mention '%s'", off, err,
                  want);
}

START_TEST (corrupt_headers_rejected)
{
  static const uint8_t be_48[4] = { 0, 0, 0, 48 };
  static const uint8_t be_zero[4] = { 0 };
  static const uint8_t be_huge[4] = { 0x7f, 0, 0, 0 };
  static const uint8_t be_bad_state[4] = { 0x12, 0x34, 0x56, 0x78 };
  static const uint8_t be_sector_20[4] = { 0, 0, 0, 20 };
  static const uint8_t be_sector_1[4] = { 0, 0, 0, 1 };
  uint8_t name[32];

  expect_corrupt (0, "LUKX", 4, IMG_SIZE, "bad magic");
  expect_corrupt (6, "\0\2", 2, IMG_SIZE, "LUKS version 2");
  memset (name, 'a', sizeof name);
  expect_corrupt (8, name, 32, IMG_SIZE, "unterminated");
  expect_corrupt (8, "twofish", 8, IMG_SIZE, "not supported");
  expect_corrupt (40, "cbc-essiv:sha256", 17, IMG_SIZE, "not supported");
  expect_corrupt (72, "nohash", 7, IMG_SIZE, "hash 'nohash'");
  expect_corrupt (108, be_48, 4, IMG_SIZE, "key size 48");
  expect_corrupt (104, be_huge, 4, IMG_SIZE, "beyond the end");
  expect_corrupt (104, be_zero, 4, IMG_SIZE, "detached");
  expect_corrupt (164, be_zero, 4, IMG_SIZE, "0 iterations");
  /* keyslot 0 state, its iterations, and its material offset */
  expect_corrupt (208, be_bad_state, 4, IMG_SIZE, "invalid state");
  expect_corrupt (212, be_zero, 4, IMG_SIZE, "0 iterations and");
  expect_corrupt (208 + 40, be_sector_1, 4, IMG_SIZE, "outside the header");
  expect_corrupt (208 + 40, be_sector_20, 4, IMG_SIZE, "overlap");
  /* Truncated images: shorter than the header, shorter than the payload
   * offset.
   */
  expect_corrupt (0, "L", 1, 100, "too small");
  expect_corrupt (0, "L", 1, 4096 * 512 - 1, "truncated");
}
END_TEST

/* Key material or digest damage cannot be told from a wrong passphrase
 * in LUKS1: it must still fail, never return a wrong key.
 */
START_TEST (corrupt_key_material_or_digest)
{
  uint8_t got[LUKS_MAX_KEY_BYTES];
  struct luks_header h;
  int slot;

  img.data[8 * 512 + 1000] ^= 0x01;
  ck_assert_int_eq (decode (&h), 0);
  ck_assert_int_eq (luks_unlock (&h, pass1, sizeof pass1 - 1, -1, mem_read,
                                 &img, got, &slot, err, sizeof err),
                    -1);
  ck_assert_ptr_nonnull (strstr (err, "corrupt key material"));
  img.data[8 * 512 + 1000] ^= 0x01;
  img.data[112] ^= 0x80; /* mk digest */
  ck_assert_int_eq (decode (&h), 0);
  ck_assert_int_eq (luks_unlock (&h, pass1, sizeof pass1 - 1, -1, mem_read,
                                 &img, got, &slot, err, sizeof err),
                    -1);
  /* Key material beyond a truncated image: an I/O error, reported as such. */
  img.data[112] ^= 0x80;
  ck_assert_int_eq (decode (&h), 0);
  img.size = 8 * 512 + 100;
  ck_assert_int_eq (luks_unlock (&h, pass1, sizeof pass1 - 1, -1, mem_read,
                                 &img, got, &slot, err, sizeof err),
                    -1);
  ck_assert_ptr_nonnull (strstr (err, "reading keyslot 0"));
}
END_TEST

START_TEST (format_rejects_bad_params)
{
  struct luks_format_params p = { .key_bytes = 48, .slot_iterations = 1000 };
  struct luks_header h;
  uint8_t key[LUKS_MAX_KEY_BYTES];

  ck_assert_int_eq (luks_format_header (&p, &h, key, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "256 or 512"));
  p.key_bytes = 64;
  p.hash = "md99";
  ck_assert_int_eq (luks_format_header (&p, &h, key, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "md99"));
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("luks-header");
  TCase *tc = tcase_create ("header");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, format_layout_like_cryptsetup);
  tcase_add_test (tc, encode_decode_byte_exact);
  tcase_add_test (tc, unlock_right_and_wrong);
  tcase_add_test (tc, add_and_remove_keyslot);
  tcase_add_test (tc, aes128_xts_256bit_keys);
  tcase_add_test (tc, corrupt_headers_rejected);
  tcase_add_test (tc, corrupt_key_material_or_digest);
  tcase_add_test (tc, format_rejects_bad_params);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

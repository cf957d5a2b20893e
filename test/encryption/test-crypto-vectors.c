/* vaio-crypt unit tests: the cipher and key derivation against published
 * vectors, and the anti-forensic splitter.
 *   - XTS: IEEE Std 1619-2007 Annex B vectors 2, 3 (32-byte units, whole
 *     ciphertext) and 4, 10 (512-byte units: the first 32 bytes, which in
 *     XTS depend only on the first two blocks and the tweak).
 *   - PBKDF2-HMAC-SHA256: the RFC 6070 inputs with their SHA-256 outputs
 *     (as published with RFC 7914 / widely reproduced).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "luks.h"
#include "xts.h"

static void
unhex (const char *hex, uint8_t *out, size_t n)
{
  ck_assert_uint_eq (strlen (hex), 2 * n);
  for (size_t i = 0; i < n; i++)
    {
      unsigned v;
      ck_assert_int_eq (sscanf (hex + 2 * i, "%2x", &v), 1);
      out[i] = (uint8_t)v;
    }
}

/* One IEEE 1619 data unit ciphered by the sector loop with a tweak of
 * `sector`: exactly what plain64 does.  XTS_SECTOR-sized units only, so
 * short vectors are checked through EVP directly with the same IV rule.
 */
static void
xts_unit (const uint8_t *key, size_t key_len, uint64_t sector,
          const uint8_t *in, uint8_t *out, size_t len, bool enc)
{
  if (len % XTS_SECTOR == 0)
    {
      ck_assert_int_eq (
          xts_crypt_oneshot (key, key_len, enc, out, in, len, sector), 0);
      return;
    }
  uint8_t iv[16] = { 0 };
  int outl;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new ();

  for (unsigned i = 0; i < 8; i++)
    iv[i] = (uint8_t)(sector >> (8 * i));
  ck_assert_int_eq (
      EVP_CipherInit_ex (ctx, xts_cipher (key_len), NULL, key, iv, enc), 1);
  ck_assert_int_eq (EVP_CipherUpdate (ctx, out, &outl, in, (int)len), 1);
  EVP_CIPHER_CTX_free (ctx);
}

START_TEST (xts_ieee1619_vector2_3)
{
  static const struct
  {
    const char *key, *ctx;
  } v[] = {
    { "1111111111111111111111111111111122222222222222222222222222222222",
      "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0" },
    { "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f022222222222222222222222222222222",
      "af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89" },
  };
  uint8_t key[32], want[32], ptx[32], out[32], back[32];

  memset (ptx, 0x44, sizeof ptx);
  for (size_t i = 0; i < 2; i++)
    {
      unhex (v[i].key, key, 32);
      unhex (v[i].ctx, want, 32);
      xts_unit (key, 32, 0x3333333333ULL, ptx, out, 32, true);
      ck_assert_mem_eq (out, want, 32);
      xts_unit (key, 32, 0x3333333333ULL, out, back, 32, false);
      ck_assert_mem_eq (back, ptx, 32);
    }
}
END_TEST

static void
check_512 (const char *k1, const char *k2, size_t half, uint64_t seq,
           const char *want_prefix)
{
  uint8_t key[64], ptx[512], out[512], back[512], want[32];
  char hex[129];

  snprintf (hex, sizeof hex, "%s%s", k1, k2);
  unhex (hex, key, 2 * half);
  for (size_t i = 0; i < sizeof ptx; i++)
    ptx[i] = (uint8_t)i;
  unhex (want_prefix, want, 32);
  xts_unit (key, 2 * half, seq, ptx, out, sizeof out, true);
  ck_assert_mem_eq (out, want, 32);
  xts_unit (key, 2 * half, seq, out, back, sizeof out, false);
  ck_assert_mem_eq (back, ptx, sizeof ptx);
}

START_TEST (xts_ieee1619_vector4_aes128_512)
{
  check_512 ("27182818284590452353602874713526",
             "31415926535897932384626433832795", 16, 0,
             "27a7479befa1d476489f308cd4cfa6e2"
             "a96e4bbe3208ff25287dd3819616e89c");
}
END_TEST

START_TEST (xts_ieee1619_vector10_aes256_512)
{
  check_512 ("2718281828459045235360287471352662497757247093699959574966967627",
             "3141592653589793238462643383279502884197169399375105820974944592",
             32, 0xff,
             "1c3b3a102f770386e4836c99e370cf9b"
             "ea00803f5e482357a4ae12d414a3e63b");
}
END_TEST

/* The per-thread engine must give what independent one-shot calls give,
 * sector by sector (plain64 numbering across a multi-sector request), on
 * the direct provider path and on the EVP path, for both key sizes.
 */
static void
check_engine (size_t key_len, bool direct)
{
  uint8_t key[64], in[64 * XTS_SECTOR], a[sizeof in], b[XTS_SECTOR];
  struct xts_engine e;

  for (size_t i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(i * 7 + 1);
  for (size_t i = 0; i < sizeof in; i++)
    in[i] = (uint8_t)(i * 13 + i / 512);
  ck_assert_int_eq (xts_engine_init (&e, key, key_len), 0);
  if (direct)
    /* Debian 12's OpenSSL default provider has the entry points: the
     * fast path must be the one taken, not a silent fallback.
     */
    ck_assert (e.direct);
  else
    e.direct = false;
  ck_assert_int_eq (
      xts_engine_crypt (&e, true, a, in, sizeof in, UINT64_C (0x1234567890)),
      0);
  for (unsigned s = 0; s < sizeof in / XTS_SECTOR; s++)
    {
      ck_assert_int_eq (xts_crypt_oneshot (key, key_len, true, b,
                                           in + s * XTS_SECTOR, XTS_SECTOR,
                                           UINT64_C (0x1234567890) + s),
                        0);
      ck_assert_mem_eq (a + s * XTS_SECTOR, b, XTS_SECTOR);
    }
  /* Decrypt in place with the same thread's other context. */
  ck_assert_int_eq (
      xts_engine_crypt (&e, false, a, a, sizeof a, UINT64_C (0x1234567890)), 0);
  ck_assert_mem_eq (a, in, sizeof in);
  /* Not a whole sector: refused, not silently truncated. */
  ck_assert_int_eq (xts_engine_crypt (&e, true, a, in, 100, 0), -1);
  ck_assert_int_eq (errno, EINVAL);
  xts_engine_free (&e);
}

START_TEST (xts_engine_matches_oneshot)
{
  check_engine (64, true);
  check_engine (32, true);
  check_engine (64, false);
  check_engine (32, false);
}
END_TEST

/* Each thread keys its own contexts: threads crypting at once with one
 * engine must each get the one-shot result.
 */
struct engine_thread
{
  struct xts_engine *e;
  uint64_t sector;
  bool ok;
};

static void *
engine_thread_run (void *p)
{
  struct engine_thread *t = p;
  uint8_t in[8 * XTS_SECTOR], a[sizeof in], b[sizeof in];

  t->ok = true;
  for (int round = 0; round < 200 && t->ok; round++)
    {
      for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i + t->sector + (uint64_t)round);
      t->ok = xts_engine_crypt (t->e, true, a, in, sizeof in,
                                t->sector + (uint64_t)round)
                  == 0
              && xts_crypt_oneshot (t->e->key, t->e->key_len, true, b, in,
                                    sizeof in, t->sector + (uint64_t)round)
                     == 0
              && memcmp (a, b, sizeof a) == 0
              && xts_engine_crypt (t->e, false, a, a, sizeof a,
                                   t->sector + (uint64_t)round)
                     == 0
              && memcmp (a, in, sizeof a) == 0;
    }
  return NULL;
}

START_TEST (xts_engine_threads)
{
  uint8_t key[64];
  struct xts_engine e;
  pthread_t th[4];
  struct engine_thread t[4];

  for (size_t i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(i * 5 + 3);
  ck_assert_int_eq (xts_engine_init (&e, key, sizeof key), 0);
  for (unsigned i = 0; i < 4; i++)
    {
      t[i] = (struct engine_thread){ .e = &e, .sector = i * 100000 };
      ck_assert_int_eq (pthread_create (&th[i], NULL, engine_thread_run, &t[i]),
                        0);
    }
  for (unsigned i = 0; i < 4; i++)
    {
      pthread_join (th[i], NULL);
      ck_assert (t[i].ok);
    }
  xts_engine_free (&e);
}
END_TEST

static void
check_pbkdf2 (const char *pass, size_t plen, const char *salt, size_t slen,
              int iter, const char *want_hex)
{
  size_t n = strlen (want_hex) / 2;
  uint8_t want[64], out[64];

  unhex (want_hex, want, n);
  ck_assert_int_eq (PKCS5_PBKDF2_HMAC (pass, (int)plen,
                                       (const unsigned char *)salt, (int)slen,
                                       iter, EVP_sha256 (), (int)n, out),
                    1);
  ck_assert_mem_eq (out, want, n);
}

START_TEST (pbkdf2_sha256_vectors)
{
  check_pbkdf2 (
      "password", 8, "salt", 4, 1,
      "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
  check_pbkdf2 (
      "password", 8, "salt", 4, 2,
      "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43");
  check_pbkdf2 (
      "password", 8, "salt", 4, 4096,
      "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
  check_pbkdf2 (
      "passwordPASSWORDpassword", 24, "saltSALTsaltSALTsaltSALTsaltSALTsalt",
      36, 4096,
      "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1"
      "c635518c7dac47e9");
  check_pbkdf2 ("pass\0word", 9, "sa\0lt", 5, 4096,
                "89b69d0516f829893c696226650a8687");
}
END_TEST

START_TEST (af_split_merge_roundtrip)
{
  const char *hashes[] = { "sha1", "sha256", "sha512" };
  uint8_t key[64], back[64];
  uint8_t *split = malloc (64 * LUKS_STRIPES);

  for (size_t i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(0xa5 ^ i);
  for (size_t h = 0; h < 3; h++)
    for (size_t len = 32; len <= 64; len += 32)
      {
        memset (back, 0, sizeof back);
        ck_assert_int_eq (
            luks_af_split (key, split, len, LUKS_STRIPES, hashes[h]), 0);
        ck_assert_int_eq (
            luks_af_merge (split, back, len, LUKS_STRIPES, hashes[h]), 0);
        ck_assert_mem_eq (back, key, len);
        /* Destroying one stripe destroys the key. */
        split[len * 100] ^= 1;
        ck_assert_int_eq (
            luks_af_merge (split, back, len, LUKS_STRIPES, hashes[h]), 0);
        ck_assert_int_ne (memcmp (back, key, len), 0);
      }
  ck_assert_int_eq (luks_af_split (key, split, 32, LUKS_STRIPES, "nohash"), -1);
  free (split);
}
END_TEST

/* A hand-computed AF merge with 2 stripes and sha256, so the splitter is
 * checked against the definition and not only against itself:
 * merge = s1 XOR H(be32(0) || s0[0..32)) ...
 */
START_TEST (af_merge_definition)
{
  uint8_t s[2 * 32], out[32], d[32], want[32];
  uint8_t in[4 + 32] = { 0, 0, 0, 0 };

  for (size_t i = 0; i < sizeof s; i++)
    s[i] = (uint8_t)i;
  memcpy (in + 4, s, 32);
  ck_assert_int_eq (EVP_Digest (in, sizeof in, d, NULL, EVP_sha256 (), NULL),
                    1);
  for (size_t i = 0; i < 32; i++)
    want[i] = s[32 + i] ^ d[i];
  ck_assert_int_eq (luks_af_merge (s, out, 32, 2, "sha256"), 0);
  ck_assert_mem_eq (out, want, 32);
}
END_TEST

int
main (void)
{
  Suite *s = suite_create ("crypto-vectors");
  TCase *tc = tcase_create ("vectors");
  SRunner *sr;
  int failed;

  tcase_add_test (tc, xts_ieee1619_vector2_3);
  tcase_add_test (tc, xts_ieee1619_vector4_aes128_512);
  tcase_add_test (tc, xts_ieee1619_vector10_aes256_512);
  tcase_add_test (tc, xts_engine_matches_oneshot);
  tcase_add_test (tc, xts_engine_threads);
  tcase_add_test (tc, pbkdf2_sha256_vectors);
  tcase_add_test (tc, af_split_merge_roundtrip);
  tcase_add_test (tc, af_merge_definition);
  suite_add_tcase (s, tc);
  sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

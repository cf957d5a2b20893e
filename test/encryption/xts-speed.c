/* xts-speed: the cipher engine's own throughput on one core, the EVP path
 * against the provider's functions called directly (make bench prints it
 * beside `openssl speed`).  1 MiB requests of 512-byte plain64 sectors,
 * decrypted in place, for about a second each.
 *
 * Usage: xts-speed [SECONDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xts.h"

#define REQUEST (1024 * 1024)

static double
now_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* MB/s of decryption through one engine path. */
static double
engine_mbps (bool direct, double seconds, uint8_t *buf)
{
  uint8_t key[64];
  struct xts_engine e;
  double t0, t;
  uint64_t n = 0;

  for (size_t i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(i * 11 + 5);
  if (xts_engine_init (&e, key, sizeof key) == -1)
    {
      perror ("xts-speed: engine");
      exit (1);
    }
  if (direct && !e.direct)
    {
      fprintf (stderr, "xts-speed: the direct path is not available\n");
      exit (1);
    }
  e.direct = direct;
  t0 = now_s ();
  do
    {
      if (xts_engine_crypt (&e, false, buf, buf, REQUEST, n * (REQUEST / 512))
          == -1)
        {
          perror ("xts-speed: crypt");
          exit (1);
        }
      n++;
    }
  while ((t = now_s () - t0) < seconds);
  xts_engine_free (&e);
  return (double)n * REQUEST / 1e6 / t;
}

int
main (int argc, char **argv)
{
  double seconds = argc > 1 ? atof (argv[1]) : 1.0;
  uint8_t *buf = aligned_alloc (4096, REQUEST);
  double evp, direct;

  if (buf == NULL)
    {
      perror ("xts-speed");
      return 1;
    }
  memset (buf, 0x5a, REQUEST);
  evp = engine_mbps (false, seconds, buf);
  direct = engine_mbps (true, seconds, buf);
  printf ("vaio-crypt engine, aes-256-xts, 1 MiB of 512-byte sectors, one "
          "core:\n");
  printf ("  through EVP (IV reset per sector)   %8.0f MB/s\n", evp);
  printf ("  provider functions (the default)    %8.0f MB/s  (%.2fx)\n", direct,
          direct / evp);
  free (buf);
  return 0;
}

/* verify-image: check a disk image (a backing image or a replica) against
 * the console log of a vaio-nbd test guest (test/guest/guest-init.sh).
 *
 *   verify-image [-d DISK] [-u] [-q] IMAGE CONSOLE_LOG
 *
 * IMAGE is a file, or an NBD URI (nbd://..., nbd+unix:///?socket=...)
 * read with libnbd: an encrypted image is verified as the guest sees it
 * by serving it through vaio-crypt (nbdkit --filter=...vaio-crypt...
 * --run 'verify-image "$uri" LOG'), a running chain through its socket.
 *
 * For DISK (default vda) the log must hold the guest's START line, one
 * FINAL line for each block 0..M-1 and the DISK summary line.  Every block
 * must hold exactly the content the guest wrote last: the header and body
 * that guest-init.sh derives from (disk, block, seq, seed).  A FINAL seq of
 * 0 means never written: the block must be all zeros (-u: not checked).
 * A FINAL line with a second seq (a write that failed) accepts either.
 *
 * Exit 0: every block matches; 1: a mismatch (each is reported, with what
 * the block holds instead); 2: usage, I/O or log errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>
#include <openssl/evp.h>

#define BLOCK      4096
#define HEADER     128
#define MAX_BLOCKS (1u << 20)

struct final
{
  bool seen;
  unsigned long seq, alt; /* alt 0: none */
};

static const char *disk = "vda";
static char seed[64];
static struct final *fin; /* FINAL state, one per block */
static char *line;        /* getline buffer */

static void
free_all (void)
{
  free (fin);
  free (line);
}

static void
md5_hex (const unsigned char *data, size_t len, char out[33])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;

  if (!EVP_Digest (data, len, md, &mdlen, EVP_md5 (), NULL) || mdlen != 16)
    {
      fprintf (stderr, "verify-image: MD5 failed\n");
      exit (2);
    }
  for (unsigned i = 0; i < 16; i++)
    snprintf (out + 2 * i, 3, "%02x", md[i]);
}

/* The block guest-init.sh writes for (disk, block, seq); seq 0: zeros. */
static void
expected_block (const char *dname, unsigned long block, unsigned long seq,
                unsigned char out[BLOCK])
{
  char unit[160], hdr[HEADER], sum[33];
  size_t ulen, pos;

  memset (out, 0, BLOCK);
  if (seq == 0)
    return;
  ulen = (size_t)snprintf (unit, sizeof unit,
                           "vaio disk=%s block=%lu seq=%lu seed=%s\n", dname,
                           block, seq, seed);
  for (pos = HEADER; pos < BLOCK; pos += ulen)
    memcpy (out + pos, unit, pos + ulen <= BLOCK ? ulen : BLOCK - pos);
  md5_hex (out + HEADER, BLOCK - HEADER, sum);
  char text[256];
  int len = snprintf (text, sizeof text,
                      "VAIOBLK disk=%s block=%lu seq=%lu seed=%s md5=%s", dname,
                      block, seq, seed, sum);
  if (len < 0 || len > HEADER - 1)
    {
      fprintf (stderr,
               "verify-image: header for block %lu longer than %d bytes\n",
               block, HEADER - 1);
      exit (2);
    }
  memset (hdr, ' ', HEADER - 1);
  memcpy (hdr, text, (size_t)len);
  hdr[HEADER - 1] = '\n';
  memcpy (out, hdr, HEADER);
}

/* What a block holds, for the report. */
static void
describe (const unsigned char *b, char *out, size_t n)
{
  size_t i;
  bool zero = true;

  for (i = 0; i < BLOCK; i++)
    if (b[i])
      {
        zero = false;
        break;
      }
  if (zero)
    {
      snprintf (out, n, "zeros");
      return;
    }
  if (memcmp (b, "VAIOBLK ", 8) != 0)
    {
      snprintf (out, n, "not a guest block (first bytes %02x %02x %02x %02x)",
                b[0], b[1], b[2], b[3]);
      return;
    }
  for (i = 0; i < HEADER - 1 && i + 1 < n && b[i] >= ' ' && b[i] < 127; i++)
    out[i] = (char)b[i];
  while (i > 0 && out[i - 1] == ' ')
    i--;
  out[i] = '\0';
  unsigned char want[BLOCK];
  unsigned long blk, seq;
  char dname[32];
  if (sscanf (out, "VAIOBLK disk=%31s block=%lu seq=%lu", dname, &blk, &seq)
      == 3)
    {
      expected_block (dname, blk, seq, want);
      if (memcmp (want, b, BLOCK) != 0)
        snprintf (out + i, n - i,
                  " (torn or corrupt: body does not match header)");
    }
}

/* Where the blocks come from: a file (fd) or an NBD export (nbd). */
struct source
{
  const char *name;
  int fd;
  struct nbd_handle *nbd;
  uint64_t size; /* NBD only */
};

static bool
is_uri (const char *s)
{
  return strncmp (s, "nbd", 3) == 0 && strstr (s, "://") != NULL;
}

/* 0 on success; on failure the error is printed. */
static int
source_open (struct source *src, const char *name)
{
  *src = (struct source){ .name = name, .fd = -1 };
  if (!is_uri (name))
    {
      src->fd = open (name, O_RDONLY);
      if (src->fd < 0)
        {
          fprintf (stderr, "verify-image: %s: %s\n", name, strerror (errno));
          return -1;
        }
      return 0;
    }
  int64_t size;
  src->nbd = nbd_create ();
  if (!src->nbd || nbd_connect_uri (src->nbd, name) == -1
      || (size = nbd_get_size (src->nbd)) < 0)
    {
      fprintf (stderr, "verify-image: %s: %s\n", name, nbd_get_error ());
      return -1;
    }
  src->size = (uint64_t)size;
  return 0;
}

/* Read block b into buf; bytes past the end read as zeros (a sparse
 * image's EOF).  -1 on an I/O error (printed).
 */
static int
source_read (struct source *src, unsigned long b, unsigned char *buf)
{
  uint64_t off = (uint64_t)b * BLOCK;
  size_t got = 0;

  if (src->fd >= 0)
    {
      ssize_t r = pread (src->fd, buf, BLOCK, (off_t)off);
      if (r < 0)
        {
          fprintf (stderr, "verify-image: %s: block %lu: %s\n", src->name, b,
                   strerror (errno));
          return -1;
        }
      got = (size_t)r;
    }
  else if (off < src->size)
    {
      got = src->size - off < BLOCK ? (size_t)(src->size - off) : BLOCK;
      if (nbd_pread (src->nbd, buf, got, off, 0) == -1)
        {
          fprintf (stderr, "verify-image: %s: block %lu: %s\n", src->name, b,
                   nbd_get_error ());
          return -1;
        }
    }
  if (got < BLOCK)
    memset (buf + got, 0, BLOCK - got);
  return 0;
}

static void
source_close (struct source *src)
{
  if (src->fd >= 0)
    close (src->fd);
  if (src->nbd)
    {
      nbd_shutdown (src->nbd, 0);
      nbd_close (src->nbd);
    }
}

static void
usage (void)
{
  fprintf (stderr,
           "usage: verify-image [-d DISK] [-u] [-q] IMAGE CONSOLE_LOG\n");
  exit (2);
}

int
main (int argc, char **argv)
{
  bool check_unwritten = true, quiet = false;
  int opt;

  while ((opt = getopt (argc, argv, "d:uq")) != -1)
    {
      switch (opt)
        {
        case 'd':
          disk = optarg;
          break;
        case 'u':
          check_unwritten = false;
          break;
        case 'q':
          quiet = true;
          break;
        default:
          usage ();
        }
    }
  if (argc - optind != 2)
    usage ();
  const char *image = argv[optind], *logname = argv[optind + 1];

  atexit (free_all);
  FILE *log = fopen (logname, "r");
  if (!log)
    {
      fprintf (stderr, "verify-image: %s: %s\n", logname, strerror (errno));
      return 2;
    }
  unsigned long nblocks = 0;
  bool started = false, summary = false;
  size_t cap = 0;
  unsigned long lineno = 0;
  size_t dlen = strlen (disk);

  while (getline (&line, &cap, log) != -1)
    {
      lineno++;
      char *p = strstr (line, "VAIO-GUEST ");
      if (!p)
        continue;
      p += strlen ("VAIO-GUEST ");
      p[strcspn (p, "\r\n")] = '\0';
      if (strncmp (p, "START disk=", 11) == 0
          && strncmp (p + 11, disk, dlen) == 0 && p[11 + dlen] == ' ')
        {
          char s[64];
          unsigned long m;
          if (sscanf (p + 11 + dlen, " seed=%63s blocks=%lu", s, &m) != 2
              || m == 0 || m > MAX_BLOCKS)
            {
              fprintf (stderr, "verify-image: %s:%lu: bad START line\n",
                       logname, lineno);
              return 2;
            }
          if (started)
            {
              fprintf (stderr, "verify-image: %s: two START lines for %s\n",
                       logname, disk);
              return 2;
            }
          started = true;
          nblocks = m;
          snprintf (seed, sizeof seed, "%s", s);
          fin = calloc (nblocks, sizeof *fin);
          if (!fin)
            {
              perror ("calloc");
              return 2;
            }
        }
      else if (strncmp (p, "FINAL ", 6) == 0 && strncmp (p + 6, disk, dlen) == 0
               && p[6 + dlen] == ' ')
        {
          unsigned long b, s, a = 0;
          int n = sscanf (p + 6 + dlen, " %lu %lu %lu", &b, &s, &a);
          if (!started || n < 2 || b >= nblocks)
            {
              fprintf (stderr, "verify-image: %s:%lu: bad FINAL line: %s\n",
                       logname, lineno, p);
              return 2;
            }
          fin[b].seen = true;
          fin[b].seq = s;
          fin[b].alt = n == 3 ? a : 0;
        }
      else if (strncmp (p, "DISK ", 5) == 0 && strncmp (p + 5, disk, dlen) == 0
               && p[5 + dlen] == ' ')
        summary = true;
    }
  fclose (log);

  if (!started || !summary)
    {
      fprintf (
          stderr,
          "verify-image: %s: no complete run for disk %s (START %s, DISK %s)\n",
          logname, disk, started ? "found" : "missing",
          summary ? "found" : "missing");
      return 2;
    }
  for (unsigned long b = 0; b < nblocks; b++)
    if (!fin[b].seen)
      {
        fprintf (stderr, "verify-image: %s: no FINAL line for %s block %lu\n",
                 logname, disk, b);
        return 2;
      }

  struct source src;
  if (source_open (&src, image) == -1)
    return 2;
  unsigned long written = 0, checked = 0, bad = 0;
  for (unsigned long b = 0; b < nblocks; b++)
    {
      unsigned char got[BLOCK], want[BLOCK];
      if (source_read (&src, b, got) == -1)
        return 2;
      if (fin[b].seq)
        written++;
      if (fin[b].seq == 0 && fin[b].alt == 0 && !check_unwritten)
        continue;
      checked++;
      expected_block (disk, b, fin[b].seq, want);
      if (memcmp (got, want, BLOCK) == 0)
        continue;
      if (fin[b].alt)
        {
          expected_block (disk, b, fin[b].alt, want);
          if (memcmp (got, want, BLOCK) == 0)
            continue;
        }
      char what[HEADER + 80];
      describe (got, what, sizeof what);
      printf ("verify-image: %s %s block %lu: want seq %lu%s%.0lu, holds %s\n",
              image, disk, b, fin[b].seq, fin[b].alt ? " or " : "", fin[b].alt,
              what);
      bad++;
    }
  source_close (&src);
  if (!quiet || bad)
    printf ("verify-image: %s %s: %lu blocks checked (%lu written), %lu "
            "mismatched\n",
            image, disk, checked, written, bad);
  return bad ? 1 : 0;
}

/* vaio-nbd: `vaioctl apply --convert-encryption`.
 *
 * VMware attaches its encryption filter only to new disks: a filter
 * cannot tell the blocks it wrote from those written before it came.  A
 * conversion makes the image new.  While apply holds the disk (the old
 * chain paused, flushed, its cache destaged, then stopped), every
 * guest-visible byte is copied into <image>.converting in the other
 * format, and that file takes the image's name:
 *
 *   adding    <image> (plain) --nbdcopy--> [nbdkit vaio-crypt file
 *             <image>.converting], formatted LUKS1 beforehand with the new
 *             chain's key, its payload the size of the old image;
 *   removing  [nbdkit -r vaio-crypt file <image>] --nbdcopy-->
 *             <image>.converting (raw, the payload's size).
 *
 * vaio-crypt runs with the crypt-* parameters of the chain that is to
 * serve the image (adding) or that served it (removing), so the copy
 * reads and writes the image exactly as the guest does, and keys travel
 * as file paths, never in argv.  Until the new chain serves, the original
 * stays as <image>.pre-convert (a hard link), so a new chain that fails
 * to start is rolled back onto the same bytes.
 */
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "convert.h"
#include "dirsync.h"
#include "keysource.h"
#include "luks.h"
#include "supervise.h"

/* The key bytes of a new image: aes-256-xts, vaio-crypt format's default. */
#define NEW_KEY_BYTES 64
/* PBKDF2 time per unlock of the new keyslot, as vaio-crypt format. */
#define NEW_ITER_TIME_MS 1000

struct vaio_convert
{
  const struct vaio_plan_disk *p; /* borrowed: outlives the conversion */
  bool add;
  char *image; /* the image's real path */
  char *tmp;   /* <image>.converting */
  char *orig;  /* <image>.pre-convert */
  char *filter_so;
  char **words; /* the crypt-* parameters, without crypt-state-dir */
  size_t n_words;
  uint64_t copy_bytes; /* guest-visible size */
  uint64_t new_size;   /* the new image's size */
  uint64_t payload;    /* LUKS payload offset in bytes */
  struct stat st;      /* the original's mode and owner */
  bool repl_resync;    /* replication sees the image: its bytes change */
  bool swapped;        /* the new image has the image's name */
  char *stale_repl;    /* replication state moved aside by the conversion */
};

static bool
is_luks_filter (const char *name)
{
  return name
         && (strcmp (name, "vaio-crypt") == 0
             || strcmp (name, "nbdkit-luks") == 0);
}

static bool
has_prefix (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

void
vaio_convert_free (struct vaio_convert *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n_words; i++)
    free (c->words[i]);
  free (c->words);
  free (c->image);
  free (c->tmp);
  free (c->orig);
  free (c->filter_so);
  free (c->stale_repl);
  free (c);
}

/* The .so of the old chain's encryption filter: its --filter= word,
 * counted without nbdkit's pause filter (outermost, not in the chain).
 */
static const char *
old_filter_so (const struct vaio_convert_old *old)
{
  int k = 0;

  for (size_t i = 0; i < old->argc; i++)
    if (has_prefix (old->argv[i], "--filter=")
        && strcmp (old->argv[i], "--filter=pause") != 0 && k++ == old->enc_pos)
      return old->argv[i] + 9;
  return NULL;
}

static int
collect_words (struct vaio_convert *c, char *const *argv, size_t argc)
{
  c->words = calloc (argc + 1, sizeof *c->words);
  if (c->words == NULL)
    return -1;
  for (size_t i = 0; i < argc; i++)
    if (has_prefix (argv[i], "crypt-") && strchr (argv[i], '=')
        && !has_prefix (argv[i], "crypt-state-dir="))
      if ((c->words[c->n_words++] = strdup (argv[i])) == NULL)
        return -1;
  return 0;
}

/* The key source the crypt-* words name, with its secret read, and the
 * keyslot crypt-keyslot names (-1: any).
 */
static int
key_source_load (const struct vaio_convert *c, struct crypt_key_source *ks,
                 int *slot, char *err, size_t errlen)
{
  memset (ks, 0, sizeof *ks);
  ks->prefix = "crypt-";
  *slot = -1;
  for (size_t i = 0; i < c->n_words; i++)
    {
      const char *w = c->words[i], *eq = strchr (w, '=');
      char key[64];

      if ((size_t)(eq - w) >= sizeof key)
        continue;
      snprintf (key, sizeof key, "%.*s", (int)(eq - w), w);
      if (strcmp (key, "crypt-keyslot") == 0)
        {
          *slot = atoi (eq + 1);
          if (*slot < 0 || *slot >= LUKS_NUM_KEYS)
            {
              snprintf (err, errlen, "crypt-keyslot: must be 0-7, not %s",
                        eq + 1);
              return -1;
            }
        }
      else if (crypt_key_source_config (ks, key, eq + 1, err, errlen) == -1)
        return -1;
    }
  return crypt_key_source_complete (ks, err, errlen);
}

/* 1: the image is LUKS1, decoded into h; 0: it has no LUKS magic; -1: it
 * has one, but the header does not decode (err says why).
 */
static int
read_luks_header (const char *image, struct luks_header *h, char *err,
                  size_t errlen)
{
  uint8_t raw[LUKS_HEADER_SIZE];
  struct stat st;
  int fd = open (image, O_RDONLY | O_CLOEXEC), r = 0;

  if (fd == -1)
    {
      snprintf (err, errlen, "%s", strerror (errno));
      return -1;
    }
  if (fstat (fd, &st) == 0 && luks_fd_read (&fd, raw, sizeof raw, 0) == 0
      && memcmp (raw, LUKS_MAGIC, LUKS_MAGIC_LEN) == 0)
    r = luks_header_decode (raw, (uint64_t)st.st_size, h, err, errlen) == 0
            ? 1
            : -1;
  close (fd);
  return r;
}

/* The running chain's key still opens the image: checked before the disk
 * stops, not found out by the copy with the guest's I/O held.
 */
static int
check_unlock (const struct vaio_convert *c, const struct luks_header *h,
              char *err, size_t errlen)
{
  struct crypt_key_source ks;
  struct secret pass = { 0 };
  uint8_t mk[LUKS_MAX_KEY_BYTES];
  int slot, used, fd, r = -1;

  if (key_source_load (c, &ks, &slot, err, errlen) == 0
      && crypt_key_source_secret (&ks, h->uuid, &pass, err, errlen) == 0)
    {
      fd = open (c->image, O_RDONLY | O_CLOEXEC);
      if (fd == -1)
        snprintf (err, errlen, "%s", strerror (errno));
      else
        {
          char why[256];
          if (luks_unlock (h, pass.data, pass.len, slot, luks_fd_read, &fd, mk,
                           &used, why, sizeof why)
              == 0)
            r = 0;
          else
            snprintf (err, errlen, "%s does not open it: %s",
                      crypt_key_source_name (&ks), why);
          close (fd);
        }
    }
  OPENSSL_cleanse (mk, sizeof mk);
  secret_free (&pass);
  crypt_key_source_free (&ks);
  return r;
}

/* The key the new chain names can be read (adding), and where the payload
 * of a LUKS1 header made for it starts.
 */
static int
check_new_key (struct vaio_convert *c, char *err, size_t errlen)
{
  /* The layout only: no key derivation benchmark. */
  struct luks_format_params fp
      = { .key_bytes = NEW_KEY_BYTES, .slot_iterations = LUKS_MIN_ITERATIONS };
  struct crypt_key_source ks;
  struct luks_header h;
  uint8_t mk[LUKS_MAX_KEY_BYTES];
  int slot, r;

  r = key_source_load (c, &ks, &slot, err, errlen);
  crypt_key_source_free (&ks);
  if (r == 0 && (r = luks_format_header (&fp, &h, mk, err, errlen)) == 0)
    c->payload = (uint64_t)h.payload_offset * LUKS_SECTOR;
  OPENSSL_cleanse (mk, sizeof mk);
  return r;
}

static const char *
disk_dir (const char *path, char *buf, size_t len)
{
  snprintf (buf, len, "%s", path);
  return dirname (buf);
}

/* Room for the new image beside the old one: its size (a conversion
 * writes every byte: ciphertext of zeros is not zeros), plus 1/256 for
 * the filesystem's own metadata.
 */
static int
check_space (const struct vaio_convert *c, char *err, size_t errlen)
{
  char dir[PATH_MAX];
  struct statvfs sv;
  const char *d;
  uint64_t avail, need = c->new_size + c->new_size / 256;

  if (statvfs ((d = disk_dir (c->image, dir, sizeof dir)), &sv) == -1)
    {
      snprintf (err, errlen, "statvfs %s: %s", d, strerror (errno));
      return -1;
    }
  avail = (uint64_t)sv.f_bavail * sv.f_frsize;
  if (avail >= need)
    return 0;
  snprintf (err, errlen,
            "its filesystem (%s) has %" PRIu64 " bytes free; the new image "
            "%s needs %" PRIu64 " (%" PRIu64 " bytes, plus 1/256 for the "
            "filesystem's metadata)",
            d, avail, c->tmp, need, c->new_size);
  return -1;
}

/* Everything the conversion needs, checked before the disk stops. */
static int
plan_conversion (const struct vaio_plan_disk *p,
                 const struct vaio_convert_old *old, bool add, int new_pos,
                 const struct luks_header *h, struct vaio_convert **out,
                 struct vaio_diag *diag)
{
  struct vaio_convert *c = calloc (1, sizeof *c);
  const char *so = add ? p->filters[new_pos]->path : old_filter_so (old);
  char err[1024] = "";
  int enc_first;

  if (c == NULL)
    return -1;
  c->p = p;
  c->add = add;
  if ((c->image = realpath (p->disk->image, NULL)) == NULL)
    snprintf (err, sizeof err, "%s", strerror (errno));
  else if (stat (c->image, &c->st) == -1)
    snprintf (err, sizeof err, "%s", strerror (errno));
  else if (!S_ISREG (c->st.st_mode))
    snprintf (err, sizeof err,
              "not a regular file: a conversion writes a new image beside "
              "it and renames it over the old one");
  else if (so == NULL)
    snprintf (err, sizeof err, "the running chain names no encryption .so");
  else if (asprintf (&c->tmp, "%s.converting", c->image) == -1
           || asprintf (&c->orig, "%s.pre-convert", c->image) == -1
           || (c->filter_so = strdup (so)) == NULL
           || collect_words (c, add ? p->argv : old->argv,
                             add ? p->argc : old->argc)
                  == -1)
    snprintf (err, sizeof err, "out of memory");
  else if (access (c->orig, F_OK) == 0)
    snprintf (err, sizeof err,
              "%s exists, left by an interrupted conversion: see which of "
              "the two holds the disk's data and remove the other",
              c->orig);
  for (size_t i = 0; err[0] == '\0' && i < c->n_words; i++)
    if (has_prefix (c->words[i], "crypt-passphrase-fd=")
        || has_prefix (c->words[i], "crypt-key-fd="))
      snprintf (err, sizeof err,
                "its key comes from an inherited file descriptor (%s), which "
                "can be read only once and a conversion needs it again: name "
                "a passphrase file, key file or key store instead",
                c->words[i]);
  if (err[0] == '\0' && add)
    {
      c->copy_bytes = (uint64_t)c->st.st_size;
      if (c->copy_bytes == 0 || c->copy_bytes % LUKS_SECTOR != 0)
        snprintf (err, sizeof err,
                  "%" PRIu64 " bytes is not a whole number of 512-byte "
                  "sectors, which LUKS encrypts",
                  c->copy_bytes);
      else if (check_new_key (c, err, sizeof err) == 0)
        c->new_size = c->payload + c->copy_bytes;
    }
  else if (err[0] == '\0')
    {
      c->payload = (uint64_t)h->payload_offset * LUKS_SECTOR;
      c->copy_bytes = c->new_size = (uint64_t)c->st.st_size - c->payload;
      check_unlock (c, h, err, sizeof err);
    }
  if (err[0] == '\0')
    check_space (c, err, sizeof err);
  if (err[0] != '\0')
    {
      vaio_diag_add (diag, &p->disk->policy_loc,
                     "%s/%s: refusing to convert %s (--convert-encryption): "
                     "%s",
                     p->vm->name, p->disk->name, p->disk->image, err);
      vaio_convert_free (c);
      return -1;
    }
  /* A replication filter behind encryption (encryption first) ships the
   * image's bytes, which the conversion changes wholesale; one in front of
   * it (allow-cleartext-filters) ships the guest's, which stay the same.
   */
  enc_first = add ? new_pos == 0 && p->n_chain >= 2
                  : old->enc_pos == 0 && old->n_filters >= 2;
  for (size_t i = 0; i < p->n_chain; i++)
    if (p->chain[i] == VAIO_CLASS_REPLICATION && enc_first)
      c->repl_resync = true;
  *out = c;
  return 1;
}

/* A refusal of --convert-encryption for a filter that is not vaio-crypt. */
static void
refuse_other_filter (const struct vaio_plan_disk *p, bool add,
                     const char *filter, struct vaio_diag *diag)
{
  vaio_diag_add (diag, &p->disk->policy_loc,
                 "%s/%s: refusing to convert %s (--convert-encryption): it "
                 "converts to and from vaio-crypt's LUKS1 images only, and "
                 "the encryption filter %s is %s",
                 p->vm->name, p->disk->name, p->disk->image,
                 add ? "being added" : "being removed",
                 filter ? filter : "of unknown name");
}

/* Adding a LUKS filter to an image without a LUKS header: the filter
 * would refuse it once the old chain is gone.
 */
static void
refuse_no_header (const struct vaio_plan_disk *p, const char *filter, bool data,
                  struct vaio_diag *diag)
{
  bool ours = strcmp (filter, "vaio-crypt") == 0;

  vaio_diag_add (
      diag, &p->disk->policy_loc,
      "%s/%s: refusing to add encryption %s (%s): the image has no LUKS "
      "header, and %s serves LUKS images only%s",
      p->vm->name, p->disk->name,
      data ? "on a disk that holds data" : "to a plain disk", p->disk->image,
      filter,
      !ours  ? "; --convert-encryption converts to vaio-crypt images only"
      : data ? "; its data would be read as ciphertext: use "
               "--convert-encryption to encrypt it into a new LUKS image "
               "(--allow-encryption-change does not convert)"
             : "; format it with vaio-crypt format, or use "
               "--convert-encryption");
}

int
vaio_convert_check (const struct vaio_plan_disk *p,
                    const struct vaio_convert_old *old, bool convert,
                    struct vaio_convert **out, struct vaio_diag *diag)
{
  int new_pos = -1, luks;
  const char *filter;
  struct luks_header h;
  char err[512] = "";
  bool add;

  *out = NULL;
  for (size_t i = 0; i < p->n_chain; i++)
    if (p->chain[i] == VAIO_CLASS_ENCRYPTION)
      new_pos = (int)i;
  add = new_pos >= 0;
  filter = add ? p->filters[new_pos]->name : old->enc_filter;
  /* A third-party filter: an empty disk needs no conversion, and one
   * holding data cannot get it.
   */
  if (!is_luks_filter (filter))
    {
      if (!convert || !old->holds_data)
        return 0;
      refuse_other_filter (p, add, filter, diag);
      return -1;
    }
  luks = read_luks_header (p->disk->image, &h, err, sizeof err);
  if (add && luks != 0)
    return 0; /* already LUKS: the caller's rules decide */
  if (!add && !convert)
    return 0;
  if (add && (!convert || strcmp (filter, "vaio-crypt") != 0))
    {
      refuse_no_header (p, filter, old->holds_data, diag);
      return -1;
    }
  if (strcmp (filter, "vaio-crypt") != 0)
    {
      refuse_other_filter (p, add, filter, diag);
      return -1;
    }
  if (!add && luks != 1)
    {
      vaio_diag_add (diag, &p->disk->policy_loc,
                     "%s/%s: refusing to convert %s to plain: %s", p->vm->name,
                     p->disk->name, p->disk->image,
                     luks == 0 ? "it has no LUKS header" : err);
      return -1;
    }
  return plan_conversion (p, old, add, new_pos, &h, out, diag);
}

static const char *
direction (const struct vaio_convert *c)
{
  return c->add ? "plain to LUKS1 (vaio-crypt)" : "LUKS1 (vaio-crypt) to plain";
}

void
vaio_convert_describe (const struct vaio_convert *c, FILE *fp)
{
  const struct vaio_plan_disk *p = c->p;

  fprintf (fp,
           "%s/%s: convert %s from %s: copy %" PRIu64 " bytes (the "
           "guest-visible size) through vaio-crypt with",
           p->vm->name, p->disk->name, c->image, direction (c), c->copy_bytes);
  for (size_t i = 0; i < c->n_words; i++)
    fprintf (fp, " %s", c->words[i]);
  fprintf (fp,
           " into %s (%" PRIu64 " bytes), then rename it over the image; "
           "I/O is held during the copy\n",
           c->tmp, c->new_size);
  if (c->repl_resync)
    fprintf (fp,
             "%s/%s: replication ships the image's bytes, which change "
             "format: its state (%s/replication) would be moved aside and "
             "the replica fully resynchronised\n",
             p->vm->name, p->disk->name, p->state_dir);
}

/* A LUKS1 header (aes-xts-plain64, 512-bit key) in fd whose keyslot
 * (crypt-keyslot's, else 0) opens with the new chain's key.
 */
static int
format_luks (const struct vaio_convert *c, int fd, char *err, size_t errlen)
{
  struct luks_format_params fp = { .key_bytes = NEW_KEY_BYTES };
  struct crypt_key_source ks;
  struct secret pass = { 0 };
  struct luks_header h;
  uint8_t mk[LUKS_MAX_KEY_BYTES];
  int slot, used, r = -1;

  fp.slot_iterations = luks_benchmark_iterations ("sha256", NEW_ITER_TIME_MS);

  if (key_source_load (c, &ks, &slot, err, errlen) == 0
      && luks_format_header (&fp, &h, mk, err, errlen) == 0
      && crypt_key_source_secret (&ks, h.uuid, &pass, err, errlen) == 0)
    {
      if ((uint64_t)h.payload_offset * LUKS_SECTOR != c->payload)
        snprintf (err, errlen, "the LUKS payload offset changed");
      else if (luks_add_keyslot (&h, mk, pass.data, pass.len,
                                 slot >= 0 ? slot : 0, fp.slot_iterations,
                                 luks_fd_write, &fd, &used, err, errlen)
               == 0)
        r = 0;
    }
  OPENSSL_cleanse (mk, sizeof mk);
  secret_free (&pass);
  crypt_key_source_free (&ks);
  return r;
}

int
vaio_convert_prepare (struct vaio_convert *c)
{
  const struct vaio_plan_disk *p = c->p;
  char err[1024] = "";
  int fd;

  if (unlink (c->tmp) == -1 && errno != ENOENT)
    snprintf (err, sizeof err, "removing the stale %s: %s", c->tmp,
              strerror (errno));
  else if ((fd = open (c->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600))
           == -1)
    snprintf (err, sizeof err, "%s: %s", c->tmp, strerror (errno));
  else
    {
      if (ftruncate (fd, (off_t)c->new_size) == -1)
        snprintf (err, sizeof err, "%s: %s", c->tmp, strerror (errno));
      /* Reserve the blocks now, while the old chain serves: ENOSPC here
       * is a refusal, not a copy that fails with the disk held.  A
       * filesystem without fallocate keeps the file sparse (statvfs
       * counted the space).
       */
      else if (fallocate (fd, 0, 0, (off_t)c->new_size) == -1
               && errno != EOPNOTSUPP)
        snprintf (err, sizeof err, "%s: reserving %" PRIu64 " bytes: %s",
                  c->tmp, c->new_size, strerror (errno));
      else if (c->add && format_luks (c, fd, err, sizeof err) == -1)
        ;
      else if (fsync (fd) == -1)
        snprintf (err, sizeof err, "%s: %s", c->tmp, strerror (errno));
      if (close (fd) == -1 && err[0] == '\0')
        snprintf (err, sizeof err, "%s: %s", c->tmp, strerror (errno));
      if (err[0] != '\0')
        unlink (c->tmp);
    }
  if (err[0] == '\0')
    return 0;
  fprintf (stderr,
           "vaioctl: %s/%s: cannot prepare the conversion of %s: %s; not "
           "swapped, the old chain still serves\n",
           p->vm->name, p->disk->name, c->image, err);
  return -1;
}

void
vaio_convert_abandon (struct vaio_convert *c)
{
  unlink (c->tmp);
}

/* argv for nbdcopy: from the image through nbdkit serving the new file
 * with vaio-crypt (adding), or from nbdkit serving the image read-only
 * with vaio-crypt into the new file (removing: a file vaio_convert_prepare
 * made, which reads as zeros, so zeros need not be written).  nbdkit gets its
 * socket from nbdcopy (socket activation) and dies with it.  NULL: out of
 * memory.
 */
static char **
copy_argv (const struct vaio_convert *c, char **filter_arg, char **file_arg)
{
  char **av = calloc (16 + c->n_words, sizeof *av);
  size_t n = 0;

  if (av == NULL || asprintf (filter_arg, "--filter=%s", c->filter_so) == -1
      || asprintf (file_arg, "file=%s", c->add ? c->tmp : c->image) == -1)
    {
      free (av);
      return NULL;
    }
  av[n++] = (char *)"nbdcopy";
  av[n++] = (char *)"--flush";
  av[n++] = (char *)"--progress=3";
  if (!c->add)
    av[n++] = (char *)"--destination-is-zero";
  av[n++] = (char *)"--";
  if (c->add)
    av[n++] = c->image;
  av[n++] = (char *)"[";
  av[n++] = (char *)"nbdkit";
  if (!c->add)
    av[n++] = (char *)"-r";
  av[n++] = (char *)"--exit-with-parent";
  av[n++] = *filter_arg;
  av[n++] = (char *)"file";
  av[n++] = *file_arg;
  for (size_t i = 0; i < c->n_words; i++)
    av[n++] = c->words[i];
  av[n++] = (char *)"]";
  if (!c->add)
    av[n++] = c->tmp;
  return av;
}

/* nbdcopy as a child whose progress ("N/100" lines on fd 3) becomes a
 * line per 10 %.  apply blocks SIGINT/SIGTERM/SIGHUP while the disk has
 * no chain; the child gets them back, so that ^C ends the copy (and the
 * disk is rolled back) rather than being ignored for its whole length.
 */
static int
run_nbdcopy (const struct vaio_convert *c, char **av)
{
  const struct vaio_plan_disk *p = c->p;
  int pfd[2], status, last = -1;
  char line[64];
  FILE *fp;
  pid_t pid;

  if (pipe2 (pfd, O_CLOEXEC) == -1)
    return -1;
  fflush (stdout);
  fflush (stderr);
  pid = fork ();
  if (pid == -1)
    {
      close (pfd[0]);
      close (pfd[1]);
      return -1;
    }
  if (pid == 0)
    {
      sigset_t none;
      int null = open ("/dev/null", O_RDONLY | O_CLOEXEC);

      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      if (null >= 0 && null != 0)
        dup2 (null, 0);
      if (pfd[1] == 3)
        fcntl (3, F_SETFD, 0);
      else
        dup2 (pfd[1], 3);
      execvp (av[0], av);
      (void)!write (2, "vaioctl: cannot run nbdcopy\n", 28);
      _exit (127);
    }
  close (pfd[1]);
  fp = fdopen (pfd[0], "r");
  while (fp && fgets (line, sizeof line, fp))
    {
      int pct = atoi (line);
      if (pct / 10 > last && pct >= 0 && pct <= 100)
        {
          last = pct / 10;
          printf ("%s/%s: converting %s: %3d%% (%" PRIu64 " of %" PRIu64
                  " bytes)\n",
                  p->vm->name, p->disk->name, c->image, pct,
                  c->copy_bytes / 100 * (uint64_t)pct
                      + c->copy_bytes % 100 * (uint64_t)pct / 100,
                  c->copy_bytes);
          fflush (stdout);
        }
    }
  if (fp)
    fclose (fp);
  else
    close (pfd[0]);
  while (waitpid (pid, &status, 0) == -1)
    if (errno != EINTR)
      return -1;
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  fprintf (stderr, "vaioctl: %s/%s: nbdcopy %s %d\n", p->vm->name,
           p->disk->name,
           WIFEXITED (status) ? "exited with" : "killed by signal",
           WIFEXITED (status) ? WEXITSTATUS (status) : WTERMSIG (status));
  return -1;
}

static int
copy (const struct vaio_convert *c)
{
  char *filter_arg = NULL, *file_arg = NULL;
  char **av = copy_argv (c, &filter_arg, &file_arg);
  int r = av ? run_nbdcopy (c, av) : -1;

  free (av);
  free (filter_arg);
  free (file_arg);
  return r;
}

/* The new image's mode: the original's, except that a decrypted image
 * keeps only the owner's bits (a world-readable ciphertext is fine at
 * rest; its plaintext is not).
 */
static mode_t
plain_mode (const struct vaio_convert *c)
{
  return c->add ? c->st.st_mode & 07777 : c->st.st_mode & 0700;
}

/* The new file, durable and with the original's mode and owner. */
static int
finish_file (const struct vaio_convert *c, char *err, size_t errlen)
{
  struct stat st;
  int fd = open (c->tmp, O_RDWR | O_CLOEXEC), r = -1;

  if (fd == -1)
    snprintf (err, errlen, "%s: %s", c->tmp, strerror (errno));
  else if (fstat (fd, &st) == -1)
    snprintf (err, errlen, "%s: %s", c->tmp, strerror (errno));
  else if ((uint64_t)st.st_size != c->new_size)
    snprintf (err, errlen, "%s is %jd bytes after the copy, not %" PRIu64,
              c->tmp, (intmax_t)st.st_size, c->new_size);
  else if (fchown (fd, c->st.st_uid, c->st.st_gid) == -1 && errno != EPERM)
    snprintf (err, errlen, "%s: chown: %s", c->tmp, strerror (errno));
  else if (fchmod (fd, plain_mode (c)) == -1 || fsync (fd) == -1)
    snprintf (err, errlen, "%s: %s", c->tmp, strerror (errno));
  else
    r = 0;
  if (fd >= 0)
    close (fd);
  return r;
}

/* Rename <state>/replication to <state>/replication.WHAT-TIME.  0, with
 * the new name in *aside (NULL: there was nothing to move); -1 with err.
 */
/* Make *path a name nothing has yet (path, path-1, path-2, ...): two
 * moves within a second would otherwise meet.  false: out of memory.
 */
static bool
unused_name (char **path)
{
  struct stat st;
  char *alt;

  for (int n = 1; lstat (*path, &st) == 0 && n < 1000; n++)
    {
      size_t len = strlen (*path);
      char *dash = strrchr (*path, '-');
      /* Strip the previous attempt's -N before adding the next. */
      if (n > 1 && dash)
        len = (size_t)(dash - *path);
      if (asprintf (&alt, "%.*s-%d", (int)len, *path, n) == -1)
        return false;
      free (*path);
      *path = alt;
    }
  return true;
}

static int
replication_aside (const struct vaio_convert *c, const char *what, char **aside,
                   char *err, size_t errlen)
{
  char *dir = NULL, stamp[32];
  time_t t = time (NULL);
  bool moved = false;
  struct tm tm;
  int r = -1;

  *aside = NULL;
  gmtime_r (&t, &tm);
  strftime (stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  if (asprintf (&dir, "%s/replication", c->p->state_dir) == -1
      || asprintf (aside, "%s.%s-%s", dir, what, stamp) == -1)
    snprintf (err, errlen, "out of memory");
  else if (!unused_name (aside))
    snprintf (err, errlen, "out of memory");
  else if (rename (dir, *aside) == 0)
    moved = true;
  else if (errno == ENOENT)
    r = 0;
  else
    snprintf (err, errlen, "moving %s aside: %s", dir, strerror (errno));
  if (moved)
    r = 0;
  else
    {
      free (*aside);
      *aside = NULL;
    }
  free (dir);
  return r;
}

/* Before the image changes format: a replication state describing the old
 * bytes would replay its journal onto the new image, and take the replica
 * for in sync.  Moved aside, the filter starts with a full initial sync.
 */
static int
move_replication_aside (struct vaio_convert *c, char *err, size_t errlen)
{
  char *aside;

  if (replication_aside (c, "stale", &aside, err, errlen) == -1)
    return -1;
  if (aside)
    printf ("%s/%s: replication ships the image's bytes, which change "
            "format: its state moved aside to %s; the replica gets a full "
            "initial sync\n",
            c->p->vm->name, c->p->disk->name, aside);
  free (c->stale_repl);
  c->stale_repl = aside;
  return 0;
}

/* Keep the original as .pre-convert and give the new file its name.  A
 * filesystem without hard links gets two renames (nothing serves the
 * image meanwhile).
 */
static int
swap_files (struct vaio_convert *c, char *err, size_t errlen)
{
  bool linked = link (c->image, c->orig) == 0;

  /* EEXIST: a .pre-convert appeared since the check; a rename would
   * overwrite it.
   */
  if (!linked && (errno == EEXIST || rename (c->image, c->orig) == -1))
    {
      snprintf (err, errlen, "keeping %s as %s: %s", c->image, c->orig,
                strerror (errno));
      return -1;
    }
  if (rename (c->tmp, c->image) == -1)
    {
      snprintf (err, errlen, "renaming %s over %s: %s", c->tmp, c->image,
                strerror (errno));
      if (linked)
        unlink (c->orig);
      else
        rename (c->orig, c->image);
      return -1;
    }
  c->swapped = true;
  vaio_fsync_parent_dir (c->image);
  return 0;
}

int
vaio_convert_run (struct vaio_convert *c, bool cache_clean)
{
  const struct vaio_plan_disk *p = c->p;
  uint64_t t0 = vaio_now_ms ();
  char err[1024] = "";
  bool moved = false;

  printf ("%s/%s: converting %s from %s: copying %" PRIu64 " bytes\n",
          p->vm->name, p->disk->name, c->image, direction (c), c->copy_bytes);
  fflush (stdout);
  if (!cache_clean)
    snprintf (err, sizeof err,
              "the cache could not be confirmed clean: it may hold writes "
              "the image lacks");
  else if (copy (c) == -1)
    snprintf (err, sizeof err,
              "the copy failed (nbdcopy's and nbdkit's "
              "messages above say why)");
  else if (finish_file (c, err, sizeof err) == 0
           && (!c->repl_resync
               || (moved = move_replication_aside (c, err, sizeof err) == 0)))
    swap_files (c, err, sizeof err);
  if (err[0] == '\0')
    {
      printf ("%s/%s: converted %s from %s: %" PRIu64 " bytes in %" PRIu64
              " ms\n",
              p->vm->name, p->disk->name, c->image, direction (c),
              c->copy_bytes, vaio_now_ms () - t0);
      fflush (stdout);
      return 0;
    }
  unlink (c->tmp);
  fprintf (stderr,
           "vaioctl: %s/%s: converting %s failed: %s; %s removed, the image "
           "is untouched%s\n",
           p->vm->name, p->disk->name, c->image, err, c->tmp,
           moved ? " (replication's state was moved aside: the replica gets "
                   "a full sync)"
                 : "");
  return -1;
}

static int
remove_entry (const char *path, const struct stat *st, int flag,
              struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove (path) == -1 ? -1 : 0;
}

void
vaio_convert_commit (struct vaio_convert *c)
{
  if (c->swapped && unlink (c->orig) == 0)
    vaio_fsync_parent_dir (c->image);
  /* Encryption added: the old journal holds the guest's plaintext, which
   * is what the conversion was asked to stop keeping at rest.
   */
  if (c->swapped && c->add && c->stale_repl)
    {
      if (nftw (c->stale_repl, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0)
        printf ("%s/%s: removed %s: it held the disk's plaintext\n",
                c->p->vm->name, c->p->disk->name, c->stale_repl);
      else
        fprintf (stderr,
                 "vaioctl: %s/%s: removing %s (it holds the disk's "
                 "plaintext): %s; remove it by hand\n",
                 c->p->vm->name, c->p->disk->name, c->stale_repl,
                 strerror (errno));
    }
}

int
vaio_convert_undo (struct vaio_convert *c)
{
  const struct vaio_plan_disk *p = c->p;
  char err[512], *aside = NULL;
  int r = 0;

  if (!c->swapped)
    return 0;
  /* The state the failed chain made describes the new image (the old
   * chain would refuse a journal sized for another disk) and may have
   * started shipping it: the old chain starts on none, a full sync.
   */
  if (c->repl_resync
      && replication_aside (c, "failed", &aside, err, sizeof err) == -1)
    {
      /* The old chain would start on a journal and bitmap of the new
       * image: refuse, or believe the replica in sync.  Leave it down.
       */
      fprintf (stderr,
               "vaioctl: %s/%s: the new chain did not start, and its "
               "replication state could not be moved aside (%s): the "
               "original image stays %s and the old chain is not started; "
               "move %s/replication away by hand, rename %s to %s, then "
               "vaioctl up\n",
               p->vm->name, p->disk->name, err, c->orig, p->state_dir, c->orig,
               c->image);
      return -1;
    }
  if (rename (c->orig, c->image) == 0)
    {
      vaio_fsync_parent_dir (c->image);
      c->swapped = false;
      fprintf (stderr,
               "vaioctl: %s/%s: the new chain did not start: %s is the "
               "original image again%s%s%s\n",
               p->vm->name, p->disk->name, c->image,
               c->repl_resync ? "; replication starts without state (a full "
                                "sync of the replica)"
                              : "",
               aside ? ", the failed chain's is in " : "", aside ? aside : "");
    }
  else
    {
      fprintf (stderr,
               "vaioctl: %s/%s: the new chain did not start, and putting the "
               "original image back failed (rename %s %s: %s): the old chain "
               "is not started on the converted image; rename it by hand, "
               "then vaioctl up\n",
               p->vm->name, p->disk->name, c->orig, c->image, strerror (errno));
      r = -1;
    }
  free (aside);
  return r;
}

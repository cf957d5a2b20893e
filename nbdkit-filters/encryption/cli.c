/* vaio-crypt: create LUKS1 images and manage their keys (see usage()). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "keys.h"
#include "keysource.h"
#include "luks.h"
#include "units.h"

static const char usage_text[]
    = "NAME\n"
      "    vaio-crypt - create LUKS1 disk images and manage their keys\n"
      "\n"
      "SYNOPSIS\n"
      "    vaio-crypt format IMAGE [--size SIZE] [--key-size 256|512]\n"
      "                      [--hash HASH] [--iter-time MS | --pbkdf2-iter N]\n"
      "                      [--force] KEY\n"
      "    vaio-crypt add-key IMAGE KEY NEW-KEY [--slot N]\n"
      "                       [--iter-time MS | --pbkdf2-iter N]\n"
      "    vaio-crypt remove-key IMAGE KEY [--slot N]\n"
      "    vaio-crypt rotate IMAGE KEY NEW-KEY [--iter-time MS | --pbkdf2-iter "
      "N]\n"
      "    vaio-crypt dump IMAGE\n"
      "    vaio-crypt keystore-create --keystore DIR --key-id ID\n"
      "\n"
      "DESCRIPTION\n"
      "    vaio-crypt writes and edits LUKS1 headers (aes-xts-plain64, "
      "PBKDF2,\n"
      "    anti-forensic splitter) as cryptsetup and QEMU define them.  The\n"
      "    images it makes open with the vaio-crypt nbdkit filter, nbdkit's\n"
      "    luks filter, QEMU (driver=luks) and cryptsetup.\n"
      "\n"
      "    Keys are never taken from the command line: only from files, file\n"
      "    descriptors, or a key store.  Nothing secret is ever printed.\n"
      "\n"
      "COMMANDS\n"
      "    format      Write a new LUKS1 header with a fresh random master "
      "key\n"
      "                and put KEY in keyslot 0.  With --size, create IMAGE\n"
      "                (mode 0600) with SIZE bytes of payload (1G, 512M...);\n"
      "                without, format an existing file in place.  An "
      "existing\n"
      "                LUKS header is only overwritten with --force (that\n"
      "                destroys every key to the old data).\n"
      "    add-key     Unlock with KEY and store the master key under NEW-KEY\n"
      "                in a free keyslot (or --slot N).  Data is untouched.\n"
      "    remove-key  Unlock with KEY, then disable and wipe the keyslot KEY\n"
      "                opened (or --slot N).  The last keyslot is never "
      "removed.\n"
      "    rotate      add-key NEW-KEY, then remove the slot KEY opened: a\n"
      "                shallow rekey, as VMware does when a KEK changes.\n"
      "    dump        Print the header (no secrets).\n"
      "    keystore-create\n"
      "                Create a new random key encryption key DIR/ID.kek\n"
      "                (directory 0700, file 0600).  Never overwrites.\n"
      "\n"
      "KEY (exactly one; NEW-KEY uses the same options prefixed with new-)\n"
      "    --passphrase-file PATH   the file's contents, one trailing newline\n"
      "                             removed\n"
      "    --key-file PATH          the file's exact bytes (cryptsetup\n"
      "                             --key-file)\n"
      "    --passphrase-fd N        read fd N to EOF (passphrase rules)\n"
      "    --key-fd N               read fd N to EOF (exact bytes)\n"
      "    --keystore DIR --key-id ID\n"
      "                             the disk key wrapped by KEK ID of the key\n"
      "                             store DIR: the keyslot secret is\n"
      "                             HMAC-SHA256(KEK, label || LUKS uuid).\n"
      "                             --new-key-id alone uses --keystore's DIR.\n"
      "\n"
      "OPTIONS\n"
      "    --size SIZE        payload size for a new image (K, M, G, T "
      "suffixes)\n"
      "    --key-size BITS    256 (aes-128-xts) or 512 (aes-256-xts, default)\n"
      "    --hash HASH        PBKDF2 and AF hash (default sha256)\n"
      "    --iter-time MS     PBKDF2 time per keyslot unlock (default 1000)\n"
      "    --pbkdf2-iter N    exact PBKDF2 iterations (at least 1000)\n"
      "    --slot N           keyslot 0-7\n"
      "    --force            format over an existing LUKS header\n"
      "    -h, --help         this text\n"
      "\n"
      "EXAMPLES\n"
      "    vaio-crypt format disk.img --size 10G --passphrase-file pw\n"
      "    vaio-crypt keystore-create --keystore /etc/vaio/kms --key-id "
      "kek-2026\n"
      "    vaio-crypt add-key disk.img --passphrase-file pw \\\n"
      "        --new-keystore /etc/vaio/kms --new-key-id kek-2026\n"
      "    vaio-crypt rotate disk.img --keystore /etc/vaio/kms --key-id "
      "kek-2026 "
      "\\\n"
      "        --new-key-id kek-2027\n"
      "    nbdkit --filter=nbdkit-vaio-crypt-filter.so file disk.img \\\n"
      "        crypt-passphrase-file=pw\n"
      "\n"
      "EXIT STATUS\n"
      "    0 on success, 1 on any error (a message names what is wrong),\n"
      "    2 on bad usage.\n";

struct options
{
  const char *cmd;
  const char *image;
  struct crypt_key_source key, new_key;
  uint64_t size;
  bool have_size;
  uint32_t key_bytes;
  const char *hash;
  uint32_t iter_time_ms;
  uint32_t pbkdf2_iter;
  int slot;
  bool force;
};

static void __attribute__ ((noreturn, format (printf, 1, 2)))
die (const char *fmt, ...)
{
  va_list ap;

  fputs ("vaio-crypt: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  exit (1);
}

static void __attribute__ ((noreturn)) bad_usage (const char *msg)
{
  fprintf (stderr, "vaio-crypt: %s\nTry 'vaio-crypt --help'.\n", msg);
  exit (2);
}

static uint32_t
parse_u32 (const char *opt, const char *value)
{
  uint64_t v;

  if (vaio_parse_uint (value, &v) == -1 || v > UINT32_MAX)
    die ("--%s: '%s' is not a number", opt, value);
  return (uint32_t)v;
}

static uint64_t
fd_size (int fd, const char *image)
{
  struct stat st;

  if (fstat (fd, &st) == -1)
    die ("%s: %s", image, strerror (errno));
  return (uint64_t)st.st_size;
}

static int
open_image (const char *image, int flags)
{
  int fd = open (image, flags | O_CLOEXEC);

  if (fd == -1)
    die ("%s: %s", image, strerror (errno));
  return fd;
}

static void
load_header (int fd, const char *image, struct luks_header *h)
{
  uint8_t raw[LUKS_HEADER_SIZE];
  uint64_t size = fd_size (fd, image);
  char err[256];

  if (size < LUKS_HEADER_SIZE)
    die ("%s: %" PRIu64 " bytes, too small for a LUKS header", image, size);
  if (luks_fd_read (&fd, raw, sizeof raw, 0) == -1)
    die ("%s: reading the header: %s", image, strerror (errno));
  if (luks_header_decode (raw, size, h, err, sizeof err) == -1)
    die ("%s: %s", image, err);
}

static void
complete_key (struct crypt_key_source *ks)
{
  char err[512];

  if (crypt_key_source_complete (ks, err, sizeof err) == -1)
    die ("%s", err);
}

/* Unlock the image with the KEY options; returns the slot. */
static int
unlock_image (struct options *o, int fd, const struct luks_header *h,
              uint8_t *mk)
{
  struct secret pass = { 0 };
  char err[512];
  int slot;

  complete_key (&o->key);
  if (crypt_key_source_secret (&o->key, h->uuid, &pass, err, sizeof err) == -1)
    die ("%s", err);
  if (luks_unlock (h, pass.data, pass.len, -1, luks_fd_read, &fd, mk, &slot,
                   err, sizeof err)
      == -1)
    {
      secret_free (&pass);
      die ("%s: %s: %s", o->image, crypt_key_source_name (&o->key), err);
    }
  secret_free (&pass);
  return slot;
}

static uint32_t
slot_iterations (const struct options *o, const struct luks_header *h)
{
  if (o->pbkdf2_iter)
    return o->pbkdf2_iter;
  return luks_benchmark_iterations (h->hash_spec,
                                    o->iter_time_ms ? o->iter_time_ms : 1000);
}

static int
add_slot (struct options *o, int fd, struct luks_header *h,
          struct crypt_key_source *ks, const uint8_t *mk, int slot)
{
  struct secret pass = { 0 };
  char err[512];
  int used;

  complete_key (ks);
  if (crypt_key_source_secret (ks, h->uuid, &pass, err, sizeof err) == -1)
    die ("%s", err);
  if (luks_add_keyslot (h, mk, pass.data, pass.len, slot,
                        slot_iterations (o, h), luks_fd_write, &fd, &used, err,
                        sizeof err)
      == -1)
    {
      secret_free (&pass);
      die ("%s: %s", o->image, err);
    }
  secret_free (&pass);
  return used;
}

static bool
has_luks_magic (int fd)
{
  uint8_t magic[LUKS_MAGIC_LEN];

  return pread (fd, magic, sizeof magic, 0) == (ssize_t)sizeof magic
         && memcmp (magic, LUKS_MAGIC, LUKS_MAGIC_LEN) == 0;
}

static int
cmd_format (struct options *o)
{
  struct luks_format_params p = {
    .key_bytes = o->key_bytes ? o->key_bytes : 64,
    .hash = o->hash,
    .slot_iterations = o->pbkdf2_iter,
    .iter_time_ms = o->iter_time_ms,
  };
  uint8_t mk[LUKS_MAX_KEY_BYTES];
  struct luks_header h;
  char err[512];
  uint64_t payload, size;
  uint8_t *zeros;
  int fd, slot;

  if (luks_format_header (&p, &h, mk, err, sizeof err) == -1)
    die ("%s", err);
  payload = (uint64_t)h.payload_offset * LUKS_SECTOR;
  if (o->have_size)
    {
      fd = open (o->image,
                 O_RDWR | O_CREAT | O_CLOEXEC | (o->force ? 0 : O_EXCL), 0600);
      if (fd == -1)
        die ("%s: %s%s", o->image, strerror (errno),
             errno == EEXIST ? " (use --force to overwrite, or omit --size "
                               "to format it in place)"
                             : "");
      if (ftruncate (fd, (off_t)(payload + o->size)) == -1)
        die ("%s: %s", o->image, strerror (errno));
    }
  else
    fd = open_image (o->image, O_RDWR);
  size = fd_size (fd, o->image);
  if (size < payload + LUKS_SECTOR)
    die ("%s: %" PRIu64 " bytes is too small: the LUKS header takes %" PRIu64
         " (use --size)",
         o->image, size, payload);
  if (!o->force && has_luks_magic (fd))
    die ("%s: already has a LUKS header; --force destroys it and every key "
         "to its data",
         o->image);

  /* Clear the whole header area so no old keyslot material survives. */
  zeros = calloc (1, payload);
  if (zeros == NULL || luks_fd_write (&fd, zeros, payload, LUKS_SECTOR) == -1)
    die ("%s: clearing the header area: %s", o->image, strerror (errno));
  free (zeros);
  slot = add_slot (o, fd, &h, &o->key, mk, 0);
  OPENSSL_cleanse (mk, sizeof mk);
  if (fsync (fd) == -1 || close (fd) == -1)
    die ("%s: %s", o->image, strerror (errno));
  printf ("%s: LUKS1 %s-%s %u-bit, payload %" PRIu64 " bytes at offset %" PRIu64
          ", keyslot %d, uuid %s\n",
          o->image, h.cipher_name, h.cipher_mode, h.key_bytes * 8,
          size - payload, payload, slot, h.uuid);
  return 0;
}

static int
cmd_add_key (struct options *o)
{
  uint8_t mk[LUKS_MAX_KEY_BYTES];
  struct luks_header h;
  int fd = open_image (o->image, O_RDWR), slot;

  if (!crypt_key_source_is_set (&o->new_key))
    bad_usage ("add-key needs a new key (--new-passphrase-file, ...)");
  load_header (fd, o->image, &h);
  unlock_image (o, fd, &h, mk);
  slot = add_slot (o, fd, &h, &o->new_key, mk, o->slot);
  OPENSSL_cleanse (mk, sizeof mk);
  if (close (fd) == -1)
    die ("%s: %s", o->image, strerror (errno));
  printf ("%s: added keyslot %d\n", o->image, slot);
  return 0;
}

static void
remove_slot (struct options *o, int fd, struct luks_header *h, int slot)
{
  char err[512];

  if (slot < 0 || slot >= LUKS_NUM_KEYS
      || h->slots[slot].active != LUKS_KEY_ENABLED)
    die ("%s: keyslot %d is not active", o->image, slot);
  if (luks_active_slots (h) <= 1)
    die ("%s: refusing to remove keyslot %d, the last one: the data would be "
         "lost for good",
         o->image, slot);
  if (luks_remove_keyslot (h, (unsigned)slot, luks_fd_write, &fd, err,
                           sizeof err)
      == -1)
    die ("%s: %s", o->image, err);
}

static int
cmd_remove_key (struct options *o)
{
  uint8_t mk[LUKS_MAX_KEY_BYTES];
  struct luks_header h;
  int fd = open_image (o->image, O_RDWR), opened, target;

  load_header (fd, o->image, &h);
  opened = unlock_image (o, fd, &h, mk);
  OPENSSL_cleanse (mk, sizeof mk);
  target = o->slot >= 0 ? o->slot : opened;
  remove_slot (o, fd, &h, target);
  if (fsync (fd) == -1 || close (fd) == -1)
    die ("%s: %s", o->image, strerror (errno));
  printf ("%s: removed keyslot %d\n", o->image, target);
  return 0;
}

static int
cmd_rotate (struct options *o)
{
  uint8_t mk[LUKS_MAX_KEY_BYTES];
  struct luks_header h;
  int fd = open_image (o->image, O_RDWR), opened, added;

  if (!crypt_key_source_is_set (&o->new_key))
    bad_usage ("rotate needs a new key (--new-passphrase-file, ...)");
  load_header (fd, o->image, &h);
  opened = unlock_image (o, fd, &h, mk);
  added = add_slot (o, fd, &h, &o->new_key, mk, -1);
  OPENSSL_cleanse (mk, sizeof mk);
  remove_slot (o, fd, &h, opened);
  if (fsync (fd) == -1 || close (fd) == -1)
    die ("%s: %s", o->image, strerror (errno));
  printf ("%s: keyslot %d added, keyslot %d removed\n", o->image, added,
          opened);
  return 0;
}

static int
cmd_dump (struct options *o)
{
  struct luks_header h;
  int fd = open_image (o->image, O_RDONLY);
  uint64_t size = fd_size (fd, o->image);

  load_header (fd, o->image, &h);
  close (fd);
  printf ("LUKS header information for %s\n\n", o->image);
  printf ("Version:        1\n");
  printf ("Cipher name:    %s\n", h.cipher_name);
  printf ("Cipher mode:    %s\n", h.cipher_mode);
  printf ("Hash spec:      %s\n", h.hash_spec);
  printf ("Payload offset: %u sectors\n", h.payload_offset);
  printf ("Payload size:   %" PRIu64 " bytes\n",
          size - (uint64_t)h.payload_offset * LUKS_SECTOR);
  printf ("MK bits:        %u\n", h.key_bytes * 8);
  printf ("MK iterations:  %u\n", h.mk_digest_iterations);
  printf ("UUID:           %s\n\n", h.uuid);
  for (unsigned i = 0; i < LUKS_NUM_KEYS; i++)
    {
      const struct luks_keyslot *s = &h.slots[i];

      if (s->active == LUKS_KEY_ENABLED)
        printf ("Key Slot %u: ENABLED  iterations %u, material at sector %u, "
                "%u stripes\n",
                i, s->iterations, s->key_material_offset, s->stripes);
      else
        printf ("Key Slot %u: DISABLED\n", i);
    }
  return 0;
}

static int
cmd_keystore_create (struct options *o)
{
  char err[512];

  if (o->key.kind != KEY_KEYSTORE || o->key.key_id == NULL)
    bad_usage ("keystore-create needs --keystore DIR and --key-id ID");
  if (keystore_create (o->key.path, o->key.key_id, err, sizeof err) == -1)
    die ("%s", err);
  printf ("created key '%s' in %s\n", o->key.key_id, o->key.path);
  return 0;
}

enum
{
  OPT_SIZE = 256,
  OPT_KEY_SIZE,
  OPT_HASH,
  OPT_ITER_TIME,
  OPT_PBKDF2_ITER,
  OPT_SLOT,
  OPT_FORCE,
  OPT_KEY, /* key source options: name looked up in keysource.c */
  OPT_NEW_KEY,
};

static const struct option long_options[] = {
  { "help", no_argument, NULL, 'h' },
  { "size", required_argument, NULL, OPT_SIZE },
  { "key-size", required_argument, NULL, OPT_KEY_SIZE },
  { "hash", required_argument, NULL, OPT_HASH },
  { "iter-time", required_argument, NULL, OPT_ITER_TIME },
  { "pbkdf2-iter", required_argument, NULL, OPT_PBKDF2_ITER },
  { "slot", required_argument, NULL, OPT_SLOT },
  { "force", no_argument, NULL, OPT_FORCE },
  { "passphrase-file", required_argument, NULL, OPT_KEY },
  { "key-file", required_argument, NULL, OPT_KEY },
  { "passphrase-fd", required_argument, NULL, OPT_KEY },
  { "key-fd", required_argument, NULL, OPT_KEY },
  { "keystore", required_argument, NULL, OPT_KEY },
  { "key-id", required_argument, NULL, OPT_KEY },
  { "new-passphrase-file", required_argument, NULL, OPT_NEW_KEY },
  { "new-key-file", required_argument, NULL, OPT_NEW_KEY },
  { "new-passphrase-fd", required_argument, NULL, OPT_NEW_KEY },
  { "new-key-fd", required_argument, NULL, OPT_NEW_KEY },
  { "new-keystore", required_argument, NULL, OPT_NEW_KEY },
  { "new-key-id", required_argument, NULL, OPT_NEW_KEY },
  { NULL, 0, NULL, 0 },
};

static void
set_key_option (struct crypt_key_source *ks, const char *prefix,
                const char *name, const char *value)
{
  char err[512];

  if (crypt_key_source_set (ks, prefix, name, value, err, sizeof err) != 1)
    die ("%s", err);
}

static void
parse_option (struct options *o, int c, int index)
{
  const char *name = long_options[index].name;

  switch (c)
    {
    case OPT_SIZE:
      if (vaio_parse_size (optarg, &o->size) == -1 || o->size == 0
          || o->size % LUKS_SECTOR != 0)
        die ("--size: '%s' is not a non-zero multiple of 512 bytes "
             "(use K, M, G suffixes)",
             optarg);
      o->have_size = true;
      break;
    case OPT_KEY_SIZE:
      o->key_bytes = parse_u32 (name, optarg) / 8;
      if (o->key_bytes != 32 && o->key_bytes != 64)
        die ("--key-size: must be 256 or 512, not %s", optarg);
      break;
    case OPT_HASH:
      o->hash = optarg;
      break;
    case OPT_ITER_TIME:
      o->iter_time_ms = parse_u32 (name, optarg);
      break;
    case OPT_PBKDF2_ITER:
      o->pbkdf2_iter = parse_u32 (name, optarg);
      if (o->pbkdf2_iter < LUKS_MIN_ITERATIONS)
        die ("--pbkdf2-iter: at least %d", LUKS_MIN_ITERATIONS);
      break;
    case OPT_SLOT:
      o->slot = (int)parse_u32 (name, optarg);
      if (o->slot >= LUKS_NUM_KEYS)
        die ("--slot: must be 0-7, not %s", optarg);
      break;
    case OPT_FORCE:
      o->force = true;
      break;
    case OPT_KEY:
      set_key_option (&o->key, "--", name, optarg);
      break;
    case OPT_NEW_KEY:
      set_key_option (&o->new_key, "--new-", name + 4, optarg);
      break;
    default:
      bad_usage ("unknown option");
    }
}

int
main (int argc, char *argv[])
{
  static const struct
  {
    const char *name;
    int (*run) (struct options *);
    bool needs_image;
  } cmds[] = {
    { "format", cmd_format, true },
    { "add-key", cmd_add_key, true },
    { "remove-key", cmd_remove_key, true },
    { "rotate", cmd_rotate, true },
    { "dump", cmd_dump, true },
    { "keystore-create", cmd_keystore_create, false },
  };
  struct options o = { .slot = -1 };
  int c, index, r;

  o.key.prefix = "--";
  o.new_key.prefix = "--new-";
  while ((c = getopt_long (argc, argv, "h", long_options, &index)) != -1)
    {
      if (c == 'h')
        {
          fputs (usage_text, stdout);
          return 0;
        }
      if (c == '?')
        bad_usage ("bad option");
      parse_option (&o, c, index);
    }
  if (optind >= argc)
    bad_usage ("no command");
  o.cmd = argv[optind++];
  if (optind < argc)
    o.image = argv[optind++];
  if (optind < argc)
    bad_usage ("too many arguments");
  /* --new-key-id alone means the same key store as --keystore. */
  if (o.new_key.key_id && o.new_key.kind == KEY_NONE
      && o.key.kind == KEY_KEYSTORE)
    set_key_option (&o.new_key, "--new-", "keystore", o.key.path);

  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp (o.cmd, cmds[i].name) == 0)
      {
        if (cmds[i].needs_image && o.image == NULL)
          bad_usage ("no IMAGE given");
        r = cmds[i].run (&o);
        crypt_key_source_free (&o.key);
        crypt_key_source_free (&o.new_key);
        return r;
      }
  bad_usage ("unknown command");
}

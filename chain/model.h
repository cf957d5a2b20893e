/* vaio-nbd chain model: what a config file and the filter manifests say,
 * after parsing.  parse (config.c, manifest.c) → validate (validate.c) →
 * plan (plan.c) → supervise (supervise.c).
 *
 * Every object remembers where it came from (struct vaio_loc) so that
 * every later error can name file:line:column and the key.
 * All strings are owned by the object that holds them; free with
 * vaio_config_free / vaio_manifest_free.
 */
#ifndef VAIO_MODEL_H
#define VAIO_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "classes.h"

struct vaio_loc
{
  const char *file; /* borrowed: the owning config's or manifest's path */
  unsigned line;    /* 1-based */
  unsigned column;  /* 1-based */
};

/* ---- Diagnostics ---- */

/* Errors accumulate here; each message is complete and starts with
 * "file:line:column: " when there is a location.
 */
struct vaio_diag
{
  char **msgs;
  size_t n;
};

void vaio_diag_add (struct vaio_diag *d, const struct vaio_loc *loc,
                    const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
void vaio_diag_print (const struct vaio_diag *d, FILE *fp);
void vaio_diag_free (struct vaio_diag *d);

/* ---- Filter manifests (classes/ manifests, one YAML file per filter) ----
 *
 *   name: vaio-cache
 *   class: caching
 *   vendor: vaio-nbd
 *   version: 0.1.0
 *   path: /abs/or/relative-to-manifest/nbdkit-vaio-cache-filter.so
 *   sha256: 64 hex digits of the .so
 *   state-param: cache-state-dir     # optional, see below
 *   parameters:
 *     - name: cache-size
 *       type: size                    # see enum vaio_param_type
 *       required: false
 *       values: [a, b]                # enum only
 *       live: false                   # true: changeable while running
 *       default: 0                    # optional: the filter's value when
 *                                     # a policy leaves it out
 *       prefix: "+"                   # path/secret only, see below
 *       description: text
 *
 * A live parameter can change without restarting the disk: `vaioctl
 * apply` writes the filter's live parameters as key=value lines to
 * <disk-state>/<class>/settings (atomically), and the filter re-reads it.
 *
 * A path or secret parameter with a prefix reaches nbdkit as PREFIX
 * followed by the absolute path (nbdkit's luks filter reads its
 * passphrase from FILE when given passphrase=+FILE).  The config names
 * the file only; a value that already starts with the prefix is taken
 * as the path after it.
 */

enum vaio_param_type
{
  VAIO_PARAM_STRING,
  VAIO_PARAM_SIZE,     /* vaio_parse_size */
  VAIO_PARAM_DURATION, /* vaio_parse_duration */
  VAIO_PARAM_BOOL,     /* vaio_parse_bool */
  VAIO_PARAM_INT,      /* vaio_parse_uint */
  VAIO_PARAM_ENUM,     /* one of values[] */
  VAIO_PARAM_PATH,     /* a path; relative ones resolve against the config */
  VAIO_PARAM_SECRET,   /* a path to a secret file: must exist, owner-only */
  VAIO_PARAM_URI,      /* an NBD URI */
};

struct vaio_param_spec
{
  char *name;
  enum vaio_param_type type;
  bool required;
  bool live;     /* may change at run time through the settings file */
  char *prefix;  /* NULL, or put before the absolute path (path, secret) */
  char **values; /* VAIO_PARAM_ENUM */
  size_t n_values;
  char *description;
  char *default_value; /* NULL: none declared (manifest `default:`) */
};

struct vaio_manifest
{
  char *file; /* the manifest's own path */
  char *name;
  enum vaio_class class_;
  char *vendor;
  char *version;
  char *path;        /* absolute path of the .so */
  char *sha256;      /* 64 lower-case hex digits */
  char *state_param; /* NULL, or the key vaioctl sets to the disk's
                        per-filter state dir: <disk-state>/<class> */
  struct vaio_param_spec *params;
  size_t n_params;
  struct vaio_loc loc;
};

/* Parse one manifest file.  Returns NULL and adds to diag on error
 * (unknown keys, missing keys, bad class, bad sha256 syntax...).
 */
struct vaio_manifest *vaio_manifest_load (const char *file,
                                          struct vaio_diag *diag);
void vaio_manifest_free (struct vaio_manifest *m);

/* Check the .so at m->path against m->sha256.  Returns 0, or -1 with a
 * diag naming the manifest, the .so and both digests.
 */
int vaio_manifest_verify (const struct vaio_manifest *m,
                          struct vaio_diag *diag);

/* The same, reported at `at` (a config's filters: entry) when not NULL. */
int vaio_manifest_verify_at (const struct vaio_manifest *m,
                             const struct vaio_loc *at, struct vaio_diag *diag);

/* sha256 of a file as 64 hex digits + NUL into out[65]; -1 + errno. */
int vaio_sha256_file (const char *path, char out[65]);

const struct vaio_param_spec *
vaio_manifest_param (const struct vaio_manifest *m, const char *name);

/* ---- The cluster config ----
 *
 *   cluster: lab
 *   hosts:
 *     - name: host1
 *       state-dir: state/host1          # relative: to the config's dir
 *       filters: [manifests/a.yaml, …]  # manifests installed declaratively
 *   policies:
 *     - name: gold
 *       allow-cleartext-filters: false
 *       caching: { cache-size: 64M, … } # a class → the parameters of the
 *       replication: {}                 # filter of that class on the host
 *   vms:
 *     - name: vm1
 *       host: host1
 *       disks:
 *         - name: disk0
 *           image: images/vm1.img
 *           policy: gold
 *           socket: optional path       # default: <vm-dir>/<disk>.sock
 *           port: optional TCP port     # instead of a socket, on address
 *           address: 127.0.0.1          # default for port
 */

struct vaio_setting
{
  char *key;
  char *value; /* scalar as written (validated against the manifest) */
  struct vaio_loc loc;
};

struct vaio_class_rule
{
  bool present;
  struct vaio_setting *settings;
  size_t n_settings;
  struct vaio_loc loc;
};

struct vaio_policy
{
  char *name;
  bool allow_cleartext_filters;
  struct vaio_class_rule rules[VAIO_CLASS_COUNT];
  struct vaio_loc loc;
};

struct vaio_host
{
  char *name;
  char *state_dir; /* absolute */
  struct vaio_loc state_dir_loc;
  char **filter_files; /* manifest paths, absolute */
  struct vaio_loc *filter_locs;
  size_t n_filter_files;
  struct vaio_loc loc;
};

struct vaio_vm;

struct vaio_disk
{
  char *name;
  char *image;  /* absolute */
  char *policy; /* name */
  char *socket; /* absolute; NULL when port is set (filled in by defaults) */
  char *address;
  int port; /* 0: unix socket */
  struct vaio_vm *vm;
  struct vaio_loc loc;
  struct vaio_loc image_loc, policy_loc, socket_loc, port_loc;
  struct vaio_loc address_loc; /* of 'address', or of 'port' (default) */
};

struct vaio_vm
{
  char *name;
  char *host; /* name */
  struct vaio_disk *disks;
  size_t n_disks;
  struct vaio_loc loc;
  struct vaio_loc host_loc;
};

struct vaio_config
{
  char *file; /* as given */
  char *dir;  /* absolute directory of file: relative paths resolve here */
  char *cluster;
  struct vaio_host *hosts;
  size_t n_hosts;
  struct vaio_policy *policies;
  size_t n_policies;
  struct vaio_vm *vms;
  size_t n_vms;
};

/* Parse (schema only: types, unknown keys, duplicates, required keys,
 * strict sizes/durations where the schema knows the type).  Returns NULL
 * and adds to diag on error.
 */
struct vaio_config *vaio_config_load (const char *file, struct vaio_diag *diag);
void vaio_config_free (struct vaio_config *cfg);

const struct vaio_host *vaio_config_host (const struct vaio_config *cfg,
                                          const char *name);
const struct vaio_policy *vaio_config_policy (const struct vaio_config *cfg,
                                              const char *name);
/* The config names disk DISK of VM on host h (a state dir found on disk
 * may belong to a disk removed from the YAML).
 */
bool vaio_config_names_disk (const struct vaio_config *cfg,
                             const struct vaio_host *h, const char *vm,
                             const char *disk);

/* ---- What is installed on each host ----
 *
 * A host's filters are the manifests its YAML entry lists plus those
 * installed with `vaioctl filter install` (in <state>/installed/).
 * At most one per class (VAIO: one filter per class per host).
 */
struct vaio_host_filters
{
  const struct vaio_host *host;
  struct vaio_manifest *by_class[VAIO_CLASS_COUNT]; /* owned; NULL: none */
};

/* Load every host's filters (hf: array of cfg->n_hosts), checking each
 * manifest's sha256 and the one-per-class rule (a conflict names both
 * filters).  Returns 0, or -1 with diag filled.  (inventory.c)
 */
int vaio_host_filters_load (const struct vaio_config *cfg,
                            struct vaio_host_filters *hf,
                            struct vaio_diag *diag);
void vaio_host_filters_free (struct vaio_host_filters *hf, size_t n);

/* The VAIO rules and cross-references, after parsing (validate.c):
 * - each VM's host exists, each disk's policy exists;
 * - a policy used on a host only names classes installed on that host;
 * - each class rule's settings are parameters the host's filter of that
 *   class declares, with values valid for their type (size, duration,
 *   bool, int, enum, secret file exists and is not group/world readable);
 *   required parameters present; the manifest's state-param is set by
 *   vaioctl, never by the policy;
 * - images exist and are regular files or block devices;
 * - no two disks share an image, a socket, a TCP address:port, or a
 *   state dir; no two hosts share a state dir.
 * Reports every problem found, not only the first.  Returns 0 or -1.
 */
int vaio_validate (const struct vaio_config *cfg,
                   const struct vaio_host_filters *hf, struct vaio_diag *diag);

/* The file a path or secret setting names: value, without ps->prefix if
 * it starts with it, resolved against the config's directory.  NULL when
 * out of memory.  (validate.c)
 */
char *vaio_setting_file (const struct vaio_config *cfg,
                         const struct vaio_param_spec *ps, const char *value);

/* ---- Derived per-disk paths (one place, used by plan, up, status) ----
 *
 *   <host-state>/vms/<vm>/                  mode 0700, the VM's directory
 *   <host-state>/vms/<vm>/<disk>.sock       default export socket
 *   <host-state>/vms/<vm>/<disk>/           the disk's state dir (0700)
 *   <host-state>/vms/<vm>/<disk>/nbdkit.pid
 *   <host-state>/vms/<vm>/<disk>/nbdkit.log
 *   <host-state>/vms/<vm>/<disk>/<class>/   each filter's own state dir
 *   <host-state>/installed/<name>.yaml      filters installed by vaioctl
 *   <host-state>/maintenance                present: host in maintenance
 */
char *vaio_vm_dir (const struct vaio_host *h, const struct vaio_vm *vm);
char *vaio_disk_state_dir (const struct vaio_host *h,
                           const struct vaio_disk *d);
char *vaio_disk_socket (const struct vaio_host *h, const struct vaio_disk *d);

#endif /* VAIO_MODEL_H */

/* vaio-nbd planner: a validated config → one nbdkit command line per disk. */
#ifndef VAIO_PLAN_H
#define VAIO_PLAN_H

#include "model.h"

struct vaio_plan_disk
{
  const struct vaio_vm *vm;
  const struct vaio_disk *disk;
  const struct vaio_host *host;
  const struct vaio_policy *policy;
  enum vaio_class chain[VAIO_CLASS_COUNT];               /* guest → disk */
  const struct vaio_manifest *filters[VAIO_CLASS_COUNT]; /* per position */
  size_t n_chain;
  char *vm_dir, *state_dir, *socket, *pidfile, *logfile, *pause_socket;
  char **argv; /* NULL-terminated; argv[0] is "nbdkit" */
  size_t argc;
  /* NULL, or "TMPDIR=<disk-state>/caching": a caching filter without a
   * state parameter (nbdkit's cache filter) keeps its cache file in
   * $TMPDIR, which must be the disk's own state, not /var/tmp.
   */
  char *tmpdir_env;
};

/* Plan one disk.  cfg must have passed vaio_validate.  Returns 0 or -1. */
int vaio_plan_disk (const struct vaio_config *cfg,
                    const struct vaio_host_filters *hf,
                    const struct vaio_vm *vm, const struct vaio_disk *d,
                    struct vaio_plan_disk *p, struct vaio_diag *diag);
void vaio_plan_disk_free (struct vaio_plan_disk *p);

/* argv as one shell command line, every word quoted when it needs to be,
 * so that it can be pasted into a shell.  Caller frees.
 */
char *vaio_plan_shell_line (const struct vaio_plan_disk *p);

/* A shell command that creates, owner-only (0700), the directories the
 * disk's nbdkit needs and does not create itself: the VM's directory, the
 * disk's state directory and each filter's state directory under it, as
 * `vaioctl up` does.  `vaioctl plan` prints it joined to the command line
 * with &&.  Caller frees.
 */
char *vaio_plan_mkdir_line (const struct vaio_plan_disk *p);

/* The host_filters entry for a host. */
const struct vaio_host_filters *
vaio_plan_host_filters (const struct vaio_config *cfg,
                        const struct vaio_host_filters *hf, const char *host);

/* An NBD URI a client uses to reach the disk (nbd+unix:///?socket=… or
 * nbd://addr:port).  Caller frees.
 */
char *vaio_plan_uri (const struct vaio_plan_disk *p);

#endif /* VAIO_PLAN_H */

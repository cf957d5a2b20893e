/* vaio-nbd: `vaioctl apply`, change running disks to match a config. */
#ifndef VAIO_APPLY_H
#define VAIO_APPLY_H

#include <stdbool.h>

#include "model.h"

struct vaio_apply_options
{
  bool dry_run; /* print what would change, change nothing */
  bool force;   /* remove replication with an unshipped journal */
  bool allow_encryption_change; /* add/remove encryption on a disk that
                                   holds data (the data is NOT converted) */
  bool convert_encryption;      /* add/remove vaio-crypt by converting the
                                   image (see convert.h) */
  int timeout_ms;               /* drain / start timeouts */
};

/* Compare each disk's running chain with the config and change only what
 * differs: start new disks, stop disks no longer configured, swap the
 * chain of changed disks without a guest-visible error (pause, drain,
 * flush, drop, restart on the same socket).  Unsafe swaps are refused,
 * with reasons, before anything is changed.  Returns 0 or -1.
 */
int vaio_apply (const struct vaio_config *cfg,
                const struct vaio_host_filters *hf,
                const struct vaio_apply_options *o);

#endif /* VAIO_APPLY_H */

/* vaio-nbd: which filters are installed on each host (the VIB analogue). */
#ifndef VAIO_INVENTORY_H
#define VAIO_INVENTORY_H

#include "model.h"

/* <host-state>/installed: filters installed with `vaioctl filter install`. */
char *vaio_installed_dir (const struct vaio_host *h);

/* Install the manifest at file on host h: verify its sha256, refuse a
 * second filter of an installed class (naming the installed one), and
 * copy it into the host's installed/ directory.  An upgrade (same name)
 * is allowed only when no running disk on the host uses the filter or
 * the host is in maintenance mode.  Returns 0, or -1 with diag filled.
 */
int vaio_filter_install (const struct vaio_config *cfg,
                         const struct vaio_host *h, const char *file,
                         struct vaio_diag *diag);

/* Remove an installed filter by name, with the same in-use rule. */
int vaio_filter_uninstall (const struct vaio_config *cfg,
                           const struct vaio_host *h, const char *name,
                           struct vaio_diag *diag);

/* Maintenance mode: a file in the host's state dir. */
bool vaio_host_in_maintenance (const struct vaio_host *h);
int vaio_host_set_maintenance (const struct vaio_host *h, bool on);

/* Names of running disks on host h whose chain uses a filter of class c
 * (c == VAIO_CLASS_COUNT: any running disk), found by their pidfiles and
 * running records under the host's state dir: the config's disks, then
 * disks it no longer names (still running since a VM or disk was removed
 * from the YAML).  Returns a NULL-terminated array of "vm/disk" strings
 * ("vm/disk (no longer in the config)") (free each and the array).
 */
char **vaio_host_running_disks (const struct vaio_config *cfg,
                                const struct vaio_host *h, int c);

#endif /* VAIO_INVENTORY_H */

/* vaio-nbd: `vaioctl apply --convert-encryption`, converting a disk's
 * image between plain and LUKS1 (vaio-crypt) while the disk is held.
 */
#ifndef VAIO_CONVERT_H
#define VAIO_CONVERT_H

#include <stdbool.h>
#include <stdio.h>

#include "plan.h"

/* What apply knows of the chain that runs now. */
struct vaio_convert_old
{
  char *const *argv; /* the running record's argv (argv[0] "nbdkit") */
  size_t argc;
  const char *enc_filter; /* its encryption filter's name; NULL: none */
  int enc_pos;            /* index of encryption among its filters, or -1 */
  size_t n_filters;
  bool holds_data; /* the image holds data (a LUKS header alone: not) */
};

struct vaio_convert;

/* For a swap that adds or removes encryption (the caller checked that
 * one chain has encryption and the other not), with convert true when
 * --convert-encryption was given:
 *   1  the image is to be converted: *out is set (vaio_convert_free);
 *   0  no conversion applies: the caller's other rules decide;
 *  -1  refused, the reasons in diag.  Adding a LUKS filter (vaio-crypt,
 *      nbdkit-luks) to an image without a LUKS header is refused here
 *      without convert, data or not: the filter would refuse the image
 *      after the disk was stopped.
 * Changes nothing (the checks read the image's header and, to remove
 * encryption, unlock it with the running chain's key).
 */
int vaio_convert_check (const struct vaio_plan_disk *p,
                        const struct vaio_convert_old *old, bool convert,
                        struct vaio_convert **out, struct vaio_diag *diag);

/* --dry-run: what the conversion would do, one line per step. */
void vaio_convert_describe (const struct vaio_convert *c, FILE *fp);

/* Before the disk is paused: make <image>.converting ready (adding: a
 * LUKS1 header whose keyslot opens with the new chain's key).  -1: the
 * reason printed, nothing left behind.
 */
int vaio_convert_prepare (struct vaio_convert *c);

/* The swap stopped before the old chain did: remove what prepare made. */
void vaio_convert_abandon (struct vaio_convert *c);

/* With the old chain stopped (flushed, its cache destaged; cache_clean
 * false when a cache could hold data the image lacks): copy the
 * guest-visible data into <image>.converting through vaio-crypt
 * (nbdcopy), fsync it, keep the original as <image>.pre-convert (a hard
 * link) and rename the new image over <image>; then move aside a
 * replication state whose data changes format.  -1: the reason printed,
 * .converting removed, the image untouched.
 */
int vaio_convert_run (struct vaio_convert *c, bool cache_clean);

/* The new chain serves: drop the original. */
void vaio_convert_commit (struct vaio_convert *c);

/* The new chain failed to start: put the original image back, for the
 * old chain to be started on it (and move aside the replication state
 * that chain made).  -1: it could not be put back; the old chain must not
 * be started (the reason printed).
 */
int vaio_convert_undo (struct vaio_convert *c);

void vaio_convert_free (struct vaio_convert *c);

#endif /* VAIO_CONVERT_H */

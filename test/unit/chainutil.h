/* vaio-nbd unit tests: helpers for the chain library tests. */
#ifndef VAIO_CHAINUTIL_H
#define VAIO_CHAINUTIL_H

#include "model.h"

/* Every message of d joined by newlines, with each occurrence of dir
 * replaced by placeholder ("@DIR@"), so expected texts do not depend on
 * where the tree or the scratch directory is.
 */
char *cu_diag_text (const struct vaio_diag *d, const char *dir,
                    const char *placeholder);

/* A host filter inventory from each host's `filters:` list (what
 * inventory.c does, minus the sha256 check and installed/ filters, so the
 * validate tests do not depend on the lead's half).  Fails the test on a
 * manifest error or a class conflict.
 */
struct vaio_host_filters *cu_host_filters (const struct vaio_config *cfg);
void cu_host_filters_free (struct vaio_host_filters *hf, size_t n);

/* The shipped manifest template configs/manifests/NAME.manifest.in,
 * filled in (@PATH@ → dir/NAME.so, @SHA256@ → zeros) as dir/NAME.yaml;
 * returns that path.  Tests the real manifest without hashing any .so.
 */
char *cu_shipped_manifest (const char *dir, const char *name);

/* Load config file, and if it parses, validate it with cu_host_filters.
 * Returns the messages (cu_diag_text with dir → "@DIR@"), "" if none.
 */
char *cu_check_config (const char *file, const char *dir);

#endif

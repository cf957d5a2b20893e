/* vaio-nbd: the VAIO filter class model, defined once.
 *
 * Four classes, one canonical order through the chain (guest → disk):
 *
 *   encryption (default position), replication, caching, sioc,
 *   encryption (when the policy sets allow-cleartext-filters: true)
 *
 * VMware documents only "replication executes before cache"; the rest of
 * the order is ours.  Every other part of vaio-nbd asks this file.
 */
#ifndef VAIO_CLASSES_H
#define VAIO_CLASSES_H

#include <stdbool.h>
#include <stddef.h>

enum vaio_class
{
  VAIO_CLASS_REPLICATION,
  VAIO_CLASS_CACHING,
  VAIO_CLASS_SIOC,
  VAIO_CLASS_ENCRYPTION,
  VAIO_CLASS_COUNT
};

/* "replication", "caching", "sioc", "encryption". */
const char *vaio_class_name (enum vaio_class c);

/* Parse a class name.  Returns 0, or -1 for an unknown name. */
int vaio_class_parse (const char *name, enum vaio_class *c);

/* The chain for a disk whose policy uses the classes in present[], in
 * nbdkit --filter order (outermost, nearest the guest, first).  Writes at
 * most VAIO_CLASS_COUNT entries to order[] and returns how many.
 */
size_t vaio_class_chain_order (const bool present[VAIO_CLASS_COUNT],
                               bool allow_cleartext_filters,
                               enum vaio_class order[VAIO_CLASS_COUNT]);

/* A comma-separated list of the class names, for error messages. */
const char *vaio_class_names (void);

#endif /* VAIO_CLASSES_H */

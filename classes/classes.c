/* vaio-nbd: the VAIO filter class model. */
#include <string.h>

#include "classes.h"

static const char *const class_names[VAIO_CLASS_COUNT] = {
  [VAIO_CLASS_REPLICATION] = "replication",
  [VAIO_CLASS_CACHING] = "caching",
  [VAIO_CLASS_SIOC] = "sioc",
  [VAIO_CLASS_ENCRYPTION] = "encryption",
};

const char *
vaio_class_name (enum vaio_class c)
{
  if ((unsigned)c >= VAIO_CLASS_COUNT)
    return "unknown";
  return class_names[c];
}

int
vaio_class_parse (const char *name, enum vaio_class *c)
{
  for (unsigned i = 0; i < VAIO_CLASS_COUNT; i++)
    if (strcmp (name, class_names[i]) == 0)
      {
        *c = (enum vaio_class)i;
        return 0;
      }
  return -1;
}

const char *
vaio_class_names (void)
{
  return "replication, caching, sioc, encryption";
}

/* Guest-to-disk order with encryption in its default position: the
 * guest's data is encrypted before any other filter sees it, so a
 * replica or a cache device holds only ciphertext.
 */
static const enum vaio_class order_encrypt_first[] = {
  VAIO_CLASS_ENCRYPTION,
  VAIO_CLASS_REPLICATION,
  VAIO_CLASS_CACHING,
  VAIO_CLASS_SIOC,
};

/* allow-cleartext-filters: true ("Allow I/O filters before encryption"):
 * the other filters see cleartext, encryption happens last, just above
 * the backing image.
 */
static const enum vaio_class order_encrypt_last[] = {
  VAIO_CLASS_REPLICATION,
  VAIO_CLASS_CACHING,
  VAIO_CLASS_SIOC,
  VAIO_CLASS_ENCRYPTION,
};

size_t
vaio_class_chain_order (const bool present[VAIO_CLASS_COUNT],
                        bool allow_cleartext_filters,
                        enum vaio_class order[VAIO_CLASS_COUNT])
{
  const enum vaio_class *canon
      = allow_cleartext_filters ? order_encrypt_last : order_encrypt_first;
  size_t n = 0;

  for (size_t i = 0; i < VAIO_CLASS_COUNT; i++)
    if (present[canon[i]])
      order[n++] = canon[i];
  return n;
}

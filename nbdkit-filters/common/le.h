/* vaio-nbd: little-endian fields of our on-disk formats (cache metadata,
 * replication journal and bitmap, key store).  Every format is defined
 * little-endian so a state directory means the same on any host.
 */
#ifndef VAIO_LE_H
#define VAIO_LE_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline void
vaio_put_le32 (void *p, uint32_t v)
{
  v = htole32 (v);
  memcpy (p, &v, sizeof v);
}

static inline void
vaio_put_le64 (void *p, uint64_t v)
{
  v = htole64 (v);
  memcpy (p, &v, sizeof v);
}

static inline uint32_t
vaio_get_le32 (const void *p)
{
  uint32_t v;

  memcpy (&v, p, sizeof v);
  return le32toh (v);
}

static inline uint64_t
vaio_get_le64 (const void *p)
{
  uint64_t v;

  memcpy (&v, p, sizeof v);
  return le64toh (v);
}

#endif /* VAIO_LE_H */

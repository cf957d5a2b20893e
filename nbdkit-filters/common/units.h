/* vaio-nbd: strict parsing of sizes ("64K", "2G") and durations ("30ms").
 * Shared by vaioctl (config validation) and the filters (their
 * parameters), so both accept exactly the same spellings.
 */
#ifndef VAIO_UNITS_H
#define VAIO_UNITS_H

#include <stdbool.h>
#include <stdint.h>

/* A size as nbdkit_parse_size reads it: decimal digits, then optionally
 * one letter of either case: K M G T P E (powers of 1024), B (bytes) or
 * S (512-byte sectors); at most INT64_MAX.  No sign, no fraction, no
 * spaces, no "KiB"/"KB".  Returns 0, or -1 with errno EINVAL or ERANGE.
 */
int vaio_parse_size (const char *s, uint64_t *bytes);

/* A duration: decimal digits then a unit: ns, us, ms, s, m, h.  The unit
 * is required.  Returns 0 with *ns set, or -1 with errno EINVAL/ERANGE.
 */
int vaio_parse_duration (const char *s, uint64_t *ns);

/* true/false, yes/no, on/off, 1/0.  Returns 0, or -1 with errno EINVAL. */
int vaio_parse_bool (const char *s, bool *b);

/* A non-negative decimal integer that fits in uint64_t. */
int vaio_parse_uint (const char *s, uint64_t *v);

/* Format bytes as "1.5 GiB" etc. into buf. */
const char *vaio_format_size (uint64_t bytes, char *buf, unsigned len);

#endif /* VAIO_UNITS_H */

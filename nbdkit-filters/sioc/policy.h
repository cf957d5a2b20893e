/* vaio-sioc: a disk's I/O control policy (limits, reservation, shares,
 * congestion threshold), parsed from nbdkit parameters and from the
 * settings file `vaioctl apply` rewrites.  Pure C, no nbdkit calls, so the
 * unit tests can link it.
 */
#ifndef SIOC_POLICY_H
#define SIOC_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIOC_SHARES_LOW    500
#define SIOC_SHARES_NORMAL 1000
#define SIOC_SHARES_HIGH   2000
/* VMware's range for a disk's custom shares.  Also the most a peer's
 * slot may claim (segment.c): a larger claim is refused, not used.
 */
#define SIOC_SHARES_MAX           10000
#define SIOC_RATE_MAX             10000000 /* IOPS or MB/s: sanity bound */
#define SIOC_DEFAULT_THRESHOLD_NS 30000000 /* 30ms, as VMware's default */

struct sioc_policy
{
  uint64_t limit_iops;           /* 0 = no limit; in 32 KiB units per second */
  uint64_t limit_mbps;           /* 0 = no limit; MiB per second */
  uint64_t reservation_iops;     /* 0 = none; 32 KiB units per second */
  uint32_t shares;               /* 1 .. SIOC_SHARES_MAX */
  bool latency_auto;             /* threshold = latency at 90% of peak */
  uint64_t latency_threshold_ns; /* used when !latency_auto */
};

void sioc_policy_init (struct sioc_policy *p);

/* Apply one key=value (keys as the nbdkit parameters: sioc-limit-iops,
 * sioc-limit-mbps, sioc-reservation, sioc-shares, sioc-latency-threshold).
 * Returns 0 when applied, 1 when key is not a policy key (p untouched),
 * -1 with a message naming the key in err when the value is bad.
 */
int sioc_policy_set (struct sioc_policy *p, const char *key, const char *value,
                     char *err, size_t errlen);

/* Cross-key checks (reservation above the IOPS limit).  0 or -1 + err. */
int sioc_policy_check (const struct sioc_policy *p, char *err, size_t errlen);

/* Read a settings file (key=value lines, '#' comments, blank lines) on
 * top of *p.  All or nothing: on any error *p is unchanged and err names
 * the file, the line and the key.  Returns 0 or -1.
 */
int sioc_policy_load_file (const char *path, struct sioc_policy *p, char *err,
                           size_t errlen);

#endif /* SIOC_POLICY_H */

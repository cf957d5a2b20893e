/* vaio-sioc: the control thread.  Every 50ms it measures this disk,
 * publishes it in the datastore segment, reads the live peers, runs (on
 * the leader, the lowest live slot) the congestion controller, computes
 * this disk's entitlement, re-reads the settings file when it changed,
 * and updates the stats file.  It is the only writer of this disk's slot.
 */
#ifndef SIOC_CONTROL_H
#define SIOC_CONTROL_H

#include <stdint.h>

#include "policy.h"
#include "stats.h"

struct sioc_control_config
{
  const char *datastore_path; /* NULL: no coordination */
  const char *state_dir;      /* NULL: no stats, no settings file */
  const char *name;           /* shown in the segment */
  struct sioc_policy policy;  /* from the command line */
};

/* Indexes of vaio-sioc's counters in its stats file. */
enum sioc_counter
{
  C_ADMITTED,
  C_THROTTLED_NS,
  C_ENTITLEMENT,
  C_DELIVERED,
  C_LIMIT_IOPS,
  C_LIMIT_MBPS,
  C_RESERVATION,
  C_SHARES,
  C_CONGESTED,
  C_DS_LATENCY_US,
  C_THRESHOLD_US,
  C_BACKEND_LATENCY_US,
  C_PEERS,
  C_PEER_REJECTED,
  C_SETTINGS_RELOADS,
  C_SETTINGS_ERRORS,
  C_SLOT,
  C_RESERVATION_EFFECTIVE,
  C_UNCOORDINATED,
  C_COUNT
};

/* The `uncoordinated` gauge: why a disk with a sioc-datastore runs on
 * its limits only, without the other disks.
 */
#define SIOC_COORDINATED  0 /* holds a slot, or has no datastore */
#define SIOC_SEGMENT_FULL 1 /* every slot live: waits for one to free */
#define SIOC_SEGMENT_BAD  2 /* the file is not a valid segment */

/* The `slot` gauge of a disk that holds no slot (no sioc-datastore, or
 * the segment is full): -1 as the gauge's unsigned 64-bit value, as no
 * slot index can be.
 */
#define SIOC_NO_SLOT UINT64_MAX

/* Open the segment and read the settings file: errors that should stop
 * nbdkit from starting (reported with nbdkit_error).  Before fork.  A
 * segment file whose contents are corrupt does not stop it: one bad
 * write must not keep every later disk on the datastore from starting.
 * The disk runs uncoordinated (limits only) and says so, and the control
 * thread tries the file again every second.
 */
int sioc_control_prepare (const struct sioc_control_config *cfg);

/* Claim a slot, create the stats file, start the thread.  After fork. */
int sioc_control_start (void);

/* The stats file (NULL without sioc-state-dir): I/O threads record into
 * it lock-free.
 */
struct vaio_stats *sioc_control_stats (void);

/* Stop the thread, release the slot, close everything. */
void sioc_control_stop (void);

#endif /* SIOC_CONTROL_H */

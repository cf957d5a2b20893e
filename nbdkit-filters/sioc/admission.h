/* vaio-sioc: this disk's admission path.  I/O threads call
 * sioc_sched_admit() before passing a request down and sioc_sched_done()
 * after; the control thread sets the rates and reads the counters.
 */
#ifndef SIOC_ADMISSION_H
#define SIOC_ADMISSION_H

#include <stdint.h>

#include "mclock.h"

struct sioc_sched_counters
{
  uint64_t done_units; /* units completed by the backend */
  uint64_t done_ops;
  uint64_t backend_ns;    /* sum of backend latency over done_ops */
  uint64_t share_waits;   /* requests that waited for their share */
  uint64_t share_waiting; /* held for their share right now (a gauge) */
};

/* Hold the calling thread, for a request that arrived at now
 * (CLOCK_MONOTONIC), until it may start.  Returns the time it started:
 * now itself when it was not held.
 */
uint64_t sioc_sched_admit (uint64_t now, uint64_t units, uint64_t bytes);

/* The backend finished, at now, a request that started at started_ns. */
void sioc_sched_done (uint64_t units, uint64_t started_ns, uint64_t now);

void sioc_sched_set_rates (const struct sioc_rates *r);
void sioc_sched_get_counters (struct sioc_sched_counters *c);

#endif /* SIOC_ADMISSION_H */

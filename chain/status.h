/* vaio-nbd status views: the vSphere client's cluster, host and VM views,
 * and `vaioctl top`.
 */
#ifndef VAIO_STATUS_H
#define VAIO_STATUS_H

#include <stdbool.h>
#include <stdio.h>

#include "model.h"

enum vaio_view
{
  VAIO_VIEW_ALL,
  VAIO_VIEW_CLUSTER,
  VAIO_VIEW_HOST,
  VAIO_VIEW_VM,
};

/* Print the view(s).  Returns 0, or 1 when any disk is dead or out of
 * compliance (so scripts can test it).
 */
int vaio_status (const struct vaio_config *cfg,
                 const struct vaio_host_filters *hf, enum vaio_view view,
                 bool json, FILE *fp);

/* Live per-disk figures every interval_ms, iterations times (0: until
 * interrupted).
 */
int vaio_top (const struct vaio_config *cfg, const struct vaio_host_filters *hf,
              unsigned iterations, unsigned interval_ms, bool json, FILE *fp);

#endif /* VAIO_STATUS_H */

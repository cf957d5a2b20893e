/* cache-stats-get STATS_FILE COUNTER: print one class-specific counter of
 * a vaio stats file (integration-test helper).
 */
#include <stdio.h>
#include <stdlib.h>

#include "stats.h"

int
main (int argc, char **argv)
{
  struct vaio_stats_snapshot snap;
  char err[256];
  int i;

  if (argc != 3)
    {
      fprintf (stderr, "usage: %s STATS_FILE COUNTER\n", argv[0]);
      return 2;
    }
  if (vaio_stats_read (argv[1], &snap, err, sizeof err) == -1)
    {
      fprintf (stderr, "%s\n", err);
      return 1;
    }
  i = vaio_stats_counter_index (&snap, argv[2]);
  if (i < 0)
    {
      fprintf (stderr, "%s: no counter %s\n", argv[1], argv[2]);
      return 1;
    }
  printf ("%llu\n", (unsigned long long)snap.body.counters[i]);
  return 0;
}

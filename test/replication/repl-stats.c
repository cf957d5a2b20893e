/* repl-stats: print a replication stats file as "name value" lines, for
 * the integration tests (the lead's `vaioctl status` shows the same).
 */
#include <stdio.h>
#include <stdlib.h>

#include "stats.h"

int
main (int argc, char *argv[])
{
  struct vaio_stats_snapshot snap;
  char err[1024];

  if (argc != 2)
    {
      fprintf (stderr, "usage: repl-stats STATS-FILE\n");
      return 2;
    }
  if (vaio_stats_read (argv[1], &snap, err, sizeof err) == -1)
    {
      fprintf (stderr, "repl-stats: %s\n", err);
      return 1;
    }
  for (unsigned i = 0; i < snap.header.n_counters; i++)
    printf ("%s %llu\n", snap.header.counter_names[i],
            (unsigned long long)snap.body.counters[i]);
  printf ("write_ops %llu\n",
          (unsigned long long)snap.body.op[VAIO_OP_WRITE].ops);
  return 0;
}

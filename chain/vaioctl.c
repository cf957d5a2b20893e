/* vaioctl: placeholder main until the chain manager lands. */
#include <stdio.h>

int
main (void)
{
  fprintf (stderr, "vaioctl: not built yet\n");
  return 1;
}

/* vaio-nbd: diagnostics, accumulated so that vaioctl validate can report
 * every problem in one run instead of the first one only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* Used when even the error message cannot be allocated: the caller still
 * sees that something failed.  Never written and never freed (see
 * vaio_diag_free), so it needs no lock; it is not const only because
 * msgs is char **.
 */
static char out_of_memory[] = "out of memory while reporting an error";

static bool
diag_has (const struct vaio_diag *d, const char *msg)
{
  for (size_t i = 0; i < d->n; i++)
    if (strcmp (d->msgs[i], msg) == 0)
      return true;
  return false;
}

static void
diag_push (struct vaio_diag *d, char *msg)
{
  char **msgs;

  /* The same rule can be reached twice (a policy used by two disks on
   * one host): report each distinct problem once.
   */
  if (msg != out_of_memory && diag_has (d, msg))
    {
      free (msg);
      return;
    }
  msgs = realloc (d->msgs, (d->n + 1) * sizeof *msgs);
  if (msgs == NULL)
    {
      if (msg != out_of_memory)
        free (msg);
      /* Keep "something failed" visible without growing the array. */
      if (d->n > 0 && d->msgs[d->n - 1] != out_of_memory)
        {
          free (d->msgs[d->n - 1]);
          d->msgs[d->n - 1] = out_of_memory;
        }
      return;
    }
  d->msgs = msgs;
  d->msgs[d->n++] = msg;
}

void
vaio_diag_add (struct vaio_diag *d, const struct vaio_loc *loc, const char *fmt,
               ...)
{
  char *text, *msg;
  va_list ap;
  int r;

  va_start (ap, fmt);
  r = vasprintf (&text, fmt, ap);
  va_end (ap);
  if (r == -1)
    {
      diag_push (d, out_of_memory);
      return;
    }
  if (loc == NULL || loc->file == NULL)
    msg = text;
  else
    {
      /* line 0: the problem is with the file as a whole (empty, missing). */
      if (loc->line == 0)
        r = asprintf (&msg, "%s: %s", loc->file, text);
      else
        r = asprintf (&msg, "%s:%u:%u: %s", loc->file, loc->line, loc->column,
                      text);
      free (text);
      if (r == -1)
        msg = out_of_memory;
    }
  diag_push (d, msg);
}

void
vaio_diag_print (const struct vaio_diag *d, FILE *fp)
{
  for (size_t i = 0; i < d->n; i++)
    fprintf (fp, "%s\n", d->msgs[i]);
}

void
vaio_diag_free (struct vaio_diag *d)
{
  for (size_t i = 0; i < d->n; i++)
    if (d->msgs[i] != out_of_memory)
      free (d->msgs[i]);
  free (d->msgs);
  d->msgs = NULL;
  d->n = 0;
}

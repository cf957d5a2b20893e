/* vaio-nbd: where each disk's socket and state live (one place). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static char *
path_join (const char *a, const char *b, const char *c, const char *suffix)
{
  char *p;

  if (asprintf (&p, "%s/%s%s%s%s", a, b, c ? "/" : "", c ? c : "",
                suffix ? suffix : "")
      == -1)
    return NULL;
  return p;
}

char *
vaio_vm_dir (const struct vaio_host *h, const struct vaio_vm *vm)
{
  return path_join (h->state_dir, "vms", vm->name, NULL);
}

char *
vaio_disk_state_dir (const struct vaio_host *h, const struct vaio_disk *d)
{
  char *vmdir = vaio_vm_dir (h, d->vm), *p;

  if (vmdir == NULL)
    return NULL;
  p = path_join (vmdir, d->name, NULL, NULL);
  free (vmdir);
  return p;
}

char *
vaio_disk_socket (const struct vaio_host *h, const struct vaio_disk *d)
{
  char *vmdir, *p;

  if (d->port != 0)
    return NULL;
  if (d->socket != NULL)
    return strdup (d->socket);
  vmdir = vaio_vm_dir (h, d->vm);
  if (vmdir == NULL)
    return NULL;
  p = path_join (vmdir, d->name, NULL, ".sock");
  free (vmdir);
  return p;
}

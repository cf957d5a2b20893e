/* vaio-nbd: status.c (being written by the lead). */
#include "model.h"

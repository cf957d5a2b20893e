/* vaio-nbd: inventory.c (being written by the lead). */
#include "model.h"

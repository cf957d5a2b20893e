/* vaio-nbd: supervise.c (being written by the lead). */
#include "model.h"

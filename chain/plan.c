/* vaio-nbd: plan.c (being written by the lead). */
#include "model.h"

/* vaio-nbd: diag.c (being written: parser branch). */
#include "model.h"

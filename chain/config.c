/* vaio-nbd: config.c (being written: parser branch). */
#include "model.h"

/* vaio-nbd: validate.c (being written: parser branch). */
#include "model.h"

/* vaio-nbd: manifest.c (being written: parser branch). */
#include "model.h"

/* vaio-nbd: yamlutil.c (being written: parser branch). */
#include "model.h"

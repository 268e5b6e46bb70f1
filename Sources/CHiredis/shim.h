#ifndef LINLI_CHIREDIS_SHIM_H
#define LINLI_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif

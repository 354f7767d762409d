/*
 * lp_inflate.h: core.inflate, gzip/zlib decompression (zlib) for wires that
 * receive compressed bodies and do not decode them themselves (the OpenResty
 * cosocket wire).
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_INFLATE_H
#define LP_INFLATE_H

#include "lp_compat.h"
#include "leadpipe.h"

/* Sets inflate into the table on top of the stack. Stack: unchanged. */
LP_PRIVATE void lp_inflate_open(lua_State *L);

#endif

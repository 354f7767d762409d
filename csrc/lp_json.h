/*
 * lp_json.h: core.decode and core.array_mt, the one entry point that turns a
 * JSON body into Lua tables.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_JSON_H
#define LP_JSON_H

#include "lp_compat.h"
#include "leadpipe.h"

/* Registry key of the metatable shared by every decoded JSON array. */
#define LP_ARRAY_MT "leadpipe.array_mt"

/* Sets decode and array_mt into the table on top of the stack. Loads lua-cjson
 * (require "cjson") and keeps a private instance of it; raises if it is missing. */
LP_PRIVATE void lp_json_open(lua_State *L);

#endif

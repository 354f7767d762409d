/*
 * lp_util.h: small utilities of leadpipe.core (uuid, sleep, now) and the
 * option-table helpers the other files share.
 *
 * The option helpers read one field of an options table and raise a
 * "bad argument" error naming the field when it has the wrong type or range:
 * a wrong option is misuse, never a runtime failure.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_UTIL_H
#define LP_UTIL_H

#include <stddef.h>

#include "lp_compat.h"
#include "leadpipe.h"

/* Sets uuid, sleep and now into the table on top of the stack. */
LP_PRIVATE void lp_util_open(lua_State *L);

/* Raises unless every key of the table at arg is one of the strings in names
 * (a NULL-terminated list). Stack: unchanged. */
LP_PRIVATE void lp_check_fields(lua_State *L, int arg, const char *const names[]);

/* Field `name` of the table at arg as seconds: def when absent, raises unless a
 * number >= min (min is 0 or a tiny positive value). Stack: unchanged. */
LP_PRIVATE double lp_opt_seconds(lua_State *L, int arg, const char *name, double def, double min);

/* Field `name` as an integer >= min, def when absent. Stack: unchanged. */
LP_PRIVATE lua_Integer lp_opt_integer(lua_State *L, int arg, const char *name, lua_Integer def,
                                      lua_Integer min);

/* Field `name` as a boolean, def when absent. Stack: unchanged. */
LP_PRIVATE int lp_opt_boolean(lua_State *L, int arg, const char *name, int def);

/* Field `name` as a string, def when absent; *len gets its length (may be NULL).
 * The string stays valid while the table at arg is unchanged. Stack: unchanged. */
LP_PRIVATE const char *lp_opt_string(lua_State *L, int arg, const char *name, const char *def,
                                     size_t *len);

/* Raises "bad argument #arg (field 'name': what)". */
LP_PRIVATE int lp_field_error(lua_State *L, int arg, const char *name, const char *what);

/* Seconds to whole milliseconds for libcurl, rounded up: a positive time never
 * becomes 0 (which libcurl reads as "no limit"); clamped to LONG_MAX. */
LP_PRIVATE long lp_seconds_to_ms(double seconds);

#endif

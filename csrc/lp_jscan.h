/*
 * lp_jscan.h: the lexical pass over JSON text that both decoders share, so
 * that lua-cjson and simdjson agree on everything the JSON grammar leaves to
 * the decoder (see lp_json.h for the rules themselves).
 *
 * lp_jscan walks the text once, outside and inside strings, and either finds
 * nothing to change, or builds a rewritten copy, or finds an error:
 *
 *   both modes: a byte sequence that is not UTF-8 inside a string is an
 *     error ("invalid UTF-8 in the value of \"firstName\" at character 37"),
 *     and so is a lone surrogate escape (\ud800 not followed by a low one, or
 *     a low one alone): nothing is replaced silently, since a changed
 *     hashedEmail would be another person; numbers are checked against the
 *     JSON grammar ("01", "1.", ".5" are errors) and for range (a number
 *     whose value overflows a double, "1e400", is an error); nesting deeper
 *     than LP_JSON_MAX_DEPTH is an error.
 *   LP_JSCAN_CJSON: each empty array `[]` becomes `[null]` (cjson decodes []
 *     and {} alike); a number whose Lua value cjson would get wrong (a
 *     fraction or exponent with an integral value, "8.4e1" or "1.0"; an
 *     integer with more than 15 digits; "-0") becomes the string
 *     LP_JSCAN_TAG followed by its text, for lp_jscan_push_number.
 *   LP_JSCAN_SIMDJSON: a raw control character inside a string becomes a
 *     \u00XX escape (simdjson rejects it, cjson keeps it); an integer outside
 *     the 64-bit ranges gets "e0" appended (simdjson rejects it; Lua reads it
 *     as a float).
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_JSCAN_H
#define LP_JSCAN_H

#include <stddef.h>

#include "lp_compat.h"
#include "leadpipe.h"

/* Deepest nesting of arrays and objects both decoders accept. */
#define LP_JSON_MAX_DEPTH 1000

/* First byte of a tagged number: never the first byte of a UTF-8 string. */
#define LP_JSCAN_TAG '\xff'

/* Modes of lp_jscan. */
#define LP_JSCAN_CJSON 1
#define LP_JSCAN_SIMDJSON 2

/* Results of lp_jscan. */
#define LP_JSCAN_SAME 0      /* nothing pushed: the text can be parsed as it is */
#define LP_JSCAN_REWRITTEN 1 /* pushed the text to parse instead */
#define LP_JSCAN_ERROR 2     /* pushed the reason ("invalid number at character 5") */

/* Scans s[0..len) (a Lua string, so s[len] is '\0') in the given mode. Pushes
 * at most one string as described by the result. *tagged is set to whether
 * the rewrite holds tagged numbers. Raises only on memory errors. */
LP_PRIVATE int lp_jscan(lua_State *L, const char *s, size_t len, int mode, int *tagged);

/* Pushes the Lua number of the JSON number text lit[0..n) (already checked):
 * an integer literal that fits lua_Integer is an integer on 5.3+ ("-0" is 0),
 * anything else a float. On 5.1 every number is a float, "-0" being +0.0. */
LP_PRIVATE void lp_jscan_push_number(lua_State *L, const char *lit, size_t n);

/* Skips a UTF-8 byte order mark at the start of s[0..*len); returns the new start. */
LP_PRIVATE const char *lp_jscan_skip_bom(const char *s, size_t *len);

#endif

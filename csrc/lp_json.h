/*
 * lp_json.h: the JSON decoders of leadpipe.core and core.array_mt.
 *
 *   core.decode(text)        -> value | nil, "decode: <reason>"   (the best decoder)
 *   core.decode_cjson(text)  -> value | nil, "decode: <reason>"   (lua-cjson, always built)
 *   core.decoder             -> "simdjson" | "cjson"             (what core.decode is)
 *   core.decode_page(text, pred, raw) -> value, nrows, nkept | nil, "decode: <reason>"
 *                               (simdjson builds only; see lp_simdjson.h and docs/internals.md)
 *   core.array_mt            -> the metatable of every decoded array
 *
 * text is a Lua string, or a body kept in C memory (a leadpipe.body, lp_body.h), which
 * the simdjson path parses in place.
 *
 * Both decoders give equal values (deep-equal, number subtypes included) and
 * fail on the same texts with the same message. The rules:
 *
 *   - JSON null is an absent key at every depth, and is dropped from arrays
 *     (no holes); a document that is just null fails ("the document is null");
 *   - every array, empty ones too, carries core.array_mt;
 *   - a number written without fraction or exponent is an integer on Lua 5.3+
 *     when it fits lua_Integer ("-0" is 0); any other number is a float
 *     ("8.4e1" is 84.0, "1.0" is 1.0, 2^63 and beyond are floats). On Lua 5.1
 *     and LuaJIT every number is a double. A number whose magnitude overflows
 *     a double ("1e400", "-1e400") fails: "number out of range"; an underflow
 *     ("1e-400") is 0.0. Numbers follow the JSON grammar ("01", "1.", ".5",
 *     "+1", "0x10", NaN and Infinity fail: "invalid number");
 *   - strings: a byte sequence that is not UTF-8 fails, naming the field
 *     ("invalid UTF-8 in the value of \"firstName\" at character 37"), and
 *     so does a lone surrogate escape ("\ud800" alone, "\udc00" alone:
 *     "unpaired surrogate escape \ud800 in ..."): nothing is replaced, since
 *     a changed hashedEmail would be another person; a valid pair is the one code point;
 *     "\u0000" is a NUL byte; a raw control character is kept as that byte.
 *     Strings may be of any size;
 *   - duplicate keys: the last one wins, a null one included (the key is then
 *     absent);
 *   - a UTF-8 byte order mark at the start is skipped; whitespace around the
 *     value is fine; anything else after it fails;
 *   - any JSON value may be the document (a number, a string, true, false);
 *   - arrays and objects nest at most LP_JSON_MAX_DEPTH (1000) deep; deeper
 *     fails: "nested too deeply".
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_JSON_H
#define LP_JSON_H

#include "lp_compat.h"
#include "leadpipe.h"

/* Registry key of the metatable shared by every decoded JSON array. */
#define LP_ARRAY_MT "leadpipe.array_mt"

/* Sets decode, decode_cjson, decoder, array_mt (and decode_page with
 * simdjson) into the table on top of the stack. Loads lua-cjson
 * (require "cjson") and keeps a private instance of it; raises if it is
 * missing. */
LP_PRIVATE void lp_json_open(lua_State *L);

#endif

/*
 * lp_body.h: a byte view of a response body, for the decoders.
 *
 * A body is a userdata ("leadpipe.body") that owns bytes in C memory. The
 * request hands its finished body over as one (req:response(true)) instead of
 * copying it into a Lua string, and core.decode / core.decode_page read the
 * bytes in place, padded for simdjson. The request does not know the
 * decoders and the decoders do not know the request: both know this view.
 *
 *   core.body(text) a body holding a padded copy of the string text inside
 *                  the userdata (the collector counts and frees it): text
 *                  that is decoded many times (the cache's pages)
 *   body:close()   frees the bytes; idempotent; also __gc and __close
 *   #body          the length in bytes (0 once closed)
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_BODY_H
#define LP_BODY_H

#include <stddef.h>

#include "lp_buffer.h"
#include "lp_compat.h"
#include "leadpipe.h"

#define LP_BODY_MT "leadpipe.body"

/* Room a buffer that will become a body keeps after its bytes for a decoder's
 * padding (simdjson's is 64), so that the view needs no reallocation. */
#define LP_BODY_PAD 64

/* Pushes a body that takes over the memory of buf (buf is left empty and owns
 * nothing). Raises "out of memory" with buf unchanged when the userdata cannot
 * be made. */
LP_PRIVATE void lp_body_push(lua_State *L, lp_buffer_t *buf);

/* When the value at idx is a body: its bytes, followed by pad zero bytes
 * beyond its *len bytes (so that a decoder may parse them in place). NULL when
 * the value is anything else; raises when the body was closed or the padding
 * cannot be allocated. */
LP_PRIVATE const char *lp_body_view(lua_State *L, int idx, size_t pad, size_t *len);

/* Registers the body metatable, and core.body in the module at the top of
 * the stack. Stack: unchanged. */
LP_PRIVATE void lp_body_open(lua_State *L);

#endif

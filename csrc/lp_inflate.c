/*
 * lp_inflate.c: core.inflate(data [, max_size [, as_body]]), gzip or zlib data to
 * a string (or a body).
 *
 *   core.inflate(data [, max_size [, as_body]]) -> string | body
 *                                    | nil, "inflate: <reason>", kind
 *       data       a gzip member (or several, concatenated) or a zlib stream; the
 *                  format is detected from the header (zlib's windowBits 15 + 32)
 *       max_size   bytes of output allowed (default 256 MiB); more is refused with
 *                  kind "too_large", so a small bomb cannot fill the memory
 *       as_body    true: the output stays in C memory as a leadpipe.body (lp_body.h)
 *                  that the decoders read in place, instead of being copied into a
 *                  Lua string (a page of a few hundred KiB would cost LuaJIT's
 *                  allocator an mmap and munmap each time)
 *       kind       "too_large", or "data" for corrupt, truncated or trailing data
 *   Raises on a bad argument and "out of memory" when an allocation fails.
 *
 * The z_stream and the output buffer live in a userdata whose __gc releases
 * them, so an error raised half-way (out of memory) leaks nothing; on the normal
 * paths they are released before returning.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "lp_body.h"
#include "lp_buffer.h"
#include "lp_inflate.h"

#define LP_INFLATE_MT "leadpipe.inflate"
#define LP_INFLATE_DEFAULT_MAX ((lua_Integer)256 * 1024 * 1024)
#define LP_INFLATE_CHUNK 16384

typedef struct lp_inflate_t {
    z_stream zs;
    int active;        /* inflateInit2 succeeded and inflateEnd is still due */
    lp_buffer_t out;   /* the output so far */
} lp_inflate_t;

/* Frees what the state holds; idempotent. */
static void inflate_release(lp_inflate_t *z)
{
    if (z->active) {
        inflateEnd(&z->zs);
        z->active = 0;
    }
    lp_buffer_free(&z->out);
}

static int lp_inflate_gc(lua_State *L)
{
    inflate_release((lp_inflate_t *)luaL_checkudata(L, 1, LP_INFLATE_MT));
    return 0;
}

/* Pushes nil, "inflate: <what>", kind after releasing z. Returns 3 for the caller. */
static int inflate_fail(lua_State *L, lp_inflate_t *z, const char *what, const char *kind)
{
    lp_pushfail(L);
    lua_pushfstring(L, "inflate: %s", what); /* copies what before release frees it */
    lua_pushstring(L, kind);
    inflate_release(z);
    return 3;
}

static int lp_inflate(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    lua_Integer max = luaL_optinteger(L, 2, LP_INFLATE_DEFAULT_MAX);
    size_t fed = 0;      /* bytes of data handed to zlib so far */
    lp_inflate_t *z;
    unsigned char chunk[LP_INFLATE_CHUNK];

    int as_body = lua_toboolean(L, 3);
    luaL_argcheck(L, max >= 0, 2, "max_size must be >= 0");
    lua_settop(L, 3);
    z = (lp_inflate_t *)lua_newuserdata(L, sizeof *z);
    memset(z, 0, sizeof *z);
    lp_buffer_init(&z->out);
    luaL_getmetatable(L, LP_INFLATE_MT);
    lua_setmetatable(L, -2);

    if (inflateInit2(&z->zs, 15 + 32) != Z_OK)
        return luaL_error(L, "out of memory");
    z->active = 1;
    if (len == 0)
        return inflate_fail(L, z, "no data", "data");
    if (len >= 18 && (unsigned char)data[0] == 0x1f) {
        /* a gzip member ends with its size mod 2^32: room for it (and a decoder's
         * padding) at once, when it is within max_size; a wrong hint costs only
         * the reallocations it would have saved */
        const unsigned char *t = (const unsigned char *)data + len - 4;
        size_t hint = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
        if ((lua_Integer)hint <= max)
            (void)lp_buffer_reserve(&z->out, hint + LP_BODY_PAD);
    }

    for (;;) {
        int rc;
        size_t produced;
        if (z->zs.avail_in == 0 && fed < len) {
            /* zlib counts input in uInt: feed a huge string in pieces. */
            size_t n = len - fed;
            if (n > UINT_MAX)
                n = UINT_MAX;
            z->zs.next_in = (Bytef *)(data + fed);
            z->zs.avail_in = (uInt)n;
            fed += n;
        }
        z->zs.next_out = chunk;
        z->zs.avail_out = sizeof chunk;
        rc = inflate(&z->zs, Z_NO_FLUSH);
        produced = sizeof chunk - z->zs.avail_out;
        if (produced > 0) {
            if ((lua_Integer)(z->out.len + produced) > max) {
                char msg[64];
                snprintf(msg, sizeof msg, "output larger than %lld bytes", (long long)max);
                return inflate_fail(L, z, msg, "too_large");
            }
            if (lp_buffer_append(&z->out, (const char *)chunk, produced) != 0)
                return luaL_error(L, "out of memory");
        }
        if (rc == Z_STREAM_END) {
            if (z->zs.avail_in == 0 && fed == len)
                break;
            if (z->zs.avail_in == 0) {     /* the next piece of a huge string */
                size_t n = len - fed;
                if (n > UINT_MAX)
                    n = UINT_MAX;
                z->zs.next_in = (Bytef *)(data + fed);
                z->zs.avail_in = (uInt)n;
                fed += n;
            }
            /* Another gzip member may follow (RFC 1952 allows several). */
            if (z->zs.avail_in > 0 && z->zs.next_in[0] == 0x1f) {
                if (inflateReset(&z->zs) != Z_OK)
                    return inflate_fail(L, z, "cannot reset the stream", "data");
                continue;
            }
            return inflate_fail(L, z, "trailing data after the compressed stream", "data");
        }
        if (rc == Z_OK)
            continue;
        if (rc == Z_BUF_ERROR) {
            /* No progress possible: out of input before the end of the stream, or the
             * next piece of a huge string is due (fed at the top of the loop). */
            if (z->zs.avail_in == 0 && fed == len)
                return inflate_fail(L, z, "truncated data", "data");
            if (z->zs.avail_in == 0)
                continue;
            return inflate_fail(L, z, "no progress", "data");
        }
        if (rc == Z_MEM_ERROR)
            return luaL_error(L, "out of memory");
        return inflate_fail(L, z, z->zs.msg ? z->zs.msg : zError(rc), "data");
    }
    if (as_body) {
        inflateEnd(&z->zs);
        z->active = 0;
        lp_body_push(L, &z->out); /* takes the bytes; raises with z->out kept (the __gc frees it) */
        return 1;
    }
    lua_pushlstring(L, z->out.data ? z->out.data : "", z->out.len);
    inflate_release(z);
    return 1;
}

static const luaL_Reg lp_inflate_funcs[] = {
    { "inflate", lp_inflate },
    { NULL, NULL }
};

void lp_inflate_open(lua_State *L)
{
    if (lp_newmetatable(L, LP_INFLATE_MT)) {
        lua_pushcfunction(L, lp_inflate_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lp_setfuncs(L, lp_inflate_funcs, 0);
}

/*
 * lp_body.c: the body userdata, a byte view of a response body (see lp_body.h).
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <string.h>

#include "lp_body.h"

typedef struct {
    lp_buffer_t bytes;
    int closed;
    int inline_bytes; /* the bytes follow this struct in the userdata (core.body) */
} lp_body_t;

void lp_body_push(lua_State *L, lp_buffer_t *buf)
{
    /* created closed (owning nothing) with its metatable, before it takes the memory */
    lp_body_t *b = (lp_body_t *)lua_newuserdata(L, sizeof(lp_body_t));
    lp_buffer_init(&b->bytes);
    b->closed = 1;
    b->inline_bytes = 0;
    luaL_getmetatable(L, LP_BODY_MT);
    lua_setmetatable(L, -2);
    b->bytes = *buf;
    b->closed = 0;
    lp_buffer_init(buf);
}

/* The body at idx, or NULL when the value there is anything else. */
static lp_body_t *test_body(lua_State *L, int idx)
{
    lp_body_t *b = (lp_body_t *)lua_touserdata(L, idx);
    int same;
    if (b == NULL || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, LP_BODY_MT);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? b : NULL;
}

const char *lp_body_view(lua_State *L, int idx, size_t pad, size_t *len)
{
    lp_body_t *b = test_body(L, idx);
    if (b == NULL)
        return NULL;
    if (b->closed)
        luaL_error(L, "decode: the body is closed");
    if (b->inline_bytes) {
        /* padded when made, and never moved: the userdata holds the bytes */
        if (pad > b->bytes.cap - b->bytes.len)
            luaL_error(L, "decode: the body has less padding than the decoder needs");
        *len = b->bytes.len;
        return b->bytes.data;
    }
    if (pad > (size_t)-1 - b->bytes.len || lp_buffer_reserve(&b->bytes, b->bytes.len + pad) != 0)
        luaL_error(L, "decode: out of memory");
    if (pad > 0)
        memset(b->bytes.data + b->bytes.len, 0, pad);
    *len = b->bytes.len;
    /* an empty body that never allocated: a valid empty text */
    return b->bytes.data != NULL ? b->bytes.data : "";
}

/* body:close(), __gc, __close: frees the bytes. Idempotent. */
static int lp_body_close(lua_State *L)
{
    lp_body_t *b = (lp_body_t *)luaL_checkudata(L, 1, LP_BODY_MT);
    if (b->inline_bytes)
        lp_buffer_init(&b->bytes); /* the collector frees the userdata and its bytes */
    else
        lp_buffer_free(&b->bytes);
    b->closed = 1;
    return 0;
}

/* core.body(text) -> a body holding a copy of the string text, padded with
 * LP_BODY_PAD zero bytes, inside the userdata itself: the collector counts
 * its size and frees it (body:close() only forgets it). For text kept to be
 * decoded many times (the cache of completed runs): a decoder parses it in
 * place instead of copying it first. */
static int lp_body_new(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lp_body_t *b;
    if (len > (size_t)-1 - sizeof(lp_body_t) - LP_BODY_PAD)
        return luaL_error(L, "core.body: text too large");
    b = (lp_body_t *)lua_newuserdata(L, sizeof(lp_body_t) + len + LP_BODY_PAD);
    b->bytes.data = (char *)(b + 1);
    b->bytes.len = len;
    b->bytes.cap = len + LP_BODY_PAD;
    b->closed = 0;
    b->inline_bytes = 1;
    memcpy(b->bytes.data, s, len);
    memset(b->bytes.data + len, 0, LP_BODY_PAD);
    luaL_getmetatable(L, LP_BODY_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int lp_body_len(lua_State *L)
{
    lp_body_t *b = (lp_body_t *)luaL_checkudata(L, 1, LP_BODY_MT);
    lua_pushinteger(L, (lua_Integer)(b->closed ? 0 : b->bytes.len));
    return 1;
}

static int lp_body_tostring(lua_State *L)
{
    lp_body_t *b = (lp_body_t *)luaL_checkudata(L, 1, LP_BODY_MT);
    if (b->closed)
        lua_pushliteral(L, "leadpipe.body (closed)");
    else
        lua_pushfstring(L, "leadpipe.body (%d bytes): %p", (int)b->bytes.len, (void *)b);
    return 1;
}

/* ===== REGISTRATION ===== */

static const luaL_Reg lp_body_methods[] = {
    {"close", lp_body_close},
    {NULL, NULL},
};

static const luaL_Reg lp_body_metamethods[] = {
    {"__gc", lp_body_close},
    {"__close", lp_body_close},
    {"__len", lp_body_len},
    {"__tostring", lp_body_tostring},
    {NULL, NULL},
};

void lp_body_open(lua_State *L)
{
    /* stack: module */
    lp_newmetatable(L, LP_BODY_MT);
    lp_setfuncs(L, lp_body_metamethods, 0);
    lp_newlib(L, lp_body_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, lp_body_new);
    lua_setfield(L, -2, "body");
}

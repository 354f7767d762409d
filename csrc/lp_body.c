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
} lp_body_t;

void lp_body_push(lua_State *L, lp_buffer_t *buf)
{
    /* created closed (owning nothing) with its metatable, before it takes the memory */
    lp_body_t *b = (lp_body_t *)lua_newuserdata(L, sizeof(lp_body_t));
    lp_buffer_init(&b->bytes);
    b->closed = 1;
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
    lp_buffer_free(&b->bytes);
    b->closed = 1;
    return 0;
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
    lp_newmetatable(L, LP_BODY_MT);
    lp_setfuncs(L, lp_body_metamethods, 0);
    lp_newlib(L, lp_body_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

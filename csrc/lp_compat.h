/*
 * lp_compat.h: the few Lua C API differences between Lua 5.1 (and LuaJIT),
 * 5.2, 5.3 and 5.4 that leadpipe.core meets, as lp_-prefixed shims.
 *
 * The C sources are written against the 5.3 API; anything newer or older
 * goes through a macro or a small static function here, so that the same
 * files build for every Lua version. Nothing here changes behaviour on 5.4.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_COMPAT_H
#define LP_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 502

#define lp_rawlen(L, i) lua_rawlen((L), (i))
#define lp_absindex(L, i) lua_absindex((L), (i))
#define lp_setfuncs(L, l, nup) luaL_setfuncs((L), (l), (nup))
/* The value is always a table, which 5.2 requires and every later version accepts. */
#define lp_setuservalue(L, i) lua_setuservalue((L), (i))
#define lp_getuservalue(L, i) ((void)lua_getuservalue((L), (i)))

#else /* Lua 5.1, LuaJIT */

#define lp_rawlen(L, i) lua_objlen((L), (i))
#define lp_absindex(L, i) \
    (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#define lp_setuservalue(L, i) lua_setfenv((L), (i))
#define lp_getuservalue(L, i) lua_getfenv((L), (i))

/* luaL_setfuncs: sets the functions of l into the table below the nup upvalues
 * on top of the stack, each closure sharing those upvalues; pops the upvalues. */
static inline void lp_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    int i;
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name != NULL; l++) {
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

#endif

#if LUA_VERSION_NUM >= 503
#define lp_newmetatable(L, name) luaL_newmetatable((L), (name))
#else
/* 5.1 and 5.2 do not set __name, which error messages and __tostring use. */
static inline int lp_newmetatable(lua_State *L, const char *name)
{
    if (!luaL_newmetatable(L, name))
        return 0;
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    return 1;
}
#endif

#if LUA_VERSION_NUM >= 504
#define lp_pushfail(L) luaL_pushfail(L)
#else
#define lp_pushfail(L) lua_pushnil(L)
#endif

/* Pushes a new table holding the functions of l (luaL_newlib). */
#define lp_newlib(L, l) (lua_newtable(L), lp_setfuncs((L), (l), 0))

/* True when the libcurl headers are at least version maj.min.patch (Lua-cURL's
 * LCURL_CURL_VER_GE); needs <curl/curl.h> included before use. */
#define LP_CURL_VER_GE(maj, min, patch) \
    (LIBCURL_VERSION_NUM >= (((maj) << 16) | ((min) << 8) | (patch)))

#endif

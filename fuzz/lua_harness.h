/*
 * lua_harness.h: a Lua state with leadpipe.core loaded, for the fuzz harnesses that
 * reach a C function through its Lua entry point (core.decode, core.inflate).
 *
 * lp_fuzz_core(name) returns a registry reference to core[name], or LUA_NOREF when the
 * module has no such function on this branch; lp_fuzz_call(ref, data, size) calls it
 * with the bytes as a Lua string under lua_pcall (a raise is a fine outcome, a crash
 * or a sanitizer report is not) and collects all garbage after each input.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_FUZZ_LUA_HARNESS_H
#define LP_FUZZ_LUA_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_leadpipe_core(lua_State *L);

static lua_State *lp_fuzz_L;

static int lp_fuzz_core(const char *name)
{
    if (lp_fuzz_L == NULL) {
        lp_fuzz_L = luaL_newstate();
        if (lp_fuzz_L == NULL)
            abort();
        luaL_openlibs(lp_fuzz_L);
        luaL_requiref(lp_fuzz_L, "leadpipe.core", luaopen_leadpipe_core, 0);
        lua_setfield(lp_fuzz_L, LUA_REGISTRYINDEX, "lp_fuzz_core");
    }
    lua_getfield(lp_fuzz_L, LUA_REGISTRYINDEX, "lp_fuzz_core");
    lua_getfield(lp_fuzz_L, -1, name);
    lua_remove(lp_fuzz_L, -2);
    if (!lua_isfunction(lp_fuzz_L, -1)) {
        lua_pop(lp_fuzz_L, 1);
        return LUA_NOREF;
    }
    return luaL_ref(lp_fuzz_L, LUA_REGISTRYINDEX);
}

static void lp_fuzz_call(int ref, const uint8_t *data, size_t size)
{
    lua_State *L = lp_fuzz_L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_pushlstring(L, (const char *)data, size);
    (void)lua_pcall(L, 1, LUA_MULTRET, 0);
    lua_settop(L, 0);
    /* Everything the input made is freed before the next one: libFuzzer's leak check
     * (malloc and free counts per input) then holds, and __gc paths run every time. */
    lua_gc(L, LUA_GCCOLLECT, 0);
}

#endif

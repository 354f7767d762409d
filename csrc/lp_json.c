/*
 * lp_json.c: core.decode(text) -> value | nil, "decode: <reason>".
 *
 * The parsing is lua-cjson's (a private instance from cjson.new(), so that the
 * user's cjson settings never change what we get); this file only shapes the
 * result the way leadpipe promises:
 *
 *   - JSON null (cjson.null, a NULL light userdata) becomes an absent key in
 *     objects, and is dropped from arrays, whose other elements move down so
 *     that `#` and ipairs see all of them in order;
 *   - every array, empty ones too, gets the shared metatable core.array_mt, so
 *     that an encoder can write `[]` back for an empty one;
 *   - on Lua 5.3+ a float with an integral value that fits lua_Integer becomes
 *     an integer (lua-cjson 2.1.0 decodes 84 as 84.0).
 *
 * cjson decodes `[]` and `{}` to the same empty table. So before decoding, the
 * text is scanned once (outside JSON strings) for empty arrays; only when there
 * is one, a copy in which each `[]` is `[null]` is decoded instead. The pass
 * below then turns it into an empty table with array_mt. A decoded table is an
 * array iff it has the key 1: cjson arrays are dense from 1, nulls included,
 * and object keys are always strings.
 *
 * Bad input never raises: it returns nil and the cjson message. Only a
 * non-string argument raises.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <string.h>

#include "lp_json.h"

/* Upvalues of lp_json_decode. */
#define LP_JSON_DECODE lua_upvalueindex(1) /* the private cjson decode function */
#define LP_JSON_ARRAY_MT lua_upvalueindex(2)

/* Results of fix_value. */
#define LP_FIX_KEPT 0     /* the value on top is unchanged */
#define LP_FIX_NULL 1     /* the value on top is JSON null: drop it */
#define LP_FIX_REPLACED 2 /* the value on top was replaced (a number became an integer) */
#define LP_FIX_TOO_DEEP 3 /* no stack space left */

/* ===== EMPTY ARRAYS ===== */

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Finds the next empty array `[ ws ]` in s[from..len), skipping JSON strings
 * (from must be outside a string). Returns the offset of its '[' and sets
 * *after to the offset just past its ']'; returns len when there is none.
 * Malformed text (an unterminated string) just ends the scan. */
static size_t find_empty_array(const char *s, size_t len, size_t from, size_t *after)
{
    size_t i = from;
    while (i < len) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] == '\\')
                    i++;
            }
        } else if (c == '[') {
            size_t j = i + 1;
            while (j < len && is_json_space(s[j]))
                j++;
            if (j < len && s[j] == ']') {
                *after = j + 1;
                return i;
            }
        }
        i++;
    }
    return len;
}

/* Pushes the text to give cjson: the string at index 1 itself (returns 0), or
 * a copy with every empty array written as [null] (returns 1). */
static int push_decodable(lua_State *L, const char *s, size_t len)
{
    size_t after = 0, from = 0;
    size_t at = find_empty_array(s, len, 0, &after);
    luaL_Buffer b;
    if (at == len) {
        lua_pushvalue(L, 1);
        return 0;
    }
    luaL_buffinit(L, &b);
    while (at < len) {
        luaL_addlstring(&b, s + from, at + 1 - from); /* up to and with '[' */
        luaL_addlstring(&b, "null]", 5);
        from = after;
        at = find_empty_array(s, len, from, &after);
    }
    luaL_addlstring(&b, s + from, len - from);
    luaL_pushresult(&b);
    return 1;
}

/* ===== THE PASS OVER THE DECODED VALUE ===== */

static int fix_value(lua_State *L);

/* The array at index t (dense 1..n): drops nulls, moving the rest down, fixes
 * each element, sets array_mt. Returns LP_FIX_KEPT or LP_FIX_TOO_DEEP. */
static int fix_array(lua_State *L, int t)
{
    size_t n = lp_rawlen(L, t), i, j = 0;
    for (i = 1; i <= n; i++) {
        int r;
        lua_rawgeti(L, t, (lua_Integer)i);
        r = fix_value(L);
        if (r == LP_FIX_TOO_DEEP)
            return r;
        if (r == LP_FIX_NULL) {
            lua_pop(L, 1);
            continue;
        }
        j++;
        if (j != i || r == LP_FIX_REPLACED)
            lua_rawseti(L, t, (lua_Integer)j);
        else
            lua_pop(L, 1);
    }
    for (i = j + 1; i <= n; i++) {
        lua_pushnil(L);
        lua_rawseti(L, t, (lua_Integer)i);
    }
    lua_pushvalue(L, LP_JSON_ARRAY_MT);
    lua_setmetatable(L, t);
    return LP_FIX_KEPT;
}

/* The object at index t: removes null members, fixes the others in place
 * (changing or clearing existing keys during lua_next is allowed). */
static int fix_object(lua_State *L, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        /* stack: ... key value */
        int r = fix_value(L);
        if (r == LP_FIX_TOO_DEEP)
            return r;
        if (r == LP_FIX_NULL) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, t);
        } else if (r == LP_FIX_REPLACED) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, t);
        } else {
            lua_pop(L, 1);
        }
        /* stack: ... key */
    }
    return LP_FIX_KEPT;
}

/* Fixes the value on top of the stack, replacing it there when it changes.
 * Stack: the value stays (possibly replaced); one LP_FIX_* code is returned. */
static int fix_value(lua_State *L)
{
    switch (lua_type(L, -1)) {
    case LUA_TLIGHTUSERDATA:
        return lua_touserdata(L, -1) == NULL ? LP_FIX_NULL : LP_FIX_KEPT;
    case LUA_TTABLE: {
        int t = lua_gettop(L);
        int is_array;
        /* key, value and one spare for the deepest level */
        if (!lua_checkstack(L, 4))
            return LP_FIX_TOO_DEEP;
        lua_rawgeti(L, t, 1);
        is_array = !lua_isnil(L, -1);
        lua_pop(L, 1);
        return is_array ? fix_array(L, t) : fix_object(L, t);
    }
#if LUA_VERSION_NUM >= 503
    case LUA_TNUMBER: {
        lua_Number n;
        lua_Integer i;
        if (lua_isinteger(L, -1))
            return LP_FIX_KEPT;
        n = lua_tonumber(L, -1);
        if (lua_numbertointeger(n, &i) && (lua_Number)i == n) {
            lua_pop(L, 1);
            lua_pushinteger(L, i);
            return LP_FIX_REPLACED;
        }
        return LP_FIX_KEPT;
    }
#endif
    default:
        return LP_FIX_KEPT;
    }
}

/* ===== DECODE ===== */

/* Pushes nil and "decode: <message of the error on top>"; returns 2. */
static int decode_fail(lua_State *L, const char *what)
{
    lp_pushfail(L);
    lua_pushfstring(L, "decode: %s", what != NULL ? what : "unknown error");
    return 2;
}

/* core.decode(text) -> value | nil, "decode: <reason>". Raises only when text
 * is not a string. */
static int lp_json_decode(lua_State *L)
{
    size_t len;
    const char *s;
    int r, rewritten;
    luaL_checktype(L, 1, LUA_TSTRING);
    s = lua_tolstring(L, 1, &len);
    lua_settop(L, 1);
    lua_pushvalue(L, LP_JSON_DECODE);
    rewritten = push_decodable(L, s, len);
    /* stack: text decode text' */
    if (lua_pcall(L, 1, 1, 0) != 0) {
        /* stack: text message */
        if (rewritten) {
            /* A rewritten copy failed: the original fails the same way; decode it
             * again so that the character offset in the message is the caller's. */
            lua_pushvalue(L, LP_JSON_DECODE);
            lua_pushvalue(L, 1);
            if (lua_pcall(L, 1, 1, 0) != 0)
                lua_replace(L, 2);
            else
                lua_pop(L, 1);
        }
        return decode_fail(L, lua_tostring(L, 2));
    }
    /* stack: text value */
    r = fix_value(L);
    if (r == LP_FIX_NULL)
        return decode_fail(L, "the document is null");
    if (r == LP_FIX_TOO_DEEP)
        return decode_fail(L, "nested too deeply");
    lua_settop(L, 2);
    return 1;
}

/* ===== REGISTRATION ===== */

void lp_json_open(lua_State *L)
{
    /* stack: module */
    lua_getfield(L, LUA_REGISTRYINDEX, LP_ARRAY_MT);
    if (lua_isnil(L, -1)) {
        /* One table per Lua state, shared by every load of the module, so that
         * arrays decoded before a reload still carry the current array_mt. */
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, LP_ARRAY_MT);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "array_mt");
    /* stack: module array_mt */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "new");
    if (lua_type(L, -1) != LUA_TFUNCTION)
        luaL_error(L, LP_NAME ": the cjson module has no new()");
    lua_call(L, 0, 1);
    /* stack: module array_mt cjson instance */
    lua_getfield(L, -1, "decode_invalid_numbers");
    if (lua_type(L, -1) == LUA_TFUNCTION) {
        /* Strict JSON: no NaN, Infinity or hexadecimal numbers. */
        lua_pushboolean(L, 0);
        lua_call(L, 1, 0);
    } else {
        lua_pop(L, 1);
    }
    lua_getfield(L, -1, "decode");
    if (lua_type(L, -1) != LUA_TFUNCTION)
        luaL_error(L, LP_NAME ": the cjson module has no decode()");
    /* stack: module array_mt cjson instance decode */
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_insert(L, -2);
    /* stack: module decode array_mt */
    lua_pushcclosure(L, lp_json_decode, 2);
    lua_setfield(L, -2, "decode");
}

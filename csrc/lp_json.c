/*
 * lp_json.c: core.decode, core.decode_cjson, core.decode_page, core.decoder
 * and core.array_mt (the contract is in lp_json.h).
 *
 * Two decoders give the same values and the same errors:
 *
 * decode_cjson (always built) parses with lua-cjson (a private instance from
 * cjson.new(), so the user's cjson settings never change what we get), after
 * the lexical pass of lp_jscan.c, and then shapes the result in a second pass:
 *
 *   - JSON null (cjson.null, a NULL light userdata) becomes an absent key in
 *     objects, and is dropped from arrays, whose other elements move down so
 *     that `#` and ipairs see all of them in order;
 *   - every array, empty ones too, gets the shared metatable core.array_mt;
 *     lp_jscan turns each `[]` into `[null]` first, since cjson decodes `[]`
 *     and `{}` to the same empty table; a decoded table is an array iff it
 *     has the key 1 (cjson arrays are dense from 1, nulls included, object
 *     keys are always strings);
 *   - numbers: cjson reads every number as a double. On 5.3+ an integral one
 *     becomes an integer; lp_jscan hands over as tagged strings the numbers
 *     for which that would be wrong (8.4e1, 1.0, -0, integers of 16 digits
 *     or more), and this pass turns them into their exact Lua numbers.
 *
 * decode (with simdjson) parses with lp_simdjson.cpp, which builds the final
 * shape in one pass. Only when simdjson rejects the text does lp_jscan run
 * (in its simdjson mode) to repair what leadpipe accepts and simdjson does not
 * (bad UTF-8, lone surrogates, raw control characters, integers beyond 64
 * bits); if that does not help either, the answer (the error message) is the
 * one decode_cjson gives, so both decoders fail alike.
 *
 * The text is a Lua string, or a body kept in C memory (lp_body.h: what
 * req:response(true) hands over): then it is parsed in place, padded through
 * the body's view, with no copy into Lua and none for simdjson.
 *
 * Bad input never raises: it returns nil and "decode: <reason>". Only an
 * argument that is neither (or a bad predicate) raises, and memory errors.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <stdlib.h>
#include <string.h>

#include "lp_body.h"
#include "lp_jscan.h"
#include "lp_json.h"
#ifdef LP_HAVE_SIMDJSON
#include "lp_simdjson.h"
#endif

/* Upvalues of lp_json_decode_cjson. */
#define LP_JSON_CJSON lua_upvalueindex(1) /* the private cjson decode function */
#define LP_JSON_ARRAY_MT lua_upvalueindex(2)

/* Results of fix_value. */
#define LP_FIX_KEPT 0     /* the value on top is unchanged */
#define LP_FIX_NULL 1     /* the value on top is JSON null: drop it */
#define LP_FIX_REPLACED 2 /* the value on top was replaced (a number became an integer) */
#define LP_FIX_TOO_DEEP 3 /* no stack space left */

/* Pushes nil and "decode: <what>"; returns 2. */
static int decode_fail(lua_State *L, const char *what)
{
    lp_pushfail(L);
    lua_pushfstring(L, "decode: %s", what != NULL ? what : "unknown error");
    return 2;
}

/* ===== THE CJSON PATH: THE PASS OVER THE DECODED VALUE ===== */

static int fix_value(lua_State *L, int tagged);

/* The array at index t (dense 1..n): drops nulls, moving the rest down, fixes
 * each element, sets array_mt. Returns LP_FIX_KEPT or LP_FIX_TOO_DEEP. */
static int fix_array(lua_State *L, int t, int tagged)
{
    size_t n = lp_rawlen(L, t), i, j = 0;
    for (i = 1; i <= n; i++) {
        int r;
        lua_rawgeti(L, t, (lua_Integer)i);
        r = fix_value(L, tagged);
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
static int fix_object(lua_State *L, int t, int tagged)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        /* stack: ... key value */
        int r = fix_value(L, tagged);
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
 * tagged: strings starting with LP_JSCAN_TAG are numbers (see lp_jscan.h).
 * Stack: the value stays (possibly replaced); one LP_FIX_* code is returned. */
static int fix_value(lua_State *L, int tagged)
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
        return is_array ? fix_array(L, t, tagged) : fix_object(L, t, tagged);
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s;
        if (!tagged)
            return LP_FIX_KEPT;
        s = lua_tolstring(L, -1, &len);
        if (len < 2 || s[0] != LP_JSCAN_TAG)
            return LP_FIX_KEPT;
        lp_jscan_push_number(L, s + 1, len - 1);
        lua_replace(L, -2);
        return LP_FIX_REPLACED;
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

/* The text to decode at index 1: a string, or a body (lp_body.h), which is
 * then put there as a string. */
static void text_as_string(lua_State *L)
{
    size_t len;
    const char *body = lp_body_view(L, 1, 0, &len);
    if (body != NULL) {
        lua_pushlstring(L, body, len);
        lua_replace(L, 1);
    }
    luaL_checktype(L, 1, LUA_TSTRING);
}

/* Page mode: a null element of data.results (the value on top, as cjson gave
 * it) becomes false, so that the page rules see a row that is not an object
 * instead of a hole the fix pass would close (as decode_page does). A results
 * array of one null is left alone: lp_jscan writes `[]` so for cjson, and a
 * page whose only row is null reads as empty (refused when rows are due). */
static void mark_null_rows(lua_State *L)
{
    size_t n, i;
    if (lua_type(L, -1) != LUA_TTABLE)
        return;
    lua_getfield(L, -1, "data");
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, -1, "results");
        if (lua_type(L, -1) == LUA_TTABLE) {
            n = lp_rawlen(L, -1);
            for (i = 1; i <= n && n > 1; i++) {
                lua_rawgeti(L, -1, (lua_Integer)i);
                if (lua_type(L, -1) == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL) {
                    lua_pushboolean(L, 0);
                    lua_rawseti(L, -3, (lua_Integer)i);
                }
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* core.decode_cjson(text, page) -> value | nil, "decode: <reason>". text: a string,
 * or a body kept in C memory (copied into a string here: cjson takes nothing
 * else). page: a results page, whose null rows become false (as in
 * decode_page). Raises only when text is neither, or a closed body. */
static int lp_json_decode_cjson(lua_State *L)
{
    size_t len;
    const char *s, *t;
    int r, scan, tagged = 0, page = lua_toboolean(L, 2);
    text_as_string(L);
    s = lua_tolstring(L, 1, &len);
    lua_settop(L, 1);
    t = lp_jscan_skip_bom(s, &len);
    if (t != s)
        lua_pushlstring(L, t, len);
    else
        lua_pushvalue(L, 1);
    /* stack: text text-without-BOM */
    scan = lp_jscan(L, t, len, LP_JSCAN_CJSON, &tagged);
    if (scan == LP_JSCAN_ERROR)
        return decode_fail(L, lua_tostring(L, 3));
    lua_pushvalue(L, LP_JSON_CJSON);
    lua_pushvalue(L, scan == LP_JSCAN_REWRITTEN ? 3 : 2);
    if (lua_pcall(L, 1, 1, 0) != 0) {
        /* stack: text text' [rewritten] message */
        if (scan == LP_JSCAN_REWRITTEN) {
            /* A rewritten copy failed: the original fails too; decode it again
             * so that the character offset in the message is the caller's. */
            lua_pushvalue(L, LP_JSON_CJSON);
            lua_pushvalue(L, 2);
            if (lua_pcall(L, 1, 1, 0) != 0)
                lua_replace(L, -2);
            else
                lua_pop(L, 1);
        }
        return decode_fail(L, lua_tostring(L, -1));
    }
    /* stack: ... value */
    if (page)
        mark_null_rows(L);
    r = fix_value(L, tagged);
    if (r == LP_FIX_NULL)
        return decode_fail(L, "the document is null");
    if (r == LP_FIX_TOO_DEEP)
        return decode_fail(L, "nested too deeply");
    return 1;
}

#ifdef LP_HAVE_SIMDJSON

/* ===== THE SIMDJSON PATH ===== */

#define LP_PARSER_MT "leadpipe.json_parser"

/* Upvalues of lp_json_decode and lp_json_decode_page. */
#define LP_SJ_PARSER lua_upvalueindex(1)
#define LP_SJ_ARRAY_MT lua_upvalueindex(2)
#define LP_SJ_CJSON lua_upvalueindex(3) /* lp_json_decode_cjson */

/* Texts up to this size keep their padded copy, and the parser its memory,
 * between calls. */
#define LP_KEEP_BUFFER (8u << 20)

/* A simdjson parser and the padded copy of the text it parses. busy is set
 * while Lua values are built from its document. */
typedef struct {
    lp_sj_t *sj;
    char *buf;
    size_t cap;
    int busy;
} lp_json_parser_t;

static int lp_json_parser_gc(lua_State *L)
{
    lp_json_parser_t *p = (lp_json_parser_t *)luaL_checkudata(L, 1, LP_PARSER_MT);
    lp_sj_free(p->sj);
    p->sj = NULL;
    free(p->buf);
    p->buf = NULL;
    p->cap = 0;
    return 0;
}

/* Pushes a new parser userdata (created closed, then opened); raises when out
 * of memory. */
static lp_json_parser_t *new_parser(lua_State *L)
{
    lp_json_parser_t *p = (lp_json_parser_t *)lua_newuserdata(L, sizeof(lp_json_parser_t));
    p->sj = NULL;
    p->buf = NULL;
    p->cap = 0;
    p->busy = 0;
    luaL_getmetatable(L, LP_PARSER_MT);
    lua_setmetatable(L, -2);
    {
        /* the string cache (see lp_simdjson.h), its array part filled */
        int i;
        lua_createtable(L, LP_SJ_CACHE_SLOTS, 0);
        for (i = 1; i <= LP_SJ_CACHE_SLOTS; i++) {
            lua_pushboolean(L, 0);
            lua_rawseti(L, -2, i);
        }
        lp_setuservalue(L, -2);
    }
    p->sj = lp_sj_new();
    if (p->sj == NULL)
        luaL_error(L, "decode: out of memory");
    return p;
}

/* Parses s[0..len) with p; returns NULL or simdjson's message. Raises when
 * out of memory. */
static const char *parse_text(lua_State *L, lp_json_parser_t *p, const char *s, size_t len)
{
    size_t pad = lp_sj_padding(), need = len + pad;
    if (need < len)
        luaL_error(L, "decode: text too large");
    if (need > p->cap) {
        char *nb = (char *)realloc(p->buf, need);
        if (nb == NULL)
            luaL_error(L, "decode: out of memory");
        p->buf = nb;
        p->cap = need;
    }
    memcpy(p->buf, s, len);
    memset(p->buf + len, 0, pad);
    return lp_sj_parse(p->sj, p->buf, len);
}

/* Parses the text at index 1 with the parser at index pi. Returns 1 when the
 * document is ready, 0 when simdjson cannot take it even after lp_jscan's
 * repairs (nothing pushed in either case). */
static int parse_arg(lua_State *L, int pi)
{
    lp_json_parser_t *p = (lp_json_parser_t *)lua_touserdata(L, pi);
    size_t len;
    const char *s = lp_body_view(L, 1, lp_sj_padding(), &len);
    int top = lua_gettop(L), tagged, ok = 0;
    if (s != NULL) {
        /* a body, padded by its view: parsed in place */
        s = lp_jscan_skip_bom(s, &len);
        if (lp_sj_parse(p->sj, s, len) == NULL)
            return 1;
    } else {
        s = lp_jscan_skip_bom(lua_tolstring(L, 1, &len), &len);
        if (parse_text(L, p, s, len) == NULL)
            return 1;
    }
    if (lp_jscan(L, s, len, LP_JSCAN_SIMDJSON, &tagged) == LP_JSCAN_REWRITTEN) {
        s = lua_tolstring(L, -1, &len);
        ok = parse_text(L, p, s, len) == NULL;
    }
    lua_settop(L, top);
    return ok;
}

/* Raises unless the text at index 1 is a string or an open body. */
static void check_text(lua_State *L)
{
    size_t len;
    if (lua_type(L, 1) != LUA_TSTRING && lp_body_view(L, 1, 0, &len) == NULL)
        luaL_checktype(L, 1, LUA_TSTRING);
}

/* The parser to use, at the top of the stack: the shared one, or a fresh one
 * when the shared one is busy (a finaliser decoding during a build). */
static lp_json_parser_t *push_parser(lua_State *L)
{
    lp_json_parser_t *p = (lp_json_parser_t *)lua_touserdata(L, LP_SJ_PARSER);
    if (p->busy || p->sj == NULL)
        return new_parser(L);
    lua_pushvalue(L, LP_SJ_PARSER);
    return p;
}

/* ===== ROW IDS (decode_page) ===== */

static int cmp_row_id(const void *a, const void *b)
{
    const lp_row_id_t *x = (const lp_row_id_t *)a, *y = (const lp_row_id_t *)b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

/* Sorts ids[0..n) by hash, then row. The hashes are uniform, so up to
 * LP_IDS_BUCKETED of them are first placed by their top byte (stably: the
 * rows of a page come in order), which leaves an insertion sort next to
 * nothing to move; more go to qsort. */
#define LP_IDS_BUCKETED 1024

static void sort_ids(lp_row_id_t *ids, size_t n)
{
    lp_row_id_t tmp[LP_IDS_BUCKETED];
    size_t at[257], i;
    if (n < 2)
        return; /* (ids may be NULL then) */
    if (n > LP_IDS_BUCKETED) {
        qsort(ids, n, sizeof(lp_row_id_t), cmp_row_id);
        return;
    }
    memset(at, 0, sizeof(at));
    for (i = 0; i < n; i++)
        at[(ids[i].hash >> 56) + 1]++;
    for (i = 1; i < 257; i++)
        at[i] += at[i - 1];
    for (i = 0; i < n; i++)
        tmp[at[ids[i].hash >> 56]++] = ids[i];
    for (i = 1; i < n; i++) {
        lp_row_id_t x = tmp[i];
        size_t j = i;
        while (j > 0 && cmp_row_id(&tmp[j - 1], &x) > 0) {
            tmp[j] = tmp[j - 1];
            j--;
        }
        tmp[j] = x;
    }
    memcpy(ids, tmp, n * sizeof(lp_row_id_t));
}

/* Sorts the ids of a page and pushes them as one string of sorted 64-bit
 * hashes (the `prev` of the next page), then the first repeat found: the row
 * that repeats and the row it repeats (0: a row of the page before, whose
 * sorted hashes are prev[0..nprev)), or nil, nil. */
static void push_ids(lua_State *L, lp_sj_ids_t *ids, const char *prev, size_t nprev)
{
    size_t i, j = 0;
    uint32_t dup_row = 0, dup_of = 0;
    luaL_Buffer b;
    sort_ids(ids->ids, ids->n); /* (no ids: the array may be NULL; sort_ids leaves it) */
    for (i = 0; i < ids->n; i++) {
        uint64_t h = ids->ids[i].hash, q = 0;
        uint32_t row = ids->ids[i].row;
        if (i > 0 && ids->ids[i - 1].hash == h) {
            /* equal hashes sort by row: the earlier row is the one before */
            if (dup_row == 0 || row < dup_row) {
                dup_row = row;
                dup_of = ids->ids[i - 1].row;
            }
            continue;
        }
        while (j < nprev) {
            memcpy(&q, prev + j * 8, 8);
            if (q >= h)
                break;
            j++;
        }
        if (j < nprev && q == h && (dup_row == 0 || row < dup_row)) {
            dup_row = row;
            dup_of = 0;
        }
    }
    luaL_buffinit(L, &b);
    for (i = 0; i < ids->n; i++) {
        if (i > 0 && ids->ids[i - 1].hash == ids->ids[i].hash)
            continue;
        luaL_addlstring(&b, (const char *)&ids->ids[i].hash, 8);
    }
    luaL_pushresult(&b);
    if (dup_row == 0) {
        lua_pushnil(L);
        lua_pushnil(L);
    } else {
        lua_pushinteger(L, (lua_Integer)dup_row);
        lua_pushinteger(L, (lua_Integer)dup_of);
    }
}

/* Builds the document under lua_pcall (see build_call).
 * Stack in: parser, array_mt, pred or nil, raw, page, prev ids or nil. Out: value
 * [nrows nkept ids dup_row dup_of]. The parser's user value is its string cache. */
static int build_protected(lua_State *L)
{
    lp_json_parser_t *p = (lp_json_parser_t *)lua_touserdata(L, 1);
    lua_settop(L, 6);
    lp_getuservalue(L, 1); /* 7: the string cache */
    if (lua_toboolean(L, 5)) {
        lua_Integer nrows = 0, nkept = 0;
        lp_sj_ids_t ids = { NULL, 0 };
        size_t nprev = 0;
        const char *prev = lua_tolstring(L, 6, &nprev);
        lp_sj_push_page(L, p->sj, 2, 7, lp_where_opt(L, 3), (int)lua_tointeger(L, 4), &nrows,
                        &nkept, &ids);
        lua_pushinteger(L, nrows);
        lua_pushinteger(L, nkept);
        push_ids(L, &ids, prev, prev != NULL ? nprev / 8 : 0);
        return 6;
    }
    lp_sj_push(L, p->sj, 2, 7);
    return 1;
}

/* The collector during a build (Lua 5.4 only). The tables of a page are all
 * alive until the build returns, so a collection in the middle of it only
 * walks them; in generational mode (lua.c's default) it also promotes a page
 * still being built to the old generation, where only a major collection
 * frees it. So the build runs with the collector stopped, unless the program
 * had stopped it, and afterwards pays in one step exactly the debt the build
 * made: the same work as without the pause, done once the page is complete.
 * (A 500-row page builds about 20% faster so; the memory is the same.) */
typedef struct {
    int paused;
    int kb; /* the heap before the build, in KiB */
} lp_gc_pause_t;

static void gc_pause(lua_State *L, lp_gc_pause_t *gc)
{
    gc->paused = 0;
#if LUA_VERSION_NUM >= 504
    if (lua_gc(L, LUA_GCISRUNNING, 0)) {
        gc->kb = lua_gc(L, LUA_GCCOUNT, 0);
        lua_gc(L, LUA_GCSTOP, 0);
        gc->paused = 1;
    }
#else
    (void)L;
#endif
}

static void gc_resume(lua_State *L, lp_gc_pause_t *gc)
{
#if LUA_VERSION_NUM >= 504
    if (gc->paused) {
        int grown = lua_gc(L, LUA_GCCOUNT, 0) - gc->kb;
        lua_gc(L, LUA_GCRESTART, 0);
        if (grown > 0)
            lua_gc(L, LUA_GCSTEP, grown);
    }
#else
    (void)L;
    (void)gc;
#endif
}

/* Builds the parsed document of the parser at index pi; pushes the value, or
 * (page) the value, nrows, nkept, ids, dup_row and dup_of (prev: the index of
 * the previous page's ids, or 0). The parser is busy meanwhile; an error (out
 * of memory) clears that and is raised again. */
static void build_call(lua_State *L, int pi, int pred, int raw, int page, int prev)
{
    lp_json_parser_t *p = (lp_json_parser_t *)lua_touserdata(L, pi);
    int status;
    lua_pushcfunction(L, build_protected);
    lua_pushvalue(L, pi);
    lua_pushvalue(L, LP_SJ_ARRAY_MT);
    if (pred != 0)
        lua_pushvalue(L, pred);
    else
        lua_pushnil(L);
    lua_pushinteger(L, raw);
    lua_pushboolean(L, page);
    if (prev != 0)
        lua_pushvalue(L, prev);
    else
        lua_pushnil(L);
    p->busy = 1;
    {
        lp_gc_pause_t gc;
        gc_pause(L, &gc);
        status = lua_pcall(L, 6, page ? 6 : 1, 0);
        gc_resume(L, &gc);
    }
    p->busy = 0;
    if (p->cap > LP_KEEP_BUFFER) {
        free(p->buf);
        p->buf = NULL;
        p->cap = 0;
        lp_sj_shrink(p->sj);
    }
    if (status != 0)
        lua_error(L);
}

/* Pushes decode_cjson(text at index 1); returns the number of results. */
static int call_cjson(lua_State *L)
{
    int top = lua_gettop(L);
    lua_pushvalue(L, LP_SJ_CJSON);
    lua_pushvalue(L, 1);
    lua_call(L, 1, LUA_MULTRET);
    return lua_gettop(L) - top;
}

/* core.decode(text) -> value | nil, "decode: <reason>". text: a string, or a
 * body kept in C memory (lp_body.h), parsed in place. Raises only when text is
 * neither, or a closed body. */
static int lp_json_decode(lua_State *L)
{
    check_text(L);
    lua_settop(L, 1);
    push_parser(L);
    /* stack: text parser */
    if (!parse_arg(L, 2)) {
        lua_settop(L, 1);
        return call_cjson(L);
    }
    build_call(L, 2, 0, 0, 0, 0);
    if (lua_isnil(L, -1))
        return decode_fail(L, "the document is null");
    return 1;
}

/* The mode argument of decode_page: nil or false (rows as tables), true (rows
 * as JSON text) or "count" (rows counted, none built). */
static int page_mode(lua_State *L, int i)
{
    if (lua_type(L, i) == LUA_TSTRING) {
        if (strcmp(lua_tostring(L, i), "count") != 0)
            luaL_argerror(L, i, "must be a boolean or \"count\"");
        return LP_PAGE_COUNT;
    }
    return lua_toboolean(L, i) ? LP_PAGE_RAW : LP_PAGE_TABLES;
}

/* core.decode_page(text, pred, raw, prev) -> value, nrows, nkept, ids, dup_row, dup_of
 *                                         | nil, "decode: <reason>".
 * pred: a core.where() predicate or nil (keep every row); raw: true for kept
 * rows as JSON text, "count" to build no row that is an object (nkept counts
 * them; results holds only rows that are not objects, for the page rules to
 * refuse); prev: the ids of the page before (a string from an earlier call)
 * or nil. ids: this page's rows' ids (hashes of hashedEmail, every row, kept or
 * not); dup_row, dup_of: the first row whose hashedEmail repeats one of row
 * dup_of on this page, or (dup_of 0) one of the page before; nil, nil when none.
 * Raises when text is not a string or an open body, pred not a predicate or
 * prev not a string. */
static int lp_json_decode_page(lua_State *L)
{
    int n, mode;
    check_text(L);
    lp_where_opt(L, 2);
    mode = page_mode(L, 3);
    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TSTRING);
    lua_settop(L, 4);
    push_parser(L);
    /* stack: text pred raw prev parser */
    if (!parse_arg(L, 5)) {
        lua_settop(L, 1);
        n = call_cjson(L);
        if (n >= 2 && lua_isnil(L, -n))
            return n;
        /* the decoders disagree (not expected): report simdjson's view */
        lua_settop(L, 1);
        return decode_fail(L, "simdjson rejects this text");
    }
    build_call(L, 5, lua_isnil(L, 2) ? 0 : 2, mode, 1, lua_isnil(L, 4) ? 0 : 4);
    if (lua_isnil(L, -6))
        return decode_fail(L, "the document is null");
    return 6;
}

#endif /* LP_HAVE_SIMDJSON */

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
    lua_pushvalue(L, -2);
    /* stack: module array_mt decode array_mt */
    lua_pushcclosure(L, lp_json_decode_cjson, 2);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "decode_cjson");
    /* stack: module array_mt decode_cjson */
#ifdef LP_HAVE_SIMDJSON
    if (lp_newmetatable(L, LP_PARSER_MT)) {
        lua_pushcfunction(L, lp_json_parser_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    new_parser(L);
    /* stack: module array_mt decode_cjson parser */
    lua_insert(L, -3);
    /* stack: module parser array_mt decode_cjson */
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, lp_json_decode_page, 3);
    lua_setfield(L, -5, "decode_page");
    lua_pushcclosure(L, lp_json_decode, 3);
    lua_setfield(L, -2, "decode");
    lua_pushliteral(L, "simdjson");
#else
    lua_setfield(L, -3, "decode");
    lua_pop(L, 1);
    lua_pushliteral(L, "cjson");
#endif
    lua_setfield(L, -2, "decoder");
}

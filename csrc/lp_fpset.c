/*
 * lp_fpset.c: core.fpset(n), the fingerprint table of client:changes (the contract and
 * the fingerprints are in lp_fpset.h).
 *
 *   local fs = core.fpset(n)          -- n: people expected (a hint; the table grows)
 *   fs:visit(op, only, changed, where_ok, row, n, v1, ..., vn) -> kept
 *                                     -- a decoded row's pass (the page decoder's work when
 *                                     -- there is none); op "insert", "probe" or "rest";
 *                                     -- v1..vn: the row's compared fields, in order
 *   fs:flags(id_or_row) -> flags | nil   -- LP_FPS_* of a person (a hashedEmail, or a row);
 *                                     -- core.fpset_flags names them (IN_A, CHANGED, ...)
 *   fs:put_old(id_or_row, text) -> true | nil   -- a changed person's old values
 *   fs:old(id_or_row) -> text | nil
 *   fs:stats() -> { rows, entries, capacity, bytes, dups, strays, lost }
 *                                     -- rows visited, people held, slots, bytes held; rows
 *                                     -- met twice in a pass, rows of A that REST did not
 *                                     -- know, rows not recorded for want of memory
 *   fs:close()                        -- frees the memory (also __gc, __close); idempotent
 *
 * Memory: one malloc'd array of 16-byte slots, kept at most 7/8 full (about 18 bytes a
 * person), grown by doubling when a pass meets more people than the hint, and the arena
 * of old values (what put_old stores, with a 4-byte length each; grown by a quarter). Using a
 * closed table raises; a predicate that still points at one keeps no row.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <stdlib.h>
#include <string.h>

#include "lp_fpset.h"
#include "lp_json.h"

/* Most slots in use per slot, as a fraction (growth happens beyond): linear probing stays
 * short enough at 7/8 (a lookup of an absent id reads about 32 slots, 8 cache lines). */
#define LP_FPS_LOAD_NUM 7
#define LP_FPS_LOAD_DEN 8
#define LP_FPS_MIN_CAP 16
#define LP_FPS_MAX_HINT ((lua_Integer)1 << 40)
#define LP_FPS_FLAGS 0xffULL
#define LP_FPS_MAX_DEPTH 1000

typedef struct {
    uint64_t id;   /* 0: free */
    uint64_t word; /* fields fingerprint (or old values offset) << 8 | flags */
} lp_fps_slot_t;

struct lp_fpset {
    lp_fps_slot_t *slots; /* NULL once closed */
    size_t cap, used;
    char *arena;
    size_t arena_len, arena_cap;
    uint64_t rows, dups, strays, lost;
};

/* ===== THE TABLE (pure C) ===== */

static size_t home(uint64_t id, size_t cap)
{
#ifdef __SIZEOF_INT128__
    return (size_t)(((unsigned __int128)id * cap) >> 64);
#else
    return (size_t)(id % cap);
#endif
}

/* The slot of id, or the free slot where it would go. */
static lp_fps_slot_t *find(lp_fps_slot_t *slots, size_t cap, uint64_t id)
{
    size_t i = home(id, cap);
    while (slots[i].id != 0 && slots[i].id != id) {
        if (++i == cap)
            i = 0;
    }
    return &slots[i];
}

/* Capacity for n people at the load limit. */
static size_t cap_for(size_t n)
{
    size_t cap = n / LP_FPS_LOAD_NUM * LP_FPS_LOAD_DEN + n % LP_FPS_LOAD_NUM + 1;
    return cap < LP_FPS_MIN_CAP ? LP_FPS_MIN_CAP : cap;
}

/* Moves every slot into a table of cap slots; 0 when out of memory (nothing changed). */
static int rehash(lp_fpset_t *fs, size_t cap)
{
    lp_fps_slot_t *slots = (lp_fps_slot_t *)calloc(cap, sizeof(*slots));
    size_t i;
    if (slots == NULL)
        return 0;
    for (i = 0; i < fs->cap; i++) {
        if (fs->slots[i].id != 0)
            *find(slots, cap, fs->slots[i].id) = fs->slots[i];
    }
    free(fs->slots);
    fs->slots = slots;
    fs->cap = cap;
    return 1;
}

/* The slot of id, inserted (zeroed word) when absent; NULL when out of memory. */
static lp_fps_slot_t *find_or_add(lp_fpset_t *fs, uint64_t id, int *added)
{
    lp_fps_slot_t *s = find(fs->slots, fs->cap, id);
    *added = 0;
    if (s->id != 0)
        return s;
    if ((fs->used + 1) * LP_FPS_LOAD_DEN > fs->cap * LP_FPS_LOAD_NUM) {
        if (!rehash(fs, fs->cap * 2))
            return NULL;
        s = find(fs->slots, fs->cap, id);
    }
    s->id = id;
    s->word = 0;
    fs->used++;
    *added = 1;
    return s;
}

static int same_fields(uint64_t word, uint64_t fields)
{
    return (word & ~LP_FPS_FLAGS) == (fields & ~LP_FPS_FLAGS);
}

int lp_fpset_visit(lp_fpset_t *fs, int op, int only, int changed, int where_ok, uint64_t id,
                   uint64_t fields)
{
    lp_fps_slot_t *s;
    int added;
    if (fs->slots == NULL)
        return 0;
    fs->rows++;
    switch (op) {
    case LP_FPS_INSERT:
        s = find_or_add(fs, id, &added);
        if (s == NULL) {
            fs->lost++; /* out of memory: the diff fails (changes.lua checks it) */
            return 0;
        }
        if (!added) {
            fs->dups++;
            return 0;
        }
        s->word = (fields & ~LP_FPS_FLAGS) | LP_FPS_IN_A | (where_ok ? LP_FPS_WHERE_A : 0);
        return 0;
    case LP_FPS_PROBE:
        s = find_or_add(fs, id, &added);
        if (s == NULL) {
            fs->lost++;
            return 0;
        }
        if (added) {
            s->word = LP_FPS_B_ONLY;
            return only && where_ok;
        }
        if (!(s->word & LP_FPS_IN_A) || (s->word & LP_FPS_SEEN_B)) {
            fs->dups++;
            return 0;
        }
        s->word |= LP_FPS_SEEN_B;
        if (changed && (s->word & LP_FPS_WHERE_A) && !same_fields(s->word, fields)) {
            s->word |= LP_FPS_CHANGED;
            return 1;
        }
        return 0;
    case LP_FPS_REST:
        s = find(fs->slots, fs->cap, id);
        if (s->id == 0 || !(s->word & LP_FPS_IN_A)) {
            fs->strays++;
            return 0;
        }
        if (s->word & LP_FPS_REST_SEEN) {
            fs->dups++;
            return 0;
        }
        s->word |= LP_FPS_REST_SEEN;
        if (!(s->word & LP_FPS_SEEN_B))
            return only && where_ok;
        return changed && (s->word & LP_FPS_CHANGED) && where_ok;
    default:
        return 0;
    }
}

/* ===== FINGERPRINTS OF LUA VALUES ===== */

static uint64_t fp_value(lua_State *L, int i, int array_mt, int depth);

/* The key at index k (a copy is converted: lua_next must see the original). */
static uint64_t fp_member(lua_State *L, int k, int v, int array_mt, int depth)
{
    size_t kn;
    const char *ks;
    uint64_t h;
    lua_pushvalue(L, k);
    ks = lua_tolstring(L, -1, &kn);
    if (ks == NULL) { /* a key that has no text (a table): by its type only */
        ks = luaL_typename(L, -1);
        kn = strlen(ks);
    }
    h = lp_fp_member(ks, kn, fp_value(L, v, array_mt, depth));
    lua_pop(L, 1);
    return h;
}

static uint64_t fp_table(lua_State *L, int i, int array_mt, int depth)
{
    uint64_t h, count = 0;
    int is_array = 0;
    if (depth > LP_FPS_MAX_DEPTH)
        luaL_error(L, "fpset: nested too deeply");
    luaL_checkstack(L, 4, "fpset: nested too deeply");
    if (lua_getmetatable(L, i)) {
        is_array = lua_rawequal(L, -1, array_mt);
        lua_pop(L, 1);
    }
    if (is_array) {
        size_t n = lp_rawlen(L, i), k;
        h = lp_fp_array_start();
        for (k = 1; k <= n; k++) {
            lua_rawgeti(L, i, (lua_Integer)k);
            if (!lua_isnil(L, -1)) {
                h = lp_fp_array_add(h, fp_value(L, lua_gettop(L), array_mt, depth + 1));
                count++;
            }
            lua_pop(L, 1);
        }
        return lp_fp_array_end(h, count);
    }
    h = 0;
    lua_pushnil(L);
    while (lua_next(L, i) != 0) {
        int top = lua_gettop(L);
        h += fp_member(L, top - 1, top, array_mt, depth + 1);
        count++;
        lua_pop(L, 1);
    }
    return lp_fp_object_end(h, count);
}

static uint64_t fp_value(lua_State *L, int i, int array_mt, int depth)
{
    switch (lua_type(L, i)) {
    case LUA_TNIL:
    case LUA_TNONE:
        return lp_fp_absent();
    case LUA_TBOOLEAN:
        return lp_fp_bool(lua_toboolean(L, i));
    case LUA_TNUMBER:
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, i))
            return lp_fp_int((int64_t)lua_tointeger(L, i));
#endif
        return lp_fp_double((double)lua_tonumber(L, i));
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, i, &n);
        return lp_fp_bytes(LP_FP_TAG_STRING, s, n);
    }
    case LUA_TTABLE:
        return fp_table(L, lp_absindex(L, i), array_mt, depth);
    default: /* not a JSON value: by its type only */
        return lp_fp_mix(lua_type(L, i));
    }
}

/* Pushes core.array_mt (the registry's) and returns its index. */
static int push_array_mt(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LP_ARRAY_MT);
    return lua_gettop(L);
}

/* The id fingerprint of the argument at i: a hashedEmail (string), or a row (table)
 * whose hashedEmail is its id when it is a string, else its whole value. */
static uint64_t id_of(lua_State *L, int i)
{
    uint64_t id;
    size_t n;
    const char *s;
    if (lua_type(L, i) == LUA_TSTRING) {
        s = lua_tolstring(L, i, &n);
        return lp_fp_id(s, n);
    }
    luaL_checktype(L, i, LUA_TTABLE);
    lua_getfield(L, i, "hashedEmail");
    if (lua_type(L, -1) == LUA_TSTRING) {
        s = lua_tolstring(L, -1, &n);
        id = lp_fp_id(s, n);
    } else {
        id = lp_fp_row(fp_value(L, i, push_array_mt(L), 0));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return id;
}

/* ===== LUA ===== */

lp_fpset_t *lp_fpset_check(lua_State *L, int i)
{
    lp_fpset_t *fs = (lp_fpset_t *)luaL_checkudata(L, i, LP_FPSET_MT);
    if (fs->slots == NULL)
        luaL_error(L, "attempt to use a closed fpset");
    return fs;
}

static int lp_fpset_new(lua_State *L)
{
    lua_Integer n = luaL_optinteger(L, 1, 0);
    lp_fpset_t *fs;
    luaL_argcheck(L, n >= 0 && n <= LP_FPS_MAX_HINT, 1, "must be an integer from 0 to 2^40");
    fs = (lp_fpset_t *)lua_newuserdata(L, sizeof(*fs));
    memset(fs, 0, sizeof(*fs));
    luaL_getmetatable(L, LP_FPSET_MT);
    lua_setmetatable(L, -2);
    fs->cap = cap_for((size_t)n);
    fs->slots = (lp_fps_slot_t *)calloc(fs->cap, sizeof(*fs->slots));
    if (fs->slots == NULL)
        return luaL_error(L, "out of memory");
    return 1;
}

static const char *const ops[] = { "insert", "probe", "rest", NULL };

/* fs:visit(op, only, changed, where_ok, row, n, v1, ..., vn) -> kept */
static int lp_fpset_visit_lua(lua_State *L)
{
    lp_fpset_t *fs = lp_fpset_check(L, 1);
    int op = luaL_checkoption(L, 2, NULL, ops) + 1;
    int only = lua_toboolean(L, 3), changed = lua_toboolean(L, 4), where_ok = lua_toboolean(L, 5);
    lua_Integer n = luaL_checkinteger(L, 7), k;
    int array_mt;
    uint64_t fields = LP_FP_TAG_FIELDS;
    luaL_checktype(L, 6, LUA_TTABLE);
    luaL_argcheck(L, n >= 0 && n <= 64, 7, "must be the number of fields (0 to 64)");
    array_mt = push_array_mt(L);
    for (k = 1; k <= n; k++)
        fields = lp_fp_field(fields, (size_t)k, fp_value(L, 7 + (int)k, array_mt, 0));
    lua_pushboolean(L, lp_fpset_visit(fs, op, only, changed, where_ok, id_of(L, 6), fields));
    return 1;
}

static lp_fps_slot_t *lookup(lua_State *L, lp_fpset_t *fs, int i)
{
    lp_fps_slot_t *s = find(fs->slots, fs->cap, id_of(L, i));
    return s->id != 0 ? s : NULL;
}

static int lp_fpset_flags(lua_State *L)
{
    lp_fpset_t *fs = lp_fpset_check(L, 1);
    lp_fps_slot_t *s = lookup(L, fs, 2);
    if (s == NULL)
        return 0;
    lua_pushinteger(L, (lua_Integer)(s->word & LP_FPS_FLAGS));
    return 1;
}

/* fs:put_old(id_or_row, text) -> true | nil: for a changed person without old values. */
static int lp_fpset_put_old(lua_State *L)
{
    lp_fpset_t *fs = lp_fpset_check(L, 1);
    size_t len, need;
    const char *text = luaL_checklstring(L, 3, &len);
    lp_fps_slot_t *s = lookup(L, fs, 2);
    uint32_t len32 = (uint32_t)len;
    luaL_argcheck(L, len <= 0xffffffffu, 3, "is too long");
    if (s == NULL || !(s->word & LP_FPS_CHANGED) || (s->word & LP_FPS_OLD))
        return 0;
    need = fs->arena_len + 4 + len;
    if (need > fs->arena_cap) {
        size_t cap = fs->arena_cap ? fs->arena_cap : 4096;
        char *grown;
        while (cap < need)
            cap += cap / 4;
        grown = (char *)realloc(fs->arena, cap);
        if (grown == NULL)
            return luaL_error(L, "out of memory");
        fs->arena = grown;
        fs->arena_cap = cap;
    }
    memcpy(fs->arena + fs->arena_len, &len32, 4);
    memcpy(fs->arena + fs->arena_len + 4, text, len);
    s->word = (uint64_t)fs->arena_len << 8 | (s->word & LP_FPS_FLAGS) | LP_FPS_OLD;
    fs->arena_len = need;
    lua_pushboolean(L, 1);
    return 1;
}

static int lp_fpset_old(lua_State *L)
{
    lp_fpset_t *fs = lp_fpset_check(L, 1);
    lp_fps_slot_t *s = lookup(L, fs, 2);
    size_t at;
    uint32_t len;
    if (s == NULL || !(s->word & LP_FPS_OLD))
        return 0;
    at = (size_t)(s->word >> 8);
    memcpy(&len, fs->arena + at, 4);
    lua_pushlstring(L, fs->arena + at + 4, len);
    return 1;
}

static void set_count(lua_State *L, const char *name, uint64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, name);
}

static int lp_fpset_stats(lua_State *L)
{
    lp_fpset_t *fs = lp_fpset_check(L, 1);
    lua_createtable(L, 0, 6);
    set_count(L, "rows", fs->rows);
    set_count(L, "entries", fs->used);
    set_count(L, "capacity", fs->cap);
    set_count(L, "bytes", fs->cap * sizeof(lp_fps_slot_t) + fs->arena_cap);
    set_count(L, "dups", fs->dups);
    set_count(L, "strays", fs->strays);
    set_count(L, "lost", fs->lost);
    return 1;
}

static int lp_fpset_close(lua_State *L)
{
    lp_fpset_t *fs = (lp_fpset_t *)luaL_checkudata(L, 1, LP_FPSET_MT);
    free(fs->slots);
    free(fs->arena);
    fs->slots = NULL;
    fs->arena = NULL;
    fs->cap = fs->used = fs->arena_len = fs->arena_cap = 0;
    return 0;
}

static int lp_fpset_tostring(lua_State *L)
{
    lp_fpset_t *fs = (lp_fpset_t *)luaL_checkudata(L, 1, LP_FPSET_MT);
    if (fs->slots == NULL)
        lua_pushliteral(L, LP_FPSET_MT " (closed)");
    else
        lua_pushfstring(L, LP_FPSET_MT " (%d people)", (int)fs->used);
    return 1;
}

static const luaL_Reg fpset_methods[] = {
    { "visit", lp_fpset_visit_lua },
    { "flags", lp_fpset_flags },
    { "put_old", lp_fpset_put_old },
    { "old", lp_fpset_old },
    { "stats", lp_fpset_stats },
    { "close", lp_fpset_close },
    { NULL, NULL },
};

static const luaL_Reg fpset_meta[] = {
    { "__gc", lp_fpset_close },
    { "__close", lp_fpset_close },
    { "__tostring", lp_fpset_tostring },
    { NULL, NULL },
};

void lp_fpset_open(lua_State *L)
{
    /* stack: module */
    if (lp_newmetatable(L, LP_FPSET_MT)) {
        lp_setfuncs(L, fpset_meta, 0);
        lp_newlib(L, fpset_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, lp_fpset_new);
    lua_setfield(L, -2, "fpset");
    lua_createtable(L, 0, 7);
    set_count(L, "IN_A", LP_FPS_IN_A);
    set_count(L, "WHERE_A", LP_FPS_WHERE_A);
    set_count(L, "SEEN_B", LP_FPS_SEEN_B);
    set_count(L, "CHANGED", LP_FPS_CHANGED);
    set_count(L, "B_ONLY", LP_FPS_B_ONLY);
    set_count(L, "OLD", LP_FPS_OLD);
    set_count(L, "REST_SEEN", LP_FPS_REST_SEEN);
    lua_setfield(L, -2, "fpset_flags");
}

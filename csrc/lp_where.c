/*
 * lp_where.c: core.where(spec) -> a compiled predicate (userdata) for
 * core.decode_page.
 *
 * spec is a where{} table as lua/leadpipe/filter.lua takes it (a string
 * stands for a one-item list), plus the rank table for seniority_at_least:
 *
 *   core.where{ min_score = 80, max_score = 99, seniority = {"director", "vp"},
 *               seniority_at_least = "director", ranks = { entry = 1, ... },
 *               department = "marketing", country = {"US", "CA"},
 *               has = {"businessEmail", "company.domain"},
 *               topic = {117796, "internet marketing automation", "8860"} }
 *
 * The Lua layer (filter.compile) validates the spec first, with its own
 * messages; here a spec that breaks a rule raises a bad-argument error.
 * Everything the struct points to (lower-cased strings, arrays) is a Lua
 * object anchored in the userdata's user value, so nothing is malloc'd.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <string.h>

#include "lp_where.h"

/* Stack index of the anchor table while compiling. */
#define LP_WHERE_ANCHOR 3

/* Pops the value on top into the anchor table, keeping it alive as long as
 * the predicate. */
static void anchor(lua_State *L)
{
    lua_rawseti(L, LP_WHERE_ANCHOR, (lua_Integer)lp_rawlen(L, LP_WHERE_ANCHOR) + 1);
}

/* A new anchored array of n elements of size sz (zeroed); NULL when n is 0. */
static void *new_array(lua_State *L, size_t n, size_t sz)
{
    void *p;
    if (n == 0)
        return NULL;
    p = lua_newuserdata(L, n * sz);
    memset(p, 0, n * sz);
    anchor(L);
    return p;
}

/* Anchors a copy of the string at index i, lower-cased when lower is set. */
static lp_wstr_t anchored_string(lua_State *L, int i, int lower)
{
    lp_wstr_t w;
    size_t len, k;
    const char *s = lua_tolstring(L, i, &len);
    if (lower) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (k = 0; k < len; k++) {
            char c = s[k];
            luaL_addchar(&b, (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c);
        }
        luaL_pushresult(&b);
    } else {
        lua_pushvalue(L, i);
    }
    w.s = lua_tolstring(L, -1, &w.len);
    anchor(L);
    return w;
}

static lp_num_t to_num(lua_State *L, int i)
{
    lp_num_t n;
    n.i = 0;
    n.d = lua_tonumber(L, i);
    n.isint = 0;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, i)) {
        n.isint = 1;
        n.i = lua_tointeger(L, i);
    }
#endif
    return n;
}

static void field_error(lua_State *L, const char *field, const char *rule)
{
    lua_pushfstring(L, "spec.%s %s", field, rule);
    luaL_argerror(L, 1, lua_tostring(L, -1));
}

/* Pushes spec[field] as a list: a string or number becomes {value}; a table
 * stays; nil stays nil. Returns its length (0 for nil). */
static size_t push_list(lua_State *L, const char *field)
{
    lua_getfield(L, 1, field);
    if (lua_isnil(L, -1))
        return 0;
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
        lua_createtable(L, 1, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
    } else if (lua_type(L, -1) != LUA_TTABLE) {
        field_error(L, field, "must be a string or a list");
    }
    if (lp_rawlen(L, -1) == 0)
        field_error(L, field, "must not be empty");
    return lp_rawlen(L, -1);
}

/* spec[field] as an array of anchored lower-cased strings. */
static lp_wstr_t *string_list(lua_State *L, const char *field, size_t *n)
{
    size_t k, len = push_list(L, field);
    lp_wstr_t *v = (lp_wstr_t *)new_array(L, len, sizeof(lp_wstr_t));
    for (k = 0; k < len; k++) {
        lua_rawgeti(L, -1, (lua_Integer)k + 1);
        if (lua_type(L, -1) != LUA_TSTRING || lp_rawlen(L, -1) == 0)
            field_error(L, field, "must hold non-empty strings");
        v[k] = anchored_string(L, -1, 1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    *n = len;
    return v;
}

static int number_field(lua_State *L, const char *field, lp_num_t *out)
{
    lua_getfield(L, 1, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) != lua_tonumber(L, -1))
        field_error(L, field, "must be a number");
    *out = to_num(L, -1);
    lua_pop(L, 1);
    return 1;
}

/* Pushes tonumber() of the string at index i, as Lua reads it (nil when it is
 * not a number). */
static void push_tonumber(lua_State *L, int i)
{
#if LUA_VERSION_NUM >= 503
    if (lua_stringtonumber(L, lua_tostring(L, i)) == 0)
        lua_pushnil(L);
#else
    if (lua_isnumber(L, i))
        lua_pushnumber(L, lua_tonumber(L, i));
    else
        lua_pushnil(L);
#endif
}

static int all_digits(const char *s, size_t len)
{
    size_t k;
    for (k = 0; k < len; k++) {
        if (s[k] < '0' || s[k] > '9')
            return 0;
    }
    return len > 0;
}

/* One segment of a dotted path, from s[0..len): a digit string is a number,
 * as filter.lua's split_path makes it, whose key is tostring(number). */
static lp_wseg_t path_segment(lua_State *L, const char *s, size_t len)
{
    lp_wseg_t seg;
    seg.index = 0;
    seg.is_number = 0;
    lua_pushlstring(L, s, len);
    if (all_digits(s, len)) {
        int top = lua_gettop(L);
        lp_num_t n;
        push_tonumber(L, top);
        n = to_num(L, -1);
        seg.is_number = 1;
        if (n.isint && n.i >= 1)
            seg.index = n.i;
        else if (!n.isint && n.d >= 1 && n.d <= 9007199254740992.0 && n.d == (lua_Number)(lua_Integer)n.d)
            seg.index = (lua_Integer)n.d;
        lua_tostring(L, -1); /* the number becomes its tostring() text in place */
        lua_replace(L, top);
    }
    seg.key = anchored_string(L, -1, 0);
    lua_pop(L, 1);
    return seg;
}

static lp_wpath_t *path_list(lua_State *L, const char *field, size_t *n)
{
    size_t k, len = push_list(L, field);
    lp_wpath_t *v = (lp_wpath_t *)new_array(L, len, sizeof(lp_wpath_t));
    for (k = 0; k < len; k++) {
        size_t plen, nseg = 1, i, start = 0, j = 0;
        const char *p;
        lua_rawgeti(L, -1, (lua_Integer)k + 1);
        p = lua_tolstring(L, -1, &plen);
        if (lua_type(L, -1) != LUA_TSTRING || plen == 0 || p[0] == '.' || p[plen - 1] == '.'
            || strstr(p, "..") != NULL)
            field_error(L, field, "must hold dotted paths");
        for (i = 0; i < plen; i++)
            nseg += p[i] == '.';
        v[k].n = nseg;
        v[k].segs = (lp_wseg_t *)new_array(L, nseg, sizeof(lp_wseg_t));
        for (i = 0; i <= plen; i++) {
            if (i == plen || p[i] == '.') {
                v[k].segs[j++] = path_segment(L, p + start, i - start);
                start = i + 1;
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    *n = len;
    return v;
}

static void topic_lists(lua_State *L, lp_where_t *w)
{
    size_t k, len = push_list(L, "topic"), nid = 0, nname = 0;
    w->topic_ids = (lp_num_t *)new_array(L, len, sizeof(lp_num_t));
    w->topic_names = (lp_wstr_t *)new_array(L, len, sizeof(lp_wstr_t));
    for (k = 0; k < len; k++) {
        lua_rawgeti(L, -1, (lua_Integer)k + 1);
        if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == lua_tonumber(L, -1)) {
            w->topic_ids[nid++] = to_num(L, -1);
        } else if (lua_type(L, -1) == LUA_TSTRING && lp_rawlen(L, -1) > 0) {
            size_t slen;
            const char *s = lua_tolstring(L, -1, &slen);
            w->topic_names[nname++] = anchored_string(L, -1, 1);
            if (all_digits(s, slen)) {
                push_tonumber(L, lua_gettop(L));
                w->topic_ids[nid++] = to_num(L, -1);
                lua_pop(L, 1);
            }
        } else {
            field_error(L, "topic", "must hold topic ids (numbers) or names (non-empty strings)");
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    w->n_topic_ids = nid;
    w->n_topic_names = nname;
}

/* spec.ranks (name -> rank) and spec.seniority_at_least. */
static void rank_rule(lua_State *L, lp_where_t *w)
{
    size_t n = 0, k = 0;
    lp_wstr_t low;
    lua_getfield(L, 1, "seniority_at_least");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        field_error(L, "seniority_at_least", "must be a string");
    lua_getfield(L, 1, "ranks");
    if (lua_type(L, -1) != LUA_TTABLE)
        field_error(L, "ranks", "must be a table of name = rank (needed by seniority_at_least)");
    /* stack: ... level ranks */
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_toboolean(L, -1))
            n++;
        lua_pop(L, 1);
    }
    w->ranks = (lp_wrank_t *)new_array(L, n, sizeof(lp_wrank_t));
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_toboolean(L, -1) && k < n) {
            lp_wrank_t *r = &w->ranks[k++];
            r->name = anchored_string(L, -2, 0);
            if (lua_type(L, -1) == LUA_TNUMBER) {
                r->kind = LP_RANK_NUMBER;
                r->rank = to_num(L, -1);
            } else {
                r->kind = LP_RANK_OTHER;
            }
        }
        lua_pop(L, 1);
    }
    w->n_ranks = k;
    /* the minimum: ranks[lower(level)], which must be a number */
    low = anchored_string(L, -2, 1);
    lua_pushlstring(L, low.s, low.len);
    lua_rawget(L, -2);
    if (lua_type(L, -1) != LUA_TNUMBER)
        field_error(L, "seniority_at_least", "must name a seniority with a number in spec.ranks");
    w->min_rank = to_num(L, -1);
    lua_pop(L, 3);
    w->rules |= LP_W_AT_LEAST;
}

/* core.where(spec) -> predicate userdata. Raises on a spec that breaks a rule. */
/* fpset = fs (anchored), fpset_op, fpset_only, fpset_changed, fpset_fields. */
static void fpset_rule(lua_State *L, lp_where_t *w)
{
    static const char *const ops[] = { "insert", "probe", "rest", NULL };
    static const int op_codes[] = { LP_FPS_INSERT, LP_FPS_PROBE, LP_FPS_REST };
    const char *op;
    int k;
    lua_getfield(L, 1, "fpset");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    w->fpset = lp_fpset_check(L, -1);
    anchor(L);
    lua_getfield(L, 1, "fpset_op");
    op = lua_tostring(L, -1);
    for (k = 0; op != NULL && ops[k] != NULL && strcmp(op, ops[k]) != 0; k++)
        ;
    if (op == NULL || ops[k] == NULL)
        field_error(L, "fpset_op", "must be \"insert\", \"probe\" or \"rest\"");
    w->fpset_op = op_codes[k];
    lua_pop(L, 1);
    lua_getfield(L, 1, "fpset_only");
    w->fpset_only = lua_toboolean(L, -1);
    lua_getfield(L, 1, "fpset_changed");
    w->fpset_changed = lua_toboolean(L, -1);
    lua_pop(L, 2);
    w->fpset_fields = path_list(L, "fpset_fields", &w->n_fpset_fields);
}

static int lp_where_new(lua_State *L)
{
    lp_where_t *w;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    w = (lp_where_t *)lua_newuserdata(L, sizeof(lp_where_t));
    memset(w, 0, sizeof(*w));
    luaL_getmetatable(L, LP_WHERE_MT);
    lua_setmetatable(L, 2);
    lua_newtable(L); /* the anchor table, LP_WHERE_ANCHOR */
    if (number_field(L, "min_score", &w->min_score))
        w->rules |= LP_W_MIN_SCORE;
    if (number_field(L, "max_score", &w->max_score))
        w->rules |= LP_W_MAX_SCORE;
    w->seniority = string_list(L, "seniority", &w->n_seniority);
    if (w->n_seniority > 0)
        w->rules |= LP_W_SENIORITY;
    w->department = string_list(L, "department", &w->n_department);
    if (w->n_department > 0)
        w->rules |= LP_W_DEPARTMENT;
    w->country = string_list(L, "country", &w->n_country);
    if (w->n_country > 0)
        w->rules |= LP_W_COUNTRY;
    w->has = path_list(L, "has", &w->n_has);
    if (w->n_has > 0)
        w->rules |= LP_W_HAS;
    topic_lists(L, w);
    if (w->n_topic_ids + w->n_topic_names > 0)
        w->rules |= LP_W_TOPIC;
    rank_rule(L, w);
    fpset_rule(L, w);
    lp_setuservalue(L, 2);
    return 1;
}

static int lp_where_tostring(lua_State *L)
{
    const lp_where_t *w = (const lp_where_t *)luaL_checkudata(L, 1, LP_WHERE_MT);
    int n = 0;
    unsigned r;
    for (r = w->rules; r != 0; r >>= 1)
        n += (int)(r & 1);
    lua_pushfstring(L, LP_WHERE_MT " (%d rules)", n);
    return 1;
}

const lp_where_t *lp_where_opt(lua_State *L, int i)
{
    if (lua_isnoneornil(L, i))
        return NULL;
    return (const lp_where_t *)luaL_checkudata(L, i, LP_WHERE_MT);
}

void lp_where_open(lua_State *L)
{
    /* stack: module */
    if (lp_newmetatable(L, LP_WHERE_MT)) {
        lua_pushcfunction(L, lp_where_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "locked");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, lp_where_new);
    lua_setfield(L, -2, "where");
}

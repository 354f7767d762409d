/*
 * lp_simdjson.cpp: the one-pass page decoder on simdjson's DOM API, behind
 * the C ABI of lp_simdjson.h (contract there; the value rules in lp_json.h).
 *
 * Why the DOM API: simdjson validates the whole text (UTF-8, grammar, depth)
 * before a single Lua value is built, so a bad body never leaves a half-built
 * table behind, and the document can then be walked freely: the predicate of
 * decode_page looks a row over (several fields, arrays of topics) before the
 * row is built, or instead of building it.
 *
 * Lua errors and C++: Lua reports errors with longjmp (or, in LuaJIT on x64,
 * by unwinding every frame), and every lua_* call that allocates can raise
 * one (out of memory). Skipping a C++ destructor that way is undefined, so:
 *
 *   - the parser (the only object owning memory) lives on the heap, owned by
 *     a Lua userdata (lp_json.c) whose __gc frees it, never in a C++ frame;
 *   - the only place that can throw C++ exceptions (simdjson parsing, which
 *     may allocate) is lp_sj_parse, inside try/catch, with no Lua call in it;
 *   - the functions that call Lua hold only trivially destructible locals
 *     (DOM elements, iterators, string views, luaL_Buffer): checked below by
 *     static_assert. They have no catch clause (LuaJIT's unwinding would be
 *     caught by catch (...)), and they are not noexcept (it would turn that
 *     unwinding into std::terminate);
 *   - a document stays valid only until the next parse, so lp_json.c never
 *     parses while a build is running (a __gc that decodes during a build
 *     gets the cjson path) and clears its busy flag through lua_pcall.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <type_traits>

#include <simdjson.h>

extern "C" {
#include "lp_body.h"
#include "lp_compat.h"
#include "lp_jscan.h"
#include "lp_where.h"
}
#include "lp_simdjson.h"

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

/* core.body's bodies carry LP_BODY_PAD bytes of padding and are parsed in place. */
static_assert(simdjson::SIMDJSON_PADDING <= LP_BODY_PAD, "a body's padding is simdjson's at least");
static_assert(std::is_trivially_destructible<element>::value
                  && std::is_trivially_destructible<array>::value
                  && std::is_trivially_destructible<object>::value
                  && std::is_trivially_destructible<array::iterator>::value
                  && std::is_trivially_destructible<object::iterator>::value
                  && std::is_trivially_destructible<simdjson::dom::key_value_pair>::value
                  && std::is_trivially_destructible<std::string_view>::value
                  && std::is_trivially_destructible<luaL_Buffer>::value,
              "values live across Lua calls that may longjmp");

/* A slot of the string cache: the text of the Lua string held at the same
 * index of the cache table (len SIZE_MAX: empty). */
struct lp_sj_slot {
    const char *s;
    size_t len;
};

struct lp_sj {
    simdjson::dom::parser parser;
    element root;
    lp_sj_slot slots[LP_SJ_CACHE_SLOTS];
    lp_row_id_t *ids; /* the row ids of the page being built (malloc'd, ids_cap of them) */
    size_t ids_cap;
};

namespace {

/* ===== THE DOCUMENT AS THE DECODED TABLES SEE IT ===== */

inline bool is_null(element e)
{
    return e.type() == element_type::NULL_VALUE;
}

inline bool same_key(std::string_view a, const char *k, size_t kn)
{
    return a.size() == kn && std::memcmp(a.data(), k, kn) == 0;
}

/* The member k of e as the decoded table holds it: e must be an object, the
 * last member named k wins, and a null one is absent. */
bool get_field(element e, const char *k, size_t kn, element &out)
{
    if (e.type() != element_type::OBJECT)
        return false;
    object o = e.get_object().value_unsafe();
    bool found = false;
    for (object::iterator it = o.begin(); it != o.end(); ++it) {
        if (same_key(it.key(), k, kn)) {
            out = it.value();
            found = true;
        }
    }
    return found && !is_null(out);
}

/* Whether a later member of the object has the key of it's member. */
bool key_later(object o, object::iterator it)
{
    std::string_view k = it.key();
    for (++it; it != o.end(); ++it) {
        if (it.key() == k)
            return true;
    }
    return false;
}

/* Whether an earlier member (before index idx) has key k. */
bool key_before(object o, size_t idx, std::string_view k)
{
    size_t i = 0;
    for (object::iterator it = o.begin(); i < idx; ++it, ++i) {
        if (it.key() == k)
            return true;
    }
    return false;
}

/* The element at the Lua index idx (1-based, nulls skipped) of an array. */
bool array_at(array a, lua_Integer idx, element &out)
{
    lua_Integer i = 0;
    for (element x : a) {
        if (is_null(x))
            continue;
        if (++i == idx) {
            out = x;
            return true;
        }
    }
    return false;
}

/* The Lua number that decoding gives e; false when e is not a number. */
bool to_num(element e, lp_num_t &n)
{
    n.isint = 0;
    n.i = 0;
    switch (e.type()) {
    case element_type::INT64: {
        int64_t v = e.get_int64().value_unsafe();
#if LUA_VERSION_NUM >= 503
        n.isint = 1;
        n.i = (lua_Integer)v;
#endif
        n.d = (lua_Number)v;
        return true;
    }
    case element_type::UINT64:
        n.d = (lua_Number)e.get_uint64().value_unsafe();
        return true;
    case element_type::DOUBLE:
        n.d = (lua_Number)e.get_double().value_unsafe();
        return true;
    default:
        return false;
    }
}

/* -1, 0, 1 as i <, ==, > d exactly; 2 when d is NaN. */
int cmp_int_float(lua_Integer i, lua_Number d)
{
    if (d != d)
        return 2;
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    lua_Number f = std::floor(d);
    lua_Integer fi = (lua_Integer)f;
    if (i < fi)
        return -1;
    if (i > fi)
        return 1;
    return f == d ? 0 : -1;
}

/* Compares two Lua numbers as Lua does (exactly, across subtypes). */
int num_cmp(const lp_num_t &a, const lp_num_t &b)
{
    if (a.isint && b.isint)
        return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
    if (a.isint)
        return cmp_int_float(a.i, b.d);
    if (b.isint) {
        int r = cmp_int_float(b.i, a.d);
        return r == 2 ? 2 : -r;
    }
    if (a.d < b.d)
        return -1;
    if (a.d > b.d)
        return 1;
    return a.d == b.d ? 0 : 2;
}

inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Whether lower(v) equals w (w as given). */
bool lower_eq(std::string_view v, const lp_wstr_t &w)
{
    if (v.size() != w.len)
        return false;
    for (size_t i = 0; i < w.len; i++) {
        if (lower(v[i]) != w.s[i])
            return false;
    }
    return true;
}

bool in_set(std::string_view v, const lp_wstr_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower_eq(v, set[i]))
            return true;
    }
    return false;
}

/* A member's value v (has: it is there and not null) is a string whose lower
 * case is in set. */
bool value_in(bool has, element v, const lp_wstr_t *set, size_t n)
{
    return has && v.type() == element_type::STRING && in_set(v.get_string().value_unsafe(), set, n);
}

/* String member k of row, lower-cased, in set. */
bool field_in(element row, const char *k, size_t kn, const lp_wstr_t *set, size_t n)
{
    element v;
    bool has = get_field(row, k, kn, v);
    return value_in(has, v, set, n);
}

/* filter.lua's present(): not missing, not false, not a blank string, not an
 * empty table (an object whose members are all null is empty once decoded). */
bool present(element v)
{
    switch (v.type()) {
    case element_type::NULL_VALUE:
        return false;
    case element_type::BOOL:
        return v.get_bool().value_unsafe();
    case element_type::STRING: {
        std::string_view s = v.get_string().value_unsafe();
        for (char c : s) {
            if (!(c == ' ' || (c >= '\t' && c <= '\r')))
                return true;
        }
        return false;
    }
    case element_type::ARRAY: {
        array a = v.get_array().value_unsafe();
        for (element x : a) {
            if (!is_null(x))
                return true;
        }
        return false;
    }
    case element_type::OBJECT: {
        object o = v.get_object().value_unsafe();
        for (object::iterator it = o.begin(); it != o.end(); ++it) {
            if (is_null(it.value()))
                continue;
            /* kept unless a later member with its key is null */
            bool kept = true;
            std::string_view k = it.key();
            object::iterator j = it;
            for (++j; j != o.end(); ++j) {
                if (j.key() == k)
                    kept = !is_null(j.value());
            }
            if (kept)
                return true;
        }
        return false;
    }
    default:
        return true;
    }
}

/* filter.lua's get_parts(): a numeric segment indexes an array, and on an
 * object reads the key tostring(segment). */
bool get_path(element row, const lp_wpath_t &p, element &out)
{
    element v = row;
    for (size_t i = 0; i < p.n; i++) {
        const lp_wseg_t &seg = p.segs[i];
        element next;
        if (v.type() == element_type::OBJECT) {
            if (!get_field(v, seg.key.s, seg.key.len, next))
                return false;
        } else if (v.type() == element_type::ARRAY) {
            if (seg.index <= 0 || !array_at(v.get_array().value_unsafe(), seg.index, next))
                return false;
        } else {
            return false;
        }
        v = next;
    }
    out = v;
    return true;
}

/* The members of a row that the rules read, found in one pass over it (as
 * get_field finds them: the last one named so wins, and a null one is
 * absent), instead of one pass per rule. */
struct row_view {
    element intent, seniority, department, geo, email;
    bool has_intent = false, has_seniority = false, has_department = false, has_geo = false,
         has_email = false;

    void scan(object o)
    {
        for (object::iterator it = o.begin(); it != o.end(); ++it) {
            std::string_view k = it.key();
            switch (k.size()) {
            case 3:
                if (same_key(k, "geo", 3))
                    set(geo, has_geo, it.value());
                break;
            case 6:
                if (same_key(k, "intent", 6))
                    set(intent, has_intent, it.value());
                break;
            case 9:
                if (same_key(k, "seniority", 9))
                    set(seniority, has_seniority, it.value());
                break;
            case 10:
                if (same_key(k, "department", 10))
                    set(department, has_department, it.value());
                break;
            case 11:
                if (same_key(k, "hashedEmail", 11))
                    set(email, has_email, it.value());
                break;
            default:
                break;
            }
        }
    }

  private:
    static void set(element &slot, bool &has, element v)
    {
        slot = v;
        has = !is_null(v);
    }
};

bool score_ok(const lp_where_t *w, const row_view &row)
{
    element s;
    lp_num_t n;
    if (!row.has_intent || !get_field(row.intent, "score", 5, s) || !to_num(s, n))
        return false;
    if (w->rules & LP_W_MIN_SCORE) {
        int c = num_cmp(n, w->min_score);
        if (c != 0 && c != 1)
            return false;
    }
    if (w->rules & LP_W_MAX_SCORE) {
        int c = num_cmp(n, w->max_score);
        if (c != 0 && c != -1)
            return false;
    }
    return true;
}

/* ranks[v] or ranks[lower(v)], then a number at least min_rank. */
bool rank_ok(const lp_where_t *w, const row_view &row)
{
    element v = row.seniority;
    if (!row.has_seniority || v.type() != element_type::STRING)
        return false;
    std::string_view s = v.get_string().value_unsafe();
    const lp_wrank_t *r = nullptr;
    for (size_t i = 0; i < w->n_ranks && r == nullptr; i++) {
        if (same_key(s, w->ranks[i].name.s, w->ranks[i].name.len))
            r = &w->ranks[i];
    }
    for (size_t i = 0; i < w->n_ranks && r == nullptr; i++) {
        if (lower_eq(s, w->ranks[i].name))
            r = &w->ranks[i];
    }
    if (r == nullptr || r->kind != LP_RANK_NUMBER)
        return false;
    int c = num_cmp(r->rank, w->min_rank);
    return c == 0 || c == 1;
}

bool country_ok(const lp_where_t *w, const row_view &row)
{
    if (!row.has_geo)
        return false;
    return field_in(row.geo, "countryCode", 11, w->country, w->n_country)
           || field_in(row.geo, "country", 7, w->country, w->n_country);
}

bool topic_ok(const lp_where_t *w, const row_view &row)
{
    element topics;
    if (!row.has_intent || !get_field(row.intent, "matchedTopics", 13, topics)
        || topics.type() != element_type::ARRAY)
        return false;
    array a = topics.get_array().value_unsafe();
    for (element t : a) {
        element id;
        lp_num_t n;
        if (t.type() != element_type::OBJECT)
            continue;
        if (get_field(t, "topicId", 7, id) && to_num(id, n)) {
            for (size_t i = 0; i < w->n_topic_ids; i++) {
                if (num_cmp(n, w->topic_ids[i]) == 0)
                    return true;
            }
        }
        if (field_in(t, "topicName", 9, w->topic_names, w->n_topic_names))
            return true;
    }
    return false;
}

/* The compiled where{}: every rule present must hold. row is an object. */
/* Whether the object row passes w; rv is the row's members, scanned already. */
bool keep_row(const lp_where_t *w, element row, const row_view &rv)
{
    unsigned r = w->rules;
    if ((r & (LP_W_MIN_SCORE | LP_W_MAX_SCORE)) && !score_ok(w, rv))
        return false;
    if ((r & LP_W_SENIORITY) && !value_in(rv.has_seniority, rv.seniority, w->seniority, w->n_seniority))
        return false;
    if ((r & LP_W_AT_LEAST) && !rank_ok(w, rv))
        return false;
    if ((r & LP_W_DEPARTMENT)
        && !value_in(rv.has_department, rv.department, w->department, w->n_department))
        return false;
    if ((r & LP_W_COUNTRY) && !country_ok(w, rv))
        return false;
    if (r & LP_W_HAS) {
        for (size_t i = 0; i < w->n_has; i++) {
            element v;
            if (!get_path(row, w->has[i], v) || !present(v))
                return false;
        }
    }
    if ((r & LP_W_TOPIC) && !topic_ok(w, rv))
        return false;
    return true;
}

/* ===== FINGERPRINTS (client:changes, lp_fpset.h) ===== */

/* A value's fingerprint as the decoded table would give it (lp_fpset.c's fp_value on
 * that table): nulls absent, the last of a repeated key wins, numbers as Lua holds them. */
uint64_t fp_element(element e)
{
    switch (e.type()) {
    case element_type::NULL_VALUE:
        return lp_fp_absent();
    case element_type::BOOL:
        return lp_fp_bool(e.get_bool().value_unsafe() ? 1 : 0);
    case element_type::INT64:
#if LUA_VERSION_NUM >= 503
        return lp_fp_int(e.get_int64().value_unsafe());
#else
        return lp_fp_double((double)(lua_Number)e.get_int64().value_unsafe());
#endif
    case element_type::UINT64:
        return lp_fp_double((double)(lua_Number)e.get_uint64().value_unsafe());
    case element_type::DOUBLE:
        return lp_fp_double((double)(lua_Number)e.get_double().value_unsafe());
    case element_type::STRING: {
        std::string_view v = e.get_string().value_unsafe();
        return lp_fp_bytes(LP_FP_TAG_STRING, v.data(), v.size());
    }
    case element_type::ARRAY: {
        uint64_t h = lp_fp_array_start(), count = 0;
        array a = e.get_array().value_unsafe();
        for (element x : a) {
            if (is_null(x))
                continue;
            h = lp_fp_array_add(h, fp_element(x));
            count++;
        }
        return lp_fp_array_end(h, count);
    }
    case element_type::OBJECT: {
        object o = e.get_object().value_unsafe();
        uint64_t sum = 0, count = 0;
        for (object::iterator it = o.begin(); it != o.end(); ++it) {
            if (is_null(it.value()) || key_later(o, it))
                continue;
            std::string_view k = it.key();
            sum += lp_fp_member(k.data(), k.size(), fp_element(it.value()));
            count++;
        }
        return lp_fp_object_end(sum, count);
    }
    }
    return lp_fp_absent();
}

/* The row's id: its hashedEmail when that is a string, else the whole row. */
uint64_t fp_row_id(element row)
{
    element v;
    if (get_field(row, "hashedEmail", 11, v) && v.type() == element_type::STRING) {
        std::string_view s = v.get_string().value_unsafe();
        return lp_fp_id(s.data(), s.size());
    }
    return lp_fp_row(fp_element(row));
}

uint64_t fp_row_fields(const lp_where_t *w, element row)
{
    uint64_t h = LP_FP_TAG_FIELDS;
    for (size_t i = 0; i < w->n_fpset_fields; i++) {
        element v;
        h = lp_fp_field(h, i + 1, get_path(row, w->fpset_fields[i], v) ? fp_element(v) : lp_fp_absent());
    }
    return h;
}

/* Whether decode_page builds the row (an object): the where{}, then, in a pass of
 * client:changes, the fingerprint table's decision (which also records the row). */
bool decide(const lp_where_t *w, element row, const row_view &rv)
{
    bool ok = keep_row(w, row, rv);
    if (w->fpset == nullptr)
        return ok;
    return lp_fpset_visit(w->fpset, w->fpset_op, w->fpset_only, w->fpset_changed, ok ? 1 : 0,
                          fp_row_id(row), w->fpset_fields != nullptr ? fp_row_fields(w, row) : 0)
           != 0;
}

/* ===== RAW ROWS (compact JSON) ===== */

void raw_value(luaL_Buffer *B, element e);

void raw_string(luaL_Buffer *B, std::string_view s)
{
    static const char hex[] = "0123456789abcdef";
    size_t from = 0, n = s.size();
    luaL_addchar(B, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        luaL_addlstring(B, s.data() + from, i - from);
        from = i + 1;
        luaL_addchar(B, '\\');
        switch (c) {
        case '"': luaL_addchar(B, '"'); break;
        case '\\': luaL_addchar(B, '\\'); break;
        case '\b': luaL_addchar(B, 'b'); break;
        case '\f': luaL_addchar(B, 'f'); break;
        case '\n': luaL_addchar(B, 'n'); break;
        case '\r': luaL_addchar(B, 'r'); break;
        case '\t': luaL_addchar(B, 't'); break;
        default: {
            char u[5] = { 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            luaL_addlstring(B, u, 5);
        }
        }
    }
    luaL_addlstring(B, s.data() + from, n - from);
    luaL_addchar(B, '"');
}

/* The shortest %g text that reads back as d, with ".0" when it would read
 * back as an integer. */
void raw_double(luaL_Buffer *B, double d)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (std::strtod(buf, nullptr) == d)
            break;
    }
    luaL_addstring(B, buf);
    if (std::strpbrk(buf, ".eE") == nullptr)
        luaL_addstring(B, ".0");
}

void raw_value(luaL_Buffer *B, element e)
{
    char buf[32];
    switch (e.type()) {
    case element_type::ARRAY: {
        bool first = true;
        array a = e.get_array().value_unsafe();
        luaL_addchar(B, '[');
        for (element x : a) {
            if (is_null(x))
                continue;
            if (!first)
                luaL_addchar(B, ',');
            first = false;
            raw_value(B, x);
        }
        luaL_addchar(B, ']');
        break;
    }
    case element_type::OBJECT: {
        bool first = true;
        object o = e.get_object().value_unsafe();
        luaL_addchar(B, '{');
        for (object::iterator it = o.begin(); it != o.end(); ++it) {
            if (is_null(it.value()) || key_later(o, it))
                continue;
            if (!first)
                luaL_addchar(B, ',');
            first = false;
            raw_string(B, it.key());
            luaL_addchar(B, ':');
            raw_value(B, it.value());
        }
        luaL_addchar(B, '}');
        break;
    }
    case element_type::INT64:
        std::snprintf(buf, sizeof buf, "%lld", (long long)e.get_int64().value_unsafe());
        luaL_addstring(B, buf);
        break;
    case element_type::UINT64:
        std::snprintf(buf, sizeof buf, "%llu", (unsigned long long)e.get_uint64().value_unsafe());
        luaL_addstring(B, buf);
        break;
    case element_type::DOUBLE:
        raw_double(B, e.get_double().value_unsafe());
        break;
    case element_type::STRING:
        raw_string(B, e.get_string().value_unsafe());
        break;
    case element_type::BOOL:
        if (e.get_bool().value_unsafe())
            luaL_addlstring(B, "true", 4);
        else
            luaL_addlstring(B, "false", 5);
        break;
    case element_type::NULL_VALUE:
        luaL_addlstring(B, "null", 4);
        break;
    }
}

/* ===== BUILDING LUA VALUES ===== */

struct lp_page {
    const lp_where_t *pred;
    int raw; /* LP_PAGE_TABLES, LP_PAGE_RAW or LP_PAGE_COUNT */
    lua_Integer nrows, nkept;
    lp_sj_ids_t *ids; /* NULL: no row ids wanted */
    element email;    /* the hashedEmail of the row push_object built last (LP_ROW) */
    bool has_email;
};

struct lp_build {
    lua_State *L;
    int array_mt;
    int cache;
    lp_sj *sj;
    lp_page *page; /* NULL outside decode_page */
};

/* The id of a row: a 64-bit hash of its hashedEmail (eight bytes at a time,
 * multiply and xor-shift, after the length; a repeat check, not a secret). */
inline uint64_t id_hash(std::string_view v)
{
    const unsigned char *p = reinterpret_cast<const unsigned char *>(v.data());
    size_t n = v.size(), i = 0;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001B3ull;
    h ^= h >> 29;
    h *= 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 32);
}

/* Notes the id of row number `row` (1-based) of a page, when its hashedEmail v
 * is a string; grows the parser's id array first (raises on no memory: the
 * parser owns the array, nothing leaks). */
void note_id(const lp_build &b, element v, lua_Integer row)
{
    lp_sj *sj = b.sj;
    lp_sj_ids_t *ids = b.page->ids;
    if (v.type() != element_type::STRING)
        return;
    if (ids->n == sj->ids_cap) {
        size_t cap = sj->ids_cap ? sj->ids_cap * 2 : 512;
        void *p = std::realloc(sj->ids, cap * sizeof(lp_row_id_t));
        if (p == nullptr)
            luaL_error(b.L, "decode: out of memory");
        sj->ids = static_cast<lp_row_id_t *>(p);
        sj->ids_cap = cap;
        ids->ids = sj->ids;
    }
    sj->ids[ids->n].hash = id_hash(v.get_string().value_unsafe());
    sj->ids[ids->n].row = (uint32_t)row;
    ids->n++;
}

/* Pushes the string s, from the cache when it is there. The cache table's
 * array part exists already, so lua_rawseti there never allocates: the slot
 * and the table change together or not at all. */
void push_string(const lp_build &b, std::string_view s)
{
    lua_State *L = b.L;
    size_t n = s.size();
    if (n > LP_SJ_CACHE_LEN || n == 0) {
        lua_pushlstring(L, s.data(), n);
        return;
    }
    const unsigned char *p = reinterpret_cast<const unsigned char *>(s.data());
    unsigned h = (unsigned)n * 0x9E37u ^ (unsigned)p[0] * 0x1F1u ^ (unsigned)p[n - 1] * 0x3Bu
                 ^ (unsigned)p[n / 2] * 0x101u ^ (unsigned)p[n / 3] << 4;
    h = (h ^ (h >> 9)) & (LP_SJ_CACHE_SLOTS - 1);
    lp_sj_slot &e = b.sj->slots[h];
    if (e.len == n && std::memcmp(e.s, p, n) == 0) {
        lua_rawgeti(L, b.cache, (int)h + 1);
        return;
    }
    lua_pushlstring(L, s.data(), n);
    lua_pushvalue(L, -1);
    lua_rawseti(L, b.cache, (int)h + 1);
    e.s = lua_tostring(L, -1);
    e.len = n;
}

/* A presize for lua_createtable from simdjson's member count (which saturates
 * at 0xFFFFFF, far above any table worth presizing exactly). */
inline int size_hint(size_t n)
{
    return n < 0xFFFFFF ? (int)n : 0xFFFFFF;
}

/* Page levels of push_object (LP_ROW: a row whose hashedEmail the page notes). */
enum { LP_PLAIN = 0, LP_DATA = 1, LP_ROOT = 2, LP_ROW = 3 };

void push_value(const lp_build &b, element e);
void push_results(const lp_build &b, array a);

void push_array(const lp_build &b, array a)
{
    lua_State *L = b.L;
    int i = 0;
    luaL_checkstack(L, 3, "decode: nested too deeply");
    lua_createtable(L, size_hint(a.size()), 0); /* nulls counted: only a hint */
    for (element x : a) {
        if (is_null(x))
            continue;
        push_value(b, x);
        lua_rawseti(L, -2, ++i);
    }
    lua_pushvalue(L, b.array_mt);
    lua_setmetatable(L, -2);
}

/* An object; level says whether it is the root or the data object of a page. */
void push_object(const lp_build &b, object o, int level)
{
    lua_State *L = b.L;
    size_t idx = 0;
    uint64_t seen = 0; /* a bit per key (length and first byte) set so far */
    luaL_checkstack(L, 3, "decode: nested too deeply");
    lua_createtable(L, 0, size_hint(o.size())); /* nulls counted: only a hint */
    for (object::iterator it = o.begin(); it != o.end(); ++it, ++idx) {
        std::string_view k = it.key();
        element v = it.value();
        uint64_t bit = (uint64_t)1 << ((k.size() * 7 + (k.empty() ? 0 : (unsigned char)k[0])) & 63);
        if (level == LP_ROW && same_key(k, "hashedEmail", 11)) {
            b.page->email = v; /* last wins, a null one too */
            b.page->has_email = !is_null(v);
        }
        if (is_null(v)) {
            /* last wins: a null after the same key removes it */
            if ((seen & bit) != 0 && key_before(o, idx, k)) {
                push_string(b, k);
                lua_pushnil(L);
                lua_rawset(L, -3);
            }
            continue;
        }
        seen |= bit;
        push_string(b, k);
        if (level == LP_ROOT && v.type() == element_type::OBJECT && same_key(k, "data", 4))
            push_object(b, v.get_object().value_unsafe(), LP_DATA);
        else if (level == LP_DATA && v.type() == element_type::ARRAY && same_key(k, "results", 7))
            push_results(b, v.get_array().value_unsafe());
        else
            push_value(b, v);
        lua_rawset(L, -3);
    }
}

void push_value(const lp_build &b, element e)
{
    lua_State *L = b.L;
    switch (e.type()) {
    case element_type::ARRAY:
        push_array(b, e.get_array().value_unsafe());
        break;
    case element_type::OBJECT:
        push_object(b, e.get_object().value_unsafe(), LP_PLAIN);
        break;
    case element_type::INT64:
#if LUA_VERSION_NUM >= 503
        lua_pushinteger(L, (lua_Integer)e.get_int64().value_unsafe());
#else
        lua_pushnumber(L, (lua_Number)e.get_int64().value_unsafe());
#endif
        break;
    case element_type::UINT64:
        lua_pushnumber(L, (lua_Number)e.get_uint64().value_unsafe());
        break;
    case element_type::DOUBLE:
        lua_pushnumber(L, (lua_Number)e.get_double().value_unsafe());
        break;
    case element_type::STRING:
        push_string(b, e.get_string().value_unsafe());
        break;
    case element_type::BOOL:
        lua_pushboolean(L, e.get_bool().value_unsafe() ? 1 : 0);
        break;
    case element_type::NULL_VALUE:
        lua_pushnil(L);
        break;
    }
}

/* data.results of a page: the rows that pass the predicate, as tables or as
 * JSON text. Decisions for up to LP_KEEP_MEMO rows are remembered between
 * the counting pass and the building pass. */
#define LP_KEEP_MEMO 1024

void push_results(const lp_build &b, array a)
{
    lua_State *L = b.L;
    lp_page *pg = b.page;
    unsigned char keep[LP_KEEP_MEMO];
    lua_Integer n = 0, kept = 0;
    int i = 0;
    if (a.size() == 1 && is_null(*a.begin())) {
        /* one null row reads as no row, as in the cjson decoder (where lp_jscan writes
         * `[]` so): a page whose only row is null is empty (refused when rows are due) */
        pg->nrows = pg->nkept = 0;
        lua_createtable(L, 0, 0);
        lua_pushvalue(L, b.array_mt);
        lua_setmetatable(L, -2);
        return;
    }
    /* Rows are looked over before they are built when a predicate decides which are
     * built, or when raw rows need their ids; else the ids come from the build. */
    bool count = pg->raw == LP_PAGE_COUNT;
    bool look = pg->pred != nullptr || count || (pg->ids != nullptr && pg->raw);
    bool ids_in_build = pg->ids != nullptr && !look;
    for (element x : a) {
        /* A row that is not an object is always built: the Lua layer must see it to
         * refuse the page (a filter must never hide a malformed row); a null row is
         * built as false (a hole in the array would hide it). */
        bool k = true;
        n++;
        if (look && x.type() == element_type::OBJECT) {
            row_view rv;
            rv.scan(x.get_object().value_unsafe());
            if (pg->pred != nullptr && n > LP_KEEP_MEMO && pg->pred->fpset != nullptr)
                k = false; /* a pass records a row once: past the memo (a page far over any
                              limit, which the Lua layer refuses), rows are neither seen nor built */
            else if (pg->pred != nullptr)
                k = decide(pg->pred, x, rv);
            if (pg->ids != nullptr && rv.has_email)
                note_id(b, rv.email, n);
        }
        if (n <= LP_KEEP_MEMO)
            keep[n - 1] = k;
        kept += k;
    }
    pg->nrows = n;
    pg->nkept = kept;
    lua_createtable(L, count ? 0 : (int)kept, 0);
    n = 0;
    for (element x : a) {
        bool k = true;
        n++;
        if (count && x.type() == element_type::OBJECT)
            continue; /* counted, never built */
        if (n <= LP_KEEP_MEMO) {
            k = keep[n - 1] != 0;
        } else if (pg->pred != nullptr && x.type() == element_type::OBJECT) {
            if (pg->pred->fpset != nullptr) {
                k = false;
            } else {
                row_view rv;
                rv.scan(x.get_object().value_unsafe());
                k = keep_row(pg->pred, x, rv);
            }
        }
        if (!k)
            continue;
        if (is_null(x)) {
            lua_pushboolean(L, 0);
        } else if (pg->raw == LP_PAGE_RAW) {
            luaL_Buffer B;
            luaL_buffinit(L, &B);
            raw_value(&B, x);
            luaL_pushresult(&B);
        } else if (ids_in_build && x.type() == element_type::OBJECT) {
            pg->has_email = false;
            push_object(b, x.get_object().value_unsafe(), LP_ROW);
            if (pg->has_email)
                note_id(b, pg->email, n);
        } else {
            push_value(b, x);
        }
        lua_rawseti(L, -2, ++i);
    }
    lua_pushvalue(L, b.array_mt);
    lua_setmetatable(L, -2);
}

} // namespace

/* ===== C ABI ===== */

extern "C" size_t lp_sj_padding(void)
{
    return simdjson::SIMDJSON_PADDING;
}

extern "C" lp_sj_t *lp_sj_new(void)
{
    try {
        lp_sj_t *sj = new (std::nothrow) lp_sj_t();
        if (sj == nullptr)
            return nullptr;
        for (lp_sj_slot &e : sj->slots) {
            e.s = nullptr;
            e.len = (size_t)-1;
        }
        sj->ids = nullptr;
        sj->ids_cap = 0;
        if (sj->parser.allocate(4096, LP_JSON_MAX_DEPTH) != simdjson::SUCCESS) {
            delete sj;
            return nullptr;
        }
        return sj;
    } catch (...) {
        return nullptr;
    }
}

extern "C" void lp_sj_free(lp_sj_t *sj)
{
    if (sj != nullptr)
        std::free(sj->ids);
    delete sj;
}

extern "C" void lp_sj_shrink(lp_sj_t *sj)
{
    try {
        simdjson::error_code err = sj->parser.allocate(4096, LP_JSON_MAX_DEPTH);
        (void)err; /* on failure the next parse allocates what it needs */
    } catch (...) {
        /* the same */
    }
    sj->root = element();
}

extern "C" const char *lp_sj_parse(lp_sj_t *sj, const char *text, size_t len)
{
    try {
        simdjson::error_code err = sj->parser
                                       .parse(reinterpret_cast<const uint8_t *>(text), len, false)
                                       .get(sj->root);
        if (err != simdjson::SUCCESS)
            return simdjson::error_message(err);
        return nullptr;
    } catch (...) {
        return "out of memory";
    }
}

extern "C" void lp_sj_push(lua_State *L, lp_sj_t *sj, int array_mt, int cache)
{
    lp_build b = { L, array_mt, cache, sj, nullptr };
    push_value(b, sj->root);
}

extern "C" void lp_sj_push_page(lua_State *L, lp_sj_t *sj, int array_mt, int cache,
                                const lp_where_t *pred, int raw, lua_Integer *nrows,
                                lua_Integer *nkept, lp_sj_ids_t *ids)
{
    lp_page pg = { pred, raw, 0, 0, ids, element(), false };
    if (ids != nullptr) {
        ids->ids = sj->ids;
        ids->n = 0;
    }
    lp_build b = { L, array_mt, cache, sj, &pg };
    if (sj->root.type() == element_type::OBJECT)
        push_object(b, sj->root.get_object().value_unsafe(), LP_ROOT);
    else
        push_value(b, sj->root);
    *nrows = pg.nrows;
    *nkept = pg.nkept;
}

/*
 * lp_jscan.c: the lexical pass both decoders share (contract in lp_jscan.h).
 *
 * One walk over the bytes. A rewrite is built lazily: nothing is copied until
 * the first change, so text that needs none costs one read and no allocation.
 * The walk does not check structure (commas, colons, brackets matching): the
 * parser that runs next does that, and the pass only needs to know whether a
 * byte is inside a string.
 *
 * Numbers are read with strtod, which follows LC_NUMERIC; leadpipe assumes the
 * "C" locale there, as Lua's own number reading mostly does.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lp_jscan.h"

/* The rewrite being built: s[0..copied) has been handled; the buffer exists
 * once started is set. */
typedef struct {
    lua_State *L;
    const char *s;
    size_t copied;
    int started;
    luaL_Buffer b;
} lp_jscan_out_t;

/* Copies s[copied..at) into the rewrite (starting it first when needed). */
static void out_upto(lp_jscan_out_t *o, size_t at)
{
    if (!o->started) {
        luaL_buffinit(o->L, &o->b);
        o->started = 1;
    }
    luaL_addlstring(&o->b, o->s + o->copied, at - o->copied);
    o->copied = at;
}

/* Replaces s[at..at+n) with repl[0..rn). */
static void out_replace(lp_jscan_out_t *o, size_t at, size_t n, const char *repl, size_t rn)
{
    out_upto(o, at);
    luaL_addlstring(&o->b, repl, rn);
    o->copied = at + n;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of the escape "\uXXXX" at s[at..), or -1 when s[at..) is not one. */
static long unicode_escape(const char *s, size_t len, size_t at)
{
    long cp = 0;
    size_t k;
    if (at + 6 > len || s[at] != '\\' || s[at + 1] != 'u')
        return -1;
    for (k = at + 2; k < at + 6; k++) {
        int h = hex_value(s[k]);
        if (h < 0)
            return -1;
        cp = cp * 16 + h;
    }
    return cp;
}

/* Length of the well-formed UTF-8 sequence at p[0..avail) (p[0] >= 0x80), or 0
 * with *bad set to the length of its maximal ill-formed subpart (at least 1),
 * after the Unicode standard's table 3-7. */
static size_t utf8_sequence(const unsigned char *p, size_t avail, size_t *bad)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t n, k;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else {
        *bad = 1;
        return 0;
    }
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    for (k = 1; k < n; k++) {
        if (k >= avail || p[k] < lo || p[k] > hi) {
            *bad = k;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return n;
}

/* What is wrong with a string (scan_string). */
#define LP_STR_OK 0
#define LP_STR_UTF8 1      /* bytes that are not UTF-8 */
#define LP_STR_SURROGATE 2 /* a \uXXXX surrogate escape without its other half */

/* Longest key named in full by an error (keys are checked UTF-8 already). */
#define LP_JSCAN_KEY_SHOWN 60

/* Scans the string whose opening quote is at s[at]; returns the offset just
 * past its closing quote (len when it is unterminated). The first thing wrong
 * with it (LP_STR_*) goes to *bad, and where it is to *bad_at; the string is
 * then left for the caller to report. */
static size_t scan_string(lp_jscan_out_t *o, size_t len, size_t at, int mode, int *bad,
                          size_t *bad_at)
{
    static const char hex[] = "0123456789abcdef";
    const char *s = o->s;
    size_t i = at + 1;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            long cp = unicode_escape(s, len, i);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = unicode_escape(s, len, i + 6);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    i += 12;
                    continue;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                if (*bad == LP_STR_OK) {
                    *bad = LP_STR_SURROGATE;
                    *bad_at = i;
                }
                i += 6;
            } else {
                i += cp >= 0 ? 6 : 2; /* a bad escape is the parser's to report */
            }
        } else if (c < 0x20) {
            if (mode == LP_JSCAN_SIMDJSON) {
                char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
                out_replace(o, i, 1, esc, 6);
            }
            i++;
        } else if (c < 0x80) {
            i++;
        } else {
            size_t ill = 0, n = utf8_sequence((const unsigned char *)s + i, len - i, &ill);
            if (n > 0) {
                i += n;
            } else {
                if (*bad == LP_STR_OK) {
                    *bad = LP_STR_UTF8;
                    *bad_at = i;
                }
                i += ill;
            }
        }
    }
    return len;
}

/* Pushes the reason a string is refused: what is wrong, and the field it is the value
 * of (the last object key met before it), or that it is a key itself. */
static void push_bad_string(lua_State *L, const char *s, size_t len, size_t end, int bad,
                            size_t bad_at, const char *key, size_t key_len)
{
    luaL_Buffer b;
    size_t k = end;
    while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r'))
        k++;
    luaL_buffinit(L, &b);
    if (bad == LP_STR_SURROGATE) {
        luaL_addstring(&b, "unpaired surrogate escape ");
        luaL_addlstring(&b, s + bad_at, 6);
    } else {
        luaL_addstring(&b, "invalid UTF-8");
    }
    if (k < len && s[k] == ':') {
        luaL_addstring(&b, " in an object key");
    } else if (key != NULL) {
        luaL_addstring(&b, " in the value of \"");
        if (key_len > LP_JSCAN_KEY_SHOWN) {
            luaL_addlstring(&b, key, LP_JSCAN_KEY_SHOWN);
            luaL_addstring(&b, "...");
        } else {
            luaL_addlstring(&b, key, key_len);
        }
        luaL_addchar(&b, '"');
    } else {
        luaL_addstring(&b, " in a string");
    }
    luaL_pushresult(&b);
    lua_pushfstring(L, " at character %d", (int)(bad_at + 1));
    lua_concat(L, 2);
}

/* Checks the number text p[0..n) against the JSON grammar. Returns 1 when it
 * is one, setting *is_float (fraction or exponent) and *digits (of the
 * integer part). */
static int check_number(const char *p, size_t n, int *is_float, size_t *digits)
{
    size_t k = 0, start;
    *is_float = 0;
    if (k < n && p[k] == '-')
        k++;
    start = k;
    if (k < n && p[k] == '0') {
        k++;
    } else if (k < n && p[k] >= '1' && p[k] <= '9') {
        while (k < n && is_digit(p[k]))
            k++;
    } else {
        return 0;
    }
    *digits = k - start;
    if (k < n && p[k] == '.') {
        k++;
        if (k >= n || !is_digit(p[k]))
            return 0;
        while (k < n && is_digit(p[k]))
            k++;
        *is_float = 1;
    }
    if (k < n && (p[k] == 'e' || p[k] == 'E')) {
        k++;
        if (k < n && (p[k] == '+' || p[k] == '-'))
            k++;
        if (k >= n || !is_digit(p[k]))
            return 0;
        while (k < n && is_digit(p[k]))
            k++;
        *is_float = 1;
    }
    return k == n;
}

/* Whether the integer text p[0..n) (digits, maybe after '-') fits int64
 * (negative) or uint64 (positive), the ranges simdjson reads. */
static int fits_64(const char *p, size_t n)
{
    int neg = p[0] == '-';
    const char *d = p + neg;
    size_t nd = n - (size_t)neg;
    if (neg)
        return nd < 19 || (nd == 19 && memcmp(d, "9223372036854775808", 19) <= 0);
    return nd < 20 || (nd == 20 && memcmp(d, "18446744073709551615", 20) <= 0);
}

int lp_jscan(lua_State *L, const char *s, size_t len, int mode, int *tagged)
{
    lp_jscan_out_t o;
    size_t i = 0, key_at = 0, key_len = 0;
    int depth = 0, top = lua_gettop(L), has_key = 0;
    const char *why = NULL;
    o.L = L;
    o.s = s;
    o.copied = 0;
    o.started = 0;
    *tagged = 0;
    while (i < len) {
        char c = s[i];
        if (c == '"') {
            int bad = LP_STR_OK;
            size_t bad_at = 0, end = scan_string(&o, len, i, mode, &bad, &bad_at), k = end;
            if (bad != LP_STR_OK) {
                lua_settop(L, top); /* drops an unfinished rewrite */
                push_bad_string(L, s, len, end, bad, bad_at, has_key ? s + key_at : NULL, key_len);
                return LP_JSCAN_ERROR;
            }
            while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r'))
                k++;
            if (k < len && s[k] == ':' && end > i + 1) {
                /* an object key: the field a bad string after it is named by */
                has_key = 1;
                key_at = i + 1;
                key_len = end - i - 2;
            }
            i = end;
        } else if (c == '[' || c == '{') {
            if (++depth > LP_JSON_MAX_DEPTH) {
                why = "nested too deeply";
                break;
            }
            if (c == '[' && mode == LP_JSCAN_CJSON) {
                size_t k = i + 1;
                while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r'))
                    k++;
                if (k < len && s[k] == ']')
                    out_replace(&o, i + 1, 0, "null", 4);
            }
            i++;
        } else if (c == ']' || c == '}') {
            if (depth > 0)
                depth--;
            i++;
        } else if (c == '-' || is_digit(c)) {
            size_t j = i, digits = 0;
            int is_float = 0;
            while (j < len && (is_digit(s[j]) || s[j] == '-' || s[j] == '+' || s[j] == '.'
                               || s[j] == 'e' || s[j] == 'E'))
                j++;
            if (!check_number(s + i, j - i, &is_float, &digits)) {
                why = "invalid number";
                break;
            }
            if (is_float || digits > 19) {
                /* strtod stops at the first byte after the number: s is a Lua string. */
                double v = strtod(s + i, NULL);
                if (isinf(v)) {
                    why = "number out of range";
                    break;
                }
                if (mode == LP_JSCAN_CJSON && is_float && v == floor(v)) {
                    out_upto(&o, i);
                    luaL_addchar(&o.b, '"');
                    luaL_addchar(&o.b, LP_JSCAN_TAG);
                    luaL_addlstring(&o.b, s + i, j - i);
                    luaL_addchar(&o.b, '"');
                    o.copied = j;
                    *tagged = 1;
                }
            }
            if (mode == LP_JSCAN_CJSON && !is_float
                && (digits > 15 || (j - i == 2 && s[i] == '-' && s[i + 1] == '0'))) {
                out_upto(&o, i);
                luaL_addchar(&o.b, '"');
                luaL_addchar(&o.b, LP_JSCAN_TAG);
                luaL_addlstring(&o.b, s + i, j - i);
                luaL_addchar(&o.b, '"');
                o.copied = j;
                *tagged = 1;
            } else if (mode == LP_JSCAN_SIMDJSON && !is_float && !fits_64(s + i, j - i)) {
                out_replace(&o, j, 0, "e0", 2);
            }
            i = j;
        } else {
            i++;
        }
    }
    if (why != NULL) {
        lua_settop(L, top); /* drops an unfinished rewrite */
        lua_pushfstring(L, "%s at character %d", why, (int)(i + 1));
        return LP_JSCAN_ERROR;
    }
    if (!o.started)
        return LP_JSCAN_SAME;
    out_upto(&o, len);
    luaL_pushresult(&o.b);
    return LP_JSCAN_REWRITTEN;
}

void lp_jscan_push_number(lua_State *L, const char *lit, size_t n)
{
    size_t k;
    int neg = lit[0] == '-', integral = 1;
    for (k = 0; k < n; k++) {
        if (lit[k] == '.' || lit[k] == 'e' || lit[k] == 'E')
            integral = 0;
    }
#if LUA_VERSION_NUM >= 503
    if (integral) {
        lua_Unsigned u = 0, limit = (lua_Unsigned)LUA_MAXINTEGER + (lua_Unsigned)neg;
        int fits = 1;
        for (k = (size_t)neg; k < n && fits; k++) {
            lua_Unsigned d = (lua_Unsigned)(lit[k] - '0');
            if (u > (limit - d) / 10)
                fits = 0;
            else
                u = u * 10 + d;
        }
        if (fits) {
            lua_pushinteger(L, neg ? (lua_Integer)(0u - u) : (lua_Integer)u);
            return;
        }
    }
#else
    (void)neg;
#endif
    {
        lua_Number v = (lua_Number)strtod(lit, NULL);
        if (integral && v == 0)
            v = 0; /* "-0" is the integer 0 */
        lua_pushnumber(L, v);
    }
}

const char *lp_jscan_skip_bom(const char *s, size_t *len)
{
    if (*len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        *len -= 3;
        return s + 3;
    }
    return s;
}

/*
 * mock_json.c: strict JSON validation of request bodies. See mock_json.h.
 * License: MIT (see the repository).
 */
#include "mock_json.h"

#include <string.h>

typedef struct {
    const unsigned char *s;
    size_t n, i;
} parser_t;

static void skip_ws(parser_t *p)
{
    while (p->i < p->n) {
        unsigned char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->i++;
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void put_utf8(char *out, size_t cap, size_t *len, unsigned long cp, int *overflow)
{
    char tmp[4];
    size_t k, n;
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xc0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xe0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        tmp[0] = (char)(0xf0 | (cp >> 18));
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        tmp[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    for (k = 0; k < n; k++) {
        if (out && *len + 1 < cap)
            out[(*len)++] = tmp[k];
        else
            *overflow = 1;
    }
}

static int read_hex4(parser_t *p, unsigned long *v)
{
    int k;
    *v = 0;
    if (p->n - p->i < 4)
        return 0;
    for (k = 0; k < 4; k++) {
        int h = hexval(p->s[p->i++]);
        if (h < 0)
            return 0;
        *v = (*v << 4) | (unsigned long)h;
    }
    return 1;
}

/* Parses a string at p->i (which is '"'). Decoded bytes go to out (if not NULL) up to
 * cap-1 and a NUL; *overflow is set when they did not fit. Returns 1 if valid. */
static int parse_string(parser_t *p, char *out, size_t cap, int *overflow)
{
    size_t len = 0;
    *overflow = 0;
    p->i++;
    while (p->i < p->n) {
        unsigned char c = p->s[p->i++];
        if (c == '"') {
            if (out && cap)
                out[len < cap ? len : cap - 1] = '\0';
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            unsigned long cp;
            if (p->i >= p->n)
                return 0;
            c = p->s[p->i++];
            switch (c) {
            case '"': case '\\': case '/': cp = c; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (!read_hex4(p, &cp))
                    return 0;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned long lo;
                    if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
                        return 0;
                    p->i += 2;
                    if (!read_hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
                        return 0;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return 0;
                }
                break;
            default:
                return 0;
            }
            put_utf8(out, cap, &len, cp, overflow);
        } else {
            if (out && len + 1 < cap)
                out[len++] = (char)c;
            else
                *overflow = 1;
        }
    }
    return 0;
}

static int parse_number(parser_t *p)
{
    size_t start;
    if (p->i < p->n && p->s[p->i] == '-')
        p->i++;
    if (p->i >= p->n)
        return 0;
    if (p->s[p->i] == '0') {
        p->i++;
    } else if (p->s[p->i] >= '1' && p->s[p->i] <= '9') {
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
    } else {
        return 0;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        start = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        if (p->i == start)
            return 0;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        start = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        if (p->i == start)
            return 0;
    }
    return 1;
}

static int parse_literal(parser_t *p, const char *lit)
{
    size_t len = strlen(lit);
    if (p->n - p->i < len || memcmp(p->s + p->i, lit, len) != 0)
        return 0;
    p->i += len;
    return 1;
}

static int parse_value(parser_t *p, int depth);

static int parse_container(parser_t *p, int depth, int object)
{
    char close = object ? '}' : ']';
    int overflow;
    if (depth >= LPM_JSON_MAX_DEPTH)
        return 0;
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == (unsigned char)close) {
        p->i++;
        return 1;
    }
    for (;;) {
        if (object) {
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != '"' || !parse_string(p, NULL, 0, &overflow))
                return 0;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return 0;
            p->i++;
        }
        if (!parse_value(p, depth + 1))
            return 0;
        skip_ws(p);
        if (p->i >= p->n)
            return 0;
        if (p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->s[p->i] == (unsigned char)close) {
            p->i++;
            return 1;
        }
        return 0;
    }
}

static int parse_value(parser_t *p, int depth)
{
    int overflow;
    skip_ws(p);
    if (p->i >= p->n)
        return 0;
    switch (p->s[p->i]) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"': return parse_string(p, NULL, 0, &overflow);
    case 't': return parse_literal(p, "true");
    case 'f': return parse_literal(p, "false");
    case 'n': return parse_literal(p, "null");
    default: return parse_number(p);
    }
}

int lpm_json_member(const char *s, size_t n, const char *key, char *out, size_t outcap)
{
    parser_t p;
    char name[128];
    int overflow, result = LPM_JSON_ABSENT;

    p.s = (const unsigned char *)s;
    p.n = n;
    p.i = 0;
    skip_ws(&p);
    if (p.i >= p.n)
        return LPM_JSON_INVALID;
    if (p.s[p.i] != '{') {
        if (!parse_value(&p, 0))
            return LPM_JSON_INVALID;
        skip_ws(&p);
        return p.i == p.n ? LPM_JSON_NOT_OBJECT : LPM_JSON_INVALID;
    }
    /* the top-level object, walked by hand to look at its members */
    p.i++;
    skip_ws(&p);
    if (p.i < p.n && p.s[p.i] == '}') {
        p.i++;
    } else {
        for (;;) {
            int is_key;
            skip_ws(&p);
            if (p.i >= p.n || p.s[p.i] != '"' || !parse_string(&p, name, sizeof(name), &overflow))
                return LPM_JSON_INVALID;
            is_key = !overflow && strcmp(name, key) == 0;
            skip_ws(&p);
            if (p.i >= p.n || p.s[p.i] != ':')
                return LPM_JSON_INVALID;
            p.i++;
            skip_ws(&p);
            if (is_key && p.i < p.n && p.s[p.i] == '"') {
                if (!parse_string(&p, out, outcap, &overflow))
                    return LPM_JSON_INVALID;
                result = overflow ? LPM_JSON_NOT_STRING : LPM_JSON_FOUND;
            } else {
                if (!parse_value(&p, 1))
                    return LPM_JSON_INVALID;
                if (is_key)
                    result = LPM_JSON_NOT_STRING;
            }
            skip_ws(&p);
            if (p.i >= p.n)
                return LPM_JSON_INVALID;
            if (p.s[p.i] == ',') {
                p.i++;
                continue;
            }
            if (p.s[p.i] == '}') {
                p.i++;
                break;
            }
            return LPM_JSON_INVALID;
        }
    }
    skip_ws(&p);
    return p.i == p.n ? result : LPM_JSON_INVALID;
}

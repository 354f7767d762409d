/*
 * mock_json.c: the minimal check of a POST /runs body (see mock_json.h).
 *
 * License: MIT (see the repository).
 */
#include "mock_json.h"

#include <string.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int lpm_json_member(const char *s, size_t n, const char *key, char *out, size_t outcap)
{
    const char *p = s, *end = s + n, *at;
    size_t klen = strlen(key), len;
    while (p < end && is_space(*p))
        p++;
    while (end > p && is_space(end[-1]))
        end--;
    if (p == end)
        return LPM_JSON_INVALID;
    if (*p != '{') {
        int array = *p == '[' && end[-1] == ']';
        int string = *p == '"' && end - p >= 2 && end[-1] == '"';
        int word = (end - p == 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "null", 4) == 0)) ||
                   (end - p == 5 && memcmp(p, "false", 5) == 0);
        int number = (*p == '-' || (*p >= '0' && *p <= '9')) && end[-1] >= '0' && end[-1] <= '9';
        return array || string || word || number ? LPM_JSON_NOT_OBJECT : LPM_JSON_INVALID;
    }
    if (end[-1] != '}')
        return LPM_JSON_INVALID;
    /* the first "key" followed by a colon */
    for (at = p + 1; at + klen + 2 <= end; at++) {
        const char *v;
        if (at[0] != '"' || memcmp(at + 1, key, klen) != 0 || at[klen + 1] != '"')
            continue;
        v = at + klen + 2;
        while (v < end && is_space(*v))
            v++;
        if (v >= end || *v != ':')
            continue;
        v++;
        while (v < end && is_space(*v))
            v++;
        if (v >= end || *v != '"')
            return LPM_JSON_NOT_STRING;
        v++;
        for (len = 0; v + len < end && v[len] != '"'; len++) {
            if (v[len] == '\\')
                return LPM_JSON_NOT_STRING;
        }
        if (v + len >= end || len + 1 > outcap)
            return LPM_JSON_NOT_STRING;
        memcpy(out, v, len);
        out[len] = '\0';
        return LPM_JSON_FOUND;
    }
    return LPM_JSON_ABSENT;
}

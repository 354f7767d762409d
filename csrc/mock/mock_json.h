/*
 * mock_json.h: the fake API's check of a POST /runs body. Minimal on purpose (the fake
 * is a test tool): a body is one JSON object when it starts with '{' and ends with '}'
 * (after blanks); other JSON-looking values are "not an object", anything else is
 * invalid. Only one top-level string member is read out. Pure C, reentrant.
 *
 * License: MIT (see the repository).
 */
#ifndef LEADPIPE_MOCK_JSON_H
#define LEADPIPE_MOCK_JSON_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

enum {
    LPM_JSON_FOUND = 0,      /* the member exists and is a string: copied to out */
    LPM_JSON_ABSENT = 1,     /* an object without that member */
    LPM_JSON_INVALID = -1,   /* not JSON */
    LPM_JSON_NOT_OBJECT = -2,/* JSON, but not an object */
    LPM_JSON_NOT_STRING = -3 /* the member exists but is not a plain string (or too long) */
};

/* Checks s[0..n) and looks up the member `key` (its value, NUL terminated, at most
 * outcap-1 bytes and without escapes, goes to out). Returns one of the codes above. */
int lpm_json_member(const char *s, size_t n, const char *key, char *out, size_t outcap);

#pragma GCC visibility pop

#endif

/*
 * mock_json.h: a small strict JSON validator for request bodies of the fake API.
 * It checks a whole document (RFC 8259, nesting at most LPM_JSON_MAX_DEPTH) and picks
 * one top-level string member out of an object. Pure C, reentrant.
 *
 * License: MIT (see the repository).
 */
#ifndef LEADPIPE_MOCK_JSON_H
#define LEADPIPE_MOCK_JSON_H

#include <stddef.h>

#pragma GCC visibility push(hidden)

#define LPM_JSON_MAX_DEPTH 64

enum {
    LPM_JSON_FOUND = 0,      /* the member exists and is a string: copied to out */
    LPM_JSON_ABSENT = 1,     /* valid object without that member */
    LPM_JSON_INVALID = -1,   /* not valid JSON */
    LPM_JSON_NOT_OBJECT = -2,/* valid JSON, but not an object */
    LPM_JSON_NOT_STRING = -3 /* the member exists but is not a string (or too long) */
};

/* Validates s[0..n) and looks up the top-level member `key` (its decoded value, NUL
 * terminated, at most outcap-1 bytes, goes to out). Returns one of the codes above. */
int lpm_json_member(const char *s, size_t n, const char *key, char *out, size_t outcap);

#pragma GCC visibility pop

#endif

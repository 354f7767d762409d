/*
 * mock_buf.h: growable byte buffer, JSON/CSV writers, hashing and clocks for the fake
 * Leadpipe API (leadpipe.mockserver). Pure C, no Lua, safe to use from any thread.
 *
 * A buffer that fails to grow sets `oom` and ignores every later append, so writers can
 * append freely and check `oom` once at the end.
 *
 * License: MIT (see the repository).
 */
#ifndef LEADPIPE_MOCK_BUF_H
#define LEADPIPE_MOCK_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#pragma GCC visibility push(hidden)

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int oom;
} lpm_buf_t;

/* ===== BUFFER ===== */

void lpm_buf_init(lpm_buf_t *b, size_t cap);
void lpm_buf_free(lpm_buf_t *b);
/* Makes room for `extra` more bytes; returns 0 (and sets oom) when out of memory. */
int lpm_buf_grow(lpm_buf_t *b, size_t extra);

static inline int lpm_buf_reserve(lpm_buf_t *b, size_t extra)
{
    if (b->oom)
        return 0;
    if (b->cap - b->len >= extra)
        return 1;
    return lpm_buf_grow(b, extra);
}

static inline void lpm_buf_add(lpm_buf_t *b, const char *s, size_t n)
{
    if (lpm_buf_reserve(b, n)) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    }
}

static inline void lpm_buf_addc(lpm_buf_t *b, char c)
{
    if (lpm_buf_reserve(b, 1))
        b->data[b->len++] = c;
}

static inline void lpm_buf_adds(lpm_buf_t *b, const char *s)
{
    lpm_buf_add(b, s, strlen(s));
}

/* Appends a string literal without strlen. */
#define LPM_LIT(b, s) lpm_buf_add((b), "" s, sizeof(s) - 1)

void lpm_buf_adduint(lpm_buf_t *b, uint64_t v);
void lpm_buf_addint(lpm_buf_t *b, int64_t v);
/* Appends a fixed-point number with two decimals, e.g. 12.50 (v is hundredths). */
void lpm_buf_addcents(lpm_buf_t *b, int64_t hundredths);
/* Writes v as 16 lower-case hex digits and a NUL. */
void lpm_hex64(char out[17], uint64_t v);
/* Appends `nbytes` bytes of `words` as lower-case hex (most significant byte first). */
void lpm_buf_addhex(lpm_buf_t *b, const uint64_t *words, size_t nbytes);

/* ===== JSON AND CSV ===== */

/* Appends s[0..n) as a quoted JSON string: escapes quote, backslash and control
 * characters, and replaces bytes that are not valid UTF-8 with U+FFFD, so the output is
 * always valid JSON whatever the input. */
void lpm_json_str(lpm_buf_t *b, const char *s, size_t n);
/* Same for a NUL-terminated string, or the literal null when s is NULL. */
void lpm_json_strz(lpm_buf_t *b, const char *s);
/* Appends one RFC 4180 field: quoted (with doubled quotes) when it holds a comma, quote,
 * CR or LF; empty when s is NULL. */
void lpm_csv_field(lpm_buf_t *b, const char *s);
/* Number of UTF-8 characters in s[0..n) (bytes that do not continue a sequence). */
size_t lpm_utf8_len(const char *s, size_t n);

/* ===== HASHING ===== */

/* splitmix64 finalizer: a bijection on 64-bit integers. */
static inline uint64_t lpm_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* FNV-1a over bytes, continuing from h (start with LPM_FNV_INIT). */
#define LPM_FNV_INIT 0xcbf29ce484222325ULL
uint64_t lpm_fnv(uint64_t h, const void *p, size_t n);

/* Deterministic pseudo-random stream (splitmix64). */
typedef struct {
    uint64_t s;
} lpm_rng_t;

static inline uint64_t lpm_rng_next(lpm_rng_t *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, n), n > 0. */
static inline uint32_t lpm_rng_below(lpm_rng_t *r, uint32_t n)
{
    return (uint32_t)(((lpm_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* True with probability pct/100. */
static inline int lpm_rng_pct(lpm_rng_t *r, uint32_t pct)
{
    return lpm_rng_below(r, 100) < pct;
}

/* Writes a lower-case RFC 4122 version 4 UUID (36 chars + NUL) made from a and b. */
void lpm_uuid_from(char out[37], uint64_t a, uint64_t b);
/* True when s is a UUID in 8-4-4-4-12 hex form (any case, any version). */
int lpm_is_uuid(const char *s, size_t n);

/* ===== CLOCKS ===== */

int64_t lpm_wall_ms(void);      /* CLOCK_REALTIME in milliseconds */
int64_t lpm_mono_ms(void);      /* CLOCK_MONOTONIC in milliseconds */
void lpm_sleep_ms(int64_t ms);
/* "2026-05-05T16:52:31.000Z" (24 chars + NUL) */
void lpm_iso_time(char out[25], int64_t wall_ms);
/* "2026-05-04" (10 chars + NUL) */
void lpm_iso_date(char out[11], int64_t wall_ms);
/* "Tue, 05 May 2026 16:52:31 GMT" (29 chars + NUL) */
void lpm_http_date(char out[30], int64_t wall_s);

#pragma GCC visibility pop

#endif

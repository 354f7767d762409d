/*
 * mock_buf.c: growable buffer, JSON/CSV writers, hashing and clocks for the fake API.
 * See mock_buf.h for the contracts. License: MIT (see the repository).
 */
#include "mock_buf.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* ===== BUFFER ===== */

void lpm_buf_init(lpm_buf_t *b, size_t cap)
{
    b->len = 0;
    b->oom = 0;
    b->cap = 0;
    b->data = NULL;
    if (cap > 0) {
        b->data = malloc(cap);
        if (b->data)
            b->cap = cap;
        else
            b->oom = 1;
    }
}

void lpm_buf_free(lpm_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int lpm_buf_grow(lpm_buf_t *b, size_t extra)
{
    size_t need, cap;
    char *p;
    if (b->oom)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return 0;
    }
    need = b->len + extra;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void lpm_buf_adduint(lpm_buf_t *b, uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    lpm_buf_add(b, tmp + i, sizeof(tmp) - (size_t)i);
}

void lpm_buf_addint(lpm_buf_t *b, int64_t v)
{
    if (v < 0) {
        lpm_buf_addc(b, '-');
        lpm_buf_adduint(b, (uint64_t)0 - (uint64_t)v);
    } else {
        lpm_buf_adduint(b, (uint64_t)v);
    }
}

void lpm_buf_addcents(lpm_buf_t *b, int64_t hundredths)
{
    uint64_t v;
    char frac[3];
    if (hundredths < 0) {
        lpm_buf_addc(b, '-');
        v = (uint64_t)0 - (uint64_t)hundredths;
    } else {
        v = (uint64_t)hundredths;
    }
    lpm_buf_adduint(b, v / 100);
    frac[0] = '.';
    frac[1] = (char)('0' + (v % 100) / 10);
    frac[2] = (char)('0' + v % 10);
    lpm_buf_add(b, frac, 3);
}

static const char hexdig[] = "0123456789abcdef";

void lpm_hex64(char out[17], uint64_t v)
{
    int i;
    for (i = 15; i >= 0; i--) {
        out[i] = hexdig[v & 15];
        v >>= 4;
    }
    out[16] = '\0';
}

void lpm_buf_addhex(lpm_buf_t *b, const uint64_t *words, size_t nbytes)
{
    size_t i;
    if (!lpm_buf_reserve(b, nbytes * 2))
        return;
    for (i = 0; i < nbytes; i++) {
        unsigned byte = (unsigned)(words[i / 8] >> (56 - 8 * (i % 8))) & 0xffu;
        b->data[b->len++] = hexdig[byte >> 4];
        b->data[b->len++] = hexdig[byte & 15];
    }
}

/* ===== JSON AND CSV ===== */

/* Length of the valid UTF-8 sequence starting at s (at most n bytes), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len, i;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* 1 for bytes that leave the fast path: controls, quote, backslash, non-ASCII. */
static const unsigned char json_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

void lpm_json_str(lpm_buf_t *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run;
    /* worst case: every byte becomes \u00XX or U+FFFD escapes (6 bytes) */
    if (!lpm_buf_reserve(b, n + 2))
        return;
    b->data[b->len++] = '"';
    while (i < n) {
        run = i;
        while (run < n && !json_special[s[run]])
            run++;
        if (run > i) {
            lpm_buf_add(b, (const char *)s + i, run - i);
            i = run;
            if (i == n)
                break;
        }
        if (s[i] >= 0x80) {
            size_t len = utf8_seq(s + i, n - i);
            if (len) {
                lpm_buf_add(b, (const char *)s + i, len);
                i += len;
            } else {
                LPM_LIT(b, "\\ufffd");
                i++;
            }
            continue;
        }
        switch (s[i]) {
        case '"': LPM_LIT(b, "\\\""); break;
        case '\\': LPM_LIT(b, "\\\\"); break;
        case '\n': LPM_LIT(b, "\\n"); break;
        case '\r': LPM_LIT(b, "\\r"); break;
        case '\t': LPM_LIT(b, "\\t"); break;
        case '\b': LPM_LIT(b, "\\b"); break;
        case '\f': LPM_LIT(b, "\\f"); break;
        default: {
            char esc[6] = { '\\', 'u', '0', '0', hexdig[s[i] >> 4], hexdig[s[i] & 15] };
            lpm_buf_add(b, esc, 6);
        }
        }
        i++;
    }
    lpm_buf_addc(b, '"');
}

void lpm_json_strz(lpm_buf_t *b, const char *s)
{
    if (s)
        lpm_json_str(b, s, strlen(s));
    else
        LPM_LIT(b, "null");
}

void lpm_csv_field(lpm_buf_t *b, const char *s)
{
    const char *p;
    if (!s)
        return;
    for (p = s; *p; p++) {
        if (*p == ',' || *p == '"' || *p == '\r' || *p == '\n')
            break;
    }
    if (!*p) {
        lpm_buf_add(b, s, (size_t)(p - s));
        return;
    }
    lpm_buf_addc(b, '"');
    for (p = s; *p; p++) {
        if (*p == '"')
            lpm_buf_addc(b, '"');
        lpm_buf_addc(b, *p);
    }
    lpm_buf_addc(b, '"');
}

size_t lpm_utf8_len(const char *s, size_t n)
{
    size_t i, count = 0;
    for (i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            count++;
    }
    return count;
}

/* ===== HASHING ===== */

uint64_t lpm_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void lpm_uuid_from(char out[37], uint64_t a, uint64_t b)
{
    uint64_t w[2];
    lpm_buf_t tmp;
    char raw[33];
    w[0] = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
    w[1] = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    tmp.data = raw;
    tmp.len = 0;
    tmp.cap = sizeof(raw);
    tmp.oom = 0;
    lpm_buf_addhex(&tmp, w, 16);
    memcpy(out, raw, 8);
    out[8] = '-';
    memcpy(out + 9, raw + 8, 4);
    out[13] = '-';
    memcpy(out + 14, raw + 12, 4);
    out[18] = '-';
    memcpy(out + 19, raw + 16, 4);
    out[23] = '-';
    memcpy(out + 24, raw + 20, 12);
    out[36] = '\0';
}

int lpm_is_uuid(const char *s, size_t n)
{
    size_t i;
    if (n != 36)
        return 0;
    for (i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

/* ===== CLOCKS ===== */

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lpm_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t lpm_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

void lpm_sleep_ms(int64_t ms)
{
    struct timespec ts;
    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void two(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

static void four(char *p, int v)
{
    two(p, v / 100);
    two(p + 2, v % 100);
}

void lpm_iso_time(char out[25], int64_t wall_ms)
{
    struct tm tm;
    time_t t = (time_t)(wall_ms / 1000);
    int ms = (int)(wall_ms % 1000);
    gmtime_r(&t, &tm);
    four(out, tm.tm_year + 1900);
    out[4] = '-';
    two(out + 5, tm.tm_mon + 1);
    out[7] = '-';
    two(out + 8, tm.tm_mday);
    out[10] = 'T';
    two(out + 11, tm.tm_hour);
    out[13] = ':';
    two(out + 14, tm.tm_min);
    out[16] = ':';
    two(out + 17, tm.tm_sec);
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    two(out + 21, ms % 100);
    out[23] = 'Z';
    out[24] = '\0';
}

void lpm_iso_date(char out[11], int64_t wall_ms)
{
    char full[25];
    lpm_iso_time(full, wall_ms);
    memcpy(out, full, 10);
    out[10] = '\0';
}

void lpm_http_date(char out[30], int64_t wall_s)
{
    static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    time_t t = (time_t)wall_s;
    gmtime_r(&t, &tm);
    memcpy(out, days[tm.tm_wday], 3);
    out[3] = ',';
    out[4] = ' ';
    two(out + 5, tm.tm_mday);
    out[7] = ' ';
    memcpy(out + 8, months[tm.tm_mon], 3);
    out[11] = ' ';
    four(out + 12, tm.tm_year + 1900);
    out[16] = ' ';
    two(out + 17, tm.tm_hour);
    out[19] = ':';
    two(out + 20, tm.tm_min);
    out[22] = ':';
    two(out + 23, tm.tm_sec);
    memcpy(out + 25, " GMT", 4);
    out[29] = '\0';
}

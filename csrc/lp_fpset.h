/*
 * lp_fpset.h: core.fpset(n), the fingerprint table behind client:changes, and the
 * fingerprints it holds.
 *
 * A diff of two runs reads one run (A) into the table, streams the other (B) through it,
 * then reads A again for what B did not have (lua/leadpipe/changes.lua). The table holds,
 * for each person, 16 bytes: a 64-bit fingerprint of the person's id (its hashedEmail; the
 * whole row for a row without one) and a 56-bit fingerprint of the compared fields with 8
 * bits of flags, in one flat open-addressing array kept at most 7/8 full. Once a
 * person is known to have changed, the field fingerprint is no longer needed and its place
 * holds the offset of the person's old values in a byte arena (what changes.lua puts
 * there); only changed people cost more than their slot.
 *
 * The page decoder runs the table's passes inside core.decode_page: a core.where
 * predicate made with `fpset = fs` (lp_where.h) computes the fingerprints of each row on
 * the parsed document (lp_simdjson.cpp) and calls lp_fpset_visit, which decides whether
 * the row is built. Without the page decoder (the lua-cjson build) fs:visit does the same
 * from a decoded row. Both compute the same fingerprints from the primitives below; the
 * specs hold them to it.
 *
 * Fingerprint of a value as the decoded table holds it (JSON null is absent, the last of
 * a repeated key wins, nulls are not array elements):
 *   absent          mix(TAG_ABSENT)
 *   false, true     mix(TAG_BOOL + b)
 *   a number that is an integer in [-2^63, 2^63) (as Lua sees it: 84 and 84.0 alike)
 *                   mix(TAG_INT ^ mix(i)); any other number mix(TAG_FLOAT ^ mix(bits))
 *   a string        lp_fp_bytes(TAG_STRING, bytes)
 *   an array        mix over its elements in order, from TAG_ARRAY, then the count
 *   an object       the sum of lp_fp_member(key, value) over its members (in any order),
 *                   mixed with TAG_OBJECT and the count
 * Row id: lp_fp_bytes(TAG_ID, hashedEmail) when it is a string, else the row's value
 * fingerprint mixed with TAG_ROW. Fields: mix over the compared fields in order, each
 * field's value fingerprint with its position. 0 is never an id (it marks a free slot).
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_FPSET_H
#define LP_FPSET_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lp_compat.h"
#include "leadpipe.h"

#define LP_FPSET_MT "leadpipe.fpset"

/* ===== FINGERPRINTS ===== */

#define LP_FP_TAG_ABSENT 0x61627365ULL
#define LP_FP_TAG_BOOL 0x626f6f6cULL
#define LP_FP_TAG_INT 0x696e7400ULL
#define LP_FP_TAG_FLOAT 0x666c6f61ULL
#define LP_FP_TAG_STRING 0x73747269ULL
#define LP_FP_TAG_ARRAY 0x61727261ULL
#define LP_FP_TAG_OBJECT 0x6f626a65ULL
#define LP_FP_TAG_ID 0x69640000ULL
#define LP_FP_TAG_ROW 0x726f7700ULL
#define LP_FP_TAG_FIELDS 0x6669656cULL

/* splitmix64's finalizer: a bijection of 64-bit integers. */
static inline uint64_t lp_fp_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The bytes s[0..n), eight at a time, from the tag. */
static inline uint64_t lp_fp_bytes(uint64_t tag, const char *s, size_t n)
{
    uint64_t h = lp_fp_mix(tag ^ ((uint64_t)n << 32));
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = lp_fp_mix(h ^ w);
        s += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = lp_fp_mix(h ^ w ^ 0x80ULL << 56);
    }
    return h;
}

static inline uint64_t lp_fp_int(int64_t i)
{
    return lp_fp_mix(LP_FP_TAG_INT ^ lp_fp_mix((uint64_t)i));
}

/* A number as Lua holds it: an integer value in int64 range hashes as that integer. */
static inline uint64_t lp_fp_double(double d)
{
    uint64_t bits;
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(int64_t)d)
        return lp_fp_int((int64_t)d);
    memcpy(&bits, &d, sizeof bits);
    return lp_fp_mix(LP_FP_TAG_FLOAT ^ lp_fp_mix(bits));
}

static inline uint64_t lp_fp_bool(int b)
{
    return lp_fp_mix(LP_FP_TAG_BOOL + (b ? 1 : 0));
}

static inline uint64_t lp_fp_absent(void)
{
    return lp_fp_mix(LP_FP_TAG_ABSENT);
}

/* Array: h = lp_fp_array_start(); h = lp_fp_array_add(h, v) for each element in order;
 * lp_fp_array_end(h, count). */
static inline uint64_t lp_fp_array_start(void)
{
    return lp_fp_mix(LP_FP_TAG_ARRAY);
}
static inline uint64_t lp_fp_array_add(uint64_t h, uint64_t v)
{
    return lp_fp_mix(h ^ v);
}
static inline uint64_t lp_fp_array_end(uint64_t h, uint64_t count)
{
    return lp_fp_mix(h ^ lp_fp_mix(count));
}

/* Object: the sum of lp_fp_member over its members, then lp_fp_object_end(sum, count). */
static inline uint64_t lp_fp_member(const char *k, size_t kn, uint64_t v)
{
    return lp_fp_mix(lp_fp_bytes(LP_FP_TAG_STRING, k, kn) ^ (v << 1 | v >> 63));
}
static inline uint64_t lp_fp_object_end(uint64_t sum, uint64_t count)
{
    return lp_fp_mix(lp_fp_mix(LP_FP_TAG_OBJECT ^ sum) ^ count);
}

/* Row ids: never 0. */
static inline uint64_t lp_fp_nonzero(uint64_t h)
{
    return h ? h : 1;
}
static inline uint64_t lp_fp_id(const char *s, size_t n)
{
    return lp_fp_nonzero(lp_fp_bytes(LP_FP_TAG_ID, s, n));
}
static inline uint64_t lp_fp_row(uint64_t value)
{
    return lp_fp_nonzero(lp_fp_mix(LP_FP_TAG_ROW ^ value));
}

/* Fields: h = LP_FP_TAG_FIELDS; h = lp_fp_field(h, i, v) for i = 1..n. */
static inline uint64_t lp_fp_field(uint64_t h, size_t i, uint64_t v)
{
    return lp_fp_mix(h ^ lp_fp_mix(v + (uint64_t)i));
}

/* ===== THE TABLE ===== */

typedef struct lp_fpset lp_fpset_t;

/* What a pass does with a row (lp_fpset_visit). */
#define LP_FPS_INSERT 1 /* read A: remember the row; never built */
#define LP_FPS_PROBE 2  /* stream B: rows not in A, and rows whose fields changed */
#define LP_FPS_REST 3   /* read A again: rows B did not have, and the changed ones */

/* Flags of a person (fs:flags), the low 8 bits of a slot's second word. */
#define LP_FPS_IN_A 0x01    /* in A */
#define LP_FPS_WHERE_A 0x02 /* A's row passed the where */
#define LP_FPS_SEEN_B 0x04  /* in B too */
#define LP_FPS_CHANGED 0x08 /* in both, with other fields, and A's row passed the where */
#define LP_FPS_B_ONLY 0x10  /* in B only */
#define LP_FPS_OLD 0x20     /* old values stored (the rest of the word is their offset) */
#define LP_FPS_REST_SEEN 0x40 /* met again in the REST pass */

/* A pass's choice for one row. op: LP_FPS_*; only: keep rows found in only one run (B's
 * in PROBE, A's in REST); changed: keep the rows of changed people (PROBE marks them);
 * where_ok: whether the row passed the where; id and fields: its fingerprints. Returns
 * whether the row is kept (built). A row met twice in one pass, or a row of A that REST
 * does not know, is counted (fs:stats() dups, strays) and never kept; so is a row that
 * finds no memory to grow the table (lost). */
LP_PRIVATE int lp_fpset_visit(lp_fpset_t *fs, int op, int only, int changed, int where_ok,
                              uint64_t id, uint64_t fields);

/* The table at index i (raises unless it is an open leadpipe.fpset). */
LP_PRIVATE lp_fpset_t *lp_fpset_check(lua_State *L, int i);

/* Sets fpset into the table on top of the stack. */
LP_PRIVATE void lp_fpset_open(lua_State *L);

#endif

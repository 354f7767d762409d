/*
 * lp_where.h: core.where(spec), a where{} predicate compiled for the page
 * decoder (core.decode_page), and the plain C struct the decoder reads.
 *
 * The struct is filled once by lp_where_new and never changes; every pointer
 * in it points into Lua objects anchored by the userdata (its user value), so
 * it holds no malloc'd memory and needs no finaliser. With `fpset = fs` the
 * predicate is also a pass of client:changes over that table (lp_fpset.h):
 *
 *   core.where{ min_score = 80, ..., fpset = fs, fpset_op = "insert"|"probe"|"rest",
 *               fpset_only = bool, fpset_changed = bool,
 *               fpset_fields = { "intent.score", "jobTitle", ... } } The semantics of each
 * rule are those of lua/leadpipe/filter.lua (see the comments there and in
 * lp_simdjson.cpp, which evaluates it).
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_WHERE_H
#define LP_WHERE_H

#include <stddef.h>

#include "lp_compat.h"
#include "lp_fpset.h"
#include "leadpipe.h"

#define LP_WHERE_MT "leadpipe.where"

/* A Lua number as Lua holds it: an integer (5.3+) or a float. */
typedef struct {
    int isint;
    lua_Integer i;
    lua_Number d;
} lp_num_t;

typedef struct {
    const char *s;
    size_t len;
} lp_wstr_t;

/* One path segment: a string key, or a number (index > 0 when it is an
 * integral number usable as an array index) whose key is tostring(number). */
typedef struct {
    lp_wstr_t key;
    lua_Integer index;
    int is_number;
} lp_wseg_t;

typedef struct {
    lp_wseg_t *segs;
    size_t n;
} lp_wpath_t;

/* A rank table entry: name as given; kind LP_RANK_NUMBER with its number, or
 * LP_RANK_OTHER for a true value that is not a number (it shadows without
 * ranking, as in Lua `ranks[v] or ranks[lower(v)]`). */
#define LP_RANK_NUMBER 1
#define LP_RANK_OTHER 2
typedef struct {
    lp_wstr_t name;
    int kind;
    lp_num_t rank;
} lp_wrank_t;

/* Rules present (bits of lp_where_t.rules). */
#define LP_W_MIN_SCORE 0x01
#define LP_W_MAX_SCORE 0x02
#define LP_W_SENIORITY 0x04
#define LP_W_AT_LEAST 0x08
#define LP_W_DEPARTMENT 0x10
#define LP_W_COUNTRY 0x20
#define LP_W_HAS 0x40
#define LP_W_TOPIC 0x80

typedef struct {
    unsigned rules;
    lp_num_t min_score, max_score, min_rank;
    lp_wstr_t *seniority; /* lower-cased */
    size_t n_seniority;
    lp_wrank_t *ranks;
    size_t n_ranks;
    lp_wstr_t *department; /* lower-cased */
    size_t n_department;
    lp_wstr_t *country; /* lower-cased */
    size_t n_country;
    lp_wpath_t *has;
    size_t n_has;
    lp_num_t *topic_ids;
    size_t n_topic_ids;
    lp_wstr_t *topic_names; /* lower-cased */
    size_t n_topic_names;
    /* a pass of client:changes over the fingerprint table (lp_fpset.h), or NULL: the rules
     * above decide where_ok, and lp_fpset_visit whether the row is built */
    lp_fpset_t *fpset;
    int fpset_op, fpset_only, fpset_changed;
    lp_wpath_t *fpset_fields; /* the compared fields */
    size_t n_fpset_fields;
} lp_where_t;

/* The compiled predicate at index i, or NULL when it is nil or none; raises
 * (bad argument) for anything else. */
LP_PRIVATE const lp_where_t *lp_where_opt(lua_State *L, int i);

/* Sets where into the table on top of the stack. */
LP_PRIVATE void lp_where_open(lua_State *L);

#endif

/*
 * lp_simdjson.h: the C ABI of lp_simdjson.cpp, the one-pass decoder on
 * simdjson's DOM API (only built when simdjson is found: LP_HAVE_SIMDJSON).
 *
 * A parser (lp_sj_t) parses one text at a time and keeps the parsed document
 * until the next parse. The push functions build Lua values from it in one
 * pass, following the rules of lp_json.h, and may raise Lua errors (memory);
 * they hold no C++ object that needs destruction, so a longjmp through them
 * is safe. Nothing else here touches Lua or raises.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_SIMDJSON_H
#define LP_SIMDJSON_H

#include <stddef.h>
#include <stdint.h>

#include "lp_compat.h"
#include "lp_where.h"
#include "leadpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lp_sj lp_sj_t;

/* The id of a row of a page: a 64-bit hash of its hashedEmail, and its row
 * number on the page (1-based, counting every element of results). */
typedef struct {
    uint64_t hash;
    uint32_t row;
} lp_row_id_t;

/* The ids of the rows of a page that have a string hashedEmail, in row order;
 * the array belongs to the parser and is valid until its next push. */
typedef struct {
    lp_row_id_t *ids;
    size_t n;
} lp_sj_ids_t;

/* Bytes that must be readable (any value) after the text given to lp_sj_parse. */
LP_PRIVATE size_t lp_sj_padding(void);

/* A new parser (nesting limit LP_JSON_MAX_DEPTH), or NULL when out of memory. */
LP_PRIVATE lp_sj_t *lp_sj_new(void);

/* Frees a parser; NULL is fine. */
LP_PRIVATE void lp_sj_free(lp_sj_t *sj);

/* Gives back the memory the parser keeps for large documents (it keeps the
 * capacity of the largest text parsed so far). */
LP_PRIVATE void lp_sj_shrink(lp_sj_t *sj);

/* Parses text[0..len) (followed by lp_sj_padding() readable bytes). Returns
 * NULL, or simdjson's message (a static string) when the text is not JSON
 * that simdjson accepts. */
LP_PRIVATE const char *lp_sj_parse(lp_sj_t *sj, const char *text, size_t len);

/* Number of slots of a parser's string cache: a Lua table (created by the
 * caller with LP_SJ_CACHE_SLOTS array slots already set, kept alive as long as
 * the parser, and passed to every push) that holds the short strings (keys,
 * and values up to LP_SJ_CACHE_LEN bytes) met lately, so that the common ones
 * are pushed without hashing and interning them again. */
#define LP_SJ_CACHE_SLOTS 1024
#define LP_SJ_CACHE_LEN 24

/* Pushes the last parsed document as a Lua value (nil for JSON null). The
 * value at stack index array_mt (absolute) is set on every array; cache is
 * the absolute index of the parser's string cache. */
LP_PRIVATE void lp_sj_push(lua_State *L, lp_sj_t *sj, int array_mt, int cache);

/* Pushes the last parsed document like lp_sj_push, except that the rows of
 * data.results (when the document is an object whose data is an object
 * whose results is an array) are filtered by pred (NULL keeps all) and, when
 * raw is LP_PAGE_RAW, pushed as compact JSON strings; when raw is
 * LP_PAGE_COUNT, rows that are objects are only looked at and counted (none is
 * built; a row that is not an object is still built, for the page rules to
 * refuse). *nrows gets the rows on the
 * page (elements of results; a null one is built as false, so that the page
 * rules refuse it) and *nkept those kept; both are 0 when
 * there is no such array. With ids not NULL, it also gets the ids of every
 * row of the page, kept or not (lp_sj_ids_t). */
#define LP_PAGE_TABLES 0
#define LP_PAGE_RAW 1
#define LP_PAGE_COUNT 2

LP_PRIVATE void lp_sj_push_page(lua_State *L, lp_sj_t *sj, int array_mt, int cache,
                                const lp_where_t *pred, int raw, lua_Integer *nrows,
                                lua_Integer *nkept, lp_sj_ids_t *ids);

#ifdef __cplusplus
}
#endif

#endif

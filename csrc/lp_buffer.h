/*
 * lp_buffer.h: a growable byte buffer in C memory, for data that libcurl
 * hands over in its callbacks (where no Lua call may happen).
 *
 * Pure C, no Lua. Every function that allocates reports failure instead of
 * aborting; the owner frees the buffer with lp_buffer_free on every path.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#ifndef LP_BUFFER_H
#define LP_BUFFER_H

#include <stddef.h>

#include "leadpipe.h"

typedef struct lp_buffer_t {
    char *data;   /* NULL until the first append */
    size_t len;   /* bytes in use */
    size_t cap;   /* bytes allocated */
} lp_buffer_t;

/* Makes b an empty buffer that owns no memory. */
LP_PRIVATE void lp_buffer_init(lp_buffer_t *b);

/* Appends n bytes; returns 0, or -1 when out of memory (b is left unchanged). */
LP_PRIVATE int lp_buffer_append(lp_buffer_t *b, const char *p, size_t n);

/* Forgets the contents but keeps the memory for reuse. */
LP_PRIVATE void lp_buffer_reset(lp_buffer_t *b);

/* Makes room for at least n bytes in all (len included); 0, or -1 when out of
 * memory (b unchanged). */
LP_PRIVATE int lp_buffer_reserve(lp_buffer_t *b, size_t n);

/* Frees the memory; b is empty afterwards and may be used again. */
LP_PRIVATE void lp_buffer_free(lp_buffer_t *b);

#endif

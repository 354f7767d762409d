/*
 * lp_buffer.c: a growable byte buffer in C memory (see lp_buffer.h).
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <stdlib.h>
#include <string.h>

#include "lp_buffer.h"

#define LP_BUFFER_MIN 1024

void lp_buffer_init(lp_buffer_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int lp_buffer_append(lp_buffer_t *b, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > (size_t)-1 - b->len)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : LP_BUFFER_MIN;
        char *data;
        while (cap < b->len + n) {
            if (cap > (size_t)-1 / 2) {
                cap = b->len + n;
                break;
            }
            cap *= 2;
        }
        data = realloc(b->data, cap);
        if (data == NULL)
            return -1;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int lp_buffer_reserve(lp_buffer_t *b, size_t n)
{
    char *data;
    if (n <= b->cap)
        return 0;
    data = realloc(b->data, n);
    if (data == NULL)
        return -1;
    b->data = data;
    b->cap = n;
    return 0;
}

void lp_buffer_reset(lp_buffer_t *b)
{
    b->len = 0;
}

void lp_buffer_free(lp_buffer_t *b)
{
    free(b->data);
    lp_buffer_init(b);
}

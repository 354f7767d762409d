/*
 * headers_fuzz.c: libFuzzer harness for lp_headers_parse (csrc/lp_request.c), the
 * parser of a response's raw header block (untrusted bytes from the network).
 *
 * The parser writes into its buffer (it lower-cases names), so each input is copied into
 * a buffer of exactly its size: ASan then catches a read or write one byte past it. The
 * callback checks that every name and value it gets lies inside that buffer.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lp_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const char *start, *end;
    size_t seen;
} span_t;

static void check(void *ud, const char *name, size_t name_len, const char *value,
                  size_t value_len, const char *sep)
{
    span_t *s = (span_t *)ud;
    size_t i;
    if (name < s->start || name + name_len > s->end || name_len == 0)
        abort();
    if (value < s->start || value + value_len > s->end)
        abort();
    if (sep == NULL || (strcmp(sep, ", ") != 0 && strcmp(sep, " ") != 0))
        abort();
    for (i = 0; i < name_len; i++) {
        if (name[i] >= 'A' && name[i] <= 'Z')
            abort(); /* names come lower-cased */
    }
    s->seen += name_len + value_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = (char *)malloc(size > 0 ? size : 1);
    span_t s;
    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    s.start = copy;
    s.end = copy + size;
    s.seen = 0;
    lp_headers_parse(copy, size, check, &s);
    free(copy);
    return 0;
}

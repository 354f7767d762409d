/*
 * inflate_fuzz.c: libFuzzer harness for core.inflate (gzip/deflate bodies from the
 * network, for the cosocket wire). fuzz/run.sh builds it only when
 * csrc/lp_inflate.c is on the branch.
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include "lua_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ref = LUA_NOREF;
    if (ref == LUA_NOREF && (ref = lp_fuzz_core("inflate")) == LUA_NOREF)
        abort();
    lp_fuzz_call(ref, data, size);
    return 0;
}

/*
 * decode_fuzz.c: libFuzzer harness for core.decode, the page decoder (untrusted bytes
 * from the network: every results body goes through it).
 *
 * Copyright (c) leadpipe authors. MIT license (see LICENSE).
 */
#include "lua_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ref = LUA_NOREF;
    if (ref == LUA_NOREF && (ref = lp_fuzz_core("decode")) == LUA_NOREF)
        abort();
    lp_fuzz_call(ref, data, size);
    return 0;
}

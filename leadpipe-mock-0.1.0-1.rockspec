-- The fake Leadpipe API (libmicrohttpd, loopback only) for tests of your own scripts:
-- require "leadpipe.mock". Needs the leadpipe rock.
--   luarocks --lua-version=5.4 make --deps-mode=none leadpipe-mock-0.1.0-1.rockspec
rockspec_format = "3.0"
package = "leadpipe-mock"
version = "0.1.0-1"
source = {
    url = "git+https://github.com/leadpipe-lua/leadpipe.git",
    tag = "v0.1.0",
}
description = {
    summary = "A fake Leadpipe Intent Audiences API server for tests (libmicrohttpd)",
    detailed = [[
        A real HTTP server on 127.0.0.1 inside your test process: the documented endpoints,
        deterministic people, the run lifecycle, idempotency, auth, gzip, latency and
        fault injection (429 with Retry-After, 5xx, dropped and truncated bodies).
    ]],
    license = "MIT",
    homepage = "https://github.com/leadpipe-lua/leadpipe",
}
dependencies = {
    "lua >= 5.1",
    "leadpipe = 0.1.0",
}
build = {
    type = "make",
    build_target = "rock-mock",
    build_variables = {
        LUA = "$(LUA)",
        LUA_INCDIR = "$(LUA_INCDIR)",
        CFLAGS = "$(CFLAGS)",
    },
    install_target = "rock-mock-install",
    install_variables = {
        LUA = "$(LUA)",
        INST_LIBDIR = "$(LIBDIR)",
        INST_LUADIR = "$(LUADIR)",
    },
}

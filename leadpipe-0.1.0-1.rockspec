-- The library, its C core (libcurl; simdjson when installed, lua-cjson otherwise) and the
-- `leadpipe` command. The fake API server is its own rock: leadpipe-mock.
-- On Debian, where lua-cjson and lua-argparse come from apt and are unknown to LuaRocks:
--   luarocks --lua-version=5.4 make --deps-mode=none leadpipe-0.1.0-1.rockspec   (5.1 for LuaJIT)
rockspec_format = "3.0"
package = "leadpipe"
version = "0.1.0-1"
source = {
    url = "git+https://github.com/leadpipe-lua/leadpipe.git",
    tag = "v0.1.0",
}
description = {
    summary = "Client for the Leadpipe Intent Audiences API, with a libcurl C core",
    detailed = [[
        Queue runs for saved audiences, wait for them, and read their hydrated people rows
        page by page as plain Lua tables, with filters by intent score, seniority and more.
        Works in plain Lua, OpenResty (cosockets) and Neovim (event-driven).
    ]],
    license = "MIT",
    homepage = "https://github.com/leadpipe-lua/leadpipe",
}
dependencies = {
    "lua >= 5.1",
    "lua-cjson >= 2.1.0",
    "argparse >= 0.7.0",
}
build = {
    -- The Makefile finds libcurl, zlib and simdjson with pkg-config (multiarch include
    -- directories included) and compiles the C++ decoder; see its "LuaRocks" section.
    type = "make",
    build_target = "rock",
    build_variables = {
        LUA = "$(LUA)",
        LUA_INCDIR = "$(LUA_INCDIR)",
        CFLAGS = "$(CFLAGS)",
    },
    install_target = "rock-install",
    install_variables = {
        LUA = "$(LUA)",
        INST_LIBDIR = "$(LIBDIR)",
        INST_LUADIR = "$(LUADIR)",
    },
    install = {
        bin = { leadpipe = "bin/leadpipe" },
    },
}
test = {
    type = "busted",
}

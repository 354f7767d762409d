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
        Works in plain Lua, OpenResty and Neovim; includes a fake API server for tests.
    ]],
    license = "MIT",
    homepage = "https://github.com/leadpipe-lua/leadpipe",
}
dependencies = {
    "lua >= 5.1",
    "lua-cjson >= 2.1.0",
}
external_dependencies = {
    CURL = { header = "curl/curl.h" },
    MICROHTTPD = { header = "microhttpd.h" },
    ZLIB = { header = "zlib.h" },
}
build = {
    type = "builtin",
    modules = {
        ["leadpipe"] = "lua/leadpipe/init.lua",
        ["leadpipe.client"] = "lua/leadpipe/client.lua",
        ["leadpipe.http"] = "lua/leadpipe/http.lua",
        ["leadpipe.errors"] = "lua/leadpipe/errors.lua",
        ["leadpipe.hosts"] = "lua/leadpipe/hosts.lua",
        ["leadpipe.filter"] = "lua/leadpipe/filter.lua",
        ["leadpipe.json"] = "lua/leadpipe/json.lua",
        ["leadpipe.cli"] = "lua/leadpipe/cli.lua",
        ["leadpipe.mock"] = "lua/leadpipe/mock.lua",
        ["leadpipe.format"] = "lua/leadpipe/format.lua",
        ["leadpipe.predicate"] = "lua/leadpipe/predicate.lua",
        ["leadpipe.core"] = {
            sources = {
                "csrc/leadpipe.c",
                "csrc/lp_buffer.c",
                "csrc/lp_jscan.c",
                "csrc/lp_json.c",
                "csrc/lp_request.c",
                "csrc/lp_session.c",
                "csrc/lp_util.c",
                "csrc/lp_where.c",
            },
            -- The rock builds the lua-cjson decoder; `make` adds csrc/lp_simdjson.cpp
            -- (C++17, libsimdjson) when simdjson is installed.
            libraries = { "curl" },
            incdirs = { "csrc", "$(CURL_INCDIR)" },
            libdirs = { "$(CURL_LIBDIR)" },
        },
        ["leadpipe.mockserver"] = {
            sources = {
                "csrc/mock/mock_buf.c",
                "csrc/mock/mock_json.c",
                "csrc/mock/mock_lua.c",
                "csrc/mock/mock_people.c",
                "csrc/mock/mock_server.c",
            },
            libraries = { "microhttpd", "z", "pthread" },
            incdirs = { "csrc", "csrc/mock", "$(MICROHTTPD_INCDIR)", "$(ZLIB_INCDIR)" },
            libdirs = { "$(MICROHTTPD_LIBDIR)", "$(ZLIB_LIBDIR)" },
        },
    },
    install = {
        bin = { ["leadpipe"] = "bin/leadpipe" },
    },
}
test = {
    type = "busted",
}

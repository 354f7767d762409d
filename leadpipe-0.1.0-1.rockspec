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
    "argparse >= 0.7.0",
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
        ["leadpipe.args"] = "lua/leadpipe/args.lua",
        ["leadpipe.audiences"] = "lua/leadpipe/audiences.lua",
        ["leadpipe.exports"] = "lua/leadpipe/exports.lua",
        ["leadpipe.http"] = "lua/leadpipe/http.lua",
        ["leadpipe.transport.curl"] = "lua/leadpipe/transport/curl.lua",
        ["leadpipe.transport.cosocket"] = "lua/leadpipe/transport/cosocket.lua",
        ["leadpipe.transport.http1"] = "lua/leadpipe/transport/http1.lua",
        ["leadpipe.errors"] = "lua/leadpipe/errors.lua",
        ["leadpipe.scrub"] = "lua/leadpipe/scrub.lua",
        ["leadpipe.page"] = "lua/leadpipe/page.lua",
        ["leadpipe.hosts"] = "lua/leadpipe/hosts.lua",
        ["leadpipe.filter"] = "lua/leadpipe/filter.lua",
        ["leadpipe.iter"] = "lua/leadpipe/iter.lua",
        ["leadpipe.path"] = "lua/leadpipe/path.lua",
        ["leadpipe.json"] = "lua/leadpipe/json.lua",
        ["leadpipe.cli"] = "lua/leadpipe/cli/init.lua",
        ["leadpipe.cli.parser"] = "lua/leadpipe/cli/parser.lua",
        ["leadpipe.cli.commands"] = "lua/leadpipe/cli/commands.lua",
        ["leadpipe.cli.progress"] = "lua/leadpipe/cli/progress.lua",
        ["leadpipe.mock"] = "lua/leadpipe/mock.lua",
        ["leadpipe.format"] = "lua/leadpipe/format.lua",
        ["leadpipe.predicate"] = "lua/leadpipe/predicate.lua",
        ["leadpipe.core"] = {
            sources = {
                "csrc/leadpipe.c",
                "csrc/lp_buffer.c",
                "csrc/lp_inflate.c",
                "csrc/lp_jscan.c",
                "csrc/lp_json.c",
                "csrc/lp_request.c",
                "csrc/lp_session.c",
                "csrc/lp_util.c",
                "csrc/lp_where.c",
            },
            -- The rock builds the lua-cjson decoder; `make` adds csrc/lp_simdjson.cpp
            -- (C++17, libsimdjson) when simdjson is installed.
            libraries = { "curl", "z" },
            incdirs = { "csrc", "$(CURL_INCDIR)", "$(ZLIB_INCDIR)" },
            libdirs = { "$(CURL_LIBDIR)", "$(ZLIB_LIBDIR)" },
        },
        ["leadpipe.mockserver"] = {
            sources = {
                "csrc/mock/mock_buf.c",
                "csrc/mock/mock_exports.c",
                "csrc/mock/mock_faults.c",
                "csrc/mock/mock_json.c",
                "csrc/mock/mock_lua.c",
                "csrc/mock/mock_people.c",
                "csrc/mock/mock_reply.c",
                "csrc/mock/mock_results.c",
                "csrc/mock/mock_runs.c",
                "csrc/mock/mock_server.c",
                "csrc/lp_util.c", -- leadpipe.core's option helpers, shared
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

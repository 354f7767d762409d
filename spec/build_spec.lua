-- The Makefile's choices that a newcomer's first hour depends on, read from `make -s env`
-- and from dry runs (`make -n`), so nothing is compiled: the build directory does not depend
-- on whether simdjson was found (tools/first-run.sh, run by CI, plays the whole first
-- `make demo` on a fresh clone), -Werror stays out of the rock builds made on users'
-- machines, and busted is found on PATH.

local h = require "spec.support.cli_helpers"

-- make ARGS in this checkout, without what the make running this suite passes down.
local function make(args)
    return h.sh("env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS -u SIMDJSON -u BUILD make --no-print-directory "
        .. args)
end

local function cpath_of(args)
    local out, err, status = make("-s env LUA_VERSION=5.4 " .. args)
    assert.are.equal(0, status, err)
    return assert(out:match('LUA_CPATH="[^"]*/(build/[^/"]+)/%?%.so;;"'), out)
end

describe("the build directory", function()
    it("is build/<version> whether simdjson is found or not", function()
        assert.are.equal("build/5.4", cpath_of(""))
        local absent = "SIMDJSON_PC=leadpipe-no-such-package SIMDJSON_H=/nonexistent"
        assert.are.equal("build/5.4", cpath_of(absent))
        assert.are.equal("build/5.4", cpath_of("SIMDJSON_PC=simdjson SIMDJSON_H=/usr/include/simdjson.h"))
    end)

    it("is build/<version>-cjson when SIMDJSON=0 is asked for on the command line or in the environment",
        function()
            assert.are.equal("build/5.4-cjson", cpath_of("SIMDJSON=0"))
            local out = h.sh("env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS -u LUA_VERSION -u BUILD SIMDJSON=0 "
                .. "make "
                .. "--no-print-directory -s env LUA_VERSION=5.4")
            assert.is_truthy(out:find("/build/5.4-cjson/?.so", 1, true), out)
        end)

    it("records the decoder, so that a change rebuilds every object", function()
        local out, err, status = make("-n build LUA_VERSION=5.4 BUILD=build/spec-dry-run "
            .. "SIMDJSON_PC=leadpipe-no-such-package SIMDJSON_H=/nonexistent")
        assert.are.equal(0, status, err)
        assert.is_truthy(out:find("build/spec-dry-run/obj/config", 1, true), out)
        assert.is_nil(out:find("LP_HAVE_SIMDJSON", 1, true), out)
        assert.is_nil(io.open("build/spec-dry-run/obj/config"), "a dry run wrote the record")
    end)
end)

describe("warnings", function()
    it("fail the checkout's builds and not the rock builds", function()
        local out, err, status = make("-n build LUA_VERSION=5.4 BUILD=build/spec-dry-run")
        assert.are.equal(0, status, err)
        assert.is_truthy(out:find("-Wall -Wextra -Werror", 1, true), out)
        out, err, status = make("-n rock LUA=lua5.4 LUA_INCDIR=/usr/include/lua5.4 "
            .. "ROCK_BUILD=build/spec-dry-run-rock")
        assert.are.equal(0, status, err)
        assert.is_truthy(out:find("-Wall -Wextra", 1, true), out)
        assert.is_nil(out:find("-Werror", 1, true), out)
    end)
end)

describe("make spec", function()
    it("runs the busted it finds on PATH", function()
        local dir = os.tmpname()
        os.remove(dir)
        finally(function() os.execute("rm -rf " .. h.shell_quote(dir)) end)
        assert.is_true(os.execute("mkdir " .. h.shell_quote(dir)) ~= false)
        local f = assert(io.open(dir .. "/busted", "w"))
        f:write("-- a busted elsewhere\n")
        f:close()
        os.execute("chmod +x " .. h.shell_quote(dir .. "/busted"))
        local out, err, status = h.sh(("env -u MAKEFLAGS -u MAKELEVEL PATH=%s:\"$PATH\" make "
            .. "--no-print-directory -n spec"):format(h.shell_quote(dir)))
        assert.are.equal(0, status, err)
        assert.is_truthy(out:find(dir .. "/busted --cpath=", 1, true), out)
    end)
end)

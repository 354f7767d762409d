-- `make install PREFIX=...` gives a `leadpipe` command that runs from a clean environment
-- with only that prefix known, for the Lua the suite runs on (LuaJIT: the 5.1 layout).

local h = require "spec.support.cli_helpers"
local mock = require "leadpipe.mock"

local BUILD = os.getenv("LEADPIPE_BUILD") or "build/5.4"
local VERSION = BUILD:match("^build/([%d.]+)$") or BUILD:match("^build/(jit)$")
local ABI = VERSION == "jit" and "5.1" or VERSION

if not VERSION then
    describe("make install", function()
        pending("checked with the regular builds, not " .. BUILD)
    end)
    return
end

describe("make install", function()
    local prefix

    setup(function()
        prefix = os.tmpname()
        os.remove(prefix)
        local _, err, status = h.sh(("make --no-print-directory install PREFIX=%s LUA_VERSION=%s"):format(
            h.shell_quote(prefix), VERSION))
        assert.are.equal(0, status, err)
    end)

    teardown(function()
        if prefix then os.execute("rm -rf " .. h.shell_quote(prefix)) end
    end)

    it("puts the modules in the directories this Lua searches", function()
        assert.is_truthy(io.open(prefix .. "/lib/lua/" .. ABI .. "/leadpipe/core.so"))
        assert.is_truthy(io.open(prefix .. "/share/lua/" .. ABI .. "/leadpipe/init.lua"))
        assert.is_truthy(io.open(prefix .. "/share/lua/" .. ABI .. "/leadpipe/wire/curl.lua"))
    end)

    it("installs a command whose shebang names the Lua it was built for", function()
        local first = h.read_file(prefix .. "/bin/leadpipe"):match("^[^\n]*")
        assert.are.equal("#!/usr/bin/env " .. (VERSION == "jit" and "luajit" or "lua" .. VERSION), first)
    end)

    it("runs from a clean environment and fetches from the fake API", function()
        local srv = assert(mock.start{ seed = 3 })
        finally(function() srv:stop() end)
        local cmd = ("cd / && env -i PATH=/usr/bin:/bin LEADPIPE_API_KEY=%s LEADPIPE_BASE_URL=%s "
            .. "%s/bin/leadpipe"):format(srv.api_key, srv.url, h.shell_quote(prefix))
        local out, err, status = h.sh(cmd .. " --help")
        assert.are.equal(0, status, err)
        assert.matches("Usage: leadpipe", out)
        out, err, status = h.sh(cmd .. " run " .. srv.audience)
        assert.are.equal(0, status, err)
        local run_id = out:match("^(%S+)\n$")
        assert.is_truthy(run_id, out)
        out, err, status = h.sh(cmd .. " results " .. srv.audience .. " " .. run_id .. " --max 5")
        assert.are.equal(0, status, err)
        local n = 0
        for _ in out:gmatch("[^\n]+") do n = n + 1 end
        assert.are.equal(5, n)
    end)
end)

describe("make uninstall", function()
    it("removes what make install put there and the folders it leaves empty, and nothing else", function()
        local prefix = os.tmpname()
        os.remove(prefix)
        finally(function() os.execute("rm -rf " .. h.shell_quote(prefix)) end)
        local make = ("env -u MAKEFLAGS -u MAKELEVEL make --no-print-directory %%s PREFIX=%s LUA_VERSION=%s")
            :format(h.shell_quote(prefix), VERSION)
        local _, err, status = h.sh(make:format("install"))
        assert.are.equal(0, status, err)
        -- something of the user's own under the prefix stays, with its folders
        local mine = prefix .. "/share/lua/" .. ABI .. "/mine"
        assert.is_true(os.execute("mkdir -p " .. h.shell_quote(mine)) ~= false)
        _, err, status = h.sh(make:format("uninstall"))
        assert.are.equal(0, status, err)
        local left = h.sh("cd " .. h.shell_quote(prefix) .. " && find . | sort")
        local lua_dir = "./share/lua/" .. ABI
        assert.are.equal(".\n./share\n./share/lua\n" .. lua_dir .. "\n" .. lua_dir .. "/mine\n", left)
        os.execute("rm -rf " .. h.shell_quote(prefix .. "/share"))
        _, err, status = h.sh(make:format("install"))
        assert.are.equal(0, status, err)
        _, err, status = h.sh(make:format("uninstall"))
        assert.are.equal(0, status, err)
        assert.are.equal(".\n", h.sh("cd " .. h.shell_quote(prefix) .. " && find ."))
    end)
end)

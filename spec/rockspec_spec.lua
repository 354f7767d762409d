-- The rockspecs: versions from lua/leadpipe/version.lua (the one place it is written),
-- `luarocks lint` clean, and each rock builds offline with `luarocks make` into a temporary
-- tree and is used from a fresh interpreter. make test runs the build part once, in the Lua
-- 5.4 suite (it compiles the core again).

local h = require "spec.support.cli_helpers"

local VERSION = dofile("lua/leadpipe/version.lua")
local ROCKS = { "leadpipe-" .. VERSION .. "-1.rockspec", "leadpipe-mock-" .. VERSION .. "-1.rockspec" }

local function load_rockspec(path)
    local env = {}
    local chunk = assert((loadstring or load)(h.read_file(path), path, "t", env))
    if setfenv then setfenv(chunk, env) end
    chunk()
    return env
end

local function have(cmd)
    local _, _, status = h.sh("command -v " .. cmd .. " >/dev/null 2>&1")
    return status == 0
end

describe("the rockspecs", function()
    it("are named and versioned after lua/leadpipe/version.lua, and are the only ones", function()
        local out = h.sh("ls *.rockspec")
        local names = {}
        for name in out:gmatch("%S+") do names[#names + 1] = name end
        table.sort(names)
        assert.are.same({ ROCKS[1], ROCKS[2] }, names)
        for _, path in ipairs(ROCKS) do
            local spec = load_rockspec(path)
            assert.are.equal(VERSION .. "-1", spec.version, path)
            assert.are.equal("v" .. VERSION, spec.source.tag, path)
            assert.are.equal("3.0", spec.rockspec_format, path)
            assert.are.equal("make", spec.build.type, path)
        end
    end)

    it("keep the fake API out of the library's rock", function()
        local lib, mock = load_rockspec(ROCKS[1]), load_rockspec(ROCKS[2])
        assert.are.equal("rock", lib.build.build_target)
        assert.are.equal("rock-mock", mock.build.build_target)
        assert.are.equal("bin/leadpipe", lib.build.install.bin.leadpipe)
        assert.truthy(table.concat(mock.dependencies, " "):find("leadpipe = " .. VERSION, 1, true))
        assert.truthy(table.concat(lib.dependencies, " "):find("lua-cjson", 1, true))
    end)

    it("pass luarocks lint", function()
        if not have("luarocks") then return pending("luarocks is not installed") end
        for _, path in ipairs(ROCKS) do
            local out, err, status = h.sh("luarocks lint " .. path)
            assert.are.equal(0, status, out .. err)
        end
    end)

    local build = os.getenv("LEADPIPE_BUILD") or "build/5.4"
    local only = os.getenv("LEADPIPE_HOST_SPECS")
    local skip = not have("luarocks") and "luarocks is not installed"
        or (only and only ~= "" and build ~= "build/5.4" and "runs once, in the 5.4 suite of make test")
        or (build ~= "build/5.4" and build ~= "build/5.1" and build ~= "build/5.2"
            and build ~= "build/5.3" and "luarocks builds for PUC Lua")
    it("build offline with luarocks make and work from a fresh interpreter", function()
        if skip then return pending(skip) end
        local v = build:match("build/(.*)$")
        local tree = os.tmpname()
        os.remove(tree)
        finally(function() os.execute("rm -rf " .. h.shell_quote(tree)) end)
        local rocks = ("luarocks --lua-version=%s --tree=%s "):format(v, h.shell_quote(tree))
        for _, path in ipairs(ROCKS) do
            local out, err, status = h.sh(rocks .. "make --deps-mode=none " .. path)
            assert.are.equal(0, status, out .. err)
        end
        assert.is_truthy(io.open(tree .. "/lib/lua/" .. v .. "/leadpipe/core.so"))
        assert.is_truthy(io.open(tree .. "/lib/lua/" .. v .. "/leadpipe/mockserver.so"))
        local script = [[
local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local srv = assert(mock.start{})
local c = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
local run = assert(c:create_run(mock.AUDIENCE.small))
local n = 0
for _ in c:people(mock.AUDIENCE.small, run.id, { limit = 500 }) do n = n + 1 end
print(leadpipe._VERSION, n)
srv:stop()
]]
        local file = os.tmpname()
        local f = assert(io.open(file, "wb"))
        f:write(script)
        f:close()
        finally(function() os.remove(file) end)
        local env = ("cd / && env -i PATH=/usr/bin:/bin sh -c %s"):format(h.shell_quote(
            "eval \"$(" .. rocks .. "path)\" && lua" .. v .. " " .. file
            .. " && " .. tree .. "/bin/leadpipe --version"))
        local out, err, status = h.sh(env)
        assert.are.equal(0, status, out .. err)
        assert.truthy(out:find("leadpipe " .. VERSION .. "\t1000", 1, true), out)
        assert.truthy(out:find(VERSION, 1, true), out)
    end)
end)

-- Every ```lua block of README.md runs, as written, against the fake API: the docs cannot
-- drift from the code. A block runs in its own interpreter (the suite's Lua) from the
-- repository root with LEADPIPE_API_KEY and LEADPIPE_BASE_URL pointing at a fake that serves
-- the audience ids the README uses. A block preceded by the line `<!-- not run: REASON -->`
-- is skipped (it needs nginx or Neovim; those have specs of their own), and so are blocks
-- fenced as anything but lua.

local h = require "spec.support.cli_helpers"
local mock = require "leadpipe.mock"

local BUILD = os.getenv("LEADPIPE_BUILD") or "build/5.4"

local function blocks(text)
    local out, n = {}, 0
    local skip, line_no, current, start = nil, 0, nil, nil
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        line_no = line_no + 1
        if current then
            if line:match("^```%s*$") then
                n = n + 1
                out[n] = { code = table.concat(current, "\n") .. "\n", line = start, skip = skip }
                current, skip = nil, nil
            else
                current[#current + 1] = line
            end
        elseif line:match("^```lua%s*$") then
            current, start = {}, line_no
        else
            local reason = line:match("^<!%-%- not run: (.-) %-%->$")
            if reason then skip = reason elseif line:match("%S") then skip = nil end
        end
    end
    return out
end

describe("README.md", function()
    local srv
    local all = blocks(h.read_file("README.md"))

    setup(function()
        srv = assert(mock.start{ seed = 1 })
    end)

    teardown(function()
        srv:stop()
    end)

    it("has Lua examples to run", function()
        assert.is_true(#all >= 5, "only " .. #all .. " lua blocks")
    end)

    it("skips only blocks that need nginx or Neovim", function()
        for _, b in ipairs(all) do
            if b.skip then
                assert.is_truthy(b.skip:find("nginx") or b.skip:find("Neovim"),
                    ("README line %d is skipped for: %s"):format(b.line, b.skip))
            end
        end
    end)

    for _, b in ipairs(all) do
        local name = ("runs the block at line %d"):format(b.line)
        if b.skip then
            pending(name .. " (" .. b.skip .. ")")
        else
            it(name, function()
                local file = os.tmpname()
                local f = assert(io.open(file, "wb"))
                f:write(b.code)
                f:close()
                finally(function() os.remove(file) end)
                -- a block that hangs fails after 120 s instead of stopping the suite
                local cmd = ("timeout 120 env LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' "
                    .. "LUA_CPATH='./%s/?.so;;' LEADPIPE_API_KEY=%s LEADPIPE_BASE_URL=%s %s %s"):format(
                    BUILD, srv.api_key, srv.url, h.lua, h.shell_quote(file))
                local out, err, status = h.sh(cmd)
                assert.are.equal(0, status, ("README line %d failed:\n%s\n%s"):format(b.line, out, err))
            end)
        end
    end
end)

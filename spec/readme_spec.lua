-- Every ```lua block of README.md runs, as written, against the fake API: the docs cannot
-- drift from the code. A block runs in its own interpreter (the suite's Lua) from the
-- repository root with LEADPIPE_API_KEY and LEADPIPE_BASE_URL pointing at a fake that serves
-- the audience ids the README uses. A block preceded by the line `<!-- not run: REASON -->`
-- is skipped (it needs nginx or Neovim; those have specs of their own), and so are blocks
-- fenced as anything but lua.
--
-- The shell walkthrough of the command line tool, the ```sh blocks preceded by the line
-- `<!-- runs in spec/readme_spec.lua: the shell walkthrough -->`, runs too: the blocks in
-- order, as one `sh -e` script, in a temporary directory, with a `leadpipe` on PATH that is
-- this checkout's bin/leadpipe on the suite's Lua, and the `leadpipe mock` servers it starts
-- itself. The one change made to them: the ports 8080 and 8081 become free ones.

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

-- The ```sh blocks marked as the shell walkthrough, in order, and every ```sh block.
local WALK_MARK = "<!-- runs in spec/readme_spec.lua: the shell walkthrough -->"
local function shell_blocks(text)
    local walk, all, current, marked, prev = {}, {}, nil, false, nil
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        if current then
            if line:match("^```%s*$") then
                local code = table.concat(current, "\n") .. "\n"
                all[#all + 1] = code
                if marked then walk[#walk + 1] = code end
                current = nil
            else
                current[#current + 1] = line
            end
        elseif line:match("^```sh%s*$") then
            current, marked = {}, prev == WALK_MARK
        elseif line:match("%S") then
            prev = line
        end
    end
    return walk, all
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

describe("README.md's shell walkthrough", function()
    local walk, all_sh = shell_blocks(h.read_file("README.md"))

    it("is there, starting a fake API and cancelling a queued run", function()
        assert.are.equal(2, #walk)
        assert.is_truthy(walk[1]:find("leadpipe mock --port 8080 &", 1, true))
        assert.is_truthy(walk[2]:find("leadpipe cancel ", 1, true))
    end)

    it("names the Lua in every luarocks line", function()
        local n = 0
        for _, code in ipairs(all_sh) do
            for line in code:gmatch("[^\n]+") do
                if line:match("^luarocks ") then
                    n = n + 1
                    assert.is_truthy(line:find("^luarocks %-%-lua%-version=%d%.%d "), line)
                end
            end
        end
        assert.is_true(n >= 2)
    end)

    it("runs as written against leadpipe mock", function()
        local dir = os.tmpname()
        os.remove(dir)
        finally(function() os.execute("rm -rf " .. h.shell_quote(dir)) end)
        assert.is_true(os.execute("mkdir -p " .. h.shell_quote(dir .. "/bin")) ~= false)
        local root = h.sh("pwd"):match("[^\n]+")
        local wrapper = assert(io.open(dir .. "/bin/leadpipe", "w"))
        wrapper:write("#!/bin/sh\nexec ", h.lua, " ", h.shell_quote(root .. "/bin/leadpipe"), ' "$@"\n')
        wrapper:close()
        os.execute("chmod +x " .. h.shell_quote(dir .. "/bin/leadpipe"))
        -- two free ports: held by two fakes at once, then let go
        local a, b = assert(mock.start{}), assert(mock.start{})
        local ports = { ["8080"] = tostring(a.port), ["8081"] = tostring(b.port) }
        a:stop()
        b:stop()
        local script = table.concat(walk, "\n"):gsub("808[01]", ports)
        local f = assert(io.open(dir .. "/walk.sh", "w"))
        -- a fake left running by a failed line is stopped with the script
        f:write("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n", script)
        f:close()
        local out, err, status = h.sh(("cd %s && env -u LEADPIPE_API_KEY -u LEADPIPE_BASE_URL "
            .. "-u LEADPIPE_PROGRESS -u AUDIENCE PATH=%s:\"$PATH\" timeout 120 sh -e walk.sh")
            :format(h.shell_quote(dir), h.shell_quote(dir .. "/bin")))
        assert.are.equal(0, status, ("the walkthrough failed:\n%s\n%s"):format(out, err))
        -- the banner printed the export lines the README has (ports aside)
        for line in script:gmatch("[^\n]+") do
            local pasted = line:match("^export .*LEADPIPE_API_KEY") or line:match("^export AUDIENCE=")
            if pasted then
                assert.is_truthy(out:find("\n" .. line .. "\n", 1, true), "the banner lacks: " .. line .. "\n"
                    .. out)
            end
        end
        -- what each command left
        local csv = h.read_file(dir .. "/leads.csv")
        assert.are.equal("fullName,jobTitle,company.name,intent.score", csv:match("^([^\r\n]*)"))
        assert.is_true(#h.lines(csv) > 1, csv)
        assert.is_truthy(h.read_file(dir .. "/leads-all.csv"):find("^hashedEmail,"), "no export")
        assert.is_truthy(out:find('\n{"run":{', 1, true), out)
        assert.is_truthy(out:find("\n%x+%-[%x-]+ cancelled\n"), out)
        assert.is_truthy(out:find("Usage: leadpipe results ", 1, true), out)
        -- `leadpipe changes` says on stderr which runs it compared and what it found
        assert.is_truthy(err:find("leadpipe: comparing run ", 1, true), err)
        local rest = err:gsub("leadpipe: comparing run [^\n]*\n", ""):gsub("leadpipe: %d+ added[^\n]*\n", "")
        assert.is_nil(rest:find("leadpipe: ", 1, true), err)
    end)
end)

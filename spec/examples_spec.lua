-- Runs every plain-Lua example against the fake API and checks what it prints, so that none
-- of them rots. The OpenResty and Neovim examples need their hosts (another issue's tests):
-- here they are only compiled.

local mock = require "leadpipe.mock"
local leadpipe = require "leadpipe"
local json = require "leadpipe.json"
local h = require "spec.support.cli_helpers"

local BUILD = os.getenv("LEADPIPE_BUILD") or "build/5.4"
local ENV = ("env -u LEADPIPE_API_KEY -u LEADPIPE_BASE_URL -u LEADPIPE_AUDIENCE_ID "
    .. "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./%s/?.so;;' "):format(BUILD)

local function example(path, ...)
    local words = { ENV .. h.lua, path }
    for _, a in ipairs({ ... }) do words[#words + 1] = h.shell_quote(a) end
    return h.sh(table.concat(words, " "))
end

local DIRECTOR_UP = { director = true, vp = true, c_suite = true, owner = true, partner = true, cxo = true }
local MANAGER_UP = { manager = true, director = true, vp = true, c_suite = true, owner = true, partner = true,
    cxo = true }

-- The rows of a JSONL file, decoded line by line.
local function read_jsonl(path)
    local rows = {}
    for line in io.lines(path) do
        if line:find("%S") then rows[#rows + 1] = assert(json.decode(line)) end
    end
    return rows
end

-- Stable sort by score, best first (what top() promises), without leadpipe.filter.
local function best(rows, n)
    local indexed = {}
    for i, r in ipairs(rows) do indexed[i] = { r = r, i = i } end
    table.sort(indexed, function(a, b)
        local sa, sb = a.r.intent and a.r.intent.score or -1, b.r.intent and b.r.intent.score or -1
        if sa ~= sb then return sa > sb end
        return a.i < b.i
    end)
    local out = {}
    for i = 1, math.min(n, #indexed) do out[i] = indexed[i].r end
    return out
end

-- What filter_jsonl keeps, computed here.
local function jsonl_kept(rows, min_score)
    local kept = {}
    for _, r in ipairs(rows) do
        local s = r.intent and r.intent.score
        if s and s >= min_score and type(r.businessEmail) == "string" and r.businessEmail:find("%S")
            and MANAGER_UP[r.seniority or ""] then
            kept[#kept + 1] = r
        end
    end
    return kept
end

local function check_filter_jsonl(out, rows, min_score)
    local lines = h.lines(out)
    local read, kept = lines[1]:match("^read (%d+) rows from .-, kept (%d+) %(intent >= ")
    local expect = jsonl_kept(rows, min_score)
    assert.are.equal(#rows, tonumber(read))
    assert.are.equal(#expect, tonumber(kept))
    assert.is_true(#expect > 0, "the sample should keep someone")
    -- the country table adds up to the kept rows
    local sum, i = 0, 4
    while lines[i] and lines[i] ~= "" do
        sum = sum + tonumber(lines[i]:match("(%d+)$"))
        i = i + 1
    end
    assert.are.equal(#expect, sum)
    -- then the 5 best, in order
    local top = best(expect, 5)
    assert.are.equal(#top, #lines - i - 2)
    for k, r in ipairs(top) do
        local line = lines[i + 2 + k]
        if r.fullName then assert.are.equal(1, line:find(r.fullName, 1, true)) end
        assert.is_truthy(line:find(tostring(r.intent.score) .. "$"), line)
    end
end

describe("examples", function()
    -- Checks the quickstart's table and summary; returns the summary numbers and the lines.
    local function check_quickstart(out)
        local lines = h.lines(out)
        assert.are.equal(13, #lines, out)
        assert.is_truthy(lines[1]:find("^name%s+title%s+seniority%s+company%s+country%s+score$"))
        assert.is_truthy(lines[2]:find("^%-+  %-+"))
        local read, pages, kept = lines[13]:match("^read (%d+) rows in (%d+) pages, kept (%d+) "
            .. "%(intent >= 80, director or above%), showing top 10, [%d.]+ s$")
        assert.is_truthy(read, lines[13])
        local last = math.huge
        for i = 3, 12 do
            local score = tonumber(lines[i]:match("(%d+)$"))
            assert.is_true(score >= 80 and score <= last, lines[i])
            last = score
        end
        return tonumber(read), tonumber(pages), tonumber(kept), lines
    end

    it("quickstart.lua starts the fake API when there is no key and prints the top 10", function()
        local out, err, status = example("examples/quickstart.lua")
        assert.are.equal(0, status, err)
        assert.is_truthy(err:find("LEADPIPE_API_KEY is not set: using the fake Leadpipe API", 1, true), err)
        assert.is_truthy(err:find(" is queued...", 1, true), err)
        local read, pages, kept = check_quickstart(out)
        assert.are.equal(20000, read)
        assert.are.equal(40, pages)
        assert.is_true(kept >= 10 and kept < read)
    end)

    it("quickstart.lua uses the API given by LEADPIPE_API_KEY and keeps the right people", function()
        local srv = assert(mock.start{ seed = 5, audiences = { { id = mock.AUDIENCE.small, rows = 1500 } } })
        finally(function() srv:stop() end)
        local out, err, status = h.sh(("%s LEADPIPE_API_KEY=%s LEADPIPE_BASE_URL=%s "
            .. "LEADPIPE_AUDIENCE_ID=%s %s examples/quickstart.lua"):format(ENV, srv.api_key, srv.url,
            mock.AUDIENCE.small, h.lua))
        assert.are.equal(0, status, err)
        assert.is_nil(err:find("fake", 1, true))
        local read, pages, kept, lines = check_quickstart(out)

        -- read the same run here and work out what the quickstart should have kept
        local run_id = err:match("queued run (%S+)")
        local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
        local rows = {}
        for r in client:people(mock.AUDIENCE.small, run_id, { limit = 500 }) do rows[#rows + 1] = r end
        client:close()
        local expect = {}
        for _, r in ipairs(rows) do
            if r.intent and r.intent.score >= 80 and DIRECTOR_UP[r.seniority or ""] then
                expect[#expect + 1] = r
            end
        end
        assert.are.equal(1500, #rows)
        assert.are.equal(#rows, read)
        assert.are.equal(3, pages)
        assert.are.equal(#expect, kept)
        for i, r in ipairs(best(expect, 10)) do
            local line = lines[i + 2]
            if r.fullName then assert.are.equal(1, line:find(r.fullName, 1, true), line) end
            assert.is_truthy(line:find("%s" .. r.intent.score .. "$"), line)
        end
    end)

    it("new_directors.lua prints who is new, heated up and gone since the last daily run", function()
        local srv = assert(mock.start{ seed = 3 })
        finally(function() srv:stop() end)
        local out, err, status = h.sh(("%s LEADPIPE_API_KEY=%s LEADPIPE_BASE_URL=%s "
            .. "LEADPIPE_AUDIENCE_ID=%s %s examples/new_directors.lua 75"):format(ENV, srv.api_key, srv.url,
            mock.AUDIENCE.daily, h.lua))
        assert.are.equal(0, status, err)
        -- the same diff here, from the two runs read whole
        local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
        local runs = assert(client:latest_runs(mock.AUDIENCE.daily, 2))
        local function read(id)
            local t = {}
            for r in client:people(mock.AUDIENCE.daily, id, { limit = 500 }) do t[r.hashedEmail] = r end
            return t
        end
        local old, new = read(runs[2].id), read(runs[1].id)
        client:close()
        local ranks = leadpipe.filter.ranks
        local function up(r)
            return r.intent.score >= 75 and (ranks[r.seniority or ""] or 0) >= ranks.director
        end
        local added, heated, gone = 0, 0, 0
        for id, r in pairs(new) do
            if up(r) and not old[id] then added = added + 1 end
            if up(r) and old[id] and old[id].intent.score < 75 then heated = heated + 1 end
        end
        for id, r in pairs(old) do
            if up(r) and not new[id] then gone = gone + 1 end
        end
        assert.is_true(added > 0 and heated > 0 and gone > 0)
        assert.is_truthy(out:find(added .. " new directors and above with intent >= 75", 1, true), out)
        assert.is_truthy(out:find(heated .. " heated up past 75:", 1, true), out)
        assert.is_truthy(out:find(gone .. " dropped out of the audience.", 1, true), out)
        assert.is_truthy(err:find("comparing run " .. runs[2].id .. " ", 1, true), err)
    end)

    it("quickstart.lua needs LEADPIPE_AUDIENCE_ID with a key", function()
        local _, err, status = h.sh(ENV .. "LEADPIPE_API_KEY=sk_x " .. h.lua .. " examples/quickstart.lua")
        assert.are.equal(2, status)
        assert.are.equal("quickstart: LEADPIPE_API_KEY is set: set LEADPIPE_AUDIENCE_ID to the saved "
            .. "audience to run\n", err)
    end)

    it("filter_jsonl.lua filters the shipped sample", function()
        local out, err, status = example("examples/filter_jsonl.lua")
        assert.are.equal(0, status, err)
        assert.are.equal("", err)
        check_filter_jsonl(out, read_jsonl("examples/data/people.jsonl"), 70)
    end)

    it("filter_jsonl.lua filters a file just saved by the command line tool", function()
        local srv = assert(mock.start{ seed = 11 })
        finally(function() srv:stop() end)
        local vars = { LEADPIPE_API_KEY = srv.api_key, LEADPIPE_BASE_URL = srv.url }
        local id, err, status = h.run({ "run", srv.audience, "--wait" }, vars)
        assert.are.equal(0, status, err)
        local file = os.tmpname()
        finally(function() os.remove(file) end)
        local _, err2, status2 = h.sh(("env LEADPIPE_API_KEY=%s LEADPIPE_BASE_URL=%s %s bin/leadpipe "
            .. "results %s %s --max 250 > %s"):format(srv.api_key, srv.url, h.lua, srv.audience,
            id:match("%S+"), file))
        assert.are.equal(0, status2, err2)
        local out, err3, status3 = example("examples/filter_jsonl.lua", file, "50")
        assert.are.equal(0, status3, err3)
        check_filter_jsonl(out, read_jsonl(file), 50)
    end)

    it("filter_jsonl.lua fails cleanly on a missing file and a bad score", function()
        local _, err, status = example("examples/filter_jsonl.lua", "no/such/file.jsonl")
        assert.are.equal(1, status)
        assert.is_truthy(err:find("^filter_jsonl: no/such/file.jsonl"))
        local _, err2, status2 = example("examples/filter_jsonl.lua", "examples/data/people.jsonl", "high")
        assert.are.equal(2, status2)
        assert.are.equal("filter_jsonl: MIN_SCORE must be a number\n", err2)
    end)

    it("export_audience.lua writes the export to a temporary file unless told where", function()
        local dir = os.tmpname()
        os.remove(dir)
        finally(function() os.execute("rm -rf " .. h.shell_quote(dir)) end)
        assert.is_true(os.execute("mkdir " .. h.shell_quote(dir)) ~= false)
        local root = h.sh("pwd"):match("[^\n]+")
        local env = ENV:gsub("%./", root .. "/")
        -- run from an empty directory: it must stay empty
        local out, err, status = h.sh(("cd %s && %s%s %s small"):format(h.shell_quote(dir), env, h.lua,
            h.shell_quote(root .. "/examples/export_audience.lua")))
        assert.are.equal(0, status, err)
        assert.are.equal("", (h.sh("ls -A " .. h.shell_quote(dir))))
        local file = err:match("wrote (%S+): %d+ bytes")
        assert.is_truthy(file, err)
        finally(function() os.remove(file) end)
        assert.are.equal(1001, #h.lines(h.read_file(file)))
        assert.is_truthy(out:find("^http://127%.0%.0%.1:%d+/"), out)
        -- with FILE it writes there
        local named = dir .. "/small.csv"
        out, err, status = h.sh(("%s%s examples/export_audience.lua small %s"):format(ENV, h.lua,
            h.shell_quote(named)))
        assert.are.equal(0, status, err)
        assert.are.equal(1001, #h.lines(h.read_file(named)))
        assert.is_truthy(out:find("^http://"), out)
    end)

    it("errors_and_retries.lua shows retries and each kind of error", function()
        local out, err, status = example("examples/errors_and_retries.lua")
        assert.are.equal(0, status, err)
        local rows, distinct, faults, retries = out:match(
            "retries: read (%d+) rows %((%d+) distinct%) of run %S+; (%d+) faults injected, (%d+) retries")
        assert.is_truthy(rows, out)
        assert.are.equal(1000, tonumber(rows))
        assert.are.equal(1000, tonumber(distinct))
        assert.is_true(tonumber(faults) > 0)
        assert.are.equal(tonumber(faults), tonumber(retries))
        local _, logged = err:gsub("retry %d+ of GET ", "")
        assert.are.equal(tonumber(retries), logged)
        for _, expect in ipairs({
            "wrong API key:         kind=auth status=401 retryable=false",
            "unknown audience:      kind=not_found status=404",
            "bad argument:          kind=invalid_argument status=nil",
            "no retries left:       kind=http status=503 retryable=true",
            "failed run:            kind=run_failed status=409",
            "errorCode=HYDRATION_FAILED",
            "iterator raised:       kind=run_failed",
        }) do
            assert.is_truthy(out:find(expect, 1, true), "missing: " .. expect .. "\n" .. out)
        end
        assert.is_nil((out .. err):find("sk_live_not_the_right_key", 1, true))
    end)

    it("the OpenResty and Neovim examples compile", function()
        for _, path in ipairs({ "examples/openresty/leads.lua", "examples/neovim/leadpipe_demo.lua" }) do
            assert(loadfile(path))
        end
        local conf = h.read_file("examples/openresty/nginx.conf")
        assert.is_truthy(conf:find('require("leads").handle()', 1, true))
        assert.is_truthy(conf:find("listen 127.0.0.1:", 1, true))
    end)
end)

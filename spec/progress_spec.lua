-- The CLI's progress line (leadpipe.cli.progress): rows read against the run's total, with
-- the rows a filter kept beside them, and a last frame that is always drawn. Driven with a
-- fake clock, then through `leadpipe results` in the tool and in a pseudo-terminal.

local cli = require "leadpipe.cli"
local mock = require "leadpipe.mock"
local leadpipe = require "leadpipe"
local h = require "spec.support.cli_helpers"

local progress = require "leadpipe.cli.progress"

-- A page as people() hands it to on_page: `rows` read, `kept` of them in results.
local function page(rows, kept, total)
    local results = {}
    for i = 1, kept or rows do results[i] = i end
    return { rows = rows, kept = kept, results = results, total = total }
end

-- The frames drawn so far ("\r\27[K" starts each), in order.
local function frames(text)
    local out = {}
    for frame in text:gmatch("\r\27%[K([^\r\n]*)") do out[#out + 1] = frame end
    return out
end

describe("the progress line", function()
    it("draws rows/total, pages, rows/s and ETA in place, at most 10 times a second", function()
        local t = 0
        local out = h.buffer()
        local p = progress.new(out, function() return t end)
        t = 1
        local fake = { results = {}, total = 400 }
        for i = 1, 100 do fake.results[i] = i end
        p:page(fake)
        assert.are.equal("\r\27[K[######------------------] 100/400 rows  1 pages  100 rows/s  ETA 3s",
            out.text())
        t = 1.05
        p:page(fake) -- too soon: not drawn
        assert.are.equal(1, select(2, out.text():gsub("\r", "")))
        t = 2
        p:page(fake)
        assert.is_truthy(out.text():find("300/400 rows  3 pages  150 rows/s  ETA 1s", 1, true))
        p:page(fake, true)
        assert.is_truthy(out.text():find("%] 400/400 rows  4 pages  200 rows/s$"))
        p:finish()
        assert.are.equal("\n", out.text():sub(-1))
    end)

    it("shows the wait, and counts rows/s from when the run was last seen pending", function()
        local t = 0
        local out = h.buffer()
        local p = progress.new(out, function() return t end)
        t = 2
        p:waiting("abc", "running")
        assert.are.equal("\r\27[Krun abc: running, waiting 2s", out.text())
        t = 4
        p:page({ results = { 1, 2, 3, 4 }, total = 4 }, true)
        assert.is_truthy(out.text():find("4/4 rows  1 pages  2 rows/s$"))
    end)

    it("says nothing when nothing was drawn", function()
        local out = h.buffer()
        progress.new(out, function() return 0 end):finish()
        assert.are.equal("", out.text())
    end)

    it("counts the rows read against the total, with the rows a filter kept beside them", function()
        local t = 0
        local out = h.buffer()
        local p = progress.new(out, function() return t end)
        t = 1
        p:page(page(500, 20, 2000))
        assert.are.equal("[######------------------] 500/2000 rows, 20 kept  1 pages  500 rows/s  ETA 3s",
            frames(out.text())[1])
        t = 2
        p:page(page(500, 0, 2000))
        assert.are.equal("1000/2000 rows, 20 kept  2 pages  500 rows/s  ETA 2s",
            frames(out.text())[2]:match("%] (.*)$"))
    end)

    it("draws the last page's frame at once, however soon it comes", function()
        local t = 1
        local out = h.buffer()
        local p = progress.new(out, function() return t end)
        p:page(page(500, 3, 1000))
        t = 1.01
        p:page(page(500, 4, 1000))
        local all = frames(out.text())
        assert.are.equal(2, #all)
        assert.are.equal("[########################] 1000/1000 rows, 7 kept  2 pages  - rows/s", all[2])
        p:finish()
        assert.are.equal(2, #frames(out.text()))
        assert.are.equal("\n", out.text():sub(-1))
    end)

    it("draws on finish a frame that came too soon to be drawn", function()
        local t = 1
        local out = h.buffer()
        local p = progress.new(out, function() return t end)
        p:page(page(100, 100)) -- total unknown: not the last page as far as it knows
        t = 1.01
        p:waiting("abc", "running")
        assert.are.equal(1, #frames(out.text()))
        p:finish()
        local all = frames(out.text())
        assert.are.equal(2, #all)
        assert.are.equal("run abc: running, waiting 0s", all[2])
        assert.are.equal("\n", out.text():sub(-1))
    end)

    it("leaves nothing to draw after clear", function()
        local t = 1
        local out = h.buffer()
        local p = progress.new(out, function() return t end)
        p:page(page(100, 1, 1000))
        t = 1.01
        p:page(page(100, 1, 1000))
        p:clear()
        p:finish()
        assert.are.equal("\r\27[K", out.text():sub(-4))
        assert.are.equal(1, #frames(out.text():sub(1, -5)))
    end)
end)

describe("leadpipe results with a filter", function()
    local ROWS = 1000
    local srv, run_id, vars, kept

    setup(function()
        srv = assert(mock.start{ seed = 5, audiences = { { id = mock.AUDIENCE.small, rows = ROWS } } })
        vars = { LEADPIPE_API_KEY = srv.api_key, LEADPIPE_BASE_URL = srv.url }
        local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
        run_id = leadpipe.assert(client:create_run(mock.AUDIENCE.small)).id
        leadpipe.assert(client:wait_run(mock.AUDIENCE.small, run_id))
        kept = 0
        for p in client:people(mock.AUDIENCE.small, run_id, { limit = 500 }) do
            if p.intent and p.intent.score >= 80 then kept = kept + 1 end
        end
        client:close()
        assert.is_true(kept > 0 and kept < ROWS / 2, "the filter should keep a few: " .. kept)
    end)

    teardown(function()
        srv:stop()
    end)

    it("ends on a frame of every row read and the kept ones, however fast the pages came", function()
        local out, err = h.buffer(), h.buffer()
        local t = 0
        -- a clock that barely moves: every frame after the first is too soon to draw
        local args = { "results", mock.AUDIENCE.small, run_id, "--min-score", "80", "--limit", "100" }
        local status = cli.main(args,
            { stdout = out, stderr = err, getenv = h.getenv(vars), isatty = true,
              now = function() t = t + 0.0001 return t end })
        assert.are.equal(0, status, err.text())
        assert.are.equal(kept, #h.lines(out.text()))
        local all = frames(err.text())
        local last = all[#all]
        assert.are.equal(("%d/%d rows, %d kept  10 pages"):format(ROWS, ROWS, kept),
            last:match("%] (.-)  %S+ rows/s$"), last)
        assert.is_nil(last:find("ETA", 1, true), last)
        assert.are.equal("\n", err.text():sub(-1))
    end)

    it("draws in a pseudo-terminal, counting rows read and kept, and leaves the last frame", function()
        local file = os.tmpname()
        finally(function() os.remove(file) end)
        local cmd = ("env LEADPIPE_API_KEY=%s LEADPIPE_BASE_URL=%s %s bin/leadpipe results %s %s "
            .. "--min-score 80 --limit 50 > %s"):format(srv.api_key, srv.url, h.lua, mock.AUDIENCE.small,
            run_id, file)
        local transcript, status = h.in_terminal(cmd)
        if not transcript then return pending("script(1) is not installed") end
        assert.are.equal(0, status, transcript)
        assert.are.equal(kept, #h.lines(h.read_file(file)))
        local all = frames(transcript)
        assert.is_true(#all >= 1, transcript)
        local prev_read, prev_kept = 0, 0
        for _, frame in ipairs(all) do
            local read, total, k = frame:match("%] (%d+)/(%d+) rows, (%d+) kept ")
            assert.is_truthy(read, frame)
            read, k = tonumber(read), tonumber(k)
            assert.are.equal(ROWS, tonumber(total))
            assert.is_true(read >= prev_read and k >= prev_kept and k <= read, frame)
            prev_read, prev_kept = read, k
        end
        local last = all[#all]
        assert.is_truthy(last:find(("[########################] %d/%d rows, %d kept  20 pages"):format(ROWS,
            ROWS, kept), 1, true), last)
        assert.is_nil(last:find("ETA", 1, true), last)
    end)
end)

-- The Lua client (leadpipe.new, runs, results, wait_run, pages, people) against the fake API.

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local core = require "leadpipe.core"
local hosts = require "leadpipe.hosts"

local AUD_NONE = "00000000-0000-4000-8000-000000000000"
local RUN_NONE = "00000000-0000-4000-8000-0000000000ff"

-- A host that waits like the blocking one but only records backoff sleeps, so retry specs
-- run at full speed and can assert what was asked of the host.
local function recording_host()
    local h = { name = "recording", sleeps = {} }
    h.now = core.now
    h.wait_io = hosts.blocking.wait_io
    h.sleep = function(s) h.sleeps[#h.sleeps + 1] = s end
    return h
end

local function audience(srv, pred)
    for _, a in ipairs(srv.audiences) do
        if pred(a) then return a.id end
    end
    error("the fake serves no such audience")
end

local function requests(srv, endpoint)
    local n = 0
    for _, c in pairs(srv:stats().requests[endpoint] or {}) do n = n + c end
    return n
end

-- Fails if a decoded value holds cjson.null (a NULL lightuserdata) anywhere.
local function assert_null_free(v, path)
    assert(type(v) ~= "userdata", "null at " .. path)
    if type(v) == "table" then
        for k, x in pairs(v) do assert_null_free(x, path .. "." .. tostring(k)) end
    end
end

describe("leadpipe client", function()
    local srv, client, AUD20K, AUD1K, AUD0, AUDFAIL

    setup(function()
        srv = mock.start{ seed = 11 }
        AUD20K = audience(srv, function(a) return a.rows == 20000 end)
        AUD1K = audience(srv, function(a) return a.rows == 1000 and not a.fail end)
        AUD0 = audience(srv, function(a) return a.rows == 0 end)
        AUDFAIL = audience(srv, function(a) return a.fail end)
    end)

    teardown(function()
        srv:stop()
    end)

    before_each(function()
        srv:configure{ faults = false, latency_ms = 0, queued_ms = 0, running_ms = 0 }
        client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, poll_interval = 0.01,
                               max_poll_interval = 0.05 }
    end)

    after_each(function()
        client:close()
        client = nil
        collectgarbage()
    end)

    local function completed_run(aud)
        local run = assert(client:create_run(aud))
        assert(client:wait_run(aud, run.id, { timeout = 10 }))
        return run
    end

    describe("leadpipe.new()", function()
        it("rejects an unknown option and suggests the near one", function()
            local ok, err = pcall(leadpipe.new, { api_key = "sk_x", timout = 5 })
            assert.is_false(ok)
            assert.is_true(leadpipe.is_error(err))
            assert.are.equal("invalid_argument", err.kind)
            assert.matches("unknown option 'timout'", err.message, 1, true)
            assert.matches("did you mean 'timeout'", err.message, 1, true)
        end)

        it("checks types and ranges of options", function()
            local bad = {
                { timeout = -1 }, { timeout = "5" }, { max_retries = 11 }, { max_retries = 1.5 },
                { base_url = "ftp://x" }, { host = "apache" }, { verify = "yes" }, { logger = 1 },
                { connect_timeout = 0 }, { user_agent = 5 },
            }
            for _, o in ipairs(bad) do
                o.api_key = "sk_test"
                local ok, err = pcall(leadpipe.new, o)
                assert.is_false(ok)
                assert.are.equal("invalid_argument", err.kind)
            end
        end)

        it("requires an API key", function()
            local ok, err = pcall(leadpipe.new, { api_key = "" })
            assert.is_false(ok)
            assert.matches("api_key", err.message)
        end)

        it("never shows the key in tostring", function()
            local c = leadpipe.new{ api_key = "sk_live_supersecret", base_url = srv.url }
            assert.is_nil(tostring(c):find("supersecret", 1, true))
            for _, v in pairs(c) do
                if type(v) == "string" then assert.is_nil(v:find("supersecret", 1, true)) end
            end
            c:close()
        end)
    end)

    describe("create_run()", function()
        it("queues a run with a generated idempotency key", function()
            local run, err = client:create_run(AUD1K)
            assert.is_nil(err)
            assert.are.equal(AUD1K, run.audienceId)
            assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", run.id)
            assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", run.idempotencyKey)
        end)

        it("returns the same run when the same key is replayed", function()
            local a = assert(client:create_run(AUD1K, { idempotency_key = "spec-replay-1" }))
            local b = assert(client:create_run(AUD1K, { idempotency_key = "spec-replay-1" }))
            local c = assert(client:create_run(AUD1K, { idempotency_key = "spec-replay-2" }))
            assert.are.equal(a.id, b.id)
            assert.are_not.equal(a.id, c.id)
        end)

        it("rejects bad arguments before any request", function()
            local before = requests(srv, "create_run")
            local cases = {
                { "not-a-uuid" }, { 42 }, { AUD1K, { idempotency_key = ("k"):rep(121) } },
                { AUD1K, { idempotency_key = "" } }, { AUD1K, { idempotency_key = "a\nb" } },
                { AUD1K, { idem = "x" } },
            }
            for _, c in ipairs(cases) do
                local run, err = client:create_run(c[1], c[2])
                assert.is_nil(run)
                assert.are.equal("invalid_argument", err.kind)
            end
            assert.are.equal(before, requests(srv, "create_run"))
        end)

        it("retries with the same key and makes exactly one run", function()
            local h = recording_host()
            local c = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, host = h }
            for _, kind in ipairs({ "500", "503", "drop", "truncate", "429" }) do
                srv:configure{ faults = { every = 1, kinds = { kind }, retry_after = 0 } }
                local before = srv:stats().runs_created
                local run, err = c:create_run(AUD1K)
                assert.is_nil(err)
                assert.is_string(run.id)
                assert.are.equal(before + 1, srv:stats().runs_created)
            end
            assert.is_true(#h.sleeps >= 5)
            c:close()
        end)
    end)

    describe("results()", function()
        it("answers 202 as a pending page, then 200 as a completed page", function()
            srv:configure{ queued_ms = 150, running_ms = 150 }
            local run = assert(client:create_run(AUD1K))
            local page = assert(client:results(AUD1K, run.id))
            assert.are.equal("queued", page.state)
            assert.are.equal(0, #page.results)
            local states = {}
            assert(client:wait_run(AUD1K, run.id, { on_poll = function(p) states[p.state] = true end }))
            assert.is_true(states.running or states.queued)
            page = assert(client:results(AUD1K, run.id, { limit = 10, offset = 5 }))
            assert.are.equal("completed", page.state)
            assert.are.equal(10, #page.results)
            assert.are.equal(1000, page.total)
            assert.are.equal(5, page.offset)
        end)

        it("validates limit and offset before any request", function()
            local run = completed_run(AUD1K)
            local before = requests(srv, "results")
            for _, o in ipairs({ { limit = 0 }, { limit = 501 }, { limit = 1.5 }, { limit = "10" },
                                  { offset = -1 }, { offset = 0.5 }, { page = 1 } }) do
                local page, err = client:results(AUD1K, run.id, o)
                assert.is_nil(page)
                assert.are.equal("invalid_argument", err.kind)
            end
            local _, err = client:results(AUD1K, "nope")
            assert.matches("run_id must be a UUID", err.message, 1, true)
            assert.are.equal(before, requests(srv, "results"))
        end)

        it("gives a 1-row page and a short last page", function()
            local run = completed_run(AUD1K)
            local one = assert(client:results(AUD1K, run.id, { limit = 1, offset = 999 }))
            assert.are.equal(1, #one.results)
            local last = assert(client:results(AUD1K, run.id, { limit = 500, offset = 900 }))
            assert.are.equal(100, #last.results)
            local past = assert(client:results(AUD1K, run.id, { limit = 500, offset = 5000 }))
            assert.are.equal(0, #past.results)
        end)

        it("leaves JSON nulls out of rows at every depth", function()
            local run = completed_run(AUD1K)
            local page = assert(client:results(AUD1K, run.id, { limit = 500 }))
            local absent = 0
            for _, row in ipairs(page.results) do
                assert_null_free(row, "row")
                if row.phone == nil then absent = absent + 1 end
                if row.intent and row.intent.score then
                    assert.is_true(row.intent.score == math.floor(row.intent.score))
                end
            end
            assert.is_true(absent > 0, "some rows have no phone")
        end)

        it("reports a failed run as run_failed with the run's error code", function()
            local run = assert(client:create_run(AUDFAIL))
            local page, err
            for _ = 1, 200 do
                page, err = client:results(AUDFAIL, run.id)
                if not page then break end
                core.sleep(0.01)
            end
            assert.is_nil(page)
            assert.are.equal("run_failed", err.kind)
            assert.are.equal(409, err.status)
            assert.is_string(err.run.errorCode)
            assert.is_false(err.retryable)
            local _, werr = client:wait_run(AUDFAIL, run.id)
            assert.are.equal("run_failed", werr.kind)
        end)

        it("reports a cancelled run as run_cancelled", function()
            srv:configure{ queued_ms = 5000 }
            local run = assert(client:create_run(AUD1K))
            local cancelled = assert(client:cancel_run(AUD1K, run.id))
            assert.are.equal("cancelled", cancelled.status)
            local _, err = client:results(AUD1K, run.id)
            assert.are.equal("run_cancelled", err.kind)
            local _, werr = client:wait_run(AUD1K, run.id)
            assert.are.equal("run_cancelled", werr.kind)
            local _, cerr = client:cancel_run(AUD1K, run.id)
            assert.are.equal(409, cerr.status)
        end)
    end)

    describe("wait_run()", function()
        it("returns the completed run", function()
            srv:configure{ queued_ms = 50, running_ms = 50 }
            local run = assert(client:create_run(AUD1K))
            local done = assert(client:wait_run(AUD1K, run.id))
            assert.are.equal("completed", done.status)
            assert.are.equal(1000, done.resultCount)
        end)

        it("gives up with a timeout error", function()
            srv:configure{ queued_ms = 60000 }
            local run = assert(client:create_run(AUD1K))
            local done, err = client:wait_run(AUD1K, run.id, { timeout = 0.1, interval = 0.02 })
            assert.is_nil(done)
            assert.are.equal("timeout", err.kind)
            assert.matches("queued", err.message)
        end)
    end)

    describe("pages() and people()", function()
        it("read 20,000 rows exactly once, with and without prefetch", function()
            local run = completed_run(AUD20K)
            for _, prefetch in ipairs({ 0, 1, 3, 16, false }) do
                if prefetch == false then prefetch = nil end -- the default
                local seen, count, pages = {}, 0, 0
                for page in client:pages(AUD20K, run.id, { limit = 500, prefetch = prefetch }) do
                    pages = pages + 1
                    for _, row in ipairs(page.results) do
                        assert.is_nil(seen[row.hashedEmail])
                        seen[row.hashedEmail] = true
                        count = count + 1
                    end
                end
                assert.are.equal(20000, count)
                assert.are.equal(40, pages)
            end
            local seen, count = {}, 0
            for row in client:people(AUD20K, run.id, { limit = 500 }) do
                assert.is_nil(seen[row.hashedEmail])
                seen[row.hashedEmail] = true
                count = count + 1
            end
            assert.are.equal(20000, count)
        end)

        it("keep several pages on the wire while the reader waits, and hand them out in order", function()
            -- small pages (cheap to decode) behind 50 ms of latency: a round trip is worth many
            -- pages of the reader's time, so the window opens wide; under valgrind decoding may
            -- take longer, and then only the bounds are checked (the window follows the reader)
            local run = completed_run(AUD1K)
            srv:configure{ latency_ms = 50 }
            local function max_in_flight(prefetch, work, limit)
                limit = limit or 40
                local most = 0
                local h = { name = "counting", now = core.now, sleep = hosts.blocking.sleep }
                h.wait_io = function(session, secs)
                    local n = tonumber(tostring(session):match("(%d+) in flight")) or 0
                    if n > most then most = n end
                    return hosts.blocking.wait_io(session, secs)
                end
                local c = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, host = h }
                local offsets = {}
                for page in c:pages(AUD1K, run.id, { limit = limit, prefetch = prefetch }) do
                    offsets[#offsets + 1] = page.offset
                    if work then hosts.blocking.sleep(work) end
                end
                c:close()
                for i, off in ipairs(offsets) do assert.are.equal((i - 1) * limit, off) end
                assert.are.equal(1000 / limit, #offsets)
                return most
            end
            assert.are.equal(1, max_in_flight(0))
            local most = max_in_flight(nil)
            local least = os.getenv("LEADPIPE_VALGRIND") and 2 or 8
            assert.is_true(most >= least and most <= 24, "in flight: " .. most)
            assert.is_true(max_in_flight(3) <= 3)
            -- a reader that works 120 ms on each page never waits on a 50 ms wire with two
            -- pages ahead, and gets no more
            local slow = max_in_flight(nil, 0.12, 100)
            assert.is_true(slow <= 2, "in flight behind a slow reader: " .. slow)
        end)

        it("keep at most 64 pages ahead across all the iterators of one client", function()
            -- three readers share a client behind 50 ms of latency; each alone would keep up
            -- to 64 pages ahead
            local run = completed_run(AUD20K)
            srv:configure{ latency_ms = 50 }
            finally(function() srv:configure{ latency_ms = 0 } end)
            -- page requests sent and not yet read, from the log (curl would also queue what
            -- passes its 64 connections per host; the cosocket wire has no such bound)
            local out, most = 0, 0
            local function logger(ev)
                if not tostring(ev.path):find("/results$") then return end
                if ev.type == "send" then
                    out = out + 1
                    if out > most then most = out end
                elseif ev.type == "response" or ev.type == "error" then
                    out = out - 1
                end
            end
            local c = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, logger = logger }
            local iters = {}
            for i = 1, 3 do iters[i] = c:pages(AUD20K, run.id, { limit = 50 }) end
            local offsets = { {}, {}, {} }
            for _ = 1, 12 do
                for i = 1, 3 do
                    local page = iters[i]()
                    offsets[i][#offsets[i] + 1] = page.offset
                end
            end
            c:close()
            for i = 1, 3 do
                for k, off in ipairs(offsets[i]) do assert.are.equal((k - 1) * 50, off) end
            end
            assert.is_true(most <= 64 + 3, "in flight: " .. most)
            assert.is_true(most > 3, "in flight: " .. most)
        end)

        it("report rows and kept rows per page when people() filters with where", function()
            local run = completed_run(AUD1K)
            local where = { min_score = 80, seniority_at_least = "director" }
            local pred = leadpipe.filter.where(where)
            local expect = {}
            for row in client:people(AUD1K, run.id, { limit = 100 }) do
                if pred(row) then expect[#expect + 1] = row.hashedEmail end
            end
            assert.is_true(#expect > 0 and #expect < 1000)
            local got, rows, kept, pages = {}, 0, 0, 0
            local function on_page(page)
                pages = pages + 1
                rows = rows + page.rows
                kept = kept + page.kept
                assert.are.equal(page.kept, #page.results)
            end
            for row in client:people(AUD1K, run.id, { limit = 100, where = where, on_page = on_page }) do
                got[#got + 1] = row.hashedEmail
            end
            assert.are.same(expect, got)
            assert.are.equal(10, pages)
            assert.are.equal(1000, rows)
            assert.are.equal(#expect, kept)
        end)

        it("hand out each kept row as its JSON text with raw = true", function()
            local run = completed_run(AUD1K)
            local json = require "leadpipe.json"
            local where = { min_score = 70 }
            local expect = {}
            for row in client:people(AUD1K, run.id, { limit = 250, where = where }) do
                expect[#expect + 1] = row
            end
            local n = 0
            for text in client:people(AUD1K, run.id, { limit = 250, where = where, raw = true }) do
                n = n + 1
                assert.is_string(text)
                assert.is_nil(text:find("\n"))
                assert.are.same(expect[n], json.decode(text))
            end
            assert.are.equal(#expect, n)
            assert.has_error(function()
                client:people(AUD1K, run.id, { raw = true, filter = function() return true end })
            end)
        end)

        it("follow the stop rule with short pages", function()
            local run = completed_run(AUD1K)
            local sizes = {}
            for page in client:pages(AUD1K, run.id, { limit = 300, offset = 100 }) do
                sizes[#sizes + 1] = #page.results
            end
            assert.are.same({ 300, 300, 300 }, sizes)
            sizes = {}
            for page in client:pages(AUD1K, run.id, { limit = 7, offset = 990 }) do
                sizes[#sizes + 1] = #page.results
            end
            assert.are.same({ 7, 3 }, sizes)
        end)

        it("yield one empty page for a run with no results", function()
            local run = completed_run(AUD0)
            local pages, rows = 0, 0
            for page in client:pages(AUD0, run.id) do
                pages = pages + 1
                assert.are.equal(0, page.total)
            end
            for _ in client:people(AUD0, run.id) do rows = rows + 1 end
            assert.are.equal(1, pages)
            assert.are.equal(0, rows)
        end)

        it("wait for a pending run by default", function()
            srv:configure{ queued_ms = 60, running_ms = 60 }
            local run = assert(client:create_run(AUD1K))
            local polls, count = 0, 0
            local on_poll = function() polls = polls + 1 end
            for _ in client:people(AUD1K, run.id, { limit = 500, on_poll = on_poll }) do
                count = count + 1
            end
            assert.are.equal(1000, count)
            assert.is_true(polls >= 1)
        end)

        it("raise not_ready with wait = false on a pending run", function()
            srv:configure{ queued_ms = 5000 }
            local run = assert(client:create_run(AUD1K))
            local ok, err = pcall(function()
                for _ in client:pages(AUD1K, run.id, { wait = false }) do end
            end)
            assert.is_false(ok)
            assert.are.equal("not_ready", err.kind)
        end)

        it("raise the error object when the run failed", function()
            local run = assert(client:create_run(AUDFAIL))
            local ok, err = pcall(function()
                for _ in client:people(AUDFAIL, run.id) do end
            end)
            assert.is_false(ok)
            assert.is_true(leadpipe.is_error(err))
            assert.are.equal("run_failed", err.kind)
        end)

        it("raise invalid_argument for bad options before any request", function()
            local before = requests(srv, "results")
            local run = "11111111-2222-4333-8444-555555555555"
            for _, o in ipairs({ { limit = 0 }, { prefetch = -1 }, { wait = "yes" },
                                  { where = { bogus = 1 } }, { filter = 5 }, { lmit = 5 } }) do
                local ok, err = pcall(client.people, client, AUD1K, run, o)
                assert.is_false(ok)
                assert.are.equal("invalid_argument", err.kind)
            end
            assert.are.equal(before, requests(srv, "results"))
        end)

        it("apply a where filter before rows reach the caller", function()
            local run = completed_run(AUD1K)
            local all, kept = 0, 0
            for row in client:people(AUD1K, run.id, { limit = 500 }) do
                if row.intent and row.intent.score and row.intent.score >= 80 then all = all + 1 end
            end
            for row in client:people(AUD1K, run.id, { limit = 500, where = { min_score = 80 } }) do
                assert.is_true(row.intent.score >= 80)
                kept = kept + 1
            end
            assert.are.equal(all, kept)
            assert.is_true(kept > 0 and kept < 1000)
        end)

        it("reuse one connection for sequential pages", function()
            local run = completed_run(AUD1K)
            client:close()
            client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
            srv:reset_stats()
            local n = 0
            for _ in client:pages(AUD1K, run.id, { limit = 100, prefetch = 0 }) do n = n + 1 end
            assert.are.equal(10, n)
            assert.are.equal(1, srv:stats().connections)
        end)

        it("negotiate gzip", function()
            local run = completed_run(AUD1K)
            local status, headers = client.requester:request{
                path = "/v1/intent/audiences/" .. AUD1K .. "/runs/" .. run.id .. "/results",
                query = { limit = 500 },
            }
            assert.are.equal(200, status)
            assert.are.equal("gzip", headers["content-encoding"])
        end)

        it("can be abandoned midway and closed mid-transfer without leaks", function()
            local run = completed_run(AUD20K)
            for _ = 1, 3 do
                local n = 0
                for _ in client:people(AUD20K, run.id, { limit = 100, prefetch = 4 }) do
                    n = n + 1
                    if n == 150 then break end
                end
                collectgarbage()
            end
            local it = client:pages(AUD20K, run.id, { limit = 500, prefetch = 4 })
            assert.is_table(it())
            client:close()
            collectgarbage()
            local ok, err = pcall(it)
            assert.is_false(ok)
            assert.is_not_nil(err)
            client:close()
        end)
    end)

    describe("retries", function()
        local h, c

        before_each(function()
            h = recording_host()
            c = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, host = h }
        end)

        after_each(function()
            c:close()
            srv:configure{ faults = false }
        end)

        for _, kind in ipairs({ "429", "429_date", "500", "502", "503", "drop", "truncate" }) do
            it("recover from '" .. kind .. "' faults and lose or repeat no row", function()
                local run = completed_run(AUD1K)
                srv:configure{ faults = { every = 2, kinds = { kind }, retry_after = 1 } }
                local before = srv:stats().faults
                local seen, count = {}, 0
                for row in c:people(AUD1K, run.id, { limit = 100, prefetch = 2 }) do
                    assert.is_nil(seen[row.hashedEmail])
                    seen[row.hashedEmail] = true
                    count = count + 1
                end
                assert.are.equal(1000, count)
                assert.is_true(srv:stats().faults > before)
                assert.is_true(#h.sleeps > 0)
            end)
        end

        it("honour Retry-After in seconds", function()
            local run = completed_run(AUD1K)
            srv:configure{ faults = { every = 1, kinds = { "429" }, retry_after = 3 } }
            assert(c:results(AUD1K, run.id))
            -- 3 s from the 429's arrival: less the moment it took to read it
            assert.are.equal(1, #h.sleeps)
            assert.is_true(h.sleeps[1] > 2.9 and h.sleeps[1] <= 3, tostring(h.sleeps[1]))
        end)

        it("honour Retry-After as an HTTP date", function()
            local run = completed_run(AUD1K)
            srv:configure{ faults = { every = 1, kinds = { "429_date" }, retry_after = 3 } }
            assert(c:results(AUD1K, run.id))
            assert.are.equal(1, #h.sleeps)
            assert.is_true(h.sleeps[1] >= 1 and h.sleeps[1] <= 4)
        end)

        it("give up on a Retry-After longer than max_retry_after", function()
            local run = completed_run(AUD1K)
            local c2 = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, host = h,
                                     max_retry_after = 2 }
            srv:configure{ faults = { every = 1, kinds = { "429" }, retry_after = 30 } }
            local page, err = c2:results(AUD1K, run.id)
            assert.is_nil(page)
            assert.are.equal("rate_limited", err.kind)
            assert.are.equal(30, err.retry_after)
            assert.are.equal(0, #h.sleeps)
            c2:close()
        end)

        it("stop after max_retries with exponential backoff", function()
            local c2 = leadpipe.new{ api_key = "sk_test", base_url = "http://127.0.0.1:1", host = h,
                                     max_retries = 3, backoff_base = 0.1 }
            local run, err = c2:create_run(AUD1K)
            assert.is_nil(run)
            assert.are.equal("network", err.kind)
            assert.are.equal("connect", err.code)
            assert.are.equal(4, err.attempts)
            assert.are.equal(3, #h.sleeps)
            for i, s in ipairs(h.sleeps) do
                local cap = 0.1 * 2 ^ (i - 1)
                assert.is_true(s >= cap / 2 and s <= cap)
            end
            c2:close()
        end)

        it("time out a slow response with kind timeout", function()
            srv:configure{ latency_ms = 400 }
            local c2 = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, host = h,
                                     timeout = 0.1, max_retries = 1 }
            local run, err = c2:list_runs(AUD1K)
            assert.is_nil(run)
            assert.are.equal("timeout", err.kind)
            assert.are.equal(2, err.attempts)
            c2:close()
        end)
    end)

    describe("errors", function()
        it("401 is kind auth and never shows the key", function()
            local c = leadpipe.new{ api_key = "sk_wrong_secret_key", base_url = srv.url }
            local runs, err = c:list_runs(AUD1K)
            assert.is_nil(runs)
            assert.are.equal("auth", err.kind)
            assert.are.equal(401, err.status)
            assert.is_false(err.retryable)
            assert.is_string(err.request_id)
            assert.is_nil(tostring(err):find("sk_wrong_secret_key", 1, true))
            c:close()
        end)

        it("404 for an unknown audience or run is kind not_found", function()
            local _, err = client:list_runs(AUD_NONE)
            assert.are.equal("not_found", err.kind)
            assert.are.equal(404, err.status)
            local _, err2 = client:results(AUD1K, RUN_NONE)
            assert.are.equal(404, err2.status)
            assert.matches("HTTP 404", tostring(err2))
        end)

        it("lists runs newest first", function()
            local a = assert(client:create_run(AUD1K))
            local b = assert(client:create_run(AUD1K))
            local runs = assert(client:list_runs(AUD1K, { limit = 2 }))
            assert.are.equal(2, #runs)
            assert.are.equal(b.id, runs[1].id)
            assert.are.equal(a.id, runs[2].id)
            local _, err = client:list_runs(AUD1K, { limit = 101 })
            assert.are.equal("invalid_argument", err.kind)
        end)
    end)
end)

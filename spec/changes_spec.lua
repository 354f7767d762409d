-- client:changes and client:latest_runs against the fake API's daily churn: exact expected
-- changes (spec/support/changes_ref.lua reads both runs whole and diffs them in plain Lua)
-- for several seeds, kinds, wheres and fields, through faults, with and without the page
-- decoder, and the bad inputs refused before any page is read.

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local core = require "leadpipe.core"
local ref = require "spec.support.changes_ref"
local fake = require "spec.support.fake_client"

local DAILY = mock.AUDIENCE.daily
local FIELDS = { "intent.score", "jobTitle", "seniority", "company.name" }

-- The error a changes() loop raises at its first step.
-- The server's request count once it has stopped moving (a request an earlier test left on
-- the wire may still be arriving, on a slow build such as ASan's); bounded at 1 s.
local function settled_requests(srv)
    local n = srv:requests_seen()
    for _ = 1, 20 do
        core.sleep(0.05)
        local m = srv:requests_seen()
        if m == n then return n end
        n = m
    end
    return n
end

local function first_error(iter)
    local ok, err = pcall(iter)
    assert.is_false(ok, "the loop should have raised")
    assert.is_true(leadpipe.is_error(err), tostring(err))
    return err
end

local function daily_runs(client, aud)
    local runs = assert(client:latest_runs(aud or DAILY, 3))
    return runs[3].id, runs[2].id, runs[1].id -- days 1, 2, 3
end

for _, seed in ipairs({ 1, 2, 9 }) do
    describe("client:changes() (seed " .. seed .. ")", function()
        local srv, client, day1, day2, day3, rows
        setup(function()
            srv = assert(mock.start{ seed = seed })
            client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
            day1, day2, day3 = daily_runs(client)
            rows = {}
            for _, id in ipairs({ day1, day2, day3 }) do rows[id] = ref.read(client, DAILY, id) end
        end)
        teardown(function()
            client:close()
            srv:stop()
            -- busted keeps the blocks until the run ends: let the rows go now
            srv, client, rows = nil, nil, nil
            collectgarbage()
        end)

        it("finds exactly who was added, removed and changed from one day to the next", function()
            for _, pair in ipairs({ { day1, day2 }, { day2, day3 } }) do
                local exp = ref.expected(rows[pair[1]], rows[pair[2]], FIELDS)
                local got, counts = ref.collect(client:changes(DAILY, pair[1], pair[2]))
                ref.check(exp, got)
                -- the fake's churn: some of each kind, most people unchanged
                assert.is_true(counts.added > 20 and counts.removed > 20 and counts.changed > 20)
                assert.is_true(counts.added + counts.removed + counts.changed < 1000)
            end
        end)

        it("compares runs two days apart, and a newer run with an older one", function()
            ref.check(ref.expected(rows[day1], rows[day3], FIELDS),
                (ref.collect(client:changes(DAILY, day1, day3))))
            local got, counts = ref.collect(client:changes(DAILY, day3, day1))
            ref.check(ref.expected(rows[day3], rows[day1], FIELDS), got)
            assert.is_true(counts.added > 0 and counts.removed > 0)
        end)

        it("hands out only the kinds asked for, and each the same as in a whole diff", function()
            local exp = ref.expected(rows[day1], rows[day2], FIELDS)
            for _, only in ipairs({ "added", "removed", "changed", { "added", "removed" },
                                    { "removed", "changed" }, { "added", "changed" } }) do
                local kinds = {}
                for _, k in ipairs(type(only) == "table" and only or { only }) do kinds[k] = true end
                local got = ref.collect(client:changes(DAILY, day1, day2, { only = only }))
                ref.check(ref.only(exp, kinds), got)
            end
        end)

        it("applies where to to's rows, and to from's for the removed", function()
            local where = { min_score = 80, seniority_at_least = "director" }
            local ranks = leadpipe.filter.ranks
            local function ok(r)
                return r.intent ~= nil and r.intent.score ~= nil and r.intent.score >= 80
                    and (ranks[r.seniority or ""] or 0) >= ranks.director
            end
            local exp = ref.expected(rows[day1], rows[day2], FIELDS, ok)
            assert.is_true(next(exp) ~= nil)
            ref.check(exp, (ref.collect(client:changes(DAILY, day1, day2, { where = where }))))
            -- the same where as a function (not pushed down)
            ref.check(exp, (ref.collect(client:changes(DAILY, day1, day2, { where = ok }))))
            ref.check(ref.only(exp, { added = true }),
                (ref.collect(client:changes(DAILY, day1, day2, { where = where, only = "added" }))))
            ref.check(ref.only(exp, { removed = true }),
                (ref.collect(client:changes(DAILY, day1, day2, { where = where, only = "removed" }))))
        end)

        it("compares the fields asked for: any dotted path, objects and arrays by content", function()
            ref.check(ref.expected(rows[day1], rows[day2], { "jobTitle" }),
                (ref.collect(client:changes(DAILY, day1, day2, { fields = "jobTitle" }))))
            for _, fields in ipairs({ { "intent.score" }, { "jobTitle", "department" }, { "company" },
                                      { "geo", "intent.matchedTopics", "intent.matchedTopics.1.topicId" },
                                      { "fullName", "intent" } }) do
                ref.check(ref.expected(rows[day1], rows[day2], fields),
                    (ref.collect(client:changes(DAILY, day1, day2, { fields = fields }))))
            end
        end)
    end)
end

describe("client:changes()", function()
    local srv, client, day1, day2, day3, rows, exp12
    setup(function()
        srv = assert(mock.start{ seed = 4 })
        client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, backoff_base = 0.01,
                               max_retries = 5 }
        day1, day2, day3 = daily_runs(client)
        rows = { [day1] = ref.read(client, DAILY, day1), [day2] = ref.read(client, DAILY, day2) }
        exp12 = ref.expected(rows[day1], rows[day2], FIELDS)
    end)
    teardown(function()
        client:close()
        srv:stop()
        -- busted keeps the blocks until the run ends: let the rows go now
        srv, client, rows, exp12 = nil, nil, nil, nil
        collectgarbage()
    end)
    after_each(function()
        srv:configure{ faults = false }
        collectgarbage()
    end)

    it("gets every change exactly once through injected faults, at any page size", function()
        srv:configure{ faults = { every = 3, kinds = { "500", "502", "503", "drop", "truncate", "429" },
                                  retry_after = 0 } }
        for _, limit in ipairs({ 500, 137 }) do
            ref.check(exp12, (ref.collect(client:changes(DAILY, day1, day2, { limit = limit }))))
        end
        assert.is_true(srv:stats().faults > 10)
    end)

    it("gets every change exactly once from short pages mixed with faults, at any prefetch", function()
        for _, prefetch in ipairs{ 0, 1, 4, 64 } do
            srv:configure{ faults = { short = 0.4, seed = prefetch + 11, every = 4,
                kinds = { "500", "drop", "429" }, retry_after = 0 } }
            for _, limit in ipairs{ 500, 137 } do
                local pages = 0
                ref.check(exp12, (ref.collect(client:changes(DAILY, day1, day2, { limit = limit,
                    prefetch = prefetch, on_page = function() pages = pages + 1 end }))))
                assert.is_true(pages > 0)
            end
        end
        assert.is_true(srv:stats().faults > 5)
    end)

    it("finds the same changes without the page decoder (the lua-cjson path)", function()
        local decode_page = core.decode_page
        finally(function() core.decode_page = decode_page end)
        core.decode_page = nil
        ref.check(exp12, (ref.collect(client:changes(DAILY, day1, day2))))
        ref.check(ref.only(exp12, { added = true }),
            (ref.collect(client:changes(DAILY, day1, day2, { only = "added" }))))
    end)

    it("reads each run's pages as people() does: A, then B, then A again", function()
        local steps = {}
        local it = client:changes(DAILY, day1, day2, { on_page = function(page, step, n, run_id)
            steps[#steps + 1] = step .. "/" .. n .. " " .. (run_id == day1 and "from" or "to")
            assert.is_number(page.rows)
        end })
        ref.collect(it)
        assert.are.same({ "1/3 to", "1/3 to", "1/3 to", "1/3 to", "2/3 from", "2/3 from", "2/3 from",
                          "2/3 from", "3/3 to", "3/3 to", "3/3 to", "3/3 to" }, steps)
        steps = {}
        ref.collect(client:changes(DAILY, day1, day2, { only = "added", on_page = function(_, step, n, run_id)
            steps[#steps + 1] = step .. "/" .. n .. " " .. (run_id == day1 and "from" or "to")
        end }))
        assert.are.same({ "1/2 from", "1/2 from", "1/2 from", "1/2 from", "2/2 to", "2/2 to", "2/2 to",
                          "2/2 to" }, steps)
    end)

    it("stops when closed early, and raises closed once the client is", function()
        local iter, _, _, closer = client:changes(DAILY, day1, day2)
        assert.is_string((iter()))
        getmetatable(closer).__close(closer)
        assert.is_nil(iter())
        local c2 = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
        local it2 = c2:changes(DAILY, day2, day3)
        assert.is_string((it2()))
        c2:close()
        assert.are.equal("closed", first_error(it2).kind)
        assert.has_error(function() c2:changes(DAILY, day2, day3) end)
    end)

    describe("bad input", function()
        it("refuses the same run twice and bad options before any request", function()
            local before = settled_requests(srv)
            local cases = {
                { { day1, day1 }, nil, "to_run_id", "same run" },
                { { day1, day1:upper() }, nil, "to_run_id", "same run" },
                { { day1, "nope" }, nil, "to_run_id", "UUID" },
                { { day1, day2 }, { only = "gone" }, "only", "added" },
                { { day1, day2 }, { only = {} }, "only", "non-empty" },
                { { day1, day2 }, { fields = {} }, "fields", "dotted paths" },
                { { day1, day2 }, { fields = { "a..b" } }, "fields", "item 1" },
                { { day1, day2 }, { fields = { "x", "x" } }, "fields", "repeats" },
                { { day1, day2 }, { where = { min_scor = 80 } }, "where", "is not a where key" },
                { { day1, day2 }, { limit = 501 }, "limit", "" },
                { { day1, day2 }, { wait = "yes" }, "wait", "boolean" },
                { { day1, day2 }, { onlyy = "added" }, "opts", "did you mean 'only'" },
            }
            for _, c in ipairs(cases) do
                local ok, err = pcall(client.changes, client, DAILY, c[1][1], c[1][2], c[2])
                assert.is_false(ok)
                assert.are.equal("invalid_argument", err.kind)
                assert.are.equal(c[3], err.argument)
                assert.is_truthy(err.message:find(c[4], 1, true), err.message)
            end
            assert.are.equal(before, srv:requests_seen())
        end)

        it("refuses failed and cancelled runs before any page is read", function()
            local f1 = assert(client:create_run(mock.AUDIENCE.failing))
            local f2 = assert(client:create_run(mock.AUDIENCE.failing))
            srv:reset_stats()
            local err = first_error(client:changes(mock.AUDIENCE.failing, f1.id, f2.id))
            assert.are.equal("run_failed", err.kind)
            assert.is_truthy(err.message:find(f1.id, 1, true))
            assert.is_truthy(err.message:find("HYDRATION_FAILED", 1, true))
            assert.are.equal(f1.id, err.run.id)
            srv:configure{ queued_ms = 60000 }
            finally(function() srv:configure{ queued_ms = 0 } end)
            local q = assert(client:create_run(DAILY))
            assert(client:cancel_run(DAILY, q.id))
            err = first_error(client:changes(DAILY, day2, q.id))
            assert.are.equal("run_cancelled", err.kind)
            assert.are.equal(0, srv:requests_seen("results"))
        end)

        it("refuses a pending run unless told to wait, then waits for it", function()
            srv:configure{ queued_ms = 150, running_ms = 150 }
            finally(function() srv:configure{ queued_ms = 0, running_ms = 0 } end)
            local q = assert(client:create_run(DAILY))
            srv:reset_stats()
            local err = first_error(client:changes(DAILY, day3, q.id))
            assert.are.equal("not_ready", err.kind)
            assert.is_true(err.retryable)
            assert.are.equal(0, srv:requests_seen("results"))
            local polls = 0
            local got, counts = ref.collect(client:changes(DAILY, day3, q.id, { wait = true, interval = 0.05,
                on_poll = function() polls = polls + 1 end }))
            assert.is_true(polls > 0)
            assert.is_true(counts.added > 0)
            ref.check(ref.expected(ref.read(client, DAILY, day3), ref.read(client, DAILY, q.id), FIELDS), got)
        end)

        it("refuses a run of another audience, naming it, before reading a page of it", function()
            local other = assert(client:create_run(mock.AUDIENCE.small))
            srv:reset_stats()
            local err = first_error(client:changes(DAILY, day1, other.id))
            assert.are.equal("not_found", err.kind)
            assert.is_truthy(err.message:find(other.id, 1, true))
            assert.is_truthy(err.message:find(DAILY, 1, true))
            assert.is_nil(srv:stats().requests.results[200])
            err = first_error(client:changes(DAILY, "00000000-0000-4000-8000-000000000000", day1))
            assert.are.equal("not_found", err.kind)
            assert.is_truthy(err.message:find("from run", 1, true))
        end)
    end)
end)

describe("client:latest_runs()", function()
    local srv, client
    setup(function() srv, client = fake.start{ seed = 1, running_ms = 60000 } end)
    teardown(function() fake.stop(srv, client) end)

    it("returns the newest completed runs, newest first, skipping pending ones", function()
        assert(client:create_run(DAILY)) -- running for a minute: not completed
        local all = assert(client:list_runs(DAILY))
        assert.are.equal(4, #all)
        local two = assert(client:latest_runs(DAILY))
        assert.are.equal(2, #two)
        assert.are.equal(all[2].id, two[1].id)
        assert.are.equal(all[3].id, two[2].id)
        assert.is_true(two[1].dataDate > two[2].dataDate)
        assert.are.equal("daily", two[1].runType)
        assert.are.equal(3, #assert(client:latest_runs(DAILY, 3)))
        local none, err = client:latest_runs(DAILY, 4)
        assert.is_nil(none)
        assert.are.equal("not_found", err.kind)
        assert.are.equal("NO_RUN", err.code)
        none, err = client:latest_runs(DAILY, 0)
        assert.is_nil(none)
        assert.are.equal("invalid_argument", err.kind)
        none, err = client:latest_runs("nope")
        assert.is_nil(none)
        assert.are.equal("invalid_argument", err.kind)
    end)
end)

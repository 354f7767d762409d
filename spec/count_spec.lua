-- spec/count_spec.lua: client:count, "how many people of this run pass my filter", against
-- the fake API: the same answer as counting people() rows, for several `where` specs, limits
-- and prefetch depths, through short pages and failures; no request for a cached run; the
-- argument checks; the deadline.
local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local core = require "leadpipe.core"

local AUD = mock.AUDIENCE.small
local unpack = table.unpack or unpack -- luacheck: ignore 143

describe("client:count()", function()
    local srv, run_id

    setup(function()
        srv = assert(mock.start{ seed = 7, threads = 0, audiences = { { id = AUD, rows = 1000 } } })
        local c = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
        run_id = assert(c:create_run(AUD)).id
        assert(c:wait_run(AUD, run_id, { interval = 0.02 }))
        c:close()
    end)

    teardown(function()
        if srv then srv:stop() end
    end)

    after_each(function()
        srv:configure{ faults = false, latency_ms = 0 }
        collectgarbage()
    end)

    local function client(opts)
        local o = { api_key = srv.api_key, base_url = srv.url, backoff_base = 0.001, backoff_max = 0.01 }
        for k, v in pairs(opts or {}) do o[k] = v end
        return leadpipe.new(o)
    end

    local WHERES = {
        { min_score = 70 },
        { seniority_at_least = "director" },
        { min_score = 80, seniority_at_least = "director" },
        { country = "US", has = { "phone" } },
        { min_score = 101 },
    }

    local function by_people(c, where)
        local n = 0
        for _ in c:people(AUD, run_id, { where = where, limit = 500 }) do n = n + 1 end
        return n
    end

    it("gives the number of rows people() hands out, for every where, limit and prefetch", function()
        local c = client()
        for _, where in ipairs(WHERES) do
            local want = by_people(c, where)
            for _, o in ipairs{ { limit = 100 }, { limit = 7, prefetch = 0 },
                                { limit = 500, prefetch = 4 } } do
                o.where = where
                local kept, rows = c:count(AUD, run_id, o)
                assert.are.same({ want, 1000 }, { kept, rows })
            end
        end
        assert.are.same({ 1000, 1000 }, { c:count(AUD, run_id) })
        assert.are.same({ 0, 1000 }, { c:count(AUD, run_id, { where = { min_score = 101 } }) })
        c:close()
    end)

    it("applies a filter function after where (the rows are then built)", function()
        local c = client()
        local want = 0
        for row in c:people(AUD, run_id, { where = { min_score = 60 } }) do
            if row.seniority == "director" then want = want + 1 end
        end
        assert.is_true(want > 0)
        local kept = c:count(AUD, run_id, { where = { min_score = 60 },
            filter = function(row) return row.seniority == "director" end })
        assert.are.equal(want, kept)
        c:close()
    end)

    it("counts exactly through short pages and failed requests", function()
        local c = client{ max_retries = 8 }
        local want = by_people(c, WHERES[3])
        srv:configure{ faults = { seed = 3, short = 0.5, every = 4, kinds = { "500", "503", "429" },
                                  retry_after = 0 } }
        for _, prefetch in ipairs{ 0, 1, 4 } do
            assert.are.same({ want, 1000 },
                { c:count(AUD, run_id, { where = WHERES[3], limit = 100, prefetch = prefetch }) })
        end
        c:close()
    end)

    it("sends no request for a run its cache holds", function()
        local cache = leadpipe.cache.memory{ max_bytes = 64 * 1024 * 1024 }
        local c = client{ cache = cache }
        local want = { c:count(AUD, run_id, { where = WHERES[1] }) }
        srv:reset_stats()
        for _, where in ipairs(WHERES) do
            local plain = client()
            assert.are.same({ c:count(AUD, run_id, { where = where }) },
                { plain:count(AUD, run_id, { where = where }) })
            plain:close()
        end
        local before = srv:requests_seen()
        assert.are.same(want, { c:count(AUD, run_id, { where = WHERES[1] }) })
        assert.are.equal(before, srv:requests_seen())
        c:close()
        cache:clear()
    end)

    it("refuses bad arguments before any request, naming them", function()
        local c = client()
        srv:reset_stats()
        local cases = {
            { { AUD, run_id, { min_score = 80 } }, "count: opts has min_score, a key of where" },
            { { AUD, run_id, { where = { min_score = "x" } } }, "count: where" },
            { { AUD, run_id, { filter = 3 } }, "count: filter" },
            { { AUD, run_id, { limit = 501 } }, "count: limit" },
            { { AUD, run_id, { raw = true } }, "count: opts has an unknown option 'raw'" },
            { { "nope", run_id }, "count: audience_id" },
        }
        for _, case in ipairs(cases) do
            local ok, err = pcall(c.count, c, unpack(case[1]))
            assert.is_false(ok)
            assert.are.equal("invalid_argument", err.kind, tostring(err))
            assert.is_truthy(tostring(err):find(case[2], 1, true), tostring(err))
        end
        assert.are.equal(0, srv:requests_seen())
        c:close()
    end)

    it("fails with a deadline error naming the rows read once its deadline passes", function()
        local c = client()
        local t0 = core.now()
        local ok, err = pcall(c.count, c, AUD, run_id, { limit = 100, prefetch = 0, deadline = 0.5,
            where = WHERES[1], filter = function()
                srv:configure{ latency_ms = 5000 }
                return true
            end })
        assert.is_false(ok)
        assert.are.equal("timeout", err.kind, tostring(err))
        assert.are.equal("DEADLINE", err.code)
        assert.are.equal(100, err.rows)
        assert.is_true(core.now() - t0 < 3)
        c:close()
    end)
end)

-- The cache of completed runs' pages (leadpipe/cache.lua, leadpipe/lru.lua): the LRU by
-- bytes, the options, and against the fake: a second read of a completed run makes no
-- request and gives the same rows (where still pushed down), while pending answers, errors
-- and other keys' reads are never served from it. In nginx (the shared cache over two
-- workers): spec/openresty_serve_spec.lua.

local leadpipe = require "leadpipe"
local lru = require "leadpipe.lru"
local mock = require "leadpipe.mock"

local OVERHEAD = lru.OVERHEAD

describe("leadpipe.lru", function()
    local t
    local function clock() return t end
    before_each(function() t = 0 end)

    it("drops the least recently used entries first when bytes would pass max_bytes", function()
        local s = lru.new(3 * (OVERHEAD + 2 + 10), clock)
        assert.is_true(s:set("k1", ("a"):rep(10)))
        assert.is_true(s:set("k2", ("b"):rep(10)))
        assert.is_true(s:set("k3", ("c"):rep(10)))
        assert.are.equal(3, s.count)
        assert.is_not_nil(s:get("k1")) -- k1 is now the most recent: k2 goes next
        assert.is_true(s:set("k4", ("d"):rep(10)))
        assert.is_nil(s:get("k2"))
        assert.are.equal(("a"):rep(10), s:get("k1"))
        assert.are.equal(3, s.count)
        assert.are.equal(3 * (OVERHEAD + 12), s.bytes)
        -- a bigger value makes room for itself
        assert.is_true(s:set("k5", ("e"):rep(30)))
        assert.is_true(s.bytes <= s.max_bytes)
        assert.is_nil(s:get("k3"))
    end)

    it("replaces a key, and keeps nothing of a value larger than max_bytes", function()
        local s = lru.new(200, clock)
        assert.is_true(s:set("k", "one"))
        assert.is_true(s:set("k", "two"))
        assert.are.equal(1, s.count)
        assert.are.equal("two", s:get("k"))
        assert.is_false(s:set("big", ("x"):rep(200)))
        assert.is_nil(s:get("big"))
        assert.are.equal("two", s:get("k"))
    end)

    it("forgets an entry once its ttl has passed", function()
        local s = lru.new(10000, clock)
        s:set("short", "v", 5)
        s:set("forever", "w")
        t = 4.9
        assert.are.equal("v", s:get("short"))
        t = 5
        assert.is_nil(s:get("short"))
        assert.are.equal(1, s.count)
        t = 1e6
        assert.are.equal("w", s:get("forever"))
    end)
end)

describe("leadpipe.cache options", function()
    local function raised(fn, ...)
        local ok, err = pcall(fn, ...)
        assert.is_false(ok)
        assert.is_true(leadpipe.is_error(err), tostring(err))
        assert.are.equal("invalid_argument", err.kind)
        return err
    end

    it("checks memory{}'s options, naming the argument and the rule", function()
        assert.are.equal("max_bytes", raised(leadpipe.cache.memory, {}).argument)
        assert.are.equal("max_bytes", raised(leadpipe.cache.memory, { max_bytes = "1m" }).argument)
        assert.are.equal("max_bytes", raised(leadpipe.cache.memory, { max_bytes = 10 }).argument)
        assert.are.equal("ttl", raised(leadpipe.cache.memory, { max_bytes = 4096, ttl = -1 }).argument)
        assert.are.equal("latest_run_ttl",
            raised(leadpipe.cache.memory, { max_bytes = 4096, latest_run_ttl = 1e9 }).argument)
        local err = raised(leadpipe.cache.memory, { max_byte = 4096 })
        assert.truthy(err.message:find("max_bytes", 1, true), err.message)
        assert.are.equal("leadpipe.cache.memory(4096 bytes)",
            tostring(leadpipe.cache.memory{ max_bytes = 4096 }))
    end)

    it("needs OpenResty for a shared cache and a shared gate", function()
        local err = raised(leadpipe.cache.shared, "leadpipe")
        assert.are.equal("dict_name", err.argument)
        assert.truthy(err.message:find("OpenResty", 1, true), err.message)
        assert.are.equal("dict_name", raised(leadpipe.cache.shared, 42).argument)
        assert.are.equal("dict_name", raised(leadpipe.gate.shared, "leadpipe").argument)
        -- its options are checked first, worker_bytes (the worker copies) included
        for _, bad in ipairs{ 5, -1, 1.5, "64M", 2 ^ 41 } do
            assert.are.equal("worker_bytes",
                raised(leadpipe.cache.shared, "leadpipe", { worker_bytes = bad }).argument)
        end
        for _, good in ipairs{ 0, 4096 } do
            assert.are.equal("dict_name",
                raised(leadpipe.cache.shared, "leadpipe", { worker_bytes = good }).argument)
        end
    end)

    it("makes leadpipe.new refuse a cache or a gate it did not make", function()
        local base = { api_key = "sk_cache_test_key", base_url = "http://127.0.0.1:1" }
        local bads = { { cache = {} }, { cache = "memory" }, { gate = {} }, { gate = "leadpipe" } }
        for _, bad in ipairs(bads) do
            local o = {}
            for k, v in pairs(base) do o[k] = v end
            local name, value = next(bad)
            o[name] = value
            assert.are.equal(name, raised(leadpipe.new, o).argument)
        end
    end)
end)

describe("the cache of completed runs' pages", function()
    local srv, plain, run_id

    local function requests()
        local n = 0
        for _, by_status in pairs(srv:stats().requests) do
            for _, k in pairs(by_status) do n = n + k end
        end
        return n
    end

    local function rows_of(c, opts, aud, run)
        local out = {}
        for row in c:people(aud or srv.audience, run or run_id, opts) do out[#out + 1] = row end
        return out
    end

    local function ids(rows)
        local out = {}
        for i, r in ipairs(rows) do out[i] = type(r) == "string" and r or r.hashedEmail end
        return out
    end

    local function new_client(c, key)
        return leadpipe.new{ api_key = key or srv.api_key, base_url = srv.url, cache = c, max_retries = 0 }
    end

    setup(function()
        srv = assert(mock.start{})
        plain = new_client(nil)
        run_id = assert(plain:create_run(srv.audience)).id
        assert(plain:wait_run(srv.audience, run_id, { interval = 0.05 }))
    end)

    teardown(function()
        if plain then plain:close() end
        if srv then srv:stop() end
    end)

    it("reads a completed run a second time with no request, where still applied", function()
        local store = leadpipe.cache.memory{ max_bytes = 8 * 1024 * 1024 }
        local c = new_client(store)
        local where = { min_score = 70, seniority_at_least = "manager" }
        local want = ids(rows_of(plain, { where = where, limit = 50 }))
        local want90 = ids(rows_of(plain, { where = { min_score = 90 }, limit = 50 }))
        assert.is_true(#want > #want90 and #want90 > 0)
        assert.are.same(want, ids(rows_of(c, { where = where, limit = 50 })))
        srv:reset_stats()
        assert.are.same(want, ids(rows_of(c, { where = where, limit = 50 })))
        assert.are.same(want90, ids(rows_of(c, { where = { min_score = 90 }, limit = 50 })))
        local raw = rows_of(c, { where = where, limit = 50, raw = true })
        assert.are.equal(#want, #raw)
        assert.are.equal(want[1], require("leadpipe.json").decode(raw[1]).hashedEmail)
        local page = assert(c:results(srv.audience, run_id, { limit = 50, offset = 950 }))
        assert.are.same({ 50, 1000, "completed" }, { #page.results, page.total, page.state })
        assert.are.equal(0, requests())
        -- a page is kept as a leadpipe.body (core.body), which the decoder parses in place
        local kept = require("leadpipe.cache").bind(store, require("leadpipe.http").origin_of(srv.url),
            srv.api_key):page(srv.audience, run_id, 50, 0)
        assert.is_truthy(tostring(kept):find("^leadpipe%.body %(%d+ bytes%)"), tostring(kept))
        c:close()
    end)

    it("keys pages by limit and offset", function()
        local store = leadpipe.cache.memory{ max_bytes = 8 * 1024 * 1024 }
        local c = new_client(store)
        rows_of(c, { limit = 100 })
        srv:reset_stats()
        rows_of(c, { limit = 100, offset = 300 })
        assert.are.equal(0, requests())
        rows_of(c, { limit = 250 })
        assert.are.equal(4, srv:stats().requests.results[200])
        assert.are.same({ hits = 7, misses = 14, stores = 14 },
            { hits = store:stats().hits, misses = store:stats().misses, stores = store:stats().stores })
        c:close()
    end)

    it("never keeps a pending run's answers, nor an error", function()
        local store = leadpipe.cache.memory{ max_bytes = 8 * 1024 * 1024 }
        local c = new_client(store)
        srv:configure{ queued_ms = 60000 }
        local pending = assert(c:create_run(srv.audience))
        local page = assert(c:results(srv.audience, pending.id))
        assert.are.equal("queued", page.state)
        srv:configure{ queued_ms = 0 }
        local failing = assert(c:create_run(mock.AUDIENCE.failing))
        local done, werr = c:wait_run(mock.AUDIENCE.failing, failing.id, { interval = 0.05 })
        assert.is_nil(done)
        assert.are.equal("run_failed", werr.kind)
        local _, err = c:results(mock.AUDIENCE.failing, failing.id)
        assert.are.equal("run_failed", err.kind)
        assert.are.equal(0, store:stats().stores)
        -- once completed, its pages are kept (wait_run's one-row page too)
        assert(c:wait_run(srv.audience, pending.id, { interval = 0.05 }))
        assert(c:results(srv.audience, pending.id))
        assert.are.equal(2, store:stats().stores)
        c:close()
    end)

    it("serves a page only to the API key that read it", function()
        local store = leadpipe.cache.memory{ max_bytes = 8 * 1024 * 1024 }
        local a = new_client(store)
        assert.are.equal(1000, #rows_of(a, { limit = 500 }))
        local other = new_client(store, "sk_some_other_key_0000")
        local _, err = other:results(srv.audience, run_id, { limit = 500 })
        assert.are.equal("auth", err.kind)
        local ok, ierr = pcall(rows_of, other, { limit = 500 })
        assert.is_false(ok)
        assert.are.equal("auth", ierr.kind)
        a:close()
        other:close()
    end)

    it("holds at most max_bytes of pages", function()
        local store = leadpipe.cache.memory{ max_bytes = 200 * 1024 }
        local c = new_client(store)
        assert.are.equal(1000, #rows_of(c, { limit = 100 }))
        local st = store:stats()
        assert.is_true(st.bytes <= 200 * 1024 and st.count >= 1 and st.count < 10,
            st.bytes .. " bytes in " .. st.count .. " pages")
        srv:reset_stats()
        assert.are.equal(1000, #rows_of(c, { limit = 100 }))
        assert.is_true(requests() > 0)
        c:close()
        store:clear()
        assert.are.same({ 0, 0 }, { store:stats().bytes, store:stats().count })
    end)

    it("keeps latest_run's answer for latest_run_ttl seconds, and not at all by default", function()
        local kept = new_client(leadpipe.cache.memory{ max_bytes = 65536, latest_run_ttl = 0.2 })
        local none = new_client(leadpipe.cache.memory{ max_bytes = 65536 })
        srv:reset_stats()
        local first = assert(kept:latest_run(srv.audience, { status = "completed" }))
        local again = assert(kept:latest_run(srv.audience, { status = "completed" }))
        assert.are.equal(first.id, again.id)
        assert.are.equal(1, srv:stats().requests.list_runs[200])
        assert(kept:latest_run(srv.audience)) -- another status: another entry
        assert.are.equal(2, srv:stats().requests.list_runs[200])
        require("leadpipe.core").sleep(0.25)
        assert(kept:latest_run(srv.audience, { status = "completed" }))
        assert.are.equal(3, srv:stats().requests.list_runs[200])
        assert(none:latest_run(srv.audience, { status = "completed" }))
        assert(none:latest_run(srv.audience, { status = "completed" }))
        assert.are.equal(5, srv:stats().requests.list_runs[200])
        kept:close()
        none:close()
    end)
end)

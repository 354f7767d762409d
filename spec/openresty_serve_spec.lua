-- spec/openresty_serve_spec.lua: serving leads from nginx with two workers (a real nginx, the
-- cosocket wire, loopback only): the rate gate holds every request while a 429's Retry-After
-- holds (the fake counts what arrives more than 50 ms after a 429 went out), node-wide with
-- leadpipe.gate.shared; the shared cache of completed runs' pages serves a second read in
-- every worker with no request to the API; latest_run's answer is kept for its ttl; a read
-- with a deadline ends at it.
-- Handlers: spec/support/openresty_serve.lua; nginx.conf: spec/support/openresty.lua.
-- Needs the core built for LuaJIT (make build LUA_VERSION=jit).
local openresty = require "spec.support.openresty"

local available, why = openresty.available()

local function decode(body)
    local json = require "leadpipe.json"
    return assert(json.decode(body), body)
end

describe("leadpipe in nginx with two workers", function()
    if not available then
        it("runs in a real nginx", function() pending(why) end)
        return
    end

    local mock = require "leadpipe.mock"
    local leadpipe = require "leadpipe"
    local srv, ngx_srv, client, run_id

    -- GETs every path at once on the nginx under test -> array of decoded bodies (status 200).
    local function get_all(paths)
        local urls = {}
        for i, p in ipairs(paths) do urls[i] = ngx_srv.url .. p end
        local out = openresty.fetch_all(urls, { limit = 60 })
        local res = {}
        for i, o in ipairs(out) do
            assert(o and o.status, "no answer for " .. paths[i] .. "\n" .. ngx_srv:error_log())
            res[i] = decode(o.body)
            assert.are.equal(200, o.status, o.body)
        end
        return res
    end

    local function get(path) return get_all({ path })[1] end

    local function requests(st)
        local n = 0
        for _, by_status in pairs(st.requests) do
            for _, k in pairs(by_status) do n = n + k end
        end
        return n
    end

    local function expected_count(min_score)
        local n = 0
        for _ in client:people(srv.audience, run_id, { where = { min_score = min_score }, limit = 500 }) do
            n = n + 1
        end
        return n
    end

    setup(function()
        srv = assert(mock.start{ latency_ms = 40, threads = 0 })
        client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
        run_id = assert(client:create_run(srv.audience)).id
        assert(client:wait_run(srv.audience, run_id, { interval = 0.05 }))
        ngx_srv = openresty.start{ mock = srv, run = run_id, workers = 2 }
    end)

    teardown(function()
        if ngx_srv then ngx_srv:stop() end
        if client then client:close() end
        if srv then srv:stop() end
    end)

    after_each(function() srv:configure{ faults = false } end)

    -- The reader pauses after every third page, so pages requested ahead (and their 429s)
    -- arrive while it is busy.
    for _, prefetch in ipairs({ 1, 4, false }) do
        local name = prefetch and ("prefetch " .. prefetch) or "the default prefetch"
        it("sends nothing while a Retry-After holds, at " .. name, function()
            srv:configure{ faults = { every = 6, kinds = { "429" }, retry_after = 1 } }
            srv:reset_stats()
            local res = get("/serve/read?limit=50&pause=0.15&every=3"
                .. (prefetch and ("&prefetch=" .. prefetch) or ""))
            local st = srv:stats()
            assert.is_nil(res.error, res.error and res.error.message)
            assert.are.same({ 1000, 1000 }, { res.count, res.unique })
            assert.is_true(st.rate_limited >= 2, "429s sent: " .. st.rate_limited)
            assert.are.equal(0, st.during_retry_after)
        end)
    end

    -- Eight reads at once over both workers' clients; a 429 to either worker.
    local function read_under_faults(gate)
        srv:configure{ faults = { every = 15, kinds = { "429" }, retry_after = 1 } }
        srv:reset_stats()
        local paths = {}
        for i = 1, 8 do paths[i] = "/serve/read?limit=50&prefetch=4&gate=" .. gate end
        local res = get_all(paths)
        local st = srv:stats()
        srv:configure{ faults = false }
        local pids, workers = {}, 0
        for _, r in ipairs(res) do
            assert.is_nil(r.error, r.error and r.error.message)
            assert.are.same({ 1000, 1000 }, { r.count, r.unique })
            if not pids[r.pid] then
                pids[r.pid] = true
                workers = workers + 1
            end
        end
        assert.are.equal(2, workers)
        assert.is_true(st.rate_limited >= 2, "429s sent: " .. st.rate_limited)
        return st
    end

    it("pauses every worker of the node while a Retry-After holds, with gate.shared", function()
        assert.are.equal(0, read_under_faults("shared").during_retry_after)
        -- each worker's own gate: the other worker goes on sending
        assert.is_true(read_under_faults("local").during_retry_after > 0)
    end)

    it("serves a second read from the shared cache in every worker, without a request", function()
        local expected, expected90 = expected_count(70), expected_count(90)
        local first = get("/serve/read?cache=shared&min_score=70&limit=100")
        assert.are.equal(expected, first.count)
        srv:reset_stats()
        local paths = {}
        for i = 1, 8 do paths[i] = "/serve/read?cache=shared&min_score=70&limit=100" end
        local pids, workers = {}, 0
        for _, r in ipairs(get_all(paths)) do
            assert.are.same({ expected, expected }, { r.count, r.unique })
            if not pids[r.pid] then
                pids[r.pid] = true
                workers = workers + 1
            end
        end
        assert.are.equal(2, workers)
        assert.are.equal(0, requests(srv:stats()))
        -- where still applies to the cached bodies
        assert.are.equal(expected90, get("/serve/read?cache=shared&min_score=90&limit=100").count)
        assert.are.equal(0, requests(srv:stats()))
    end)

    it("counts with client:count over cosockets, off the wire (gzip kept in C memory) and cached", function()
        local expected = expected_count(70)
        for _, cache in ipairs{ "none", "memory", "shared" } do
            for _, prefetch in ipairs{ 0, 4 } do
                local r = get("/serve/read?mode=count&min_score=70&limit=100&prefetch=" .. prefetch
                    .. "&cache=" .. cache)
                assert.is_nil(r.error, r.error and r.error.message)
                assert.are.same({ expected, 1000 }, { r.count, r.rows })
            end
        end
        srv:reset_stats()
        assert.are.equal(expected, get("/serve/read?mode=count&min_score=70&limit=100&cache=shared").count)
        assert.are.equal(0, requests(srv:stats()))
    end)

    it("keeps worker copies of a shared cache's pages (worker_bytes), dropped in every worker by clear",
        function()
        local expected = expected_count(70)
        local function read_everywhere(cache)
            local paths = {}
            for i = 1, 8 do paths[i] = "/serve/read?mode=count&min_score=70&limit=100&cache=" .. cache end
            local by_pid, n = {}, 0
            for _, r in ipairs(get_all(paths)) do
                assert.are.same({ expected, 1000 }, { r.count, r.rows })
                if not by_pid[r.pid] then n = n + 1 end
                by_pid[r.pid] = (by_pid[r.pid] or 0) + r.missed
            end
            assert.are.equal(2, n, "both workers answered")
            return by_pid
        end
        get("/serve/clear?cache=shared_copies")
        read_everywhere("shared_copies")
        srv:reset_stats()
        -- warm: no worker misses a page, nothing reaches the API
        for _, missed in pairs(read_everywhere("shared_copies")) do assert.are.equal(0, missed) end
        assert.are.equal(0, requests(srv:stats()))
        local st = get("/serve/stats?cache=shared_copies").stats
        assert.is_true(st.worker_count >= 10 and st.worker_bytes > 10 * 100000)
        -- a clear in one worker drops the dict and every worker's copies: each misses again
        get("/serve/clear?cache=shared_copies")
        for pid, missed in pairs(read_everywhere("shared_copies")) do
            assert.is_true(missed > 0, "worker " .. pid .. " still read its copies after clear")
        end
        assert.is_true(requests(srv:stats()) > 0)
        -- a copy lives no longer than the dict's entry: ttl 1 s (the dict emptied first: its
        -- entries are shared by every cache over it); both workers hold copies, then miss
        get("/serve/clear?cache=shared_copies_1s")
        read_everywhere("shared_copies_1s")
        for _, missed in pairs(read_everywhere("shared_copies_1s")) do assert.are.equal(0, missed) end
        require("leadpipe.core").sleep(1.3)
        for pid, missed in pairs(read_everywhere("shared_copies_1s")) do
            assert.is_true(missed > 0, "worker " .. pid .. ": a copy outlived the dict entry's ttl")
        end
    end)

    it("ends a read at its deadline against a server that stops answering", function()
        srv:configure{ latency_ms = 5000 }
        local url = ngx_srv.url .. "/serve/read?deadline=0.5&limit=50"
        local out = openresty.fetch_all({ url }, { limit = 30 })[1]
        srv:configure{ latency_ms = 40 }
        assert.are.equal(502, out.status, out.body)
        local e = decode(out.body).error
        assert.are.same({ "timeout", "DEADLINE", 0, 0 }, { e.kind, e.code, e.rows, e.offset })
    end)

    it("keeps latest_run's answer for its ttl", function()
        local first = get("/serve/latest?cache=shared")
        assert.are.equal(run_id, first.id)
        srv:reset_stats()
        for _ = 1, 4 do assert.are.equal(run_id, get("/serve/latest?cache=shared").id) end
        assert.are.equal(0, requests(srv:stats()))
    end)
end)

-- bench/serve.lua: serving leads at scale (issue 20): the cache of completed runs' pages,
-- the node-wide rate gate and the deadline, measured against their targets.
--
--   1. An nginx location that counts the leads of a completed 1,000-row run passing a filter,
--      with a client made once per worker (spec/support/openresty_serve.lua, /serve/read),
--      one worker, CONCURRENCY requests at a time: requests/s without a cache, with the
--      worker's memory cache, with the shared cache, and with the shared cache keeping
--      copies in the worker (worker_bytes), side by side (ROUNDS rounds that each measure
--      every setting in turn; medians), every count checked; the location counts with
--      client:count (target: cache on >= 10x cache off), then with a loop over client:people
--      that builds the rows (no target: building half the run's rows on every read costs
--      more than the cache saves).
--   2. A second read of a cached 100,000-row run with `where` (plain Lua, blocking host, a
--      memory cache): first and second read times, and requests the second one sent.
--      Target: >= 5x faster, no request.
--   3. Node-wide gate: nginx with 4 workers under a steady load of reads with the shared
--      gate; one 429 with Retry-After: 2; the requests that reached the fake while it held
--      (from the moment it went out, and more than 50 ms after). Target: 0. The same with
--      each worker's own gate, for comparison.
--   4. deadline = 3 against a server that stops answering (the fake's latency set to 60 s
--      after the first page; in nginx, before the read): time until the call fails.
--      Target: within 3.5 s.
-- Not a test: numbers only. Needs nginx, the lua module and build/jit (make bench builds it).
--
--   make bench      or      lua5.4 bench/serve.lua      (LEADPIPE_BENCH_RUNS=1: short runs)
local openresty = require "spec.support.openresty"
local mock = require "leadpipe.mock"
local leadpipe = require "leadpipe"
local core = require "leadpipe.core"
local json = require "leadpipe.json"
local median = require("bench.lib.stats").median

local unpack = table.unpack or unpack -- luacheck: ignore 143
local QUICK = os.getenv("LEADPIPE_BENCH_RUNS") == "1" or os.getenv("BENCH_QUICK") == "1"
local ROUNDS = QUICK and 2 or 5
local ROUND_SECONDS = QUICK and 1 or 1.5
local CONCURRENCY = 20
local BIG_ROWS = QUICK and 20000 or 100000

local function met(ok) return ok and "met" or "MISSED" end

-- CPU seconds (user + system) process `pid` has used so far (pid nil: this one).
local function cpu_of(pid)
    local f = assert(io.open("/proc/" .. (pid or "self") .. "/stat", "rb"))
    local stat = f:read("*a")
    f:close()
    local fields = {}
    for x in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = x end
    -- utime and stime: fields 14 and 15 of the line, 12 and 13 after "pid (comm)"
    return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

-- Keeps `concurrency` GETs of url_of(i) in flight for `seconds` (then lets the last ones end);
-- check(status, body) says whether an answer is right. -> requests/s, right, wrong
local function load(url_of, concurrency, seconds, check, on_tick)
    local s = core.session{ max_connections = concurrency + 4, timeout = 60 }
    local inflight, started, right, wrong = {}, 0, 0, 0
    local function start()
        started = started + 1
        inflight[s:request{ url = url_of(started) }] = true
    end
    for _ = 1, concurrency do start() end
    local t0 = core.now()
    local t_end = t0 + seconds
    while next(inflight) do
        s:perform()
        local done = {}
        for r in pairs(inflight) do
            if r:done() then done[#done + 1] = r end
        end
        for _, r in ipairs(done) do
            inflight[r] = nil
            local status, _, body = r:response()
            r:close()
            if check(status, body) then right = right + 1 else wrong = wrong + 1 end
            if core.now() < t_end then start() end
        end
        if on_tick then on_tick() end
        if #done == 0 then s:poll(0.002) end
    end
    local dt = core.now() - t0
    s:close()
    return (right + wrong) / dt, right, wrong
end

local ok, why = openresty.available()
if not ok then
    print("skipped: " .. why)
    return
end

local srv = assert(mock.start{
    latency_ms = 0, threads = 0,
    audiences = {
        { id = mock.AUDIENCE.small, rows = 1000 },
        { id = mock.AUDIENCE.large, rows = BIG_ROWS },
    },
})
local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
local function completed_run(aud)
    local run = assert(client:create_run(aud))
    assert(client:wait_run(aud, run.id, { interval = 0.05 }))
    return run.id
end
local run_id = completed_run(mock.AUDIENCE.small)
local MIN_SCORE = 70
local expected = 0
for _ in client:people(mock.AUDIENCE.small, run_id, { where = { min_score = MIN_SCORE }, limit = 500 }) do
    expected = expected + 1
end

print(("## Serving leads (issue 20): %s, %d-row run, %d of them with score >= %d")
    :format(core.curl_version:match("^%S+"), 1000, expected, MIN_SCORE))

-- ===== 1. the cache in one worker =====
-- The location asks "how many leads of this run pass my filter" two ways: client:count
-- (the tool for that question: rows looked over in the decoder, none built) and a loop
-- over client:people (every passing row built as a table, and checked to come once).
-- Side by side: ROUNDS rounds, each measuring every cache setting for ROUND_SECONDS in
-- turn, so that a change of the machine's speed (it varies by up to 1.7x within minutes
-- here) falls on every setting alike; a setting's ratio is the median of its rounds'
-- ratios to the round's no-cache rate.
do
    local ngx_srv = openresty.start{ mock = srv, run = run_id, workers = 1 }
    local worker = tonumber(openresty.fetch_all({ ngx_srv.url .. "/pid" })[1].body)
    local checks = {
        count = function(status, body)
            local r = status == 200 and json.decode(body)
            return r and r.count == expected and r.rows == 1000
        end,
        people = function(status, body)
            local r = status == 200 and json.decode(body)
            return r and r.count == expected and r.unique == expected
        end,
    }
    local CACHES = { "none", "memory", "shared", "shared_copies" }
    for _, mode in ipairs({ "count", "people" }) do
        local check, urls, tot = checks[mode], {}, {}
        for _, cache in ipairs(CACHES) do
            urls[cache] = ngx_srv.url .. "/serve/read?limit=100&min_score=" .. MIN_SCORE .. "&cache=" .. cache
                .. "&mode=" .. mode
            load(function() return urls[cache] end, 2, 0.3, check) -- the worker's client, its cache filled
            tot[cache] = { rates = {}, ratios = {}, right = 0, wrong = 0, api = 0, cpu = 0 }
        end
        for _ = 1, ROUNDS do
            for _, cache in ipairs(CACHES) do
                local t = tot[cache]
                srv:reset_stats()
                local c0 = cpu_of(worker)
                local rate, right, wrong = load(function() return urls[cache] end, CONCURRENCY,
                    ROUND_SECONDS, check)
                t.cpu = t.cpu + cpu_of(worker) - c0
                t.rates[#t.rates + 1] = rate
                t.right, t.wrong, t.api = t.right + right, t.wrong + wrong, t.api + srv:requests_seen()
                if cache ~= "none" then t.ratios[#t.ratios + 1] = rate / tot.none.rates[#tot.none.rates] end
            end
        end
        for _, cache in ipairs(CACHES) do
            local t = tot[cache]
            local rates = {}
            for i, r in ipairs(t.rates) do rates[i] = ("%.0f"):format(r) end
            print(("1. %-6s cache %-13s: %6.0f requests/s (median of %d rounds of %.1f s: %s) at concurrency"
                .. " %d (%d right, %d wrong), %d requests reached the API; worker CPU %.2f ms per request")
                :format(mode, cache, median(t.rates), ROUNDS, ROUND_SECONDS, table.concat(rates, " "),
                CONCURRENCY, t.right, t.wrong, t.api, t.cpu / (t.right + t.wrong) * 1000))
        end
        for _, cache in ipairs(CACHES) do
            local t = tot[cache]
            if cache ~= "none" then
                local x = median(t.ratios)
                print(("   %s: cache %s / no cache = %.1fx (rounds %.1fx to %.1fx)%s"):format(mode, cache, x,
                    math.min(unpack(t.ratios)), math.max(unpack(t.ratios)), mode == "count"
                    and (" (target >= 10x: " .. met(x >= 10) .. ")") or " (rows built: no target)"))
            end
        end
    end
    ngx_srv:stop()
end

-- ===== 2. a second read of a cached 100k-row run =====
do
    local big = completed_run(mock.AUDIENCE.large)
    local cache = leadpipe.cache.memory{ max_bytes = 512 * 1024 * 1024 }
    local c = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, cache = cache }
    local where = { min_score = 80, seniority_at_least = "director" }
    local function read()
        local t0, n = core.now(), 0
        for _ in c:people(mock.AUDIENCE.large, big, { where = where, limit = 500 }) do n = n + 1 end
        return core.now() - t0, n
    end
    srv:reset_stats()
    local t1, n1 = read()
    local sent1 = srv:requests_seen()
    srv:reset_stats()
    local t2, n2 = read()
    local sent2 = srv:requests_seen()
    local x = t1 / t2
    print(("2. %d rows with where (%d kept): first read %.3f s (%d requests), second %.3f s"
        .. " (%d requests), %.1fx (target >= 5x and no request: %s); cache %.1f MB")
        :format(BIG_ROWS, n1, t1, sent1, t2, sent2, x, met(x >= 5 and sent2 == 0 and n1 == n2),
        cache:stats().bytes / 1048576))
    c:close()
    cache:clear()
end

-- ===== 3. the node-wide gate, 4 workers =====
do
    local ngx_srv = openresty.start{ mock = srv, run = run_id, workers = 4 }
    for _, gate in ipairs({ "shared", "local" }) do
        local url = ngx_srv.url .. "/serve/read?limit=50&prefetch=4&gate=" .. gate
        local pids, workers = {}, 0
        local function check(status, body)
            local r = status == 200 and json.decode(body)
            if r and not pids[r.pid] then
                pids[r.pid] = true
                workers = workers + 1
            end
            return r and r.count == 1000 and r.unique == 1000
        end
        load(function() return url end, 8, 0.5, check) -- every worker's client made
        srv:reset_stats()
        local armed = false
        -- one 429 (Retry-After: 2), to the first request a second into the load
        local t_arm = core.now() + 1
        local rate, right, wrong = load(function() return url end, 16, 5, check, function()
            if not armed and core.now() >= t_arm then
                srv:configure{ faults = { every = 1, kinds = { "429" }, retry_after = 2, count = 1 } }
                armed = true
            end
        end)
        srv:configure{ faults = false }
        local st = srv:stats()
        print(("3. gate %-6s, %d workers answered, 16 reads at a time: %.0f reads/s (%d right, %d wrong);"
            .. " 429s sent: %d; requests reaching the fake during its Retry-After 2: %d (%d more than"
            .. " 50 ms after it)%s")
            :format(gate, workers, rate, right, wrong, st.rate_limited, st.during_retry_after_any,
            st.during_retry_after, gate == "shared" and (" (target 0: " .. met(st.during_retry_after_any == 0)
            .. ")") or ""))
    end
    ngx_srv:stop()
end

-- ===== 4. deadline = 3 against a server that stops answering =====
do
    local c = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
    local t0 = core.now()
    local okr, err = pcall(function()
        for _ in c:people(mock.AUDIENCE.small, run_id, { limit = 100, prefetch = 0, deadline = 3,
                on_page = function() srv:configure{ latency_ms = 60000 } end }) do end
    end)
    local dt = core.now() - t0
    srv:configure{ latency_ms = 0 }
    c:close()
    local what = okr and "no error"
        or (tostring(err.code) .. ", rows " .. tostring(err.rows) .. ", offset " .. tostring(err.offset))
    print(("4. deadline = 3, server silent after the first page (libcurl, blocking): failed %s after %.3f s"
        .. " with %s (target within 3.5 s: %s)"):format(okr and "NOT" or "", dt, what,
        met(not okr and dt <= 3.5)))
    local ngx_srv = openresty.start{ mock = srv, run = run_id, workers = 1 }
    srv:configure{ latency_ms = 60000 }
    t0 = core.now()
    local out = openresty.fetch_all({ ngx_srv.url .. "/serve/read?limit=100&deadline=3" }, { limit = 30 })[1]
    dt = core.now() - t0
    srv:configure{ latency_ms = 0 }
    local r = out and out.body and json.decode(out.body)
    local e = r and r.error
    print(("   deadline = 3, server silent (nginx, cosockets): HTTP %s after %.3f s with %s (target within"
        .. " 3.5 s: %s)"):format(tostring(out and out.status), dt, e and tostring(e.code) or "no error",
        met(e ~= nil and dt <= 3.5)))
    ngx_srv:stop()
end

client:close()
srv:stop()

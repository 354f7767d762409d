-- bench/openresty.lua: what the "openresty" host (cosocket wire) costs in a real nginx.
--
-- Runs Debian's nginx with one worker (spec/support/openresty.lua) against the fake API in
-- this process and reports:
--   1. /ping latency (median, p99, worst) while 20 filtered people() reads run at once,
--      with 50 ms of API latency and with none (then the worker is busy decoding pages);
--   2. the worker's CPU while N requests only wait on a slow API (3 s per answer): utime +
--      stime from /proc/<worker pid>/stat over a window, in ms of CPU per second per
--      waiting request; the same for bare cosocket requests (no leadpipe) for comparison;
--   3. the latency one API call takes through leadpipe's cosocket wire inside the worker,
--      against the blocking libcurl client in this process and a bare cosocket request
--      (median of 30 each, same endpoint, kept-alive connections, no API latency).
-- Not a test: numbers only. Needs nginx, the lua module and build/jit (make bench builds it).
--
--   make bench      or      lua5.4 bench/openresty.lua
local openresty = require "spec.support.openresty"
local mock = require "leadpipe.mock"
local leadpipe = require "leadpipe"
local core = require "leadpipe.core"
local json = require "leadpipe.json"

local ok, why = openresty.available()
if not ok then
    print("skipped: " .. why)
    return
end

local WAITERS = tonumber(os.getenv("LEADPIPE_BENCH_WAITERS") or "") or 50
local SAMPLES = 30

local function ms(s) return ("%.2f ms"):format(s * 1000) end

local read_file = require("spec.support.shell").read_file

local function clk_tck()
    local p = io.popen("getconf CLK_TCK")
    local n = p and tonumber(p:read("*l"))
    if p then p:close() end
    return n or 100
end

-- CPU seconds (user + system) the process has used so far.
local function cpu_of(pid)
    local stat = assert(read_file("/proc/" .. pid .. "/stat"))
    local rest = stat:match("%) (.*)$") -- fields after the command name
    local fields = {}
    for f in rest:gmatch("%S+") do fields[#fields + 1] = f end
    -- utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm)"
    return (tonumber(fields[12]) + tonumber(fields[13])) / clk_tck()
end

local function get(url)
    local res = openresty.fetch_all({ url }, { limit = 30 })[1]
    return res and res.status and json.decode(res.body)
end

local function median(xs)
    local m = openresty.summary(xs)
    return m
end

local srv = assert(mock.start{ latency_ms = 0, threads = 64 })
local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
local run = assert(client:create_run(srv.audience))
assert(client:wait_run(srv.audience, run.id, { interval = 0.05 }))
local ngx_srv = openresty.start{ mock = srv, run = run.id }
local worker = tonumber(openresty.fetch_all({ ngx_srv.url .. "/pid" })[1].body)
print(("nginx worker pid %d, %s"):format(worker, core.curl_version:match("^%S+")))

-- 1. /ping while 20 reads run
for _, latency in ipairs({ 50, 0 }) do
    srv:configure{ latency_ms = latency }
    local urls = {}
    for i = 1, 20 do
        urls[i] = ngx_srv.url .. "/people?min_score=60&seniority_at_least=manager&limit=100&prefetch="
            .. (i % 4)
    end
    local t0 = core.now()
    local out, pings = openresty.fetch_all(urls, { probe = ngx_srv.url .. "/ping", every = 0.01 })
    local wall = core.now() - t0
    local okn = 0
    for _, r in ipairs(out) do if r.status == 200 then okn = okn + 1 end end
    local m, p99, worst = openresty.summary(pings)
    print(("ping during 20 concurrent reads (API latency %d ms): %d/20 ok in %.2f s; %d pings: median %s,"
        .. " p99 %s, worst %s"):format(latency, okn, wall, #pings, ms(m), ms(p99), ms(worst)))
end

-- 2. worker CPU while requests wait
local function waiting_cpu(path, label)
    srv:configure{ latency_ms = 3000 }
    local s = core.session{ max_connections = WAITERS + 8, timeout = 30 }
    local reqs = {}
    for i = 1, WAITERS do reqs[i] = s:request{ url = ngx_srv.url .. path } end
    local function pump(seconds)
        local t_end = core.now() + seconds
        while core.now() < t_end do
            s:perform()
            s:poll(0.05)
        end
    end
    pump(0.5) -- every request is sent and waiting
    local c0, t0 = cpu_of(worker), core.now()
    pump(2)
    local c1, t1 = cpu_of(worker), core.now()
    -- The fake sleeps its latency on a server thread that may own several connections;
    -- no latency from now on lets the queued answers out at once.
    srv:configure{ latency_ms = 0 }
    local done = 0
    for _ = 1, 400 do -- up to 20 s for the answers
        s:perform()
        done = 0
        for _, r in ipairs(reqs) do if r:done() then done = done + 1 end end
        if done == WAITERS then break end
        s:poll(0.05)
    end
    s:close()
    local per = (c1 - c0) * 1000 / (t1 - t0) / WAITERS
    print(("worker CPU while %d %s requests wait: %.1f ms over %.2f s = %.3f ms/s per request"
        .. " (resolution %.3f; %d answered)"):format(WAITERS, label, (c1 - c0) * 1000, t1 - t0, per,
        1000 / clk_tck() / (t1 - t0) / WAITERS, done))
end
waiting_cpu("/one", "leadpipe")
waiting_cpu("/raw", "bare cosocket")

-- 3. added latency
srv:configure{ latency_ms = 0 }
for _ = 1, 5 do get(ngx_srv.url .. "/one") get(ngx_srv.url .. "/raw") client:list_runs(srv.audience) end
local wire, raw, curl = {}, {}, {}
for i = 1, SAMPLES do
    wire[i] = get(ngx_srv.url .. "/one").elapsed
    raw[i] = get(ngx_srv.url .. "/raw").elapsed
    local t0 = core.now()
    assert(client:list_runs(srv.audience, { limit = 1 }))
    curl[i] = core.now() - t0
end
local mw, mr, mc = median(wire), median(raw), median(curl)
print(("one list_runs, median of %d: cosocket wire %s, blocking libcurl client %s, bare cosocket %s;"
    .. " cosocket - libcurl = %s, cosocket - bare = %s"):format(SAMPLES, ms(mw), ms(mc), ms(mr),
    ms(mw - mc), ms(mw - mr)))

ngx_srv:stop()
client:close()
srv:stop()

-- bench/decode_page.lua: what decoding one 500-row results page costs, decoder by decoder.
--
-- Fetches one 500-row page of the fake API's 1,000,000-row audience (leadpipe.mock, curl)
-- and reports the median of N runs of: lua-cjson's cjson.decode (the baseline),
-- core.decode_cjson (the fallback: lua-cjson plus leadpipe's shape), core.decode
-- (simdjson, one pass), core.decode_page with a predicate keeping about 5% of the rows, and
-- the same returning the kept rows as raw JSON text. Targets: simdjson <= 0.5x cjson.decode,
-- pushdown at 5% kept <= 0.1x. A run is a batch of BATCH decodes (the time reported is per
-- decode): the garbage collector pays for one decode's tables during later ones, so timing
-- single decodes would leave that cost out unevenly. Not a test: numbers only.
--
--   make bench      or      lua5.4 bench/decode_page.lua      (LEADPIPE_BENCH_RUNS=N)
local mock = require "leadpipe.mock"
local core = require "leadpipe.core"
local filter = require "leadpipe.filter"
local cjson = require("cjson").new()

local RUNS = tonumber(os.getenv("LEADPIPE_BENCH_RUNS") or "") or 41
local BATCH = 10
local clock = os.clock

-- run from the repository root, like bench/harness.lua
package.path = "./?.lua;" .. package.path
local shell = require "bench.lib.shell"
local sh, quote = shell.sh, shell.quote

local srv = assert(mock.start{ seed = 1 })
local key = "-H " .. quote("x-api-key: " .. srv.api_key)
local base = srv.url .. "/v1/intent/audiences/" .. mock.AUDIENCE.large .. "/runs"
local run_id = assert(sh("curl -s -X POST " .. key .. " " .. quote(base)):match('"id":"([^"]+)"'))
local body = sh("curl -s " .. key .. " " .. quote(base .. "/" .. run_id .. "/results?limit=500&offset=5000"))
srv:stop()
assert(#assert(core.decode(body)).data.results == 500, "expected a 500-row page")

local function median(f)
    local t = {}
    for _ = 1, BATCH do f() end -- warm up
    for i = 1, RUNS do
        local t0 = clock()
        for _ = 1, BATCH do f() end
        t[i] = (clock() - t0) / BATCH
    end
    table.sort(t)
    return t[math.floor((RUNS + 1) / 2)] * 1000
end

-- a min_score keeping the share of rows closest to 5%
local rows = core.decode(body).data.results
local best, best_spec = math.huge, nil
for s = 50, 100 do
    local p, n = filter.where{ min_score = s }, 0
    for _, r in ipairs(rows) do if p(r) then n = n + 1 end end
    local off = math.abs(n / #rows - 0.05)
    if off < best then best, best_spec = off, { min_score = s } end
end

print(("decode one results page: %d rows, %d bytes, %s, median of %d runs of %d decodes")
    :format(#rows, #body, _VERSION, RUNS, BATCH))
local base_ms = median(function() return cjson.decode(body) end)
local function report(name, ms, target)
    print(("  %-34s %8.3f ms  %5.2fx cjson.decode%s"):format(name, ms, ms / base_ms,
        target and ("  (target <= %.2fx: %s)"):format(target, ms / base_ms <= target and "met" or "NOT met")
        or ""))
end
report("cjson.decode", base_ms)
report("core.decode_cjson (fallback)", median(function() return core.decode_cjson(body) end))
if core.decode_page then
    report("core.decode (simdjson)", median(function() return core.decode(body) end), 0.5)
    local c = filter.compile(best_spec)
    local _, nrows, nkept = core.decode_page(body, c.native)
    local label = ("decode_page, %d%% kept (min_score %d)"):format(math.floor(nkept * 100 / nrows),
        best_spec.min_score)
    report(label, median(function() return core.decode_page(body, c.native) end), 0.1)
    report("decode_page raw, same predicate",
        median(function() return core.decode_page(body, c.native, true) end), 0.1)
    report("decode_page, every row kept", median(function() return core.decode_page(body) end))
    report("decode_page raw, every row kept", median(function() return core.decode_page(body, nil, true) end))
else
    print("  (core.decode is lua-cjson in this build: no simdjson, no decode_page)")
end

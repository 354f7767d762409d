-- bench/changes.lua: what client:changes costs (issue 19's targets), a hook of `make bench`.
--
-- Starts its own fake API (leadpipe.mock in this process, 127.0.0.1, gzip off) with three
-- audiences of two completed daily runs each (10,000, 100,000 and 1,000,000 rows), and times
-- each job in a child process of each Lua (lua5.4 with LEADPIPE_BUILD, luajit with
-- BENCH_JIT_BUILD when built), median of LEADPIPE_BENCH_RUNS (3) runs, jobs in turns:
--   people_all     client:people(to), no where: every row built as a table
--   changes_all    client:changes(from, to), default options
--   people_80      client:people(to, { where = { min_score = 80 } })
--   changes_80     client:changes(from, to, { only = "added", where = { min_score = 80 } })
-- Targets: changes_all <= 2.5x people_all; changes_80 <= 1.5x people_80 (100,000 rows, each
-- Lua); peak RSS (VmHWM) of changes_all on 1,000,000 rows minus on 10,000 rows <= 40 MB.
-- Each child prints its seconds, rows, counts and peak RSS; the counts must agree between
-- the Luas (exit 1 otherwise, or when a child fails). Missed targets are reported, not fatal.
--
--   make bench      or      lua5.4 bench/changes.lua            (from the repository root)
--   lua bench/changes.lua child JOB URL KEY AUDIENCE FROM TO      one job (internal)
--
-- LEADPIPE_BENCH_RUNS=1 (BENCH_QUICK): 2,000 and 20,000 rows instead, one run each.

local leadpipe = require "leadpipe"
local core = require "leadpipe.core"

local function peak_rss_kb()
    local f = io.open("/proc/self/status")
    if not f then return -1 end
    local s = f:read("*a")
    f:close()
    return tonumber(s:match("VmHWM:%s*(%d+)")) or -1
end

if arg[1] == "child" then
    local job, url, key, aud, from, to = arg[2], arg[3], arg[4], arg[5], arg[6], arg[7]
    local client = leadpipe.new{ api_key = key, base_url = url }
    local n, counts = 0, { added = 0, removed = 0, changed = 0 }
    local t0 = core.now()
    if job == "people_all" or job == "people_80" then
        local where = job == "people_80" and { min_score = 80 } or nil
        for _ in client:people(aud, to, { limit = 500, where = where }) do n = n + 1 end
    else
        local opts = job == "changes_80" and { only = "added", where = { min_score = 80 } } or nil
        for change in client:changes(aud, from, to, opts) do
            n = n + 1
            counts[change] = counts[change] + 1
        end
    end
    local dt = core.now() - t0
    client:close()
    print(("%.4f %d %d %d %d %d"):format(dt, n, counts.added, counts.removed, counts.changed, peak_rss_kb()))
    return
end

package.path = "./?.lua;" .. package.path
local shell = require "bench.lib.shell"
local mock = require "leadpipe.mock"

local RUNS = tonumber(os.getenv("LEADPIPE_BENCH_RUNS") or "") or 3
local QUICK = RUNS <= 1
local BUILD = os.getenv("LEADPIPE_BUILD") or "build/5.4"
local JIT_BUILD = os.getenv("BENCH_JIT_BUILD") or "build/jit"
local ROWS = QUICK and 2000 or 100000
local RSS_SMALL, RSS_LARGE = QUICK and 2000 or 10000, QUICK and 20000 or 1000000
local quote, format = shell.quote, string.format

local A_MAIN = "c4a00000-0000-4000-8000-000000000001"
local A_SMALL = "c4a00000-0000-4000-8000-000000000002"
local A_LARGE = "c4a00000-0000-4000-8000-000000000003"
local srv = assert(mock.start{ gzip = false, audiences = {
    { id = A_MAIN, rows = ROWS, daily_runs = 2 }, { id = A_SMALL, rows = RSS_SMALL, daily_runs = 2 },
    { id = A_LARGE, rows = RSS_LARGE, daily_runs = 2 },
} })
local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
local function pair(aud)
    local runs = assert(client:latest_runs(aud, 2))
    return runs[2].id, runs[1].id
end

local luas = { { name = "lua5.4", lua = "lua5.4", build = BUILD } }
if shell.have("luajit") and shell.file_exists(JIT_BUILD .. "/leadpipe/core.so") then
    luas[#luas + 1] = { name = "luajit", lua = "luajit", build = JIT_BUILD }
end

local failed = false
local function child(l, job, aud)
    local from, to = pair(aud)
    local cmd = format("env LUA_PATH=%s LUA_CPATH=%s %s bench/changes.lua child %s %s %s %s %s %s",
        quote("./lua/?.lua;./lua/?/init.lua;;"), quote("./" .. l.build .. "/?.so;;"), l.lua, job,
        quote(srv.url), quote(srv.api_key), aud, from, to)
    local p = assert(io.popen(cmd .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    local dt, n, a, r, c, rss = out:match("^(%S+) (%d+) (%d+) (%d+) (%d+) (%-?%d+)")
    if not dt then
        failed = true
        io.stderr:write("bench/changes.lua: ", l.name, " ", job, " failed: ", out, "\n")
        return nil
    end
    return { s = tonumber(dt), rows = tonumber(n), counts = a .. "/" .. r .. "/" .. c, rss = tonumber(rss) }
end

local median = require("bench.lib.stats").median

local JOBS = { "people_all", "changes_all", "people_80", "changes_80" }
print(format("client:changes on two completed daily runs of %d rows (the fake's churn), limit 500; "
    .. "each job a child process, median of %d", ROWS, RUNS))
print("")
print("| Lua | people (all rows) | changes | ratio (≤ 2.5) | people where ≥ 80 | changes added, where ≥ 80 "
    .. "| ratio (≤ 1.5) | added/removed/changed |")
print("|---|---|---|---|---|---|---|---|")
local counts_seen = {}
for _, l in ipairs(luas) do
    local times = {}
    for _, job in ipairs(JOBS) do times[job] = {} end
    for _ = 1, RUNS do
        for _, job in ipairs(JOBS) do
            local r = child(l, job, A_MAIN)
            if r then
                times[job][#times[job] + 1] = r.s
                if job == "changes_all" then
                    counts_seen[r.counts] = true
                end
            end
        end
    end
    local m = {}
    for _, job in ipairs(JOBS) do m[job] = median(times[job]) end
    if m.people_all and m.changes_all and m.people_80 and m.changes_80 then
        local r1, r2 = m.changes_all / m.people_all, m.changes_80 / m.people_80
        local counts = next(counts_seen) or "?"
        print(format("| %s | %.3f s | %.3f s | %.2f× %s | %.3f s | %.3f s | %.2f× %s | %s |", l.name,
            m.people_all, m.changes_all, r1, r1 <= 2.5 and "met" or "MISSED", m.people_80, m.changes_80, r2,
            r2 <= 1.5 and "met" or "MISSED", counts))
    end
    io.stdout:flush()
end
local distinct = 0
for _ in pairs(counts_seen) do distinct = distinct + 1 end
if distinct > 1 then
    failed = true
    io.stderr:write("bench/changes.lua: the Luas found different changes\n")
end

print("")
local small = child(luas[1], "changes_all", A_SMALL)
local large = child(luas[1], "changes_all", A_LARGE)
if small and large then
    local d = (large.rss - small.rss) / 1024
    print(format("Peak RSS of changes (default options, %s): %d rows %.1f MB, %d rows %.1f MB "
        .. "(%.1f s); difference %.1f MB (target ≤ 40 MB: %s)", luas[1].name, RSS_SMALL, small.rss / 1024,
        RSS_LARGE, large.rss / 1024, large.s, d, d <= 40 and "met" or "MISSED"))
    print(format("(the fingerprint table: 16-byte slots kept at most 7/8 full, sized for A plus 1/16 "
        .. "of B: %.1f MB for %d people; plus about 60 bytes for each changed person's old values)",
        (RSS_LARGE + RSS_LARGE / 16) * 8 / 7 * 16 / 1048576, RSS_LARGE))
end
client:close()
srv:stop()
os.exit(failed and 1 or 0)

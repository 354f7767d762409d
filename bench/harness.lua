-- bench/harness.lua: the side-by-side benchmark behind `make bench` (issue 8).
--
-- Every contender does the same job as a separate process against the same fake API
-- (started by tools/bench.sh in its own process, on 127.0.0.1): create a run of the
-- audience, wait for its results, read every page (limit 500), keep intent.score >= 80
-- and seniority director/vp/c_suite. Contenders take turns (the order rotates each
-- repetition); each prints "rows=N kept=M" and the harness fails loudly when one exits
-- non-zero or when their counts disagree. Medians of wall-clock seconds per whole job
-- (process start to exit) go into one markdown table per scenario, with the targets.
--
-- Run it through `make bench` (tools/bench.sh starts and stops the fake servers). It reads:
--   BENCH_FAST_URL, BENCH_SLOW_URL, BENCH_API_KEY   the two fake servers (no / added latency)
--   BENCH_ROWS_MAIN, BENCH_ROWS_LATENCY, BENCH_ROWS_RSS_SMALL, BENCH_ROWS_RSS_LARGE, BENCH_LATENCY_MS
--   BENCH_REPS (5; 1 when BENCH_QUICK=1), BENCH_SLOW_REPS (curl + jq: 3, at most BENCH_REPS)
--   BENCH_HOOK_DIR (bench): decode_page.lua, where_plain.lua and changes.lua there are run and quoted
--   BENCH_CONTENDER_DIR (bench/contenders): where the contenders' scripts are (specs swap one)
--   BENCH_STRICT=1: exit 3 when a target is missed (otherwise targets are only reported)
--   LEADPIPE_BUILD (build/5.4), BENCH_JIT_BUILD (build/jit), BENCH_TIMEOUT (600 s per job)
-- Exit status: 0 ok, 1 a contender failed or the counts disagree, 2 bad setup, 3 strict miss.
-- Helpers: bench/lib/shell.lua (processes, files), bench/lib/contenders.lua (who runs, how),
-- bench/lib/stats.lua (medians).
package.path = "./?.lua;" .. package.path
local core = require "leadpipe.core"
local shell = require "bench.lib.shell"
local contenders = require "bench.lib.contenders"

local LUA = arg[1] or "lua5.4"
local BUILD = os.getenv("LEADPIPE_BUILD") or "build/5.4"
local JIT_BUILD = os.getenv("BENCH_JIT_BUILD") or "build/jit"
local QUICK = os.getenv("BENCH_QUICK") == "1"
local STRICT = os.getenv("BENCH_STRICT") == "1"
local HOOK_DIR = os.getenv("BENCH_HOOK_DIR") or "bench"
local CONTENDER_DIR = os.getenv("BENCH_CONTENDER_DIR") or "bench/contenders"
local TIMEOUT = tonumber(os.getenv("BENCH_TIMEOUT") or "") or 600

local function env_number(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then return default end
    local n = tonumber(v)
    if not n or n < 0 or n ~= math.floor(n) then
        io.stderr:write("harness: ", name, " must be a whole number, got ", v, "\n")
        os.exit(2)
    end
    return n
end

local REPS = math.max(1, env_number("BENCH_REPS", QUICK and 1 or 5))
local SLOW_REPS = math.max(1, math.min(REPS, env_number("BENCH_SLOW_REPS", 3)))
local ROWS_MAIN = env_number("BENCH_ROWS_MAIN", 100000)
local ROWS_LATENCY = env_number("BENCH_ROWS_LATENCY", 20000)
local ROWS_RSS_SMALL = env_number("BENCH_ROWS_RSS_SMALL", 10000)
local ROWS_RSS_LARGE = env_number("BENCH_ROWS_RSS_LARGE", 1000000)
local LATENCY_MS = env_number("BENCH_LATENCY_MS", 50)
local FAST_URL = os.getenv("BENCH_FAST_URL")
local SLOW_URL = os.getenv("BENCH_SLOW_URL")
local API_KEY = os.getenv("BENCH_API_KEY")
local LIMIT = 500
local RSS_TARGET_KB = 8 * 1024

if not (FAST_URL and SLOW_URL and API_KEY) then
    io.stderr:write("harness: BENCH_FAST_URL, BENCH_SLOW_URL and BENCH_API_KEY must be set "
        .. "(run it with `make bench`)\n")
    os.exit(2)
end

local unpack = table.unpack or unpack -- luacheck: ignore 143
local format, concat = string.format, table.concat
local quote, read_file, sh, have, loadavg = shell.quote, shell.read_file, shell.sh, shell.have, shell.loadavg
local version, file_exists = shell.version, shell.file_exists

-- ===== NUMBERS =====

local median = require("bench.lib.stats").median

local function thousands(n)
    local s = format("%d", n)
    local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
    return (out:gsub("^,", ""))
end

local function mb(kb)
    return format("%.1f MB", kb / 1024)
end

-- ===== MACHINE =====

local function machine()
    local cpu = read_file("/proc/cpuinfo"):match("model name%s*:%s*([^\n]+)") or "unknown CPU"
    local nproc = sh("nproc")
    local load1 = tonumber(loadavg():match("^%S+") or "")
    local lines = {
        format("- machine: %s CPUs (nproc), %s; load average at start %s%s", nproc, cpu, loadavg(),
            load1 and tonumber(nproc) and load1 > 0.5 * tonumber(nproc)
                and " (**busy machine: expect noisy numbers**)" or ""),
        format("- %s: %s", LUA, version(LUA .. " -v")),
    }
    if have("luajit") then lines[#lines + 1] = "- luajit: " .. version("luajit -v") end
    lines[#lines + 1] = "- curl: " .. version("curl --version")
    lines[#lines + 1] = "- python3: " .. version("python3 --version")
    lines[#lines + 1] = "- jq: " .. version("jq --version")
    lines[#lines + 1] = "- leadpipe: " .. core._VERSION .. ", " .. core.curl_version
    return concat(lines, "\n")
end

-- ===== RUNNING =====

local failures = {}
local function fail(msg)
    failures[#failures + 1] = msg
    io.stderr:write("harness: FAIL: ", msg, "\n")
end

local function audience(rows)
    return format("00000000-0000-4000-8000-%012d", rows)
end

-- job(contender, url, rows, mode) -> { seconds =, rows =, kept =, rss_kb = } or nil
local function job(c, url, rows, mode)
    local cmd = concat({ c.cmd, quote(url), quote(API_KEY), quote(audience(rows)),
        quote("bench-" .. rows), mode }, " ")
    local out, status, dt, stderr = shell.run(cmd, TIMEOUT)
    local n, k = out:match("rows=(%d+) kept=([%d%-]+)")
    if status ~= 0 or not n then
        fail(format("%s (%s, %s rows) exited %d: %s%s", c.name, mode, thousands(rows), status,
            out:sub(1, 300), stderr:sub(-600)))
        return nil
    end
    return { seconds = dt, rows = tonumber(n), kept = tonumber(k),
             rss_kb = tonumber(out:match("rss_kb=(%d+)")) }
end

-- scenario(...) runs the contenders in turns and checks the counts. Returns a result per
-- contender id: { times = {...}, rows =, kept =, rss_kb = } (or { why = } when skipped).
local function scenario(list, ids, url, rows, mode)
    local res, active = { failures_before = #failures }, {}
    for _, id in ipairs(ids) do
        local c = list[id]
        if c.why then
            res[id] = { why = c.why }
        else
            res[id] = { times = {} }
            active[#active + 1] = c
        end
    end
    for rep = 1, REPS do
        for i = 0, #active - 1 do
            local c = active[(i + rep - 1) % #active + 1]
            local r = res[c.id]
            if rep <= c.reps and not r.failed then
                local j = job(c, url, rows, mode)
                if j then
                    r.times[#r.times + 1] = j.seconds
                    if r.rows and (r.rows ~= j.rows or r.kept ~= j.kept) then
                        fail(format("%s changed its counts between repetitions: rows=%s kept=%s, then "
                            .. "rows=%s kept=%s", c.name, r.rows, tostring(r.kept), j.rows, tostring(j.kept)))
                    end
                    r.rows, r.kept = j.rows, j.kept
                    r.rss_kb = math.max(r.rss_kb or 0, j.rss_kb or 0)
                else
                    r.failed = true
                end
            end
        end
    end
    -- every contender must have read every row, and all that filter must keep the same rows
    local kept, kept_by
    for _, id in ipairs(ids) do
        local r = res[id]
        if r.rows then
            if r.rows ~= rows then
                fail(format("%s read %s rows, the audience has %s", list[id].name, thousands(r.rows),
                    thousands(rows)))
            end
            if r.kept then
                if kept and kept ~= r.kept then
                    fail(format("counts disagree: %s kept %s rows, %s kept %s", kept_by, thousands(kept),
                        list[id].name, thousands(r.kept)))
                end
                kept, kept_by = kept or r.kept, kept_by or list[id].name
            end
        end
    end
    res.kept = kept
    res.failed = #failures > res.failures_before
    return res
end

-- ===== REPORT =====

local targets = { met = 0, missed = 0 }

local function target(label, value, ok)
    if ok then targets.met = targets.met + 1 else targets.missed = targets.missed + 1 end
    return format("- %s: %s: **%s**", label, value, ok and "met" or "MISSED")
end

local function table_rows(list, ids, res, base_id, extra)
    local base = res[base_id] and res[base_id].times and median(res[base_id].times)
    local out = {
        "| contender | median s | min s | runs | × leadpipe " .. (LUA) .. " time | rows | kept |"
            .. (extra and " " .. extra.head .. " |" or ""),
        "|---|---:|---:|---:|---:|---:|---:|" .. (extra and "---:|" or ""),
    }
    for _, id in ipairs(ids) do
        local r, c = res[id], list[id]
        if r.why then
            out[#out + 1] = format("| %s | skipped: %s | | | | | |%s", c.name, r.why, extra and " |" or "")
        elseif #r.times == 0 then
            out[#out + 1] = format("| %s | FAILED | | | | | |%s", c.name, extra and " |" or "")
        else
            local m = median(r.times)
            local lo = math.min(unpack(r.times))
            out[#out + 1] = format("| %s | %.3f | %.3f | %d | %s | %s | %s |%s", c.name, m, lo, #r.times,
                base and format("%.2f", m / base) or "-", thousands(r.rows),
                r.kept and thousands(r.kept) or "- (no filter)",
                extra and (" " .. extra.cell(id, r) .. " |") or "")
        end
    end
    return concat(out, "\n")
end

local function med(res, id)
    local r = res[id]
    return r and r.times and #r.times > 0 and median(r.times) or nil
end

-- "leadpipe X: N× faster than Y" lines for each leadpipe contender that ran
local function speed_targets(list, res, other_id, factor, label)
    local lines = {}
    local theirs = med(res, other_id)
    for _, id in ipairs({ "lp", "jit" }) do
        local ours = med(res, id)
        if ours and theirs then
            local x = theirs / ours
            lines[#lines + 1] = target(format("%s %s", list[id].name, label),
                x >= 1 and format("%.2f× faster", x) or format("%.2f× slower", 1 / x), x >= factor)
        end
    end
    if #lines == 0 then
        lines[1] = format("- %s: not measured (%s)", label,
            res[other_id] and res[other_id].why or "no leadpipe")
    end
    return concat(lines, "\n")
end

local function check_line(res, rows)
    if res.failed then
        return "Check: FAILED (the problems are listed at the end)."
    elseif res.kept then
        return format("Check: every contender read %s rows; every filtering contender kept %s.",
            thousands(rows), thousands(res.kept))
    end
    return format("Check: every contender read %s rows.", thousands(rows))
end

local function hook(name)
    local path = HOOK_DIR .. "/" .. name
    local lines = { "" }
    if not file_exists(path) then
        lines[#lines + 1] = format("(%s not present yet: nothing to run)", path)
        return concat(lines, "\n")
    end
    -- quick mode (the smoke spec): one pass each, the point is that the hook still runs
    local out, status, dt, stderr = shell.run(format("env " .. (QUICK and "LEADPIPE_BENCH_RUNS=1 " or "")
        .. "LEADPIPE_BENCH_URL=%s "
        .. "LEADPIPE_BENCH_API_KEY=%s LEADPIPE_BENCH_AUDIENCE=%s %s %s", quote(FAST_URL), quote(API_KEY),
        quote(audience(ROWS_MAIN)), LUA, quote(path)), TIMEOUT)
    lines[#lines + 1] = format("`%s %s` (%.2f s, exit %d):", LUA, path, dt, status)
    lines[#lines + 1] = ""
    lines[#lines + 1] = "```"
    lines[#lines + 1] = (out:gsub("%s+$", ""))
    lines[#lines + 1] = "```"
    if status ~= 0 then
        fail(format("%s exited %d: %s", path, status, stderr:sub(-600)))
    end
    return concat(lines, "\n")
end

-- ===== MAIN =====

local t_start = core.now()
local list = contenders.list{ lua = LUA, build = BUILD, jit_build = JIT_BUILD, dir = CONTENDER_DIR,
                              reps = REPS, slow_reps = SLOW_REPS }
local ALL = contenders.ALL
local pages_main = math.ceil(ROWS_MAIN / LIMIT)
local pages_lat = math.ceil(ROWS_LATENCY / LIMIT)

print("# leadpipe benchmark" .. (QUICK and " (quick mode)" or ""))
print("")
print(os.date("!%Y-%m-%d %H:%M UTC"))
print("")
print(machine())
print(format("- fake API: leadpipe.mock in its own process on 127.0.0.1, gzip off (every contender "
    .. "gets the same bytes), runs complete at once; every contender replays one Idempotency-Key per "
    .. "audience, so all read the same run"))
print(format("- times: wall-clock seconds per whole job (process start to exit), median of %d runs "
    .. "(curl + jq: %d), contenders in turns; × = contender's median / leadpipe %s's", REPS, SLOW_REPS, LUA))
print("- job: create a run, wait for results, read every page (limit 500), keep intent.score >= 80 "
    .. "and seniority in {director, vp, c_suite}")
io.stdout:flush()

-- 1. filtered, no latency
local s1 = scenario(list, ALL, FAST_URL, ROWS_MAIN, "filtered")
print("")
print(format("## 1. Filtered job, %s rows (%d pages), no latency", thousands(ROWS_MAIN), pages_main))
print("")
print(table_rows(list, ALL, s1, "lp"))
print("")
print(check_line(s1, ROWS_MAIN))
print("")
print("Targets:")
print(speed_targets(list, s1, "py", 4, "≥ 4× faster than python3"))
print(speed_targets(list, s1, "jq", 30, "≥ 30× faster than curl + jq"))
print(speed_targets(list, s1, "floor", 1, "faster than the floor"))
io.stdout:flush()

-- 1b. every row built as a table
local IDS_ALL = { "lp", "jit", "py" }
local s1b = scenario(list, IDS_ALL, FAST_URL, ROWS_MAIN, "all")
print("")
print(format("## 1b. Every row built as a table (no where), %s rows, no latency", thousands(ROWS_MAIN)))
print("")
print(table_rows(list, IDS_ALL, s1b, "lp"))
print("")
print(check_line(s1b, ROWS_MAIN))
print("")
print("Targets:")
print(speed_targets(list, s1b, "py", 2, "≥ 2× faster than python3"))
io.stdout:flush()

-- 2. latency: first the same job without latency (W, the work), then with it
local IDS_W = { "lp", "jit" }
local s2w = scenario(list, IDS_W, FAST_URL, ROWS_LATENCY, "filtered")
local s2 = scenario(list, ALL, SLOW_URL, ROWS_LATENCY, "filtered")
local L = LATENCY_MS / 1000
local function ideal(id)
    local w = med(s2w, id)
    return w and (3 * L + w), w
end
print("")
print(format("## 2. Filtered job, %s rows (%d pages), %d ms latency per request", thousands(ROWS_LATENCY),
    pages_lat, LATENCY_MS))
print("")
print(table_rows(list, ALL, s2, "lp", {
    head = "× ideal",
    cell = function(id, r)
        local i = ideal(id)
        return i and format("%.2f", median(r.times) / i) or "-"
    end,
}))
print("")
print(check_line(s2, ROWS_LATENCY))
print("")
print(format("Ideal = 3 × latency + W: one round trip to create the run, one for the first page "
    .. "(it gives total), one for the other %d pages all in flight at once (the server gives each "
    .. "connection its own thread); W = the same job's median time with no latency (its own work: "
    .. "start-up, decoding, filtering).", pages_lat - 1))
for _, id in ipairs(IDS_W) do
    local i, w = ideal(id)
    if i then
        print(format("- %s: W = %.3f s, ideal = 3 × %.3f + %.3f = %.3f s", list[id].name, w, L, w, i))
    end
end
print("")
print("Targets:")
for _, id in ipairs(IDS_W) do
    local i, m = ideal(id), med(s2, id)
    if i and m then
        print(target(format("%s within 1.2× of ideal", list[id].name), format("%.2f×", m / i), m <= 1.2 * i))
    end
end
print(speed_targets(list, s2, "py", 4, "≥ 4× faster than python3"))
io.stdout:flush()

-- 3. peak RSS, large run vs small run
print("")
print(format("## 3. Peak RSS of the leadpipe job, %s rows vs %s rows", thousands(ROWS_RSS_LARGE),
    thousands(ROWS_RSS_SMALL)))
print("")
print("| contender | rows | seconds | peak RSS (VmHWM at exit) |")
print("|---|---:|---:|---:|")
local rss_lines = {}
for _, id in ipairs(IDS_W) do
    local c = list[id]
    if c.why then
        print(format("| %s | skipped: %s | | |", c.name, c.why))
    else
        local small = job(c, FAST_URL, ROWS_RSS_SMALL, "filtered")
        local large = job(c, FAST_URL, ROWS_RSS_LARGE, "filtered")
        for _, pair in ipairs({ { small, ROWS_RSS_SMALL }, { large, ROWS_RSS_LARGE } }) do
            local j, rows = pair[1], pair[2]
            if j then
                if j.rows ~= rows then
                    fail(format("%s read %s rows, the audience has %s", c.name, thousands(j.rows),
                        thousands(rows)))
                end
                print(format("| %s | %s | %.2f | %s |", c.name, thousands(rows), j.seconds,
                    mb(j.rss_kb or 0)))
            end
        end
        if small and large and small.rss_kb and large.rss_kb then
            local d = large.rss_kb - small.rss_kb
            rss_lines[#rss_lines + 1] = target(format("%s RSS difference ≤ 8 MB", c.name), mb(d),
                d <= RSS_TARGET_KB)
        end
    end
end
print("")
print("Targets:")
print(#rss_lines > 0 and concat(rss_lines, "\n") or "- not measured")
io.stdout:flush()

-- 4 and 5. hooks written by others
print("")
print("## 4. One-page decode (" .. HOOK_DIR .. "/decode_page.lua)")
print(hook("decode_page.lua"))
print("")
print("## 5. Plain where (" .. HOOK_DIR .. "/where_plain.lua)")
print(hook("where_plain.lua"))
print("")
print("## 6. Run changes (" .. HOOK_DIR .. "/changes.lua)")
print(hook("changes.lua"))

print("")
print(format("Targets met: %d of %d. Total time %.0f s. Load average at the end %s.", targets.met,
    targets.met + targets.missed, core.now() - t_start, loadavg()))
if #failures > 0 then
    print("")
    print(format("**FAILED**: %d problem(s):", #failures))
    for _, f in ipairs(failures) do print("- " .. f) end
    os.exit(1)
end
print("All contenders agree.")
if STRICT and targets.missed > 0 then os.exit(3) end

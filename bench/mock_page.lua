-- bench/mock_page.lua: what one 500-row results page costs the fake API (leadpipe.mock).
--
-- Fetches N sequential 500-row pages of a 1,000,000-row run over one keep-alive connection
-- (one curl process, URL globbing), plain and gzipped, and reports pages/s, rows/s, bytes
-- per page and the server's CPU per page (the server runs in this process, so os.clock()
-- counts its threads). Every gzipped page is compressed when it is served (the fake keeps no
-- cache: it is a test tool). With wrk installed it also reports wrk's requests/s (2 threads,
-- 4 connections, one page).
-- Not a test: numbers only.
--
--   make bench      or      lua5.4 bench/mock_page.lua      (LEADPIPE_BENCH_PAGES=N)
local mock = require "leadpipe.mock"

local PAGES = tonumber(os.getenv("LEADPIPE_BENCH_PAGES") or "") or 200
local LIMIT = 500

local shell = require "spec.support.shell"
local sh, quote = shell.output, shell.quote

local function now()
    return tonumber(sh("date +%s.%N")) or os.time()
end

local srv = assert(mock.start{ seed = 1, threads = 2 })
local aud = mock.AUDIENCE.large
local key = "-H " .. quote("x-api-key: " .. srv.api_key)
local base = srv.url .. "/v1/intent/audiences/" .. aud .. "/runs"
local created = sh("curl -s -X POST " .. key .. " " .. quote(base))
local run_id = assert(created:match('"id":"([^"]+)"'), created)
local url = base .. "/" .. run_id .. "/results?limit=" .. LIMIT

-- warm up (first request, lazy setup)
sh("curl -s -o /dev/null " .. key .. " " .. quote(url .. "&offset=0"))

local function sequential(label, extra)
    local last = (PAGES - 1) * LIMIT
    local cmd = ("curl -s %s %s -o /dev/null -w '%%{http_code} %%{size_download}\\n' %s"):format(
        extra, key, quote(url .. "&offset=[0-" .. last .. ":" .. LIMIT .. "]"))
    srv:reset_stats()
    local cpu0, t0 = os.clock(), now()
    local out = sh(cmd)
    local wall, cpu = now() - t0, os.clock() - cpu0
    local n, bytes = 0, 0
    for code, size in out:gmatch("(%d+) (%d+)") do
        assert(code == "200", "status " .. code)
        n = n + 1
        bytes = bytes + tonumber(size)
    end
    assert(n == PAGES, "expected " .. PAGES .. " pages, got " .. n)
    local st = srv:stats()
    print(("%-6s %4d pages x %d rows in %.2f s: %7.1f pages/s %9.0f rows/s  %8.0f bytes/page  " ..
        "server CPU %.2f ms/page  connections %d"):format(label, n, LIMIT, wall, n / wall,
        n * LIMIT / wall, bytes / n, cpu * 1000 / n, st.connections))
end

print(("leadpipe.mock page benchmark (%s, 1,000,000-row run, limit %d)"):format(srv.url, LIMIT))
sequential("plain", "")
sequential("gzip", "--compressed")          -- each page generated and compressed per request

if sh("command -v wrk"):match("wrk") then
    for _, mode in ipairs{ { "plain", "" }, { "gzip", "-H 'Accept-Encoding: gzip'" } } do
        local out = sh(("wrk -t2 -c4 -d3s %s %s %s 2>&1"):format(key, mode[2],
            quote(url .. "&offset=500000")))
        local rps = tonumber(out:match("Requests/sec:%s*([%d%.]+)") or "")
        local tput = out:match("Transfer/sec:%s*(%S+)") or "?"
        if rps then
            print(("wrk %-6s (2 threads, 4 connections, 3 s): %7.1f pages/s %9.0f rows/s  %s/s")
                :format(mode[1], rps, rps * LIMIT, tput))
        else
            print("wrk failed: " .. out)
        end
    end
else
    print("(install wrk for a concurrent load figure: apt-get install wrk)")
end

srv:stop()

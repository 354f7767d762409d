-- tools/bench_server.lua: the fake Leadpipe API for `make bench`, in its own process.
--
--   lua5.4 tools/bench_server.lua [--rows 1000,100000] [--latency-ms 50] [--threads 4]
--                                 [--gzip] [--seed 1] [--duration 1800]
--
-- Serves one audience per --rows entry on 127.0.0.1 (a free port), runs complete at once
-- (queued_ms = running_ms = 0), and prints leadpipe.mock's banner (URL, key, one
-- "audience <id> (rows_N, N rows)" line each) on stdout, then waits for SIGTERM/SIGINT or
-- --duration seconds (a bound, so a lost server cannot outlive the benchmark for long).
-- Audience ids are fixed UUIDs made from the row count (bench/harness.lua makes the same).
-- Gzip is off unless --gzip, so every contender receives the same bytes. Run by
-- tools/bench.sh; LUA_PATH/LUA_CPATH must reach lua/ and the build (the Makefile sets them).
local mock = require "leadpipe.mock"

local opts = { rows = "1000", latency_ms = 0, threads = 4, gzip = false, seed = 1, duration = 1800 }
local i = 1
while i <= #arg do
    local a = arg[i]
    if a == "--gzip" then
        opts.gzip = true
        i = i + 1
    elseif a == "--rows" then
        opts.rows = arg[i + 1]
        i = i + 2
    elseif a == "--latency-ms" or a == "--threads" or a == "--seed" or a == "--duration" then
        local v = tonumber(arg[i + 1] or "")
        if not v then
            io.stderr:write("bench_server: ", a, " needs a number\n")
            os.exit(2)
        end
        opts[a:sub(3):gsub("-", "_")] = v
        i = i + 2
    else
        io.stderr:write("bench_server: unknown argument ", tostring(a), "\n")
        os.exit(2)
    end
end

local audiences, seen = {}, {}
for n in tostring(opts.rows):gmatch("%d+") do
    local rows = tonumber(n)
    if not seen[rows] then
        seen[rows] = true
        audiences[#audiences + 1] = {
            id = ("00000000-0000-4000-8000-%012d"):format(rows),
            rows = rows,
            name = "rows_" .. rows,
        }
    end
end
if #audiences == 0 then
    io.stderr:write("bench_server: --rows needs at least one row count\n")
    os.exit(2)
end

local ok, err = mock.serve{
    port = 0,
    audiences = audiences,
    queued_ms = 0,
    running_ms = 0,
    latency_ms = opts.latency_ms,
    threads = opts.threads,
    gzip = opts.gzip,
    seed = opts.seed,
    duration = opts.duration,
}
if not ok then
    io.stderr:write("bench_server: ", tostring(err), "\n")
    os.exit(1)
end

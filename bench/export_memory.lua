-- Benchmark: client:export_csv() streams at constant memory. Exports a 10,000-, a 100,000-
-- and a 1,000,000-row run of the fake API to a file, each in a child process (the fake runs in
-- this one), and prints each child's peak RSS (VmHWM). Not a test: run it with `make bench`.
--   lua bench/export_memory.lua            the comparison
--   lua bench/export_memory.lua child URL KEY AUDIENCE RUN FILE   one export (internal)

local leadpipe = require "leadpipe"
local core = require "leadpipe.core"

local function peak_rss_kib()
    local f = io.open("/proc/self/status")
    if not f then return nil end
    local s = f:read("*a")
    f:close()
    return tonumber(s:match("VmHWM:%s*(%d+)"))
end

if arg[1] == "child" then
    local url, key, aud, run_id, file = arg[2], arg[3], arg[4], arg[5], arg[6]
    local client = leadpipe.new{ api_key = key, base_url = url }
    local t0 = core.now()
    local r = assert(client:export_csv(aud, run_id, { path = file }))
    print(r.bytes, core.now() - t0, peak_rss_kib())
    return
end

local mock = require "leadpipe.mock"
local A10K = "1e0a0000-0000-4000-8000-000000010000"
local A100K = "1e0a0000-0000-4000-8000-000000100000"
local A1M = "1e0a0000-0000-4000-8000-000001000000"
local srv = assert(mock.start{ export_cap = 2000000, audiences = {
    { id = A10K, rows = 10000, name = "10k" }, { id = A100K, rows = 100000, name = "100k" },
    { id = A1M, rows = 1000000, name = "1M" },
} })
local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
local lua = arg[-1] or "lua"
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))

print("client:export_csv() to a file, in a child process; peak RSS of that process")
print(("%-10s %14s %9s %10s %14s"):format("rows", "bytes", "seconds", "MB/s", "peak RSS KiB"))
for _, case in ipairs({ { A10K, 10000 }, { A100K, 100000 }, { A1M, 1000000 } }) do
    local aud, rows = case[1], case[2]
    local run = assert(client:create_run(aud))
    assert(client:wait_run(aud, run.id))
    local file = dir .. "/" .. rows .. ".csv"
    local cmd = ("%s bench/export_memory.lua child %s %s %s %s %s"):format(lua, srv.url,
        srv.api_key, aud, run.id, file)
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    local bytes, secs, rss = out:match("^(%d+)%s+(%S+)%s+(%d+)")
    assert(bytes, "the child failed: " .. out)
    print(("%-10d %14d %9.2f %10.1f %14d"):format(rows, tonumber(bytes), tonumber(secs),
        tonumber(bytes) / tonumber(secs) / 1e6, tonumber(rss)))
    os.remove(file)
end
os.execute("rm -rf " .. dir)
client:close()
srv:stop()

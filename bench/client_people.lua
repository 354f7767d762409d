-- Benchmark: how fast client:people() reads rows from the fake API (in this process, on
-- loopback), with and without gzip and prefetch, and what one page costs to decode.
-- Not a test: run it with `make bench`. Rows read per case: LEADPIPE_BENCH_ROWS (100000).

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local core = require "leadpipe.core"

local ROWS = tonumber(os.getenv("LEADPIPE_BENCH_ROWS")) or 100000

local function read_rows(client, aud, run_id, prefetch)
    local t0, n = core.now(), 0
    for _ in client:people(aud, run_id, { limit = 500, prefetch = prefetch }) do
        n = n + 1
        if n >= ROWS then break end
    end
    return n, core.now() - t0
end

print(("client:people() over %d rows of a 1,000,000-row run, 500 rows a page"):format(ROWS))
print(("%-6s %-9s %10s %12s"):format("gzip", "prefetch", "seconds", "rows/s"))
for _, gzip in ipairs({ true, false }) do
    local srv = assert(mock.start{ gzip = gzip })
    local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
    local aud = mock.AUDIENCE.large
    local run = assert(client:create_run(aud))
    assert(client:wait_run(aud, run.id))
    for _, prefetch in ipairs({ 0, 1, 2 }) do
        local n, dt = read_rows(client, aud, run.id, prefetch)
        print(("%-6s %-9d %10.2f %12.0f"):format(tostring(gzip), prefetch, dt, n / dt))
    end
    client:close()
    srv:stop()
end

-- Decoding alone: one 500-row page body, decoded again and again.
local srv = assert(mock.start{ gzip = false })
local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
local aud = mock.AUDIENCE.large
local run = assert(client:create_run(aud))
assert(client:wait_run(aud, run.id))
local status, _, body = client.requester:request{
    path = "/v1/intent/audiences/" .. aud .. "/runs/" .. run.id .. "/results",
    query = { limit = 500 }, raw = true,
}
assert(status == 200)
local cjson = require "cjson"
local N = 50
local t0 = os.clock()
for _ = 1, N do cjson.decode(body) end
local plain = (os.clock() - t0) / N
t0 = os.clock()
for _ = 1, N do core.decode(body) end
local ours = (os.clock() - t0) / N
print(("decode of one page (%d bytes): lua-cjson alone %.2f ms (%.1f us/row), "
    .. "core.decode %.2f ms (%.1f us/row)"):format(#body, plain * 1e3, plain / 500 * 1e6,
    ours * 1e3, ours / 500 * 1e6))
client:close()
srv:stop()

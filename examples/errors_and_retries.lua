-- errors_and_retries: what leadpipe does when things go wrong, against the fake API.
--
--   lua5.4 examples/errors_and_retries.lua      (LUA_PATH/LUA_CPATH as in the Makefile)
--
-- 1. Transient failures (429 with Retry-After, 500/502/503, dropped connections, truncated
--    bodies) are retried with backoff, and every row still arrives exactly once.
-- 2. Calls that do one thing return nil, err; err.kind says what kind of failure it was.
-- 3. Iterators raise the error instead (a loop that stopped silently would lose rows):
--    wrap them in pcall where you want to handle it.
-- 4. A failed run carries the run's errorCode and errorMessage.
-- The API key never appears in an error or a log line.

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"

local function show(label, err)
    print(("%-22s kind=%s status=%s retryable=%s"):format(label, tostring(err.kind),
        tostring(err.status), tostring(err.retryable)))
    print(("%-22s %s"):format("", tostring(err)))
end

-- Every second request fails in one of these ways (each only once: a retry gets through).
local server = assert(mock.start{
    faults = { every = 2, seed = 7, retry_after = 0,
               kinds = { "429", "500", "502", "503", "drop", "truncate" } },
})
local AUD = mock.AUDIENCE

-- ----- 1. retries ----------------------------------------------------------------------------

local retries = 0
local client = leadpipe.new{
    api_key = server.api_key,
    base_url = server.url,
    max_retries = 5,        -- per request (default 3)
    backoff_base = 0.01,    -- first backoff in seconds, doubled each time, with jitter
    logger = function(event)
        if event.type == "retry" then
            retries = retries + 1
            io.stderr:write(("retry %d of %s %s after %s (%s), waiting %.2f s\n"):format(
                event.attempt + 1, event.method, event.path:gsub("^/v1/intent/audiences/", ""),
                tostring(event.status or "no response"), tostring(event.message), event.delay))
        end
    end,
}

local run = leadpipe.assert(client:create_run(AUD.small))
leadpipe.assert(client:wait_run(AUD.small, run.id, { interval = 0.05 }))
local rows, distinct = 0, {}
for person in client:people(AUD.small, run.id, { limit = 100 }) do
    rows = rows + 1
    distinct[person.hashedEmail] = true
end
local ndistinct = 0
for _ in pairs(distinct) do ndistinct = ndistinct + 1 end
local faults = server:stats().faults
print(("retries: read %d rows (%d distinct) of run %s; %d faults injected, %d retries")
    :format(rows, ndistinct, run.id, faults, retries))

server:configure{ faults = false }

-- ----- 2. errors as values -------------------------------------------------------------------

local bad_key = leadpipe.new{ api_key = "sk_live_not_the_right_key", base_url = server.url }
local none, err = bad_key:create_run(AUD.small)
assert(none == nil and leadpipe.is_error(err))
show("wrong API key:", err)
assert(not tostring(err):find("sk_live_not_the_right_key", 1, true))

err = select(2, client:create_run("00000000-0000-4000-8000-000000000000"))
show("unknown audience:", err)

err = select(2, client:create_run("not-a-uuid")) -- caught before any request is sent
show("bad argument:", err)

-- No retries allowed: a 503 comes straight back, marked retryable.
local impatient = leadpipe.new{ api_key = server.api_key, base_url = server.url, max_retries = 0 }
server:configure{ faults = { every = 1, kinds = { "503" }, retry_after = 0 } }
err = select(2, impatient:list_runs(AUD.small))
show("no retries left:", err)
server:configure{ faults = false }

-- ----- 3 and 4. a failed run; iterators raise ------------------------------------------------

local failing = leadpipe.assert(client:create_run(AUD.failing))
err = select(2, client:wait_run(AUD.failing, failing.id, { interval = 0.05 }))
show("failed run:", err)
print(("%-22s errorCode=%s errorMessage=%s"):format("", tostring(err.run and err.run.errorCode),
    tostring(err.run and err.run.errorMessage)))

local ok, caught = pcall(function()
    for _ in client:people(AUD.failing, failing.id) do end
end)
assert(not ok and leadpipe.is_error(caught))
show("iterator raised:", caught)

client:close()
server:stop()

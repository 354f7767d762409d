-- Properties of the client against the fake API with injected faults, over 20 seeds x 5
-- fault mixes: every row exactly once (hashedEmail unique, count = total), exactly one run
-- created, and no request sent after the client learnt of a Retry-After and before it
-- expired (the rate gate). Time is virtual: the host's sleep moves its clock forward
-- instead of waiting, so Retry-After seconds cost nothing; sends, 429s and the gate are
-- all measured on that one clock, from the client's log events.

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local core = require "leadpipe.core"
local hosts = require "leadpipe.hosts"

local AUD = "3b5d7f91-2c4e-4a6b-8d0f-1a3c5e7f9b2d"
local ROWS = 130
local SEEDS = 20

local MIXES = {
    { name = "429 only", faults = { rate = 0.3, kinds = { "429" } }, max_retries = 3, limit = 50 },
    { name = "5xx", faults = { rate = 0.3, kinds = { "500", "502", "503" } }, max_retries = 3,
      limit = 40, prefetch = 3 },
    { name = "cut bodies", faults = { rate = 0.3, kinds = { "drop", "truncate" } }, max_retries = 3,
      limit = 30, prefetch = 2 },
    { name = "everything", faults = { rate = 0.4 }, max_retries = 4, limit = 50, prefetch = 4 },
    -- no retries inside the client: the caller resumes, and the gate holds its next call
    { name = "429s, caller resumes", faults = { rate = 0.4, kinds = { "429", "429_date", "500" } },
      max_retries = 0, limit = 50, prefetch = 2 },
}

-- A blocking host on a virtual clock: sleep(s) moves the clock s forward at once.
local function virtual_host()
    local skew = 0
    return {
        name = "virtual",
        now = function() return core.now() + skew end,
        sleep = function(s) if s > 0 then skew = skew + s end end,
        wait_io = hosts.blocking.wait_io,
    }
end

-- Calls f until it succeeds or fails with an error no retry can cure (at most 100 times).
local function persist(f)
    local v, err
    for _ = 1, 100 do
        v, err = f()
        if v or not err.retryable then return v, err end
    end
    return v, err
end

-- Checks the rate gate on the events: returns the number of violations and of 429/503s
-- with a Retry-After.
local function gate_violations(events)
    local gates, bad = {}, 0
    for _, e in ipairs(events) do
        if (e.type == "retry" or e.type == "error") and e.retry_after
            and (e.status == 429 or e.status == 503) then
            gates[#gates + 1] = { from = e.at, to = e.at + e.retry_after }
        elseif e.type == "send" then
            for _, g in ipairs(gates) do
                if e.at > g.from and e.at < g.to - 1e-6 then bad = bad + 1 end
            end
        end
    end
    return bad, #gates
end

describe("properties under injected faults", function()
    local srv

    setup(function()
        srv = mock.start{ seed = 5, audiences = { { id = AUD, rows = ROWS } } }
    end)

    teardown(function()
        srv:stop()
    end)

    for _, mix in ipairs(MIXES) do
        it(("%s: %d seeds, every row once, one run, no send through a shut gate"):format(mix.name, SEEDS),
            function()
                local gates_seen, held = 0, 0
                local faults_before = srv:stats().faults
                for seed = 1, SEEDS do
                    local faults = { seed = seed, retry_after = 1 }
                    for k, v in pairs(mix.faults) do faults[k] = v end
                    srv:configure{ faults = faults }
                    local runs_before = srv:stats().runs_created
                    local events = {}
                    local client = leadpipe.new{
                        api_key = srv.api_key, base_url = srv.url, host = virtual_host(),
                        max_retries = mix.max_retries, backoff_base = 0.01, backoff_max = 0.05,
                        poll_interval = 0.01, logger = function(e) events[#events + 1] = e end,
                    }
                    local key = "property-" .. seed .. "-" .. mix.name:gsub("%W", "")
                    local run = assert(persist(function()
                        return client:create_run(AUD, { idempotency_key = key })
                    end))
                    assert(persist(function() return client:wait_run(AUD, run.id, { timeout = 60 }) end))
                    local seen, count, total = {}, 0, nil
                    for _ = 1, 100 do
                        local ok, err = pcall(function()
                            for p in client:pages(AUD, run.id, { limit = mix.limit, offset = count,
                                                                 prefetch = mix.prefetch }) do
                                total = p.total
                                for _, row in ipairs(p.results) do
                                    assert(not seen[row.hashedEmail], "row repeated: " .. row.hashedEmail)
                                    seen[row.hashedEmail] = true
                                    count = count + 1
                                end
                            end
                        end)
                        if ok then break end
                        assert(leadpipe.is_error(err) and err.retryable, tostring(err))
                    end
                    client:close()
                    assert.are.equal(ROWS, total)
                    assert.are.equal(ROWS, count, "seed " .. seed)
                    assert.are.equal(1, srv:stats().runs_created - runs_before, "seed " .. seed)
                    local bad, gates = gate_violations(events)
                    assert.are.equal(0, bad, "seed " .. seed .. ": sends through a shut gate")
                    gates_seen = gates_seen + gates
                    for _, e in ipairs(events) do
                        if e.type == "gate" then held = held + 1 end
                    end
                end
                srv:configure{ faults = false }
                assert.is_true(srv:stats().faults - faults_before >= SEEDS, "too few faults injected")
                if mix.faults.kinds == nil or mix.faults.kinds[1] == "429" then
                    assert.is_true(gates_seen > 0, "no Retry-After was met")
                end
                if mix.max_retries == 0 then
                    assert.is_true(held > 0, "the gate never held a call back")
                end
            end)
    end

    it("holds the caller's next call until a Retry-After has passed", function()
        srv:configure{ faults = { every = 1, kinds = { "429" }, retry_after = 1 } }
        local h = virtual_host()
        local events = {}
        local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, host = h, max_retries = 0,
                                     logger = function(e) events[#events + 1] = e end }
        local t0 = h.now()
        local _, err = client:list_runs(AUD)
        assert.are.equal("rate_limited", err.kind)
        assert.are.equal(1, err.retry_after)
        srv:configure{ faults = false }
        assert(client:list_runs(AUD))
        assert.is_true(h.now() - t0 >= 1, "the second call went out early")
        assert.are.equal(0, (gate_violations(events)))
        client:close()
    end)
end)

-- client:changes on an event-loop host: the "luv" host (plain lua-luv), the diff run in a
-- coroutine by leadpipe.hosts.run while the loop keeps turning, against the fake API with
-- latency. The loop is bounded: run_loop() stops it after a deadline.

local luv_loop = require "spec.support.luv_loop"
local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local hosts = require "leadpipe.hosts"
local ref = require "spec.support.changes_ref"

local FIELDS = { "intent.score", "jobTitle", "seniority", "company.name" }

if luv_loop.pending_without_luv("client:changes() on the luv host") then return end
local uv, run_loop = luv_loop.uv, luv_loop.run_loop

describe("client:changes() on the luv host", function()
    local srv, from, to, exp
    setup(function()
        srv = assert(mock.start{ seed = 8, latency_ms = 20 })
        local blocking = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
        local runs = assert(blocking:latest_runs(mock.AUDIENCE.daily, 2))
        from, to = runs[2].id, runs[1].id
        exp = ref.expected(ref.read(blocking, mock.AUDIENCE.daily, from),
            ref.read(blocking, mock.AUDIENCE.daily, to), FIELDS)
        blocking:close()
    end)
    teardown(function() srv:stop() end)

    it("finds the same changes in a coroutine while the loop keeps turning", function()
        local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, host = "luv" }
        local got, failure, checked
        local beats, timer = 0, uv.new_timer()
        timer:start(10, 10, function() beats = beats + 1 end)
        hosts.run(function()
            -- a while loop: PUC Lua 5.1 cannot yield inside a generic for
            local runs = assert(client:latest_runs(mock.AUDIENCE.daily, 2))
            checked = runs[1].id == to
            got = ref.collect(client:changes(mock.AUDIENCE.daily, from, to, { limit = 250 }))
            client:close()
            timer:close()
        end, function(err)
            failure = err
            timer:close()
        end)
        assert.is_true(run_loop(60))
        assert.is_nil(failure, tostring(failure))
        assert.is_true(checked)
        ref.check(exp, got)
        assert.is_true(beats > 5) -- the loop turned for others during the diff
        assert.is_true(client.host.stats.wakeups > 0)
    end)

    it("refuses to run outside a coroutine, before anything is sent", function()
        local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, host = "luv" }
        srv:reset_stats()
        local ok, err = pcall(function()
            local it = client:changes(mock.AUDIENCE.daily, from, to) -- (not a tail call: its line is named)
            return it
        end)
        assert.is_false(ok)
        assert.is_true(leadpipe.is_error(err))
        assert.are.equal("NOT_IN_COROUTINE", err.code)
        assert.is_truthy(err.where:find("changes_luv_spec.lua", 1, true), err.where) -- the caller's line
        local runs, lerr = client:latest_runs(mock.AUDIENCE.daily)
        assert.is_nil(runs)
        assert.are.equal(lerr.kind, err.kind)
        local n = 0
        for _, by in pairs(srv:stats().requests) do
            for _, c in pairs(by) do n = n + c end
        end
        assert.are.equal(0, n)
        client:close()
    end)
end)

-- The `deadline` option (leadpipe/deadline.lua): one budget in seconds for a whole call
-- (wait_run, results, pages, people, stats, export_csv) across its waits, pages, retries and
-- rate-gate pauses; when it runs out the call fails with kind "timeout", code "DEADLINE",
-- saying how far it got. Against the fake, on the curl wire (spec/luv_spec.lua reads with one
-- on the luv host, spec/openresty_serve_spec.lua through nginx). How soon a call fails is
-- measured by bench/serve.lua.

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"

describe("deadline", function()
    local srv, client, run_id

    local function new_client(opts)
        local o = { api_key = srv.api_key, base_url = srv.url }
        for k, v in pairs(opts or {}) do o[k] = v end
        return leadpipe.new(o)
    end

    local function is_deadline(err, seconds)
        assert.is_true(leadpipe.is_error(err), tostring(err))
        assert.are.same({ "timeout", "DEADLINE", seconds }, { err.kind, err.code, err.deadline })
        assert.truthy(err.message:find("deadline of " .. seconds .. " s passed", 1, true), err.message)
    end

    setup(function()
        srv = assert(mock.start{})
        client = new_client()
        run_id = assert(client:create_run(srv.audience)).id
        assert(client:wait_run(srv.audience, run_id, { interval = 0.05 }))
    end)

    teardown(function()
        if client then client:close() end
        if srv then srv:stop() end
    end)

    after_each(function()
        srv:configure{ latency_ms = 0, faults = false, queued_ms = 0 }
    end)

    it("is checked by every waiting call before any request", function()
        srv:reset_stats()
        local sink = function() return true end
        for _, bad in ipairs({ 0, -1, "3", 0 / 0 }) do
            local calls = {
                function() return client:wait_run(srv.audience, run_id, { deadline = bad }) end,
                function() return client:results(srv.audience, run_id, { deadline = bad }) end,
                function() return client:stats(srv.audience, run_id, { deadline = bad }) end,
                function()
                    return client:export_csv(srv.audience, run_id, { sink = sink, deadline = bad })
                end,
                function() return pcall(client.pages, client, srv.audience, run_id, { deadline = bad }) end,
                function() return pcall(client.people, client, srv.audience, run_id, { deadline = bad }) end,
            }
            for i, call in ipairs(calls) do
                local a, err = call()
                assert.is_falsy(a, "call " .. i)
                assert.are.same({ "invalid_argument", "deadline" }, { err.kind, err.argument })
            end
        end
        local requests = 0
        for _, by_status in pairs(srv:stats().requests) do
            for _, n in pairs(by_status) do requests = requests + n end
        end
        assert.are.equal(0, requests)
    end)

    it("ends people() at the deadline with the rows handed out and the offset reached", function()
        local n = 0
        local ok, err = pcall(function()
            for _ in client:people(srv.audience, run_id, { limit = 50, prefetch = 0, deadline = 1,
                    on_page = function() srv:configure{ latency_ms = 5000 } end }) do
                n = n + 1
            end
        end)
        assert.is_false(ok)
        is_deadline(err, 1)
        assert.are.same({ 50, 50, 50 }, { n, err.rows, err.offset })
        assert.truthy(err.message:find("after 50 rows, at offset 50", 1, true), err.message)
    end)

    it("counts only the rows people() handed out, after where", function()
        local kept = 0
        local ok, err = pcall(function()
            for _ in client:people(srv.audience, run_id, { limit = 100, prefetch = 0, deadline = 1,
                    where = { min_score = 90 },
                    on_page = function() srv:configure{ latency_ms = 5000 } end }) do
                kept = kept + 1
            end
        end)
        assert.is_false(ok)
        is_deadline(err, 1)
        assert.is_true(kept < 100)
        assert.are.same({ kept, 100 }, { err.rows, err.offset })
    end)

    it("ends pages() once it has passed, even with the next pages already in", function()
        local got = 0
        local ok, err = pcall(function()
            for _ in client:pages(srv.audience, run_id, { limit = 100, deadline = 1 }) do
                got = got + 1
                -- the caller's own work takes the rest of the budget
                if got == 2 then require("leadpipe.core").sleep(1.1) end
            end
        end)
        assert.is_false(ok)
        is_deadline(err, 1)
        assert.are.same({ 2, 200, 200 }, { got, err.rows, err.offset })
    end)

    it("cuts results(), stats() and export_csv() against a server that stops answering", function()
        srv:configure{ latency_ms = 5000 }
        local page, err = client:results(srv.audience, run_id, { offset = 300, deadline = 0.3 })
        assert.is_nil(page)
        is_deadline(err, 0.3)
        assert.are.equal(300, err.offset)
        local st
        st, err = client:stats(srv.audience, run_id, { deadline = 0.3 })
        assert.is_nil(st)
        is_deadline(err, 0.3)
        local path = os.tmpname()
        os.remove(path)
        local ex
        ex, err = client:export_csv(srv.audience, run_id, { path = path, deadline = 0.3 })
        assert.is_nil(ex)
        is_deadline(err, 0.3)
        assert.is_nil(io.open(path, "rb"))
    end)

    it("ends wait_run at the deadline when it comes before the wait's timeout", function()
        srv:configure{ queued_ms = 60000 }
        local pending = assert(client:create_run(srv.audience))
        local run, err = client:wait_run(srv.audience, pending.id, { interval = 0.05, deadline = 0.3 })
        assert.is_nil(run)
        is_deadline(err, 0.3)
        run, err = client:wait_run(srv.audience, pending.id,
            { interval = 0.05, timeout = 0.2, deadline = 30 })
        assert.is_nil(run)
        assert.are.same({ "timeout", "WAIT_TIMEOUT" }, { err.kind, err.code })
    end)

    it("does not retry past it, and says what failed last", function()
        local c = new_client{ max_retries = 5, backoff_base = 2, backoff_max = 2 }
        srv:configure{ faults = { every = 1, kinds = { "503" } } }
        srv:reset_stats()
        local page, err = c:results(srv.audience, run_id, { offset = 600, deadline = 0.5 })
        assert.is_nil(page)
        is_deadline(err, 0.5)
        assert.are.equal(503, err.status)
        assert.truthy(err.message:find("unavailable", 1, true), err.message)
        assert.are.equal(1, srv:stats().requests.results[503])
        c:close()
    end)

    it("does not wait for a rate gate that opens after it", function()
        local c = new_client{ max_retries = 0 }
        srv:configure{ faults = { every = 1, kinds = { "429" }, retry_after = 30 } }
        -- (an offset no other case asked for: the fake lets a faulted request's repeat through)
        local _, err = c:results(srv.audience, run_id, { offset = 700 })
        assert.are.equal("rate_limited", err.kind)
        srv:configure{ faults = false }
        srv:reset_stats()
        local page
        page, err = c:results(srv.audience, run_id, { offset = 700, deadline = 1 })
        assert.is_nil(page)
        is_deadline(err, 1)
        assert.is_nil(srv:stats().requests.results[200])
        c:close()
    end)
end)

-- The socket-action mode of core.session and the "luv" host (plain lua-luv), against the
-- fake API on loopback. Every loop is bounded: run_loop() stops the loop after a deadline.

local luv_loop = require "spec.support.luv_loop"
local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local core = require "leadpipe.core"
local hosts = require "leadpipe.hosts"

local PUC51 = _VERSION == "Lua 5.1" and rawget(_G, "jit") == nil
local LUA = rawget(_G, "jit") and rawget(_G, "jit").version or _VERSION
local AUD = "11111111-2222-4333-8444-555555555555"

-- Drains an iterator with a while loop (PUC Lua 5.1 cannot yield inside a generic for).
local function each(iter, fn)
    for _ = 1, 1e7 do
        local v = iter()
        if v == nil then return end
        fn(v)
    end
    error("iterator did not end")
end

local function note(fmt, ...)
    io.stderr:write("# ", fmt:format(...), "\n")
end

if luv_loop.pending_without_luv("luv host") then return end
local uv, run_loop = luv_loop.uv, luv_loop.run_loop

describe("core.session{ mode = 'socket' }", function()
    local srv
    setup(function()
        srv = assert(mock.start{ latency_ms = 20 })
    end)
    teardown(function() srv:stop() end)
    after_each(function() collectgarbage() end)

    it("reports its mode and keeps each mode's methods to itself", function()
        local s = core.session{ mode = "socket" }
        local p = core.session{}
        finally(function() s:close(); p:close() end)
        assert.are.equal("socket", s:mode())
        assert.are.equal("poll", p:mode())
        assert.has_error(function() s:perform() end)
        assert.has_error(function() s:poll(0) end)
        assert.has_error(function() p:socket_changes() end)
        assert.has_error(function() p:timer() end)
        assert.has_error(function() p:socket_action() end)
        assert.has_error(function() core.session{ mode = "epoll" } end)
        assert.has_error(function() s:socket_action(3, "x") end)
        assert.has_error(function() s:socket_action(-1, "r") end)
        assert.truthy(tostring(s):match("socket mode"))
    end)

    it("records the sockets and the timer libcurl wants, and finishes a transfer driven by them", function()
        local s = core.session{ mode = "socket" }
        local ms, changed = s:timer()
        assert.is_nil(ms)
        assert.is_false(changed)
        local req = s:request{ url = srv.url .. "/v1/intent/audiences/" .. AUD .. "/runs",
                               headers = { ["x-api-key"] = srv.api_key } }
        local polls, timer, seen = {}, uv.new_timer(), {}
        local function apply()
            local ch = s:socket_changes()
            assert.are.equal(0, #ch % 2)
            for i = 1, #ch, 2 do
                local fd, what = ch[i], ch[i + 1]
                seen[what] = true
                local p = polls[fd]
                if what == "remove" then
                    if p then p:close(); polls[fd] = nil end
                else
                    if not p then
                        p = uv.new_poll(fd)
                        polls[fd] = p
                    end
                    if what == "" then p:stop() else
                        p:start(what, function(err, ev)
                            s:socket_action(fd, err and "e" or ev)
                            apply()
                        end)
                    end
                end
            end
            local t, c = s:timer()
            if c then
                timer:stop()
                if t then timer:start(t, 0, function() s:socket_action(); apply() end) end
            end
            if req:done() then uv.stop() end
        end
        apply()
        assert.is_true(run_loop(5))
        assert.is_true(req:done())
        local status = req:response()
        assert.is_true(status == 201 or status == 404) -- the fake's default audiences differ
        assert.is_true(seen.w or seen.rw or seen.r)
        req:close()
        for _, p in pairs(polls) do p:close() end
        timer:close()
        s:close()
        s:close()
        assert.has_error(function() s:socket_changes() end, "attempt to use a closed session")
        uv.run("nowait")
    end)

    it("frees transfers in flight when closed or collected", function()
        local s = core.session{ mode = "socket" }
        local reqs = {}
        for i = 1, 3 do
            reqs[i] = s:request{ url = srv.url .. "/v1/intent/audiences/" .. AUD .. "/runs",
                                 headers = { ["x-api-key"] = srv.api_key } }
        end
        assert.are.equal(0, #s:socket_changes() % 2)
        s:close()
        for i = 1, 3 do
            assert.is_true(reqs[i]:done())
            assert.are.equal("aborted", select(3, reqs[i]:response()))
        end
        local s2 = core.session{ mode = "socket" }
        s2:request{ url = srv.url .. "/v1/x", headers = {} }
        s2 = nil -- luacheck: ignore
        collectgarbage()
        collectgarbage()
    end)
end)

describe("the luv host", function()
    local srv, aud
    setup(function()
        srv = assert(mock.start{ latency_ms = 30, queued_ms = 150, running_ms = 150,
                                 audiences = { { id = AUD, rows = 5000 } } })
        aud = srv.audiences[1].id
    end)
    teardown(function() srv:stop() end)
    before_each(function()
        srv:configure{ latency_ms = 30, queued_ms = 150, running_ms = 150 }
        srv:reset_stats()
    end)
    after_each(function() collectgarbage() end)

    local function new_client(opts)
        opts = opts or {}
        opts.api_key, opts.base_url, opts.host = srv.api_key, srv.url, "luv"
        return leadpipe.new(opts)
    end

    it("fetches 5,000 rows complete and once each, waiting on the loop", function()
        local client = new_client()
        local count, unique, seen, failure = 0, 0, {}, nil
        local beats, timer = 0, uv.new_timer()
        timer:start(10, 10, function() beats = beats + 1 end)
        hosts.run(function()
            local run = assert(client:create_run(aud))
            assert(client:wait_run(aud, run.id, { interval = 0.05 }))
            each(client:people(aud, run.id, { limit = 500, prefetch = 2 }), function(p)
                count = count + 1
                if not seen[p.hashedEmail] then unique = unique + 1 end
                seen[p.hashedEmail] = true
            end)
            client:close()
            timer:close()
        end, function(err)
            failure = err
            timer:close()
        end)
        assert.is_true(run_loop(30))
        assert.is_nil(failure)
        assert.are.equal(5000, count)
        assert.are.equal(5000, unique)
        assert.is_true(beats > 10) -- the loop kept turning for others during the fetch
        local st = client.host.stats
        note("luv (%s): 5000 rows, wake-ups %d (polls %d, timers %d)", LUA, st.wakeups,
            st.polls, st.timers)
    end)

    it("reads short pages (the docs allow them) every row once, on the loop, at every prefetch", function()
        srv:configure{ latency_ms = 2, queued_ms = 0, running_ms = 0 }
        local client = new_client{ backoff_base = 0.001, backoff_max = 0.005 }
        local results, failure = {}, nil
        hosts.run(function()
            local run = assert(client:create_run(aud))
            for _, prefetch in ipairs{ 0, 1, 4, 64 } do
                srv:configure{ faults = { short = 0.4, seed = prefetch + 3, every = 7,
                    kinds = { "500", "drop", "429" }, retry_after = 0 } }
                local count, unique, seen, pages = 0, 0, {}, 0
                each(client:people(aud, run.id, { limit = 300, prefetch = prefetch,
                    on_page = function() pages = pages + 1 end }), function(p)
                    count = count + 1
                    if not seen[p.hashedEmail] then unique = unique + 1 end
                    seen[p.hashedEmail] = true
                end)
                results[#results + 1] = { prefetch = prefetch, count = count, unique = unique,
                                          pages = pages }
            end
            srv:configure{ faults = false }
            client:close()
        end, function(err) failure = err end)
        assert.is_true(run_loop(60))
        assert.is_nil(failure)
        assert.are.equal(4, #results)
        for _, r in ipairs(results) do
            assert.are.equal(5000, r.count, "prefetch " .. r.prefetch)
            assert.are.equal(5000, r.unique, "prefetch " .. r.prefetch)
            assert.is_true(r.pages > math.ceil(5000 / 300), "no short page at prefetch " .. r.prefetch)
        end
    end)

    it("has no wake-up of its own while a transfer is idle", function()
        srv:configure{ latency_ms = 1000 }
        local client = new_client()
        local st = client.host.stats
        local at, marks = {}, uv.new_timer()
        local status
        -- Snapshots at 500 ms and 950 ms: after libcurl's connect-phase timers (about 200 ms),
        -- before the answer (1 s).
        uv.update_time()
        local t0 = uv.now()
        marks:start(500, 450, function()
            at[#at + 1] = st.wakeups
            if #at == 2 then marks:close() end
        end)
        hosts.run(function()
            status = client:list_runs(aud) and "ok" or "failed"
            client:close()
        end)
        assert.is_true(run_loop(10))
        assert.are.equal("ok", status)
        assert.are.equal(2, #at)
        note("luv (%s): a 1 s request: %d wake-ups in all, %d between 500 and 950 ms; %d ms",
            LUA, st.wakeups, at[2] - at[1], uv.now() - t0)
        if not os.getenv("LEADPIPE_VALGRIND") then -- (timing: not under valgrind)
            assert.are.equal(0, at[2] - at[1])
        end
        assert.is_true(st.wakeups <= 8)
    end)

    it("refuses to run outside a coroutine before anything is sent, naming the caller's line", function()
        local client = new_client()
        local run, err = client:create_run(aud) local line = debug.getinfo(1, "l").currentline
        assert.is_nil(run)
        assert.are.equal("invalid_argument", err.kind)
        assert.are.equal("NOT_IN_COROUTINE", err.code)
        assert.truthy(err.message:find("leadpipe.hosts.run(fn)", 1, true))
        assert.truthy(err.message:find("luv_spec.lua:" .. line, 1, true))
        for _, m in ipairs{ "list_runs", "wait_run", "results", "stats", "cancel_run", "export_csv" } do
            local v, e = client[m](client, aud, "11111111-2222-4333-8444-000000000000")
            assert.is_nil(v)
            assert.are.equal("NOT_IN_COROUTINE", e.code)
        end
        local ok, e = pcall(client.people, client, aud, "11111111-2222-4333-8444-000000000000")
        assert.is_false(ok)
        assert.are.equal("NOT_IN_COROUTINE", e.code)
        ok, e = pcall(client.pages, client, aud, "11111111-2222-4333-8444-000000000000")
        assert.is_false(ok)
        assert.are.equal("NOT_IN_COROUTINE", e.code)
        assert.are.equal(0, srv:requests_seen())
        assert.are.equal(0, srv:stats().runs_created)
        client:close()
    end)

    it("passes an error raised after a wait to on_error, and reports it on stderr without one", function()
        local client = new_client()
        local got
        hosts.run(function()
            local run = assert(client:create_run(aud))
            error(leadpipe.errors.new("http", "boom after " .. run.id))
        end, function(err) got = err end)
        assert.is_true(run_loop(5))
        assert.truthy(leadpipe.is_error(got))
        assert.truthy(got.message:find("boom after", 1, true))

        local written = {}
        local real = io.stderr
        io.stderr = { write = function(_, ...) -- luacheck: ignore
            for _, s in ipairs{ ... } do written[#written + 1] = s end
        end }
        finally(function() io.stderr = real end) -- luacheck: ignore
        hosts.run(function()
            assert(client:create_run(aud))
            error(leadpipe.errors.new("http", "unhandled after a wait"))
        end)
        assert.is_true(run_loop(5))
        io.stderr = real -- luacheck: ignore
        assert.truthy(table.concat(written):find("unhandled after a wait", 1, true))
        client:close()
    end)

    it("sleeps on a timer and lets two coroutines share a client", function()
        local client = new_client()
        local slept, done = nil, 0
        hosts.run(function()
            local t = core.now()
            client.host.sleep(0.05)
            slept = core.now() - t
        end)
        for _ = 1, 2 do
            hosts.run(function()
                local run = assert(client:create_run(aud))
                assert(client:wait_run(aud, run.id, { interval = 0.05 }))
                done = done + 1
            end, function(err) error(tostring(err)) end)
        end
        assert.is_true(run_loop(10))
        assert.are.equal(2, done)
        assert.is_true(slept >= 0.045)
        client:close()
    end)

    it("cuts a wait at its deadline and wakes a waiter when the client is closed", function()
        srv:configure{ latency_ms = 400 }
        local client = new_client()
        local wire = client.requester.wire
        local r1, r2
        hosts.run(function()
            local req = wire:send{ method = "GET", url = srv.url .. "/v1/intent/audiences/" .. aud
                .. "/runs", headers = { ["x-api-key"] = srv.api_key } }
            r1 = { wire:wait(req, core.now() + 0.1) }
        end)
        hosts.run(function()
            local req = wire:send{ method = "GET", url = srv.url .. "/v1/intent/audiences/" .. aud
                .. "/runs", headers = { ["x-api-key"] = srv.api_key } }
            r2 = { wire:wait(req) }
        end)
        local closer = uv.new_timer()
        closer:start(200, 0, function() closer:close(); client:close() end)
        assert.is_true(run_loop(5))
        assert.is_nil(r1[1])
        assert.are.equal("timeout", r1[3])
        assert.is_nil(r2[1])
        assert.are.equal("aborted", r2[3])
    end)

    it("ends a read at its deadline: the loop's timer wakes it", function()
        local client = new_client()
        local run_id
        local n, err = 0, nil
        hosts.run(function()
            run_id = assert(client:create_run(aud)).id
            assert(client:wait_run(aud, run_id, { interval = 0.05 }))
            local it = client:people(aud, run_id, { limit = 50, prefetch = 0, deadline = 1,
                on_page = function() srv:configure{ latency_ms = 5000 } end })
            while it() do n = n + 1 end
        end, function(e)
            err = e
            client:close()
        end)
        assert.is_true(run_loop(10))
        assert.are.same({ "timeout", "DEADLINE", 1 }, { err.kind, err.code, err.deadline })
        assert.are.same({ 50, 50, 50 }, { n, err.rows, err.offset })
    end)

    it("reports a refused connection after its retries, with sockets reused between them", function()
        -- (libuv reports the socket error as EBADF and luv prints that line on stderr)
        local client = leadpipe.new{ api_key = "sk_test", base_url = "http://127.0.0.1:1",
                                     host = "luv", max_retries = 2, backoff_base = 0.01 }
        local v, err
        hosts.run(function()
            v, err = client:list_runs(aud)
            client:close()
        end)
        assert.is_true(run_loop(10))
        assert.is_nil(v)
        assert.are.equal("network", err.kind)
        assert.are.equal(3, err.attempts)
    end)

    it("says what to do where PUC Lua 5.1 cannot yield inside a generic for", function()
        local client = new_client()
        local got
        hosts.run(function()
            local run = assert(client:create_run(aud))
            assert(client:wait_run(aud, run.id, { interval = 0.05 }))
            local n = 0
            for _ in client:people(aud, run.id, { limit = 500 }) do n = n + 1 end
            got = n
        end, function(err) got = err end)
        assert.is_true(run_loop(20))
        client:close()
        if PUC51 then
            assert.are.equal("NOT_YIELDABLE", got.code)
            assert.truthy(got.message:find("while loop", 1, true))
        else
            assert.are.equal(5000, got)
        end
    end)
end)

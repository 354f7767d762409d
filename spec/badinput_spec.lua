-- Bad arguments to every public library function: each one is an error object of kind
-- invalid_argument whose message names the function, the argument and the rule, and no
-- request is sent (the fake API's request counter proves it). Calls on a closed client
-- are errors of kind "closed", also when the client is closed mid-iteration.

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local hosts = require "leadpipe.hosts"

local AUD = "6f1c0a4e-2b7d-4c3e-9a8f-1d2e3f4a5b6c"
local RUN = "8c4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3a"
local NAN, INF = 0 / 0, math.huge

-- Ids that are not UUIDs.
local BAD_IDS = { 5, "x", "8c4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3", AUD .. "\n", "../../admin", {}, true }

-- Runs f; returns the error it raised or returned second.
local function outcome(f)
    local ok, a, b = pcall(f)
    if not ok then return a end
    if type(a) == "function" then return nil end -- an iterator was made: no error
    return b
end

describe("bad inputs", function()
    local srv, client

    setup(function()
        srv = mock.start{ seed = 3 }
    end)

    teardown(function()
        srv:stop()
    end)

    before_each(function()
        client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, poll_interval = 0.01 }
    end)

    after_each(function()
        client:close()
        collectgarbage()
    end)

    local cases = {}
    local function case(fname, arg, label, f)
        label = label:gsub("%c", function(c) return ("\\%d"):format(c:byte()) end)
        cases[#cases + 1] = { fname = fname, arg = arg, label = label, f = f }
    end

    -- ===== leadpipe.new =====
    local function new_case(arg, value, label)
        case("leadpipe.new", arg, label or (arg .. " = " .. tostring(value)), function(s)
            local o = { api_key = s.api_key, base_url = s.url }
            o[arg] = value
            return leadpipe.new(o)
        end)
    end
    for _, v in ipairs{ "", 5, "a b", "a\nb", "a\0b", "a\tb", {}, true } do new_case("api_key", v) end
    for _, v in ipairs{
        5, "", "ftp://x.example", "http://evil.example", "http://10.0.0.1:8080", "http://192.168.1.1",
        "http://127.0.0.1.evil.example", "http://localhost.evil.example", "https://u:p@x.example",
        "https://u@x.example", "https://x.example?x=1", "https://x.example/v1?", "https://x.example/#f",
        "https://x .example", " https://x.example", "https://x.example\r\nX-Evil: 1", "https://x.example\0",
        "https://x.example\t", "https://", "https://:443", "https://x.example:0", "https://x.example:65536",
        "https://x.example:abc", "javascript:alert(1)", "//x.example", "https://-x.example",
        "https://x..example", "http://[::2]", "https://[zz]", "file:///etc/passwd", true, {},
        "https://x.example/" .. ("a"):rep(2100),
    } do
        new_case("base_url", v, "base_url = " .. ("%q"):format(tostring(v):sub(1, 40)))
    end
    for _, v in ipairs{ "yes", 1, {} } do new_case("allow_insecure_http", v) end
    for _, arg in ipairs{ "timeout", "connect_timeout" } do
        for _, v in ipairs{ 0, -1, INF, -INF, NAN, "5", 1e7, true } do new_case(arg, v) end
    end
    for _, v in ipairs{ -1, 11, 1.5, "3", INF, NAN } do new_case("max_retries", v) end
    for _, arg in ipairs{ "backoff_base", "backoff_max", "max_retry_after", "wait_timeout" } do
        for _, v in ipairs{ -1, INF, NAN, "x" } do new_case(arg, v) end
    end
    for _, v in ipairs{ 0, 1023, 1.5, INF, "1", 2 ^ 41 } do new_case("max_response", v) end
    for _, v in ipairs{ 5, "", "a\r\nX-Evil: 1", "a\nb", "a\0b", ("x"):rep(201), {} } do
        new_case("user_agent", v, "user_agent = " .. ("%q"):format(tostring(v):sub(1, 20)))
    end
    for _, v in ipairs{ "nope", 5, { now = 1 }, {} } do new_case("host", v) end
    for _, wire in ipairs{ "nope", "../x", 5 } do
        local h = { wire = wire }
        h.now, h.sleep, h.wait_io = hosts.blocking.now, hosts.blocking.sleep, hosts.blocking.wait_io
        new_case("host", h, "host with wire " .. tostring(wire))
    end
    for _, v in ipairs{ "yes", 0 } do new_case("verify", v) end
    for _, v in ipairs{ "log", 5, {} } do new_case("logger", v) end
    for _, arg in ipairs{ "poll_interval", "max_poll_interval" } do
        for _, v in ipairs{ 0, -1, INF, NAN } do new_case(arg, v) end
    end
    case("leadpipe.new", "opts", "opts = 'x'", function() return leadpipe.new("x") end)
    case("leadpipe.new", "opts", "an unknown option", function(s)
        return leadpipe.new{ api_key = s.api_key, base_url = s.url, timout = 5 }
    end)
    case("leadpipe.new", "opts", "a numeric key", function(s)
        return leadpipe.new{ api_key = s.api_key, base_url = s.url, 5 }
    end)

    -- ===== calls =====
    local function id_cases(fname, call)
        for _, v in ipairs(BAD_IDS) do
            case(fname, "audience_id", "audience_id = " .. tostring(v),
                function(_, c) return call(c, v, RUN) end)
        end
        if fname ~= "create_run" and fname ~= "list_runs" then
            for _, v in ipairs(BAD_IDS) do
                case(fname, "run_id", "run_id = " .. tostring(v), function(_, c) return call(c, AUD, v) end)
            end
        end
    end
    id_cases("create_run", function(c, a) return c:create_run(a) end)
    id_cases("list_runs", function(c, a) return c:list_runs(a) end)
    id_cases("cancel_run", function(c, a, r) return c:cancel_run(a, r) end)
    id_cases("stats", function(c, a, r) return c:stats(a, r) end)
    id_cases("export_csv", function(c, a, r) return c:export_csv(a, r) end)
    id_cases("results", function(c, a, r) return c:results(a, r) end)
    id_cases("wait_run", function(c, a, r) return c:wait_run(a, r) end)
    id_cases("pages", function(c, a, r) return c:pages(a, r) end)
    id_cases("people", function(c, a, r) return c:people(a, r) end)

    local function opt_case(fname, arg, value, call)
        case(fname, arg, arg .. " = " .. ("%q"):format(tostring(value):sub(1, 30)), function(_, c)
            return call(c, { [arg] = value })
        end)
    end
    for _, v in ipairs{ "", ("k"):rep(121), "h\195\169llo", "a\nb", "a\0b", " lead", "trail ", "tab\t",
                        5, {} } do
        opt_case("create_run", "idempotency_key", v, function(c, o) return c:create_run(AUD, o) end)
    end
    for _, v in ipairs{ 0, 101, 1.5, "5", INF, NAN } do
        opt_case("list_runs", "limit", v, function(c, o) return c:list_runs(AUD, o) end)
    end
    local page_calls = {
        results = function(c, o) return c:results(AUD, RUN, o) end,
        pages = function(c, o) return c:pages(AUD, RUN, o) end,
        people = function(c, o) return c:people(AUD, RUN, o) end,
    }
    for _, fname in ipairs{ "results", "pages", "people" } do
        for _, v in ipairs{ 0, 501, -1, 1.5, "1", INF } do opt_case(fname, "limit", v, page_calls[fname]) end
        for _, v in ipairs{ -1, 1.5, "0", INF, 2 ^ 60 } do opt_case(fname, "offset", v, page_calls[fname]) end
    end
    local wait_calls = {
        wait_run = function(c, o) return c:wait_run(AUD, RUN, o) end,
        pages = page_calls.pages, people = page_calls.people,
    }
    for _, fname in ipairs{ "wait_run", "pages", "people" } do
        for _, v in ipairs{ -1, INF, NAN, "5" } do opt_case(fname, "timeout", v, wait_calls[fname]) end
        for _, v in ipairs{ 0, -1, INF } do opt_case(fname, "interval", v, wait_calls[fname]) end
        opt_case(fname, "max_interval", 0, wait_calls[fname])
        opt_case(fname, "on_poll", "x", wait_calls[fname])
    end
    for _, fname in ipairs{ "pages", "people" } do
        for _, v in ipairs{ "yes", 1 } do opt_case(fname, "wait", v, page_calls[fname]) end
        for _, v in ipairs{ -1, 65, 1.5 } do opt_case(fname, "prefetch", v, page_calls[fname]) end
    end
    for _, v in ipairs{ "x", 5, { min_score = "x" }, { nope = 1 }, { seniority_at_least = "emperor" } } do
        opt_case("people", "where", v, page_calls.people)
    end
    opt_case("people", "filter", "x", page_calls.people)
    opt_case("people", "on_page", 5, page_calls.people)
    for fname, call in pairs{
        create_run = function(c, o) return c:create_run(AUD, o) end,
        list_runs = function(c, o) return c:list_runs(AUD, o) end,
        results = page_calls.results, wait_run = wait_calls.wait_run,
        pages = page_calls.pages, people = page_calls.people,
    } do
        case(fname, "opts", "opts = 'x'", function(_, c) return call(c, "x") end)
        case(fname, "opts", "an unknown option", function(_, c) return call(c, { limt = 5 }) end)
    end

    it("has at least 150 cases", function()
        assert.is_true(#cases >= 150, #cases .. " cases")
    end)

    for _, k in ipairs(cases) do
        it(k.fname .. ": " .. k.label .. " is invalid_argument, naming it, with no request", function()
            local before = srv:requests_seen()
            local err = outcome(function() return k.f(srv, client) end)
            assert.is_true(leadpipe.is_error(err), "not an error object: " .. tostring(err))
            assert.are.equal("invalid_argument", err.kind)
            assert.are.equal(k.arg, err.argument)
            local msg = err.message
            assert.are.equal(k.fname .. ": " .. k.arg .. " ", msg:sub(1, #k.fname + #k.arg + 3), msg)
            assert.is_true(#msg > #k.fname + #k.arg + 8, "no rule in: " .. msg)
            assert.is_nil(msg:find("%.lua:%d+:"), msg)
            assert.is_nil(msg:find("bad argument", 1, true), msg)
            assert.are.equal(before, srv:requests_seen())
        end)
    end

    describe("closed clients", function()
        local CALLS = {
            create_run = function(c) return c:create_run(AUD) end,
            list_runs = function(c) return c:list_runs(AUD) end,
            cancel_run = function(c) return c:cancel_run(AUD, RUN) end,
            stats = function(c) return c:stats(AUD, RUN) end,
            export_csv = function(c) return c:export_csv(AUD, RUN) end,
            results = function(c) return c:results(AUD, RUN) end,
            wait_run = function(c) return c:wait_run(AUD, RUN) end,
            pages = function(c) return c:pages(AUD, RUN) end,
            people = function(c) return c:people(AUD, RUN) end,
            audiences = function(c) return c:audiences() end,
            audience = function(c) return c:audience(AUD) end,
            latest_run = function(c) return c:latest_run(AUD) end,
            create_export = function(c) return c:create_export(AUD, RUN) end,
            export = function(c) return c:export(AUD, RUN, RUN) end,
        }
        for fname, call in pairs(CALLS) do
            it(fname .. " on a closed client is kind closed and sends nothing", function()
                client:close()
                client:close()
                local before = srv:requests_seen()
                local err = outcome(function() return call(client) end)
                assert.is_true(leadpipe.is_error(err), tostring(err))
                assert.are.equal("closed", err.kind)
                assert.are.equal(fname, err.call)
                assert.truthy(err.message:find(fname, 1, true))
                assert.are.equal(before, srv:requests_seen())
            end)
        end

        for _, fname in ipairs{ "pages", "people" } do
            it(fname .. " raises kind closed when the client is closed mid-iteration", function()
                local run = assert(client:create_run(srv.audience))
                assert(client:wait_run(srv.audience, run.id, { timeout = 10 }))
                local n = 0
                local ok, err = pcall(function()
                    for _ in client[fname](client, srv.audience, run.id, { limit = 10, prefetch = 4 }) do
                        n = n + 1
                        if n == 3 then client:close() end
                    end
                end)
                assert.is_false(ok)
                assert.is_true(leadpipe.is_error(err), tostring(err))
                assert.are.equal("closed", err.kind)
                assert.are.equal(fname, err.call)
                assert.are.equal(3, n)
            end)
        end

        it("a closed requester turns a call in progress into kind closed", function()
            local events = {}
            local c = leadpipe.new{ api_key = srv.api_key, base_url = srv.url,
                                    logger = function(e) events[#events + 1] = e end }
            local call = c.requester:start{ path = "/v1/intent/audiences/" .. srv.audience .. "/runs" }
            c:close()
            local status, err = c.requester:finish(call)
            assert.is_nil(status)
            assert.are.equal("closed", err.kind)
        end)
    end)
end)

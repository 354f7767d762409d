-- Specs of leadpipe.mock, the fake Leadpipe API: driven through a real HTTP client (the
-- curl command) and decoded with lua-cjson, so they test the server as any client sees it.
-- One file for the whole HTTP surface (over 500 lines): every block shares the curl helpers
-- and one running server.
local cjson = require "cjson"
local mock = require "leadpipe.mock"


local LUA = os.getenv("LEADPIPE_LUA") or "lua5.4"

-- ===== helpers ============================================================================

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local data = f:read("*a")
    f:close()
    return data
end

local function sleep(seconds)
    os.execute("sleep " .. seconds)
end

-- Headers of the last response in a curl -D file: lower-case name -> value.
local function parse_headers(text)
    local headers = {}
    for line in (text or ""):gmatch("[^\r\n]*\r?\n") do
        line = line:gsub("\r?\n$", "")
        if line:match("^HTTP/") then
            headers = {}
        else
            local name, value = line:match("^([^:]+):%s*(.-)%s*$")
            if name then headers[name:lower()] = value end
        end
    end
    return headers
end

-- Runs curl with the given arguments; returns { status, exit, headers, body }.
local function curl(args)
    local hdr, out = os.tmpname(), os.tmpname()
    local cmd = { "curl", "-s", "--max-time", "30", "-D", quote(hdr), "-o", quote(out),
                  "-w", "'%{http_code}'" }
    for _, a in ipairs(args) do cmd[#cmd + 1] = quote(a) end
    local p = io.popen(table.concat(cmd, " ") .. " 2>/dev/null; echo \" $?\"")
    local text = p:read("*a")
    p:close()
    local code, exit = text:match("(%d%d%d)%s+(%d+)%s*$")  -- the last transfer's code
    local res = {
        status = tonumber(code),
        exit = tonumber(exit),
        headers = parse_headers(read_file(hdr)),
        body = read_file(out) or "",
    }
    os.remove(hdr)
    os.remove(out)
    return res
end

local function decode(res)
    local ok, value = pcall(cjson.decode, res.body)
    assert(ok, "not JSON: " .. res.body:sub(1, 200))
    return value
end

-- One request to the fake: opts.key (false: none), headers, body, compressed, base.
local function request(srv, method, path, opts)
    opts = opts or {}
    local args = { "-X", method }
    if opts.key ~= false then
        args[#args + 1] = "-H"
        args[#args + 1] = "x-api-key: " .. (opts.key or srv.api_key)
    end
    for _, h in ipairs(opts.headers or {}) do
        args[#args + 1] = "-H"
        args[#args + 1] = h
    end
    if opts.body then
        args[#args + 1] = "-H"
        args[#args + 1] = "Content-Type: application/json"
        args[#args + 1] = "--data-binary"
        args[#args + 1] = opts.body
    end
    if opts.compressed then args[#args + 1] = "--compressed" end
    args[#args + 1] = (opts.base or srv.url) .. path
    return curl(args)
end

local function runs_path(aud)
    return "/v1/intent/audiences/" .. aud .. "/runs"
end

local function create_run(srv, aud, key)
    local res = request(srv, "POST", runs_path(aud or srv.audience), {
        headers = key and { "Idempotency-Key: " .. key } or nil,
        body = '{"runType":"manual"}',
    })
    assert(res.status == 201 or res.status == 200, res.body)
    return decode(res).data, res
end

local function results(srv, aud, run_id, query, opts)
    return request(srv, "GET", runs_path(aud) .. "/" .. run_id .. "/results" .. (query or ""), opts)
end

local function is_uuid(s)
    return type(s) == "string" and
        s:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") ~= nil
end

local function is_iso(s)
    return type(s) == "string" and s:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$") ~= nil
end

local function find_audience(srv, pred)
    for _, a in ipairs(srv.audiences) do
        if pred(a) then return a.id end
    end
end

local function assert_error(res, status, code)
    assert.are.equal(status, res.status, res.body)
    local body = decode(res)
    assert.is_table(body.error, res.body)
    assert.are.equal(code, body.error.code)
    assert.is_string(body.error.message)
    assert.is_string(body.meta.request_id)
    assert.are.equal(res.headers["x-request-id"], body.meta.request_id)
    assert.is_true(is_iso(body.meta.timestamp))
    return body
end

local parse_csv = require("spec.support.csv").parse

-- ===== specs ==============================================================================

describe("leadpipe.mock", function()
    local srv, AUD1K, AUD0, AUDFAIL, AUD20K

    setup(function()
        srv = assert(mock.start{ seed = 1 })
        AUD1K = find_audience(srv, function(a) return a.rows == 1000 and not a.fail end)
        AUD20K = find_audience(srv, function(a) return a.rows == 20000 end)
        AUD0 = find_audience(srv, function(a) return a.rows == 0 end)
        AUDFAIL = find_audience(srv, function(a) return a.fail end)
    end)

    teardown(function()
        srv:stop()
    end)

    before_each(function()
        srv:configure{ faults = false, latency_ms = 0, queued_ms = 0, running_ms = 0, gzip = true }
    end)

    after_each(function()
        collectgarbage()
    end)

    describe("start()", function()
        it("listens on 127.0.0.1 and describes itself", function()
            assert.is_truthy(srv.url:match("^http://127%.0%.0%.1:%d+$"))
            assert.are.equal("http://127.0.0.1:" .. srv.port, srv.url)
            assert.is_truthy(srv.redirect_url:match("^http://127%.0%.0%.1:%d+$"))
            assert.are_not.equal(srv.url, srv.redirect_url)
            assert.are.equal(mock.DEFAULT_KEY, srv.api_key)
            assert.are.equal(srv.audiences[1].id, srv.audience)
            assert.is_truthy(AUD1K and AUD20K and AUD0 and AUDFAIL)
            for _, a in ipairs(srv.audiences) do assert.is_true(is_uuid(a.id)) end
            assert.is_true(srv:running())
        end)

        it("keeps the API key out of tostring", function()
            local s = tostring(srv)
            assert.is_truthy(s:find(srv.url, 1, true))
            assert.is_nil(s:find(srv.api_key, 1, true))
        end)

        it("raises on bad options", function()
            assert.has_error(function() mock.start(5) end)
            assert.has_error(function() mock.start{ port = "x" } end)
            assert.has_error(function() mock.start{ port = 70000 } end)
            assert.has_error(function() mock.start{ prot = 1 } end)
            assert.has_error(function() mock.start{ audiences = { { id = "nope" } } } end)
            assert.has_error(function() mock.start{ faults = { kinds = { "418" } } } end)
            assert.has_error(function() mock.start{ faults = { rate = 2 } } end)
            assert.has_error(function() srv:configure{ latency = 5 } end)
            assert.has_error(function() srv:configure(nil) end)
        end)

        it("returns nil and a message when the port is taken, without the key", function()
            local other, err = mock.start{ port = srv.port, api_key = "sk_secret_never_shown" }
            assert.is_nil(other)
            assert.is_truthy(err:find("bind", 1, true))
            assert.is_nil(err:find("sk_secret_never_shown", 1, true))
        end)
    end)

    describe("auth and routing", function()
        it("answers 401 without or with a wrong x-api-key, before anything else", function()
            local body = assert_error(request(srv, "GET", runs_path(AUD1K), { key = false }),
                401, "UNAUTHORIZED")
            assert.is_nil(cjson.encode(body):find(srv.api_key, 1, true))
            assert_error(request(srv, "GET", runs_path(AUD1K), { key = "sk_wrong" }), 401, "UNAUTHORIZED")
            assert_error(request(srv, "GET", "/nowhere", { key = false }), 401, "UNAUTHORIZED")
            assert_error(request(srv, "POST", runs_path("not-a-uuid"), { key = false }),
                401, "UNAUTHORIZED")
        end)

        it("answers 404 for an unknown path and 405 for a wrong method", function()
            assert_error(request(srv, "GET", "/v1/intent/topics"), 404, "NOT_FOUND")
            assert_error(request(srv, "GET", runs_path(AUD1K) .. "/x/y/z"), 404, "NOT_FOUND")
            local res = request(srv, "PUT", runs_path(AUD1K))
            assert_error(res, 405, "METHOD_NOT_ALLOWED")
            assert.are.equal("GET, POST", res.headers["allow"])
            local run = create_run(srv, AUD1K)
            assert_error(request(srv, "POST", runs_path(AUD1K) .. "/" .. run.id .. "/results"),
                405, "METHOD_NOT_ALLOWED")
        end)

        it("rejects malformed ids with 400 and unknown ones with 404", function()
            local bad = assert_error(request(srv, "GET", runs_path("1234")), 400, "INVALID_PARAMETER")
            assert.are.equal("id", bad.error.param)
            local unknown = "00000000-0000-4000-8000-000000000000"
            assert_error(request(srv, "GET", runs_path(unknown)), 404, "AUDIENCE_NOT_FOUND")
            assert_error(request(srv, "POST", runs_path(unknown)), 404, "AUDIENCE_NOT_FOUND")
            assert_error(results(srv, AUD1K, "zzz"), 400, "INVALID_PARAMETER")
            assert_error(results(srv, AUD1K, unknown), 404, "RUN_NOT_FOUND")
            local run = create_run(srv, AUD1K)
            assert_error(results(srv, AUD0, run.id), 404, "RUN_NOT_FOUND")
            assert_error(request(srv, "DELETE", runs_path(AUD1K) .. "/" .. unknown), 404, "RUN_NOT_FOUND")
        end)
    end)

    describe("GET /audiences and /audiences/{id}", function()
        it("serves the Audience objects, filtered by status, counted as 'audiences'", function()
            srv:reset_stats()
            local res = request(srv, "GET", "/v1/intent/audiences?status=active&limit=2")
            assert.are.equal(200, res.status, res.body)
            local list = decode(res).data
            assert.are.equal(2, #list)
            for _, a in ipairs(list) do
                assert.are.equal("active", a.status)
                assert.is_true(is_iso(a.createdAt))
                assert.is_number(a.audienceSize)
                assert.is_string(a.name)
            end
            local one = decode(request(srv, "GET", "/v1/intent/audiences/" .. AUD1K)).data
            assert.are.equal(AUD1K, one.id)
            assert.are.equal(2, srv:stats().requests.audiences[200])
        end)

        it("refuses a bad status or limit, a malformed id and a wrong method", function()
            local bad = assert_error(request(srv, "GET", "/v1/intent/audiences?status=gone"), 400,
                "INVALID_PARAMETER")
            assert.are.equal("status", bad.error.param)
            assert_error(request(srv, "GET", "/v1/intent/audiences?limit=101"), 400, "INVALID_PARAMETER")
            assert_error(request(srv, "GET", "/v1/intent/audiences/xyz"), 400, "INVALID_PARAMETER")
            local res = request(srv, "DELETE", "/v1/intent/audiences/" .. AUD1K)
            assert_error(res, 405, "METHOD_NOT_ALLOWED")
            assert.are.equal("GET", res.headers["allow"])
        end)
    end)

    describe("POST /exports and GET /exports/{exportId}", function()
        it("creates (201), then reuses (200) and reads back a stored export", function()
            local run = create_run(srv, AUD1K)
            local base = runs_path(AUD1K) .. "/" .. run.id .. "/exports"
            local res = request(srv, "POST", base)
            assert.are.equal(201, res.status, res.body)
            local e = decode(res).data
            assert.are.equal(run.id, e.export.runId)
            assert.are.equal(3600, e.downloadUrlTtlSeconds)
            assert.is_true(is_iso(e.downloadUrlExpiresAt))
            res = request(srv, "POST", base)
            assert.are.equal(200, res.status)
            assert.are.equal(e.export.id, decode(res).data.export.id)
            res = request(srv, "GET", base .. "/" .. e.export.id)
            assert.are.equal(200, res.status)
            local csv = curl{ e.downloadUrl }
            assert.are.equal(200, csv.status)
            assert_error(request(srv, "GET", base .. "/00000000-0000-4000-8000-0000000000ee"), 404,
                "EXPORT_NOT_FOUND")
            assert_error(request(srv, "GET", base .. "/zz"), 400, "INVALID_PARAMETER")
            assert_error(request(srv, "GET", base), 405, "METHOD_NOT_ALLOWED")
        end)
    end)

    describe("POST /runs", function()
        it("creates a queued manual run with the documented fields", function()
            local run, res = create_run(srv, AUD1K)
            assert.are.equal(201, res.status)
            assert.is_truthy(res.headers["content-type"]:find("application/json", 1, true))
            assert.is_true(is_uuid(run.id))
            assert.are.equal(AUD1K, run.audienceId)
            assert.is_true(is_uuid(run.organizationId))
            assert.are.equal("queued", run.status)
            assert.are.equal("manual", run.runType)
            assert.is_truthy(run.configHash:match("^" .. ("%x"):rep(64) .. "$"))
            assert.is_truthy(run.dataDate:match("^%d%d%d%d%-%d%d%-%d%d$"))
            assert.are.equal(0, run.candidateCount)
            assert.are.equal(0, run.resultCount)
            assert.are.equal(0, run.attempts)
            assert.are.equal(cjson.null, run.idempotencyKey)
            assert.are.equal(cjson.null, run.errorCode)
            assert.are.equal(cjson.null, run.startedAt)
            assert.are.equal(cjson.null, run.completedAt)
            assert.are.equal(cjson.null, run.cancelledAt)
            assert.is_true(is_iso(run.createdAt))
            assert.is_true(is_iso(run.updatedAt))
            local body = decode(res)
            assert.are.equal(res.headers["x-request-id"], body.meta.request_id)
        end)

        it("accepts no body, {} and runType manual; rejects other bodies with 400", function()
            assert.are.equal(201, request(srv, "POST", runs_path(AUD1K)).status)
            assert.are.equal(201, request(srv, "POST", runs_path(AUD1K), { body = "{}" }).status)
            assert.are.equal(201, request(srv, "POST", runs_path(AUD1K), { body = " \n" }).status)
            local bad = assert_error(request(srv, "POST", runs_path(AUD1K),
                { body = '{"runType":"daily"}' }), 400, "INVALID_PARAMETER")
            assert.are.equal("runType", bad.error.param)
            assert_error(request(srv, "POST", runs_path(AUD1K), { body = '{"runType":5}' }),
                400, "INVALID_PARAMETER")
            assert_error(request(srv, "POST", runs_path(AUD1K), { body = '{"runType":' }),
                400, "INVALID_JSON")
            assert_error(request(srv, "POST", runs_path(AUD1K), { body = '{"a":1} x' }),
                400, "INVALID_JSON")
            assert_error(request(srv, "POST", runs_path(AUD1K), { body = '["manual"]' }),
                400, "INVALID_BODY")
        end)

        it("replays a run for the same Idempotency-Key (200) and makes a new one otherwise (201)",
            function()
                srv:reset_stats()
                local first, r1 = create_run(srv, AUD1K, "key-one")
                assert.are.equal(201, r1.status)
                assert.are.equal("key-one", first.idempotencyKey)
                local again, r2 = create_run(srv, AUD1K, "key-one")
                assert.are.equal(200, r2.status)
                assert.are.equal(first.id, again.id)
                local other, r3 = create_run(srv, AUD1K, "key-two")
                assert.are.equal(201, r3.status)
                assert.are_not.equal(first.id, other.id)
                local elsewhere, r4 = create_run(srv, AUD0, "key-one")
                assert.are.equal(201, r4.status)
                assert.are_not.equal(first.id, elsewhere.id)
                local st = srv:stats()
                assert.are.equal(3, st.runs_created)
                assert.are.equal(3, st.idempotency_keys)
                assert.are.equal(3, st.requests.create_run[201])
                assert.are.equal(1, st.requests.create_run[200])
            end)

        it("accepts a key of 120 characters and rejects 121 with 400", function()
            local _, ok = create_run(srv, AUD1K, ("k"):rep(120))
            assert.are.equal(201, ok.status)
            local res = request(srv, "POST", runs_path(AUD1K),
                { headers = { "Idempotency-Key: " .. ("k"):rep(121) } })
            local body = assert_error(res, 400, "INVALID_PARAMETER")
            assert.are.equal("Idempotency-Key", body.error.param)
        end)
    end)

    describe("GET /runs", function()
        it("lists runs newest first, 25 by default, up to limit", function()
            local s = assert(mock.start{ audiences = { { id = AUD1K, rows = 10 } } })
            -- one curl process, 27 POSTs (URL globbing)
            local res = curl{ "-X", "POST", "-H", "x-api-key: " .. s.api_key,
                              s.url .. runs_path(AUD1K) .. "?n=[1-27]" }
            assert.are.equal(201, res.status)
            local newest = create_run(s, AUD1K)
            local list = decode(request(s, "GET", runs_path(AUD1K))).data
            assert.are.equal(25, #list)
            assert.are.equal(newest.id, list[1].id)
            for i = 2, #list do
                assert.is_true(list[i - 1].createdAt >= list[i].createdAt)
            end
            assert.are.equal(28, #decode(request(s, "GET", runs_path(AUD1K) .. "?limit=100")).data)
            local two = decode(request(s, "GET", runs_path(AUD1K) .. "?limit=2")).data
            assert.are.same({ list[1].id, list[2].id }, { two[1].id, two[2].id })
            assert.are.equal(28, s:stats().runs_created)
            s:stop()
        end)

        it("rejects a limit outside 1..100 with 400 naming limit", function()
            for _, q in ipairs{ "0", "101", "-1", "abc", "", "2.5", "1e2" } do
                local body = assert_error(request(srv, "GET", runs_path(AUD1K) .. "?limit=" .. q),
                    400, "INVALID_PARAMETER")
                assert.are.equal("limit", body.error.param)
            end
            assert.are.equal(200, request(srv, "GET", runs_path(AUD1K) .. "?limit=100").status)
        end)
    end)

    describe("run lifecycle", function()
        it("answers 202 while queued, then running, then 200 when completed", function()
            srv:configure{ queued_ms = 600000, running_ms = 600000 }
            local run = create_run(srv, AUD1K)
            local path = runs_path(AUD1K) .. "/" .. run.id
            local res = results(srv, AUD1K, run.id, "?limit=50&offset=0")
            assert.are.equal(202, res.status)
            local data = decode(res).data
            assert.are.equal("queued", data.state)
            assert.are.same({ id = run.id, status = "queued", runType = "manual",
                              candidateCount = 0, resultCount = 0 }, data.run)
            assert.are.same({}, data.results)
            assert.are.equal(0, data.total)
            assert.are.equal(50, data.limit)
            assert.are.equal(0, data.offset)
            assert.are.equal(202, request(srv, "GET", path .. "/stats").status)
            assert.are.equal(202, request(srv, "GET", path .. "/export.csv").status)

            srv:configure{ queued_ms = 0 }
            data = decode(results(srv, AUD1K, run.id)).data
            assert.are.equal("running", data.state)
            assert.are.equal("running", data.run.status)
            local got = decode(request(srv, "GET", path)).data
            assert.are.equal("running", got.status)
            assert.are.equal(1, got.attempts)
            assert.is_true(is_iso(got.startedAt))

            srv:configure{ running_ms = 0 }
            res = results(srv, AUD1K, run.id, "?limit=5")
            assert.are.equal(200, res.status)
            data = decode(res).data
            assert.are.equal("completed", data.run.status)
            assert.are.equal(1000, data.run.resultCount)
            assert.is_true(data.run.candidateCount >= data.run.resultCount)
            assert.is_true(is_iso(data.run.completedAt))
            assert.are.equal(1000, data.total)
            assert.are.equal(5, #data.results)
            got = decode(request(srv, "GET", path)).data
            assert.are.equal("completed", got.status)
            assert.are.equal(1000, got.resultCount)
            assert.is_true(is_iso(got.completedAt))
        end)

        it("moves on by itself as time passes", function()
            srv:configure{ queued_ms = 100, running_ms = 100 }
            local run = create_run(srv, AUD1K)
            local seen, status = {}, nil
            for _ = 1, 200 do
                status = results(srv, AUD1K, run.id, "?limit=1").status
                seen[#seen + 1] = status
                if status == 200 then break end
                assert.are.equal(202, status)
                sleep(0.05)
            end
            assert.are.equal(200, status)
            assert.are.equal(200, seen[#seen])
        end)

        it("cancels a queued run, and only a queued one", function()
            srv:configure{ queued_ms = 600000 }
            local run = create_run(srv, AUD1K)
            local path = runs_path(AUD1K) .. "/" .. run.id
            local res = request(srv, "DELETE", path)
            assert.are.equal(200, res.status)
            local cancelled = decode(res).data
            assert.are.equal("cancelled", cancelled.status)
            assert.is_true(is_iso(cancelled.cancelledAt))
            local again = assert_error(request(srv, "DELETE", path), 409, "RUN_NOT_CANCELLABLE")
            assert.are.equal("cancelled", again.error.run.status)
            local body = assert_error(results(srv, AUD1K, run.id), 409, "RUN_CANCELLED")
            assert.are.equal(run.id, body.error.run.id)
            assert.are.equal("cancelled", body.error.run.status)
            assert_error(request(srv, "GET", path .. "/stats"), 409, "RUN_CANCELLED")

            srv:configure{ queued_ms = 0 }
            local done = create_run(srv, AUD1K)
            assert_error(request(srv, "DELETE", runs_path(AUD1K) .. "/" .. done.id), 409,
                "RUN_NOT_CANCELLABLE")
        end)

        it("fails the runs of a failing audience with its errorCode (409 RUN_FAILED)", function()
            local run = create_run(srv, AUDFAIL)
            local body = assert_error(results(srv, AUDFAIL, run.id), 409, "RUN_FAILED")
            assert.are.equal("failed", body.error.run.status)
            assert.are.equal("HYDRATION_FAILED", body.error.run.errorCode)
            assert.is_string(body.error.run.errorMessage)
            local got = decode(request(srv, "GET", runs_path(AUDFAIL) .. "/" .. run.id)).data
            assert.are.equal("failed", got.status)
            assert.are.equal("HYDRATION_FAILED", got.errorCode)
            assert_error(request(srv, "GET", runs_path(AUDFAIL) .. "/" .. run.id .. "/stats"),
                409, "RUN_FAILED")
        end)

        it("serves an empty audience as total 0", function()
            local run = create_run(srv, AUD0)
            local res = results(srv, AUD0, run.id)
            assert.are.equal(200, res.status)
            local data = decode(res).data
            assert.are.equal(0, data.total)
            assert.are.same({}, data.results)
        end)
    end)

    describe("GET results", function()
        local run, page1, page2

        setup(function()
            run = create_run(srv, AUD1K)
            page1 = decode(results(srv, AUD1K, run.id, "?limit=500&offset=0")).data
            page2 = decode(results(srv, AUD1K, run.id, "?limit=500&offset=500")).data
        end)

        it("pages by limit and offset and ends past the total", function()
            assert.are.equal(500, #page1.results)
            assert.are.equal(500, #page2.results)
            assert.are.equal(1000, page1.total)
            assert.are.equal(500, page2.offset)
            local tail = decode(results(srv, AUD1K, run.id, "?limit=500&offset=990")).data
            assert.are.equal(10, #tail.results)
            assert.are.equal(page2.results[491].hashedEmail, tail.results[1].hashedEmail)
            local past = decode(results(srv, AUD1K, run.id, "?offset=1000")).data
            assert.are.same({}, past.results)
            assert.are.equal(1000, past.total)
            local default = decode(results(srv, AUD1K, run.id)).data
            assert.are.equal(100, default.limit)
            assert.are.equal(0, default.offset)
            assert.are.equal(100, #default.results)
        end)

        it("rejects bad limit and offset with 400 naming the parameter", function()
            local cases = {
                { "?limit=0", "limit" }, { "?limit=501", "limit" }, { "?limit=-5", "limit" },
                { "?limit=1.5", "limit" }, { "?limit=abc", "limit" }, { "?limit=", "limit" },
                { "?offset=-1", "offset" }, { "?offset=x", "offset" }, { "?offset=", "offset" },
                { "?offset=99999999999999999999999", "offset" },
            }
            for _, c in ipairs(cases) do
                local body = assert_error(results(srv, AUD1K, run.id, c[1]), 400, "INVALID_PARAMETER")
                assert.are.equal(c[2], body.error.param)
                assert.is_truthy(body.error.message:find(c[2], 1, true))
            end
            assert.are.equal(200, results(srv, AUD1K, run.id, "?limit=500&offset=0").status)
        end)

        it("gives every row a unique 64-hex hashedEmail", function()
            local seen, n = {}, 0
            for _, page in ipairs{ page1, page2 } do
                for _, p in ipairs(page.results) do
                    assert.is_truthy(p.hashedEmail:match("^" .. ("%x"):rep(64) .. "$"))
                    assert.is_nil(seen[p.hashedEmail])
                    seen[p.hashedEmail] = true
                    n = n + 1
                end
            end
            assert.are.equal(1000, n)
        end)

        it("fills every documented field, with realistic nulls and variety", function()
            local fields = { "hashedEmail", "firstName", "lastName", "fullName", "businessEmail",
                "personalEmail", "email", "primaryContactEmail", "phone", "linkedinUrl", "headline",
                "jobTitle", "seniority", "department", "company", "geo", "intent", "demographics",
                "signals", "compliance", "source" }
            local seniorities = { entry = 1, senior = 1, manager = 1, director = 1, vp = 1,
                                  c_suite = 1, owner = 1, partner = 1 }
            local nulls = { phone = 0, geo = 0, company = 0, seniority = 0 }
            local present = { phone = 0 }
            local non_ascii, quoted, backslash, empty_topics, mid_scores = 0, 0, 0, 0, 0
            local rows = {}
            for _, p in ipairs(page1.results) do rows[#rows + 1] = p end
            for _, p in ipairs(page2.results) do rows[#rows + 1] = p end
            for _, p in ipairs(rows) do
                for _, f in ipairs(fields) do
                    assert.is_not_nil(p[f], f)   -- present (cjson.null when null)
                end
                for k in pairs(nulls) do
                    if p[k] == cjson.null then nulls[k] = nulls[k] + 1 end
                end
                if p.phone ~= cjson.null then
                    present.phone = present.phone + 1
                    assert.is_truthy(p.phone:match("^%+1%d%d%d%d%d%d%d%d%d%d$"))
                end
                if p.seniority ~= cjson.null then assert.is_truthy(seniorities[p.seniority]) end
                if p.company ~= cjson.null then
                    for _, k in ipairs{ "name", "domain", "industry", "industryGroup",
                                        "revenueRange", "size" } do
                        assert.is_not_nil(p.company[k], k)
                    end
                end
                if p.geo ~= cjson.null then
                    for _, k in ipairs{ "city", "state", "stateCode", "country", "countryCode" } do
                        assert.is_not_nil(p.geo[k], k)
                    end
                end
                assert.are.equal(p.firstName .. " " .. p.lastName, p.fullName)
                if p.fullName:find("[\128-\255]") then non_ascii = non_ascii + 1 end
                local text = cjson.encode(p)
                if text:find('\\"', 1, true) then quoted = quoted + 1 end
                if text:find("\\\\", 1, true) then backslash = backslash + 1 end
                local score = p.intent.score
                assert.is_true(score >= 1 and score <= 99)
                if score >= 50 and score <= 89 then mid_scores = mid_scores + 1 end
                assert.is_table(p.intent.matchedTopics)
                if #p.intent.matchedTopics == 0 then empty_topics = empty_topics + 1 end
                for _, t in ipairs(p.intent.matchedTopics) do
                    assert.is_number(t.topicId)
                    assert.is_string(t.topicName)
                    assert.is_truthy(t.type == "b2b" or t.type == "b2c")
                end
            end
            for k, n in pairs(nulls) do
                assert.is_true(n > 0 and n < #rows / 2, k .. " nulls: " .. n)
            end
            assert.is_true(present.phone > 0)
            assert.is_true(non_ascii > 0)
            assert.is_true(quoted > 0)
            assert.is_true(backslash > 0)
            assert.is_true(empty_topics > 0)
            assert.is_true(mid_scores > #rows / 2)
        end)

        it("writes an empty matchedTopics as []", function()
            local res = results(srv, AUD1K, run.id, "?limit=500")
            assert.is_truthy(res.body:find('"matchedTopics":[]', 1, true))
        end)

        it("is deterministic from the seed", function()
            local aud = { { id = AUD1K, rows = 30 } }
            local a = assert(mock.start{ seed = 5, audiences = aud })
            local b = assert(mock.start{ seed = 5, audiences = aud })
            local c = assert(mock.start{ seed = 6, audiences = aud })
            local function first_rows(s)
                local r = create_run(s, AUD1K)
                return decode(results(s, AUD1K, r.id, "?limit=30")).data.results
            end
            local ra, rb, rc = first_rows(a), first_rows(b), first_rows(c)
            assert.are.same(ra, rb)
            assert.are_not.equal(ra[1].hashedEmail, rc[1].hashedEmail)
            a:stop()
            b:stop()
            c:stop()
        end)
    end)

    describe("GET stats", function()
        it("computes fill rates, the score histogram and averages from the run's rows", function()
            local run = create_run(srv, AUD1K)
            local res = request(srv, "GET", runs_path(AUD1K) .. "/" .. run.id .. "/stats")
            assert.are.equal(200, res.status)
            local data = decode(res).data
            assert.are.equal(run.id, data.run.id)
            assert.are.equal(AUD1K, data.run.audienceId)
            assert.are.equal("completed", data.run.status)
            assert.are.equal(1000, data.run.resultCount)
            local stats = data.stats
            assert.are.equal(1000, stats.total)
            local rows, phones, scores = {}, 0, { 0, 0, 0, 0 }
            for offset = 0, 500, 500 do
                local page = decode(results(srv, AUD1K, run.id, "?limit=500&offset=" .. offset)).data
                for _, p in ipairs(page.results) do rows[#rows + 1] = p end
            end
            local sum = 0
            for _, p in ipairs(rows) do
                if p.phone ~= cjson.null then phones = phones + 1 end
                local s = p.intent.score
                local b = s < 50 and 1 or s < 70 and 2 or s < 90 and 3 or 4
                scores[b] = scores[b] + 1
                sum = sum + s
            end
            assert.are.equal(phones, stats.fillRates.phone.count)
            assert.is_true(math.abs(stats.fillRates.phone.percent - phones / 10) < 0.01)
            assert.are.equal(1000, stats.fillRates.hashedEmail.count)
            local labels = { "1-49", "50-69", "70-89", "90-99" }
            for i, h in ipairs(stats.scoreHistogram) do
                assert.are.equal(labels[i], h.bucket)
                assert.are.equal(scores[i], h.count)
            end
            assert.is_true(math.abs(stats.averages.intentScore - sum / 1000) < 0.01)
        end)
    end)

    describe("GET export.csv", function()
        it("redirects to the second listener, which streams the CSV without needing the key",
            function()
                local run = create_run(srv, AUD1K)
                local res = request(srv, "GET", runs_path(AUD1K) .. "/" .. run.id .. "/export.csv")
                assert.are.equal(302, res.status)
                local location = res.headers["location"]
                assert.are.equal(srv.redirect_url, location:sub(1, #srv.redirect_url))
                assert.is_truthy(location:find("/exports/" .. run.id .. ".csv?sig=", 1, true))

                srv:reset_stats()
                local csv = curl{ location }
                assert.are.equal(200, csv.status)
                assert.are.equal("300000", csv.headers["x-export-row-cap"])
                assert.is_truthy(csv.headers["content-type"]:find("text/csv", 1, true))
                local rows = parse_csv(csv.body)
                assert.are.equal(1001, #rows)
                local header = rows[1]
                assert.are.equal("hashedEmail", header[1])
                for i = 2, #rows do assert.are.equal(#header, #rows[i]) end
                assert.is_truthy(csv.body:find('"[^"\r\n]*,[^"\r\n]*"'))  -- a quoted comma
                local page = decode(results(srv, AUD1K, run.id, "?limit=500")).data.results
                local col = {}
                for i, name in ipairs(header) do col[name] = i end
                for i = 1, 500 do
                    local p, row = page[i], rows[i + 1]
                    assert.are.equal(p.hashedEmail, row[col.hashedEmail])
                    assert.are.equal(p.fullName, row[col.fullName])
                    assert.are.equal(p.headline == cjson.null and "" or p.headline, row[col.headline])
                end
                local st = srv:stats()
                assert.are.equal(1, st.redirect_requests)
                assert.is_false(st.redirect_key_seen)

                -- a client that leaks the key to the other origin is caught
                assert.are.equal(200, curl{ "-H", "x-api-key: " .. srv.api_key, location }.status)
                assert.is_true(srv:stats().redirect_key_seen)
                -- a wrong signature is refused
                assert.are.equal(403, curl{ (location:gsub("sig=%x+", "sig=00")) }.status)
            end)

        it("caps the rows and says so in X-Export-Row-Cap", function()
            local s = assert(mock.start{ export_cap = 5, audiences = { { id = AUD1K, rows = 20 } } })
            local run = create_run(s, AUD1K)
            local res = request(s, "GET", runs_path(AUD1K) .. "/" .. run.id .. "/export.csv")
            local csv = curl{ res.headers["location"] }
            assert.are.equal("5", csv.headers["x-export-row-cap"])
            assert.are.equal(6, #parse_csv(csv.body))
            s:stop()
        end)
    end)

    describe("over HTTP (gzip, keep-alive, faults)", function()
        local run

        setup(function()
            run = create_run(srv, AUD1K)
        end)

        it("gzips JSON when the client accepts it", function()
            local res = results(srv, AUD1K, run.id, "?limit=50", { compressed = true })
            assert.are.equal(200, res.status)
            assert.are.equal("gzip", res.headers["content-encoding"])
            assert.are.equal("Accept-Encoding", res.headers["vary"])
            assert.are.equal(50, #decode(res).data.results)
            local raw = results(srv, AUD1K, run.id, "?limit=50",
                { headers = { "Accept-Encoding: gzip" } })
            assert.are.equal("\31\139", raw.body:sub(1, 2))
            local plain = results(srv, AUD1K, run.id, "?limit=50")
            assert.is_nil(plain.headers["content-encoding"])
            assert.are.equal(50, #decode(plain).data.results)
            -- a page is compressed once and then served from the cache in a new envelope:
            -- curl checks the gzip CRC and length, and the data is the same as plain
            local again = results(srv, AUD1K, run.id, "?limit=50", { compressed = true })
            assert.are.equal(0, again.exit)
            assert.are.equal("gzip", again.headers["content-encoding"])
            assert.are.same(decode(plain).data, decode(again).data)
            assert.are.same(decode(res).data, decode(again).data)
            assert.are_not.equal(decode(res).meta.request_id, decode(again).meta.request_id)
            local pending = request(srv, "GET", runs_path(AUD1K) .. "?limit=3", { compressed = true })
            assert.are.equal("gzip", pending.headers["content-encoding"])
            assert.are.equal(3, #decode(pending).data)
            local refused = results(srv, AUD1K, run.id, "?limit=5",
                { headers = { "Accept-Encoding: gzip;q=0" } })
            assert.is_nil(refused.headers["content-encoding"])
            srv:configure{ gzip = false }
            local off = results(srv, AUD1K, run.id, "?limit=5", { compressed = true })
            assert.is_nil(off.headers["content-encoding"])
        end)

        it("keeps the connection alive across requests", function()
            srv:reset_stats()
            local url = srv.url .. runs_path(AUD1K) .. "/" .. run.id .. "/results?limit=10"
            local res = curl{ "-H", "x-api-key: " .. srv.api_key, url, url, url }
            assert.are.equal(200, res.status)
            local st = srv:stats()
            assert.are.equal(3, st.requests.results[200])
            assert.are.equal(1, st.connections)
        end)

        it("adds latency without changing answers", function()
            srv:configure{ latency_ms = 30 }
            assert.are.equal(200, results(srv, AUD1K, run.id, "?limit=1").status)
        end)
    end)

    describe("faults", function()
        local run, path

        setup(function()
            run = create_run(srv, AUD1K)
            path = runs_path(AUD1K) .. "/" .. run.id .. "/results?limit=100&offset=100"
        end)

        local function faulted_then_ok(kind, check)
            srv:configure{ faults = { every = 1, kinds = { kind }, retry_after = 2 } }
            srv:reset_stats()
            local res = request(srv, "GET", path)
            check(res)
            local retry = request(srv, "GET", path)
            assert.are.equal(200, retry.status, kind)
            assert.are.equal(0, retry.exit)
            assert.are.equal(100, #decode(retry).data.results)
            local st = srv:stats()
            assert.are.equal(1, st.faults)
            assert.are.equal(1, st.faults_by_kind[kind])
        end

        it("injects 429 with Retry-After in seconds", function()
            faulted_then_ok("429", function(res)
                assert_error(res, 429, "RATE_LIMITED")
                assert.are.equal("2", res.headers["retry-after"])
            end)
        end)

        it("injects 429 with Retry-After as an HTTP-date", function()
            faulted_then_ok("429_date", function(res)
                assert_error(res, 429, "RATE_LIMITED")
                assert.is_truthy(res.headers["retry-after"]:match(
                    "^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d GMT$"))
            end)
        end)

        it("injects 500, 502 and 503", function()
            faulted_then_ok("500", function(res) assert_error(res, 500, "INTERNAL_ERROR") end)
            faulted_then_ok("502", function(res) assert_error(res, 502, "BAD_GATEWAY") end)
            faulted_then_ok("503", function(res) assert_error(res, 503, "SERVICE_UNAVAILABLE") end)
        end)

        it("drops the connection in the middle of the body", function()
            faulted_then_ok("drop", function(res)
                assert.are.equal(200, res.status)
                assert.are.equal(18, res.exit)   -- CURLE_PARTIAL_FILE
                assert.is_true(#res.body < tonumber(res.headers["content-length"]))
            end)
        end)

        it("truncates the JSON with a matching Content-Length", function()
            faulted_then_ok("truncate", function(res)
                assert.are.equal(200, res.status)
                assert.are.equal(0, res.exit)
                assert.are.equal(#res.body, tonumber(res.headers["content-length"]))
                assert.is_false(pcall(cjson.decode, res.body))
            end)
        end)

        it("never creates a run for a faulted POST, and lets its retry through", function()
            for _, kind in ipairs{ "503", "truncate", "drop" } do
                srv:configure{ faults = { every = 1, kinds = { kind } } }
                srv:reset_stats()
                local key = "fault-" .. kind
                local opts = { headers = { "Idempotency-Key: " .. key }, body = '{"runType":"manual"}' }
                local res = request(srv, "POST", runs_path(AUD1K), opts)
                assert.is_true(res.status == 503 or res.exit ~= 0 or not pcall(cjson.decode, res.body))
                assert.are.equal(0, srv:stats().runs_created)
                local retry = request(srv, "POST", runs_path(AUD1K), opts)
                assert.are.equal(201, retry.status)
                assert.are.equal(key, decode(retry).data.idempotencyKey)
                assert.are.equal(1, srv:stats().runs_created)
            end
        end)

        it("only faults the data endpoints", function()
            srv:configure{ faults = { every = 1, kinds = { "500" } } }
            local run_path = runs_path(AUD1K) .. "/" .. run.id
            assert.are.equal(200, request(srv, "GET", run_path).status)
            assert.are.equal(302, request(srv, "GET", run_path .. "/export.csv").status)
            assert.are.equal(500, request(srv, "GET", run_path .. "/stats").status)
            assert.are.equal(500, request(srv, "GET", runs_path(AUD1K)).status)
            srv:configure{ faults = false }
            assert.are.equal(200, request(srv, "GET", runs_path(AUD1K)).status)
        end)

        it("lets a retrying client read every row exactly once", function()
            srv:configure{ faults = { rate = 0.5, seed = 3 } }
            srv:reset_stats()
            local seen, count, offset = {}, 0, 0
            while true do
                local page
                for _ = 1, 10 do
                    local res = results(srv, AUD1K, run.id, "?limit=100&offset=" .. offset)
                    if res.status == 200 and res.exit == 0 then
                        local ok, body = pcall(cjson.decode, res.body)
                        if ok then
                            page = body.data
                            break
                        end
                    end
                end
                assert.is_table(page, "a page failed 10 times at offset " .. offset)
                for _, p in ipairs(page.results) do
                    assert.is_nil(seen[p.hashedEmail])
                    seen[p.hashedEmail] = true
                    count = count + 1
                end
                offset = offset + #page.results
                if offset >= page.total or #page.results == 0 then break end
            end
            assert.are.equal(1000, count)
            assert.is_true(srv:stats().faults > 0)
        end)
    end)

    describe("stats()", function()
        it("counts requests by endpoint and status, and resets", function()
            srv:reset_stats()
            local run = create_run(srv, AUD1K, "stats-key")
            request(srv, "GET", runs_path(AUD1K), { key = false })
            request(srv, "GET", "/v1/other")
            results(srv, AUD1K, run.id, "?limit=1")
            results(srv, AUD1K, run.id, "?limit=0")
            request(srv, "GET", runs_path(AUD1K) .. "/" .. run.id .. "/stats")
            request(srv, "DELETE", runs_path(AUD1K) .. "/" .. run.id)
            request(srv, "GET", runs_path(AUD1K) .. "/" .. run.id .. "/export.csv")
            local st = srv:stats()
            assert.are.same({ [201] = 1 }, st.requests.create_run)
            assert.are.same({ [401] = 1 }, st.requests.list_runs)
            assert.are.same({ [200] = 1, [400] = 1 }, st.requests.results)
            assert.are.same({ [200] = 1 }, st.requests.stats)
            assert.are.same({ [409] = 1 }, st.requests.cancel_run)
            assert.are.same({ [302] = 1 }, st.requests.export)
            assert.are.same({ [404] = 1 }, st.requests.other)
            assert.are.equal(1, st.runs_created)
            assert.are.equal(1, st.idempotency_keys)
            assert.are.equal(0, st.faults)
            assert.is_true(st.connections >= 8)
            srv:reset_stats()
            st = srv:stats()
            assert.are.same({}, st.requests.results)
            assert.are.equal(0, st.connections)
        end)
    end)

    describe("stop()", function()
        it("is idempotent, refuses connections, and a new start serves again", function()
            local s = assert(mock.start{})
            local port = s.port
            assert.are.equal(200, request(s, "GET", runs_path(s.audience)).status)
            s:stop()
            s:stop()
            assert.is_false(s:running())
            local refused = request(s, "GET", runs_path(s.audience))
            assert.are.equal(7, refused.exit)   -- CURLE_COULDNT_CONNECT
            assert.is_number(s:stats().connections)
            local again = assert(mock.start{ port = port })
            assert.are.equal(200, request(again, "GET", runs_path(again.audience)).status)
            again:stop()
        end)

        it("stops when collected", function()
            local url
            do
                local s = assert(mock.start{})
                url = s.url
            end
            collectgarbage()
            collectgarbage()
            local res = curl{ url .. "/v1/intent/audiences" }
            assert.are.equal(7, res.exit)
        end)
    end)

    describe("serve()", function()
        it("runs in the foreground until SIGTERM and prints the URL, key and audiences", function()
            local out = os.tmpname()
            local code = "require('leadpipe.mock').serve{ port = 0 }"
            local cmd = ("LUA_PATH=%s LUA_CPATH=%s %s -e %s > %s 2>&1 & echo $!"):format(
                quote(package.path), quote(package.cpath), LUA, quote(code), quote(out))
            local p = io.popen(cmd)
            local pid = assert(tonumber(p:read("*l")))
            p:close()
            local text, url = "", nil
            for _ = 1, 100 do
                text = read_file(out) or ""
                url = text:match("listening on (http://127%.0%.0%.1:%d+)")
                if url and text:find("stop with", 1, true) then break end
                sleep(0.1)
            end
            assert.is_string(url, text)
            assert.is_truthy(text:find(mock.DEFAULT_KEY, 1, true))
            for _, a in ipairs(mock.AUDIENCES) do
                assert.is_truthy(text:find(a.id, 1, true))
            end
            local res = curl{ "-H", "x-api-key: " .. mock.DEFAULT_KEY,
                              url .. runs_path(mock.AUDIENCES[1].id) }
            assert.are.equal(200, res.status)
            os.execute("kill -TERM " .. pid)
            for _ = 1, 100 do
                text = read_file(out) or ""
                if text:find("stopped", 1, true) then break end
                sleep(0.1)
            end
            assert.is_truthy(text:find("stopped (SIGTERM)", 1, true), text)
            os.remove(out)
        end)

        it("returns after duration seconds", function()
            local sink = { write = function() end, flush = function() end }
            local ok, sig = mock.serve{ port = 0, duration = 0.1, output = sink }
            assert.is_true(ok)
            assert.is_nil(sig)
        end)
    end)
end)

-- spec/mock_api_spec.lua: leadpipe.mock's API surface (start, auth and routing, audiences,
-- stored exports, runs and their lifecycle), driven through a real HTTP client (curl) and
-- decoded with lua-cjson, so it tests the server as any client sees it. Results, stats and
-- export.csv: spec/mock_results_spec.lua; HTTP behaviour, faults and the server's life:
-- spec/mock_server_spec.lua. Helpers: spec/support/mock_http.lua.
local mock = require "leadpipe.mock"
local m = require "spec.support.mock_http"
local cjson = require "cjson"

local sleep, curl, decode, request = m.sleep, m.curl, m.decode, m.request
local runs_path, create_run, results, is_uuid = m.runs_path, m.create_run, m.results, m.is_uuid
local is_iso, assert_error = m.is_iso, m.assert_error

describe("leadpipe.mock", function()
    local fx = m.fixture()
    local srv, AUD1K, AUD0, AUDFAIL, AUD20K

    setup(function()
        srv, AUD1K, AUD0, AUDFAIL, AUD20K = fx.srv, fx.AUD1K, fx.AUD0, fx.AUDFAIL, fx.AUD20K
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
end)

-- spec/mock_server_spec.lua: leadpipe.mock over HTTP (gzip, keep-alive), its injected
-- faults, and the server's life: stats(), stop(), serve() (helpers: spec/support/mock_http.lua).
local mock = require "leadpipe.mock"
local m = require "spec.support.mock_http"
local cjson = require "cjson"
local shell = require "spec.support.shell"

local LUA, sleep, curl, decode = m.LUA, m.sleep, m.curl, m.decode
local request, runs_path, create_run, results = m.request, m.runs_path, m.create_run, m.results
local assert_error = m.assert_error
local quote, read_file = shell.quote, shell.read_file

describe("leadpipe.mock", function()
    local fx = m.fixture()
    local srv, AUD1K

    setup(function()
        srv, AUD1K = fx.srv, fx.AUD1K
    end)

    describe("over HTTP (gzip, keep-alive, faults)", function()
        local run

        setup(function()
            -- three runs, so that a list of runs has three to gzip
            create_run(srv, AUD1K)
            create_run(srv, AUD1K)
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

        it("stops after `count` faults", function()
            srv:configure{ faults = { every = 1, kinds = { "429" }, retry_after = 2, count = 1 } }
            srv:reset_stats()
            -- pages no spec asked for yet (a retry of a faulted request is let through)
            local function page(i)
                local results_path = runs_path(AUD1K) .. "/" .. run.id .. "/results"
                return request(srv, "GET", results_path .. "?limit=7&offset=" .. i)
            end
            assert.are.equal(429, page(0).status)
            for i = 1, 5 do assert.are.equal(200, page(i).status) end
            assert.are.same({ 1, 1 }, { srv:stats().faults, srv:stats().rate_limited })
            srv:configure{ faults = { every = 2, kinds = { "500" }, count = 2 } }
            local statuses = {}
            for i = 1, 8 do statuses[i] = page(10 + i).status end
            assert.are.same({ 200, 500, 200, 500, 200, 200, 200, 200 }, statuses)
            srv:configure{ faults = false }
            assert.has_error(function() srv:configure{ faults = { every = 1, count = -1 } } end)
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

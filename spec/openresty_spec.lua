-- spec/openresty_spec.lua: the "openresty" host and its cosocket wire in a real nginx
-- (Debian's nginx + libnginx-mod-http-lua, one worker, loopback only) against the fake API:
-- concurrent filtered reads, the nginx phases that may and may not send, TLS through
-- lua_ssl_trusted_certificate, deadlines, cancels, keep-alive and wire errors.
-- Correctness only; the figures (ping latency, worker CPU, added latency) are in
-- bench/openresty.lua. The handlers: spec/support/openresty_app.lua; nginx.conf:
-- spec/support/openresty.lua. Needs the core built for LuaJIT (make build LUA_VERSION=jit).
local openresty = require "spec.support.openresty"

local function decode(body)
    local json = require "leadpipe.json"
    return assert(json.decode(body), body)
end

describe("the openresty host in nginx", function()
    if openresty.skipped() then return end

    local fake = require "spec.support.fake_client"
    local srv, ngx_srv, client, run_id

    -- GET path on the nginx under test -> status, decoded JSON body.
    local function get(path)
        local res = openresty.fetch_all({ ngx_srv.url .. path }, { limit = 30 })[1]
        assert(res and res.status, "no answer for " .. path .. "\n" .. ngx_srv:error_log())
        return res.status, decode(res.body)
    end

    -- The number of people of the run that match where, computed here by the Lua filter.
    local function expected_count(where)
        local n = 0
        for _ in client:people(srv.audience, run_id, { where = where, limit = 500 }) do n = n + 1 end
        return n
    end

    setup(function()
        srv, client = fake.start{ latency_ms = 50, threads = 32 }
        local run = assert(client:create_run(srv.audience))
        run_id = run.id
        assert(client:wait_run(srv.audience, run_id, { interval = 0.05 }))
        ngx_srv = openresty.start{ mock = srv, run = run_id }
    end)

    teardown(function()
        if ngx_srv then ngx_srv:stop() end
        fake.stop(srv, client)
    end)

    it("serves 20 concurrent filtered reads with the right counts while /ping answers", function()
        local expected = expected_count({ min_score = 60, seniority_at_least = "manager" })
        assert.is_true(expected > 0)
        local urls = {}
        for i = 1, 20 do
            urls[i] = ngx_srv.url .. "/people?min_score=60&seniority_at_least=manager&limit=250&prefetch="
                .. (i % 4)
        end
        local out, pings = openresty.fetch_all(urls, { probe = ngx_srv.url .. "/ping", every = 0.01 })
        for i = 1, 20 do
            assert.are.equal(200, out[i] and out[i].status, out[i] and out[i].body)
            local res = decode(out[i].body)
            assert.are.equal(expected, res.count)
            assert.are.equal(4, res.pages)
        end
        assert.is_true(#pings > 10, "the prober got " .. #pings .. " answers")
        local median, p99, worst = openresty.summary(pings)
        print(("# /ping during 20 concurrent reads: %d pings, median %.2f ms, p99 %.2f ms, worst %.2f ms")
            :format(#pings, median * 1000, p99 * 1000, worst * 1000))
        assert.are.equal("", ngx_srv:error_log():match("%[error%].-\n") or "")
    end)

    it("keeps connections alive in the worker's pool across requests", function()
        get("/one")
        local before = srv:stats().connections
        for _ = 1, 5 do
            local status, res = get("/one")
            assert.are.equal(200, status)
            assert.are.equal(1, res.runs)
        end
        assert.is_true(srv:stats().connections - before <= 1)
    end)

    it("reads plain (not gzipped) answers too", function()
        srv:configure{ gzip = false }
        local ok, status, res = pcall(get, "/people?min_score=50")
        srv:configure{ gzip = true }
        assert(ok, status)
        assert.are.equal(200, status)
        assert.are.equal(expected_count({ min_score = 50 }), res.count)
    end)

    it("gets every row once through injected faults, retrying in http.lua", function()
        local expected = expected_count({ min_score = 50 })
        srv:configure{ faults = { every = 3, kinds = { "500", "drop", "truncate", "429" }, retry_after = 0 } }
        local ok, status, res = pcall(get, "/people?min_score=50&retries=5&prefetch=3")
        srv:configure{ faults = false }
        assert(ok, status)
        assert.are.equal(200, status, res and res.message)
        assert.are.equal(expected, res.count)
        assert.is_true(srv:stats().faults > 0)
    end)

    it("reads short pages (the docs allow them) over cosockets, every row once, at every prefetch", function()
        local expected = expected_count({ min_score = 50 })
        for _, prefetch in ipairs{ 0, 1, 4, 64 } do
            for _, limit in ipairs{ 7, 100 } do
                srv:configure{ faults = { short = 0.4, seed = prefetch * 31 + limit,
                    every = 5, kinds = { "500", "drop", "truncate", "429" }, retry_after = 0 } }
                local ok, status, res = pcall(get, ("/people?min_score=50&retries=5&prefetch=%d&limit=%d")
                    :format(prefetch, limit))
                srv:configure{ faults = false }
                assert(ok, status)
                assert.are.equal(200, status, res and (res.message or res.raised))
                assert.are.equal(expected, res.count)
                assert.is_true(res.pages > math.ceil(srv.audiences[1].rows / limit),
                    "no short page at prefetch " .. prefetch)
            end
        end
    end)

    it("follows the export redirect and reads the streamed CSV as libcurl does", function()
        local parts = {}
        assert(client:export_csv(srv.audience, run_id, { sink = function(chunk)
            parts[#parts + 1] = chunk
            return true
        end }))
        local csv = table.concat(parts)
        local _, res = get("/export")
        assert.are.equal(#csv, res.bytes, res.message)
        assert.is_true(res.bytes > 10000)
        local path = os.tmpname()
        local f = assert(io.open(path, "wb"))
        f:write(csv)
        f:close()
        local p = assert(io.popen("md5sum " .. path))
        local md5 = p:read("*l"):match("^(%x+)")
        p:close()
        os.remove(path)
        assert.are.equal(md5, res.md5)
    end)

    it("sends from access_by_lua, rewrite_by_lua and an ngx.timer callback", function()
        local expected = expected_count({ min_score = 50 })
        for _, path in ipairs({ "/access", "/rewrite", "/timer" }) do
            local status, res = get(path)
            assert.are.equal(200, status)
            assert.are.equal(expected, res.count, path .. ": " .. tostring(res.raised))
        end
    end)

    it("refuses to send in phases without cosockets, naming the phase", function()
        get("/set?name=set")
        get("/filters")
        for _, phase in ipairs({ "init", "init_worker", "set", "header_filter", "body_filter", "log" }) do
            local status, res = get("/result?name=" .. phase)
            assert.are.equal(200, status)
            assert.are.equal("host", res.kind, phase)
            assert.is_false(res.retryable)
            assert.truthy(res.message:find("nginx's " .. phase .. " phase", 1, true), res.message)
        end
    end)

    it("verifies TLS with lua_ssl_trusted_certificate and refuses it without", function()
        -- untrusted first: a trusted connection in the pool would be reused
        local _, res = get("/runs?base=" .. ngx_srv.tls_url)
        assert.are.equal("network", res.kind)
        assert.are.equal("tls", res.code)
        assert.is_false(res.retryable)
        _, res = get("/runs?verify=0&base=" .. ngx_srv.tls_url)
        assert.are.equal(1, res.runs)
        _, res = get("/runs_trusted?base=" .. ngx_srv.tls_url)
        assert.are.equal(1, res.runs, res.message)
    end)

    it("cuts a wait at its deadline with kind timeout", function()
        local _, res = get("/deadline")
        assert.are.equal("timeout", res.kind)
        assert.is_true(res.elapsed < 1.5)
    end)

    it("cancels requests in flight and keeps working", function()
        local _, res = get("/cancel")
        assert.are.equal("aborted", res.kind)
        assert.are.equal(1, res.runs)
        assert.is_true(res.elapsed < 1.5)
        _, res = get("/pages_closed")
        assert.are.equal(50, res.first)
        assert.are.equal(1, res.runs)
    end)

    it("sends a request again when its kept-alive connection was dropped by the server", function()
        local _, res = get("/stale")
        assert.are.same({ { status = 200, body = "ok" }, { status = 200, body = "ok" } }, res.out)
        assert.is_true(res.hangups >= 1)
    end)

    it("maps connect and resolve failures to the curl wire's kinds", function()
        local _, res = get("/runs?base=http://127.0.0.1:1")
        assert.are.same({ "network", "connect" }, { res.kind, res.code })
        _, res = get("/runs?base=https://leadpipe-no-such-host.invalid")
        assert.are.same({ "network", "resolve" }, { res.kind, res.code })
    end)
end)

describe("examples/openresty", function()
    if openresty.skipped() then return end

    local mock = require "leadpipe.mock"
    local srv, ex

    setup(function()
        srv = assert(mock.start{})
        ex = openresty.start_example{
            LEADPIPE_API_KEY = srv.api_key, LEADPIPE_BASE_URL = srv.url, LEADPIPE_AUDIENCE_ID = srv.audience,
        }
    end)

    teardown(function()
        if ex then ex:stop() end
        if srv then srv:stop() end
    end)

    it("serves /leads from one run however many GETs come", function()
        local urls = {}
        for i = 1, 6 do urls[i] = ex.url .. "/leads?min_score=80&seniority_at_least=director&top=3" end
        local out = openresty.fetch_all(urls, { limit = 30 })
        local run
        for i = 1, 6 do
            assert.are.equal(200, out[i].status, out[i].body .. "\n" .. ex:error_log())
            local res = decode(out[i].body)
            assert.are.equal(3, #res.people)
            assert.is_true(res.matched >= 3)
            run = run or res.run
            assert.are.equal(run, res.run)
        end
        assert.are.equal(1, srv:stats().runs_created)
        local bad = openresty.fetch_all({ ex.url .. "/leads?top=0" })[1]
        assert.are.equal(400, bad.status, bad.body)
    end)

    it("answers 400 naming a misspelt query argument and the ones to write, never unfiltered rows", function()
        local res = openresty.fetch_all({ ex.url .. "/leads?min_scroe=80&top=3" })[1]
        assert.are.equal(400, res.status, res.body)
        local body = decode(res.body)
        local said = body.error:find('unknown query argument "min_scroe"; write one of: ', 1, true)
        assert.is_truthy(said, res.body)
        assert.is_truthy(body.error:find("min_score", 1, true), res.body)
        assert.is_nil(body.people)
    end)
end)

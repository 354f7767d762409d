-- spec/core_http_spec.lua: leadpipe.core over real HTTP against two local servers: the fake
-- API (leadpipe.mock) and spec/support/core_server.py for the wire faults the fake does not
-- make (resets, 1xx, oversized bodies, silence).
local core = require "leadpipe.core"
local servers = require "spec.support.servers"
local ch = require "spec.support.core_helpers"
local h = require "spec.support.cli_helpers"

local wait, wait_all = ch.wait, ch.wait_all
local has_mock, mock = pcall(require, "leadpipe.mock")
local has_python = require("spec.support.shell").ok("python3 -c 'pass' >/dev/null 2>&1")

describe("leadpipe.core", function()
    after_each(function()
        collectgarbage()
        collectgarbage()
    end)

    describe("HTTP against core_server.py", function()
        if not has_python then
            pending("python3 is not available")
            return
        end
        local server, s

        setup(function()
            server = servers.start("core_server.py")
        end)
        teardown(function()
            if server then server.stop() end
        end)
        ch.fresh_session({ timeout = 10 }, function(v) s = v end)

        local function get(path, opts)
            opts = opts or {}
            opts.url = server.url .. path
            return wait(s, s:request(opts))
        end

        it("GETs with the headers given, a default User-Agent and gzip offered", function()
            local status, headers, body = get("/echo?x=1", {
                headers = { ["X-Api-Key"] = "sk_test", accept = "application/json" },
            })
            assert.are.equal(200, status)
            assert.are.equal("application/json", headers["content-type"])
            local echo = assert(core.decode(body))
            assert.are.equal("GET", echo.method)
            assert.are.equal("/echo?x=1", echo.path)
            assert.are.equal("sk_test", echo.headers["x-api-key"])
            assert.are.equal("application/json", echo.headers.accept)
            assert.truthy(echo.headers["accept-encoding"]:match("gzip"))
            local ua = echo.headers["user-agent"]
            assert.truthy(ua:match("^leadpipe/%d+%.%d+%.%d+ libcurl/%d"), ua)
            assert.truthy(ua:find(_VERSION, 1, true), ua)
        end)

        it("sends the User-Agent given, and header values given as numbers", function()
            s:close()
            s = core.session{ user_agent = "spec-agent/1.0" }
            local _, _, body = get("/echo", { headers = { ["x-n"] = 5, ["x-empty"] = "" } })
            local echo = assert(core.decode(body))
            assert.are.equal("spec-agent/1.0", echo.headers["user-agent"])
            assert.are.equal("5", echo.headers["x-n"])
            assert.are.equal("", echo.headers["x-empty"])
        end)

        it("sends each method with its body", function()
            for _, m in ipairs{ "POST", "PUT", "PATCH", "DELETE" } do
                local status, _, body = get("/echo", {
                    method = m, body = '{"runType":"manual"}',
                    headers = { ["content-type"] = "application/json", ["idempotency-key"] = "k-" .. m },
                })
                assert.are.equal(200, status)
                local echo = assert(core.decode(body))
                assert.are.equal(m, echo.method)
                assert.are.equal('{"runType":"manual"}', echo.body)
                assert.are.equal("application/json", echo.headers["content-type"])
                assert.are.equal("k-" .. m, echo.headers["idempotency-key"])
            end
            local status, _, body = get("/echo", { method = "POST" })
            assert.are.equal(200, status)
            assert.are.equal("0", assert(core.decode(body)).headers["content-length"])
            local hstatus, hheaders, hbody = get("/echo", { method = "HEAD" })
            assert.are.equal(200, hstatus)
            assert.are.equal("", hbody)
            assert.truthy(tonumber(hheaders["content-length"]) > 0)
        end)

        it("lower-cases header names and joins repeated headers with ', '", function()
            local status, headers = get("/headers")
            assert.are.equal(200, status)
            assert.are.equal("one, two", headers["x-dup"])
            assert.are.equal("Value Kept", headers["x-mixed-case"])
            for name in pairs(headers) do
                assert.are.equal(name:lower(), name)
            end
        end)

        it("keeps only the headers of the final response after 1xx ones", function()
            local status, headers, body = get("/continue")
            assert.are.equal(200, status)
            assert.are.equal("yes", headers["x-final"])
            assert.is_nil(headers["x-interim"])
            assert.is_nil(headers.link)
            assert.are.equal('{"final":true}', body)
        end)

        it("returns an HTTP error status as a response", function()
            local status, headers, body = get("/status/401")
            assert.are.equal(401, status)
            assert.are.equal("table", type(headers))
            assert.are.same({ status = 401 }, core.decode(body))
        end)

        it("decodes a gzip body", function()
            local status, headers, body = get("/gzip")
            assert.are.equal(200, status)
            assert.are.equal("gzip", headers["content-encoding"])
            local v = assert(core.decode(body))
            assert.is_true(v.gzip)
            assert.are.equal(200, #v.rows)
        end)

        it("fails with 'timeout' when the server does not answer in time", function()
            local status, msg, kind = get("/silent", { timeout = 0.2 })
            assert.is_nil(status)
            assert.are.equal("timeout", kind)
            assert.are.equal("string", type(msg))
            s:close()
            s = core.session{ timeout = 0.2 }
            status, msg, kind = get("/silent")
            assert.is_nil(status)
            assert.are.equal("timeout", kind)
            assert.truthy(msg:match("imeout"), msg)
        end)

        it("fails with 'reset' on a reset connection and on a truncated body", function()
            local status, msg, kind = get("/reset")
            assert.is_nil(status)
            assert.are.equal("reset", kind)
            assert.truthy(msg:match("reset"), msg)
            status, msg, kind = get("/partial")
            assert.is_nil(status)
            assert.are.equal("reset", kind)
            assert.are.equal("string", type(msg))
        end)

        it("fails with 'too_large' beyond max_response, known length or not", function()
            s:close()
            s = core.session{ max_response = 5000 }
            for _, path in ipairs{ "/big?n=5001", "/chunked?n=100000", "/big?n=200000" } do
                local status, msg, kind = get(path)
                assert.is_nil(status, path)
                assert.are.equal("too_large", kind)
                assert.truthy(msg:match("max_response"), msg)
            end
            local status, _, body = get("/big?n=5000")
            assert.are.equal(200, status)
            assert.are.equal(5000, #body)
            status, _, body = get("/chunked?n=5000")
            assert.are.equal(200, status)
            assert.are.equal(5000, #body)
        end)

        it("reuses one connection for sequential requests", function()
            local _, _, body = get("/stats")
            local before = assert(core.decode(body)).connections
            for i = 1, 5 do
                assert.are.equal(200, (get("/echo?i=" .. i)))
            end
            _, _, body = get("/stats")
            assert.are.equal(before, assert(core.decode(body)).connections)
        end)

        it("runs several requests in flight at once", function()
            local key = core.uuid()
            local reqs = {}
            for i = 1, 4 do
                reqs[i] = s:request{ url = server.url .. "/barrier?n=4&key=" .. key }
            end
            wait_all(s, reqs)
            for _, r in ipairs(reqs) do
                local status, _, body = r:response()
                assert.are.equal(200, status, body)
                r:close()
            end
        end)

        it("aborts transfers in flight when the session closes", function()
            local a = s:request{ url = server.url .. "/silent" }
            local b = s:request{ url = server.url .. "/silent" }
            s:perform()
            assert.truthy(tostring(s):match("2 in flight"))
            s:close()
            for _, r in ipairs{ a, b } do
                assert.is_true(r:done())
                local status, msg, kind = r:response()
                assert.is_nil(status)
                assert.are.equal("aborted", kind)
                assert.truthy(msg:match("session"), msg)
            end
            a:close()
            b:close()
        end)

        it("survives requests collected before their session, in flight or done", function()
            local done = s:request{ url = server.url .. "/echo" }
            wait(s, done)
            for _ = 1, 3 do s:request{ url = server.url .. "/silent" } end
            done = nil -- luacheck: ignore 311
            collectgarbage()
            collectgarbage()
            assert.are.equal("leadpipe.session (open, 0 in flight)", tostring(s):match("^[^:]+"))
            assert.are.equal(0, s:perform())
            assert.are.equal(200, (get("/echo")))
        end)

        it("keeps a session alive while a request of it lives", function()
            local req = core.session():request{ url = server.url .. "/silent" }
            collectgarbage()
            collectgarbage()
            assert.truthy(tostring(req):match("^leadpipe%.request %(running%)"))
            req:close()
            req = core.session():request{ url = server.url .. "/echo" } -- luacheck: ignore 311
            req = nil -- luacheck: ignore 311
            collectgarbage()
            collectgarbage()
        end)

        it("survives a session closed before its requests are collected", function()
            local reqs = {}
            for i = 1, 3 do reqs[i] = s:request{ url = server.url .. "/silent" } end
            s:close()
            assert.is_true(reqs[3]:done())
            reqs = nil -- luacheck: ignore 311
            collectgarbage()
            collectgarbage()
        end)

        it("exits cleanly with transfers in flight when the Lua state closes", function()
            local path = os.tmpname()
            finally(function() os.remove(path) end)
            local f = assert(io.open(path, "w"))
            f:write(([[
                local core = require "leadpipe.core"
                local s = core.session()
                R = {}
                for i = 1, 3 do R[i] = s:request{ url = %q } end
                S2 = core.session()
                R[4] = S2:request{ url = %q }
                S2:close()
                s:perform()
                os.exit(0, true)
            ]]):format(server.url .. "/silent", server.url .. "/echo"))
            f:close()
            local cmd = ("LUA_CPATH='%s' %s %s >/dev/null 2>&1"):format(
                package.cpath:gsub("'", ""), h.lua, path)
            local ok = os.execute(cmd)
            assert.is_true(ok == true or ok == 0)
        end)
    end)

    describe("HTTP against leadpipe.mock", function()
        if not has_mock then
            pending("leadpipe.mock is not built yet")
            return
        end
        local srv, s

        setup(function()
            srv = mock.start{ port = 0, seed = 1 }
        end)
        teardown(function()
            if srv then srv:stop() end
        end)
        ch.fresh_session({ timeout = 10 }, function(v) s = v end)

        local function api(method, path, opts)
            opts = opts or {}
            local headers = opts.headers or {}
            if headers["x-api-key"] == nil then headers["x-api-key"] = srv.api_key end
            return wait(s, s:request{
                method = method, url = srv.url .. path, headers = headers, body = opts.body,
            })
        end

        local function create_run(key)
            local status, _, body = api("POST", "/v1/intent/audiences/" .. srv.audience .. "/runs", {
                headers = { ["content-type"] = "application/json", ["idempotency-key"] = key or core.uuid() },
                body = '{"runType":"manual"}',
            })
            assert.is_true(status >= 200 and status < 300, body)
            return assert(core.decode(body)).data
        end

        it("POSTs a run with its headers", function()
            local before = srv:stats().runs_created
            local key = core.uuid()
            local run = create_run(key)
            assert.are.equal("string", type(run.id))
            assert.are.equal(before + 1, srv:stats().runs_created)
            -- the same Idempotency-Key reached the server: no second run
            assert.are.equal(run.id, create_run(key).id)
            assert.are.equal(before + 1, srv:stats().runs_created)
        end)

        -- The first page of a new run's results once it answers (limit rows): path, status,
        -- headers, body.
        local function first_page(limit)
            local run = create_run()
            local path = "/v1/intent/audiences/" .. srv.audience .. "/runs/" .. run.id .. "/results?limit="
                .. limit
            local status, headers, body
            for _ = 1, 100 do
                status, headers, body = api("GET", path)
                if status ~= 202 then break end
                core.sleep(0.01)
            end
            return path, status, headers, body
        end

        it("GETs a page of results, gzip-encoded and decoded", function()
            local _, status, headers, body = first_page(50)
            assert.are.equal(200, status, body)
            assert.are.equal("gzip", headers["content-encoding"])
            local page = assert(core.decode(body))
            assert.are.equal(50, #page.data.results)
            assert.are.equal(core.array_mt, getmetatable(page.data.results))
        end)

        it("returns 401 for a wrong key", function()
            local status = api("GET", "/v1/intent/audiences/" .. srv.audience .. "/runs",
                               { headers = { ["x-api-key"] = "sk_wrong" } })
            assert.are.equal(401, status)
        end)

        it("hands a 2xx body over in C memory for core.decode to parse in place (response(true))", function()
            local path, status, _, text = first_page(40)
            assert.are.equal(200, status, text)
            local function kept(url, headers)
                local req = s:request{ url = url, headers = headers or { ["x-api-key"] = srv.api_key } }
                wait(s, req)
                return req, req:response(true)
            end
            local req, st, _, body = kept(srv.url .. path)
            assert.are.equal(200, st)
            assert.are.equal("userdata", type(body))
            assert.truthy(tostring(body):find("^leadpipe%.body %(" .. #body .. " bytes%)"))
            assert.is_true(#body > 1000)
            -- the bytes moved to the body: the request can go, the body stays
            req:close()
            local whole = assert(core.decode(text))
            local in_place = assert(core.decode(body))
            assert.are.same(whole.data, in_place.data) -- meta (request id, time) is the request's own
            assert.are.equal(core.array_mt, getmetatable(in_place.data.results))
            if core.decode_page then
                local pred = core.where{ min_score = 50 }
                local a, rows_a, kept_a = core.decode_page(text, pred)
                local b, rows_b, kept_b = core.decode_page(body, pred)
                assert.are.same(a.data, b.data)
                assert.are.equal(40, rows_b)
                assert.are.same({ rows_a, kept_a }, { rows_b, kept_b })
                local raw_a, raw_b = core.decode_page(text, nil, true), core.decode_page(body, nil, true)
                assert.are.same(raw_a.data, raw_b.data)
            end
            -- the body stays until it is closed, and the fallback decoder takes it too
            assert.are.same(in_place, assert(core.decode_cjson(body)))
            body:close()
            body:close() -- idempotent
            assert.are.equal(0, #body)
            assert.are.equal("leadpipe.body (closed)", tostring(body))
            for _, decode in ipairs({ core.decode, core.decode_cjson, core.decode_page }) do
                local ok, err = pcall(decode, body)
                assert.is_false(ok)
                assert.matches("decode: the body is closed", err)
            end
            -- anything but a 2xx, and an empty body, come as strings
            local bad
            bad, st, _, body = kept(srv.url .. path, { ["x-api-key"] = "sk_wrong" })
            assert.are.equal(401, st)
            assert.are.equal("string", type(body))
            bad:close()
            -- a request is not a text: the decoders read bodies, not requests
            local ok, err = pcall(core.decode, bad)
            assert.is_false(ok)
            assert.matches("string expected", err)
            assert.has_error(function() core.decode({}) end)
        end)

        it("keeps one connection for sequential requests", function()
            srv:reset_stats()
            for _ = 1, 5 do
                api("GET", "/v1/intent/audiences/" .. srv.audience .. "/runs")
            end
            assert.are.equal(1, srv:stats().connections)
        end)

        it("runs several requests in flight at once", function()
            srv:configure{ latency_ms = 50 }
            finally(function() srv:configure{ latency_ms = 0 } end)
            srv:reset_stats()
            local reqs = {}
            for i = 1, 4 do
                reqs[i] = s:request{
                    url = srv.url .. "/v1/intent/audiences/" .. srv.audience .. "/runs",
                    headers = { ["x-api-key"] = srv.api_key },
                }
            end
            wait_all(s, reqs)
            for _, r in ipairs(reqs) do
                local status, _, body = r:response()
                assert.are.equal(200, status)
                assert.are.equal("table", type(assert(core.decode(body)).data))
            end
            assert.are.equal(4, srv:stats().requests.list_runs[200])
        end)
    end)
end)

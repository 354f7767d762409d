-- spec/core_spec.lua: leadpipe.core, the C module: its Lua boundary (bad arguments raise,
-- closed handles raise, close is idempotent), decode, uuid/sleep/now, and real HTTP against
-- two local servers: the fake API (leadpipe.mock) and spec/support/core_server.py for the
-- wire faults the fake does not make (resets, 1xx, oversized bodies, silence).
local core = require "leadpipe.core"

local has_mock, mock = pcall(require, "leadpipe.mock")
local has_python = os.execute("python3 -c 'pass' >/dev/null 2>&1")
has_python = has_python == true or has_python == 0

local LUA54 = _VERSION == "Lua 5.4"

-- Drives s until req is done (bounded: about 30 s at most), then returns its response.
local function wait(s, req)
    for _ = 1, 600 do
        s:perform()
        if req:done() then return req:response() end
        s:poll(0.05)
    end
    error("request did not finish")
end

-- Drives s until every request in reqs is done (bounded).
local function wait_all(s, reqs)
    for _ = 1, 600 do
        s:perform()
        local all = true
        for _, r in ipairs(reqs) do
            if not r:done() then all = false end
        end
        if all then return end
        s:poll(0.05)
    end
    error("requests did not finish")
end

-- The Lua interpreter running this spec, for the child-process cases.
local function lua_command()
    local env = os.getenv("LEADPIPE_LUA")
    if env and env ~= "" then return env end
    local i = 0
    while arg and arg[i - 1] do i = i - 1 end
    return arg and arg[i] or "lua"
end

-- Starts spec/support/core_server.py; returns { url =, stop = }.
local function start_python_server()
    local h = assert(io.popen("exec python3 spec/support/core_server.py", "r"))
    local line = h:read("*l") or ""
    local port, pid = line:match("^(%d+) (%d+)$")
    if not port then
        h:close()
        error("core_server.py did not start: " .. line)
    end
    return {
        url = "http://127.0.0.1:" .. port,
        stop = function()
            os.execute("kill " .. pid .. " 2>/dev/null")
            h:close()
        end,
    }
end

local function count_keys(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    return n
end

describe("leadpipe.core", function()
    after_each(function()
        collectgarbage()
        collectgarbage()
    end)

    describe("module", function()
        it("has a version, the libcurl version and its functions", function()
            assert.are.equal("leadpipe.core 0.1.0", core._VERSION)
            assert.truthy(core.curl_version:match("^libcurl/%d"))
            for _, name in ipairs{ "session", "decode", "uuid", "sleep", "now" } do
                assert.are.equal("function", type(core[name]))
            end
            assert.are.equal("table", type(core.array_mt))
        end)

        it("sets no globals", function()
            assert.is_nil(rawget(_G, "leadpipe"))
            assert.is_nil(rawget(_G, "core"))
        end)
    end)

    describe("uuid()", function()
        it("returns a lower-case RFC 4122 version 4 UUID", function()
            local pattern = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
            for _ = 1, 50 do
                local id = core.uuid()
                assert.truthy(id:match(pattern), id)
                assert.are.equal(id:lower(), id)
            end
        end)

        it("never repeats itself over 1000 calls", function()
            local seen = {}
            for _ = 1, 1000 do
                local id = core.uuid()
                assert.is_nil(seen[id])
                seen[id] = true
            end
        end)
    end)

    describe("sleep() and now()", function()
        it("sleeps at least the time asked for on the monotonic clock", function()
            local t0 = core.now()
            assert.are.equal(0, core.sleep(0.02))
            local t1 = core.now()
            assert.are.equal("number", type(t0))
            assert.is_true(t1 - t0 >= 0.02)
            core.sleep(0)
            assert.is_true(core.now() >= t1)
        end)

        it("raises on a bad duration", function()
            assert.has_error(function() core.sleep() end)
            assert.has_error(function() core.sleep("soon") end)
            assert.has_error(function() core.sleep(-1) end)
            assert.has_error(function() core.sleep(0 / 0) end)
            assert.has_error(function() core.sleep(math.huge) end)
        end)
    end)

    describe("decode()", function()
        local decode = core.decode

        it("leaves the collector as it found it, running or stopped, and pays for what it built", function()
            local ok, running = pcall(collectgarbage, "isrunning")
            if not ok or type(running) ~= "boolean" then
                pending("collectgarbage('isrunning') is not there on " .. _VERSION)
                return
            end
            -- in incremental mode (5.4), where a debt left unpaid would let the heap grow
            local mode_ok, mode = pcall(collectgarbage, "incremental")
            if mode_ok and (mode == "generational" or mode == "incremental") then
                finally(function() collectgarbage(mode) end)
            end
            local parts = {}
            for i = 1, 2000 do parts[i] = ('{"n":%d,"s":"row %d","t":{"u":[1,2,3]}}'):format(i, i) end
            local text = "[" .. table.concat(parts, ",") .. "]"
            collectgarbage("collect")
            local base = collectgarbage("count")
            for _ = 1, 200 do assert(decode(text)) end
            assert.is_true(collectgarbage("isrunning"))
            -- 200 decodes of about 1 MB of tables each: the collector kept up with them
            assert.is_true(collectgarbage("count") - base < 64 * 1024,
                ("heap grew by %.0f KiB"):format(collectgarbage("count") - base))
            collectgarbage("stop")
            finally(function() collectgarbage("restart") end)
            assert(decode(text))
            assert.is_false(collectgarbage("isrunning"))
            collectgarbage("restart")
            -- a text that fails to decode, and one that raises, leave it running too
            assert.is_nil(decode("[1,"))
            assert.has_error(function() decode({}) end)
            assert.is_true(collectgarbage("isrunning"))
        end)

        it("makes JSON null an absent key at every depth", function()
            local v = assert(decode('{"a":null,"b":1,"c":{"d":null,"e":{"f":null,"g":"x"}}}'))
            assert.is_nil(v.a)
            assert.are.equal(1, v.b)
            assert.is_nil(v.c.d)
            assert.is_nil(v.c.e.f)
            assert.are.equal("x", v.c.e.g)
            assert.are.equal(2, count_keys(v))
            assert.are.equal(1, count_keys(v.c))
            assert.are.equal(1, count_keys(v.c.e))
        end)

        it("drops nulls from arrays and keeps the other elements in order", function()
            local v = assert(decode('[null,1,null,null,2,{"x":[null,"a",null,"b"]},3,null]'))
            assert.are.equal(4, #v)
            assert.are.same({ 1, 2, { x = { "a", "b" } }, 3 }, v)
            local seen = {}
            for i, e in ipairs(v) do seen[i] = e end
            assert.are.equal(4, #seen)
            assert.are.equal(4, count_keys(v))
            assert.are.equal(2, #v[3].x)
            assert.are.equal(2, count_keys(v[3].x))
            assert.are.equal(core.array_mt, getmetatable(v[3].x))
        end)

        it("gives every array core.array_mt, empty ones too, and objects none", function()
            local v = assert(decode('{"a":[],"b":{},"c":[[],[ \n\t]],"d":[null,null],"e":[1]}'))
            assert.are.equal(core.array_mt, getmetatable(v.a))
            assert.are.equal(0, #v.a)
            assert.is_nil(next(v.a))
            assert.is_nil(getmetatable(v.b))
            assert.is_nil(next(v.b))
            assert.is_nil(getmetatable(v))
            assert.are.equal(core.array_mt, getmetatable(v.c))
            assert.are.equal(2, #v.c)
            assert.are.equal(core.array_mt, getmetatable(v.c[1]))
            assert.are.equal(core.array_mt, getmetatable(v.c[2]))
            assert.is_nil(next(v.c[2]))
            assert.are.equal(core.array_mt, getmetatable(v.d))
            assert.is_nil(next(v.d))
            assert.are.equal(core.array_mt, getmetatable(v.e))
            local top = assert(decode("[]"))
            assert.are.equal(core.array_mt, getmetatable(top))
            assert.is_nil(next(top))
            assert.is_nil(getmetatable(assert(decode("{}"))))
        end)

        it("leaves [] inside strings alone, escapes included", function()
            local v = assert(decode('{"s":"[]","t":"a\\"[ ]\\\\","u":["[]"],"w":[],"k[]":"[ ]"}'))
            assert.are.equal("[]", v.s)
            assert.are.equal('a"[ ]\\', v.t)
            assert.are.same({ "[]" }, v.u)
            assert.are.equal(core.array_mt, getmetatable(v.w))
            assert.are.equal("[ ]", v["k[]"])
        end)

        it("turns integer literals into integers and keeps floats (written with . or e)", function()
            local v = assert(decode('{"n":84,"f":84.5,"neg":-3,"e":1e3,"big":1e19,"z":0}'))
            assert.are.equal(84, v.n)
            assert.are.equal(84.5, v.f)
            assert.are.equal(-3, v.neg)
            assert.are.equal(1000, v.e)
            assert.are.equal(1e19, v.big)
            if math.type then
                assert.are.equal("integer", math.type(decode("[84]")[1]))
                assert.are.equal("integer", math.type(v.n))
                assert.are.equal("integer", math.type(v.neg))
                assert.are.equal("float", math.type(v.e))
                assert.are.equal("integer", math.type(v.z))
                assert.are.equal("float", math.type(v.f))
                assert.are.equal("float", math.type(v.big))
                assert.are.equal("84", tostring(v.n))
            end
        end)

        it("decodes top-level scalars", function()
            assert.are.equal(84, decode("84"))
            assert.are.equal("x", decode('"x"'))
            assert.are.equal(false, decode("false"))
            local v, err = decode("null")
            assert.is_nil(v)
            assert.truthy(err:match("^decode: "))
        end)

        it("handles deep nesting up to the cjson limit and fails cleanly beyond", function()
            local depth = 1000
            local v = assert(decode(string.rep("[", depth) .. string.rep("]", depth)))
            local n = 0
            while v[1] do
                v = v[1]
                n = n + 1
            end
            assert.are.equal(depth - 1, n)
            assert.are.equal(core.array_mt, getmetatable(v))
            local o = assert(decode(string.rep('{"a":', 999) .. "[null]" .. string.rep("}", 999)))
            assert.are.equal("table", type(o.a.a.a))
            local bad, err = decode(string.rep("[", 5000) .. string.rep("]", 5000))
            assert.is_nil(bad)
            assert.truthy(err:match("^decode: "))
        end)

        it("returns nil and a message for invalid JSON", function()
            for _, text in ipairs{ "", "[1,", "{", '{"a":}', "nul", "[1 2]", '"abc', "NaN",
                                   "[Infinity]", "{'a':1}", "[1]x" } do
                local v, err = decode(text)
                assert.is_nil(v, text)
                assert.are.equal("string", type(err))
                assert.truthy(err:match("^decode: .+"), err)
            end
        end)

        it("reports positions in the caller's text, not in its rewritten copy", function()
            local _, plain = decode("[1,x]")
            local _, with_empty = decode("[[],x]")
            assert.truthy(plain:match("character 4"), plain)
            assert.truthy(with_empty:match("character 5"), with_empty)
        end)

        it("raises only when the argument is not a string", function()
            assert.has_error(function() decode() end)
            assert.has_error(function() decode(84) end)
            assert.has_error(function() decode({}) end)
        end)

        it("is not affected by the settings of the user's cjson", function()
            local cjson = require "cjson"
            cjson.decode_max_depth(5)
            finally(function() cjson.decode_max_depth(1000) end)
            assert.truthy(decode(string.rep("[", 50) .. string.rep("]", 50)))
        end)
    end)

    describe("session()", function()
        it("raises on bad options", function()
            assert.has_error(function() core.session(42) end)
            assert.has_error(function() core.session{ nope = 1 } end, nil)
            assert.has_error(function() core.session{ [1] = true } end)
            assert.has_error(function() core.session{ timeout = "60" } end)
            assert.has_error(function() core.session{ timeout = -1 } end)
            assert.has_error(function() core.session{ connect_timeout = 0 } end)
            assert.has_error(function() core.session{ max_response = 0 } end)
            assert.has_error(function() core.session{ max_response = 1.5 } end)
            assert.has_error(function() core.session{ max_connections = -1 } end)
            assert.has_error(function() core.session{ verify = "yes" } end)
            assert.has_error(function() core.session{ user_agent = 5 } end)
            assert.has_error(function() core.session{ user_agent = "a\r\nX-Evil: 1" } end)
            local ok, err = pcall(core.session, { nope = 1 })
            assert.is_false(ok)
            assert.truthy(err:match("unknown option 'nope'"), err)
        end)

        it("accepts every documented option", function()
            local s = core.session{
                connect_timeout = 2.5, timeout = 30, max_response = 1024, user_agent = "spec/1",
                verify = false, max_connections = 2,
            }
            assert.truthy(tostring(s):match("^leadpipe%.session %(open"))
            s:close()
            core.session():close()
        end)

        it("closes idempotently and raises when used closed", function()
            local s = core.session()
            assert.are.equal(0, s:perform())
            assert.is_nil(s:timeout())
            s:close()
            s:close()
            assert.are.equal("leadpipe.session (closed)", tostring(s))
            for _, f in ipairs{
                function() s:perform() end,
                function() s:poll(0) end,
                function() s:timeout() end,
                function() s:request{ url = "http://127.0.0.1:1/" } end,
            } do
                local ok, err = pcall(f)
                assert.is_false(ok)
                assert.truthy(err:match("attempt to use a closed session"), err)
            end
        end)

        it("raises on a bad poll duration and on a non-session self", function()
            local s = core.session()
            assert.has_error(function() s:poll() end)
            assert.has_error(function() s:poll(-1) end)
            assert.has_error(function() s:poll({}) end)
            assert.has_error(function() s.perform({}) end)
            assert.has_error(function() s.close(42) end)
            s:close()
        end)

        it("polls for the time given when nothing is in flight", function()
            local s = core.session()
            local t0 = core.now()
            assert.are.equal(0, s:poll(0.01))
            assert.is_true(core.now() - t0 >= 0.01)
            s:close()
        end)

        if LUA54 then
            it("is closed by a to-be-closed variable", function()
                local chunk = assert(load([[
                    local core = ...
                    local kept
                    do
                        local s <close> = core.session()
                        kept = s
                    end
                    return kept
                ]]))
                assert.are.equal("leadpipe.session (closed)", tostring(chunk(core)))
            end)
        end
    end)

    describe("session:request()", function()
        local s
        before_each(function() s = core.session{ timeout = 5 } end)
        after_each(function() s:close() end)

        it("raises on bad arguments before anything starts", function()
            local url = "http://127.0.0.1:1/"
            for _, opts in ipairs{
                {},
                { url = 42 },
                { url = url .. "\0.evil" },
                { url = url .. "\r\nx-evil: 1" },
                { url = url, method = "get" },
                { url = url, method = "TRACE" },
                { url = url, body = "x" },
                { url = url, method = "HEAD", body = "x" },
                { url = url, method = "POST", body = 42 },
                { url = url, headers = "x-a: b" },
                { url = url, headers = { ["x-a"] = true } },
                { url = url, headers = { [1] = "b" } },
                { url = url, headers = { ["x-a"] = "b\r\nx-evil: 1" } },
                { url = url, headers = { ["x-a\n"] = "b" } },
                { url = url, headers = { ["x:a"] = "b" } },
                { url = url, headers = { [""] = "b" } },
                { url = url, timeout = -1 },
                { url = url, timeout = "1" },
                { url = url, retries = 3 },
            } do
                assert.has_error(function() s:request(opts) end)
            end
            assert.has_error(function() s:request() end)
            assert.has_error(function() s:request("http://127.0.0.1:1/") end)
            assert.are.equal(0, s:perform())
        end)
    end)

    describe("request", function()
        it("raises while running, and after close; closes idempotently", function()
            local s = core.session{ timeout = 5 }
            local req = s:request{ url = "http://127.0.0.1:1/" }
            assert.truthy(tostring(req):match("^leadpipe%.request %((%a+)%)"))
            if not req:done() then
                assert.truthy(tostring(req):match("^leadpipe%.request %(running%)"))
                local ok, err = pcall(req.response, req)
                assert.is_false(ok)
                assert.truthy(err:match("still running"), err)
            end
            req:close()
            req:close()
            assert.are.equal("leadpipe.request (closed)", tostring(req))
            for _, f in ipairs{ req.done, req.response } do
                local ok, err = pcall(f, req)
                assert.is_false(ok)
                assert.truthy(err:match("attempt to use a closed request"), err)
            end
            assert.has_error(function() req.done(s) end)
            assert.are.equal(0, s:perform())
            s:close()
        end)

        it("fails with kind 'connect' on a closed loopback port", function()
            local s = core.session{ timeout = 5 }
            local req = s:request{ url = "http://127.0.0.1:1/" }
            local status, msg, kind = wait(s, req)
            assert.is_nil(status)
            assert.are.equal("connect", kind)
            assert.truthy(msg:match("onnect"), msg)
            assert.truthy(tostring(req):match("^leadpipe%.request %(done%)"))
            s:close()
        end)

        it("refuses protocols other than HTTP(S) with kind 'network'", function()
            local s = core.session{ timeout = 5 }
            local status, msg, kind = wait(s, s:request{ url = "file:///etc/hostname" })
            assert.is_nil(status)
            assert.are.equal("network", kind)
            assert.are.equal("string", type(msg))
            s:close()
        end)
    end)

    describe("HTTP against core_server.py", function()
        if not has_python then
            pending("python3 is not available")
            return
        end
        local server, s

        setup(function()
            server = start_python_server()
        end)
        teardown(function()
            if server then server.stop() end
        end)
        before_each(function()
            s = core.session{ timeout = 10 }
        end)
        after_each(function()
            if s then s:close() end
            s = nil
        end)

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
                package.cpath:gsub("'", ""), lua_command(), path)
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
        before_each(function()
            s = core.session{ timeout = 10 }
        end)
        after_each(function()
            if s then s:close() end
            s = nil
        end)

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

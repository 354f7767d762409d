-- spec/http1_spec.lua: leadpipe.wire.http1_parser, the HTTP/1.1 of the cosocket wire:
-- URL splitting, the request head, and the response parser driven by a fake socket
-- (spec/support/fake_socket.lua). The wire in a real nginx: spec/openresty_spec.lua.
local http1 = require "leadpipe.wire.http1_parser"
local fake_socket = require "spec.support.fake_socket"

local function unhex(s)
    return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end
local GZIP = unhex("1f8b0800000000000203ab564a54b232ac0500afac1b5607000000") -- '{"a":1}'

-- Parses the scripted bytes; returns every value read_response returns, packed.
local function parse(script, opts)
    local sock = fake_socket.new(type(script) == "string" and { script } or script, opts)
    local out = table.pack and table.pack(http1.read_response(sock, opts or {}))
        or { n = 5, http1.read_response(sock, opts or {}) }
    return out, sock
end

describe("http1.parse_url()", function()
    it("splits scheme, host, port, target and authority", function()
        assert.are.same({ "http", "127.0.0.1", 8080, "/v1/x?a=1", "127.0.0.1:8080" },
            { http1.parse_url("http://127.0.0.1:8080/v1/x?a=1#frag") })
        assert.are.same({ "https", "api.example.com", 443, "/", "API.example.com" },
            { http1.parse_url("HTTPS://API.example.com") })
        assert.are.same({ "http", "::1", 80, "/?q", "[::1]" }, { http1.parse_url("http://[::1]?q") })
        assert.are.same({ "http", "h", 80, "/", "h" }, { http1.parse_url("http://user:pw@h") })
    end)

    it("refuses what it cannot reach", function()
        assert.is_nil(http1.parse_url("ftp://h/x"))
        assert.is_nil(http1.parse_url("/relative"))
        assert.is_nil(http1.parse_url("http://h:70000/"))
        assert.is_nil(http1.parse_url("http:///x"))
    end)
end)

describe("http1.build_request()", function()
    it("writes the request line, Host, gzip, the user agent and the caller's headers", function()
        local head = table.concat(assert(http1.build_request({
            method = "GET", headers = { ["x-api-key"] = "k", accept = "application/json" },
        }, "127.0.0.1:8080", "/v1/x", "leadpipe-test")))
        assert.matches("^GET /v1/x HTTP/1%.1\r\nHost: 127%.0%.0%.1:8080\r\n", head)
        assert.matches("\r\nAccept%-Encoding: gzip\r\n", head)
        assert.matches("\r\nUser%-Agent: leadpipe%-test\r\n", head)
        assert.matches("\r\nx%-api%-key: k\r\n", head)
        assert.matches("\r\naccept: application/json\r\n", head)
        assert.is_nil(head:find("Content-Length", 1, true))
        assert.are.equal("\r\n\r\n", head:sub(-4))
    end)

    it("sends a body with its length, and an empty POST with length 0", function()
        local parts = assert(http1.build_request({ method = "POST", body = '{"a":1}' }, "h", "/", nil))
        local req = table.concat(parts)
        assert.matches("\r\nContent%-Length: 7\r\n\r\n{\"a\":1}$", req)
        req = table.concat(assert(http1.build_request({ method = "POST" }, "h", "/", nil)))
        assert.matches("\r\nContent%-Length: 0\r\n\r\n$", req)
    end)

    it("refuses header injection and keeps framing headers its own", function()
        assert.is_nil(http1.build_request({ headers = { ["x-a"] = "v\r\nEvil: 1" } }, "h", "/"))
        assert.is_nil(http1.build_request({ headers = { ["x a"] = "v" } }, "h", "/"))
        local req = table.concat(http1.build_request({
            headers = { ["content-length"] = "99", host = "evil", connection = "close" } }, "h", "/"))
        assert.is_nil(req:find("99", 1, true))
        assert.is_nil(req:find("evil", 1, true))
        assert.is_nil(req:lower():find("connection", 1, true))
    end)
end)

describe("http1.read_response()", function()
    it("reads a Content-Length body and keeps the connection", function()
        local r, sock = parse({ "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
                                "Content-Length: 7\r\nX-Request-Id: abc\r\n\r\n", '{"a":1}', "extra?" })
        assert.are.equal(200, r[1])
        assert.are.same({ ["content-type"] = "application/json", ["content-length"] = "7",
                          ["x-request-id"] = "abc" }, r[2])
        assert.are.equal('{"a":1}', r[3])
        assert.is_true(r[4])
        assert.are.equal("extra?", sock:receiveany(100)) -- not read past the body
    end)

    it("reads a body split over many segments and one larger than a read", function()
        local body = ("x"):rep(100000)
        local script = { "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" }
        for i = 1, 100000, 7000 do script[#script + 1] = body:sub(i, i + 6999) end
        local r = parse(script)
        assert.are.equal(body, r[3])
    end)

    it("reads a head that arrives a byte at a time", function()
        local text = "HTTP/1.1 201 Created\r\nA: 1\r\nContent-Length: 2\r\n\r\nok"
        local script = {}
        for i = 1, #text do script[i] = text:sub(i, i) end
        local r = parse(script)
        assert.are.same({ 201, { a = "1", ["content-length"] = "2" }, "ok", true },
            { r[1], r[2], r[3], r[4] })
    end)

    it("lower-cases names, joins repeated headers and unfolds folded ones", function()
        local r = parse("HTTP/1.1 200 OK\r\nVary: a\r\nVARY:  b \r\nX-Long: one\r\n  two\r\n\tthree\r\n"
            .. "Content-Length: 0\r\n\r\n")
        assert.are.equal("a, b", r[2].vary)
        assert.are.equal("one two three", r[2]["x-long"])
        assert.are.equal("", r[3])
    end)

    it("accepts bare LF line ends and a status line without a reason", function()
        local r = parse("HTTP/1.1 204\nServer: x\n\n")
        assert.are.same({ 204, { server = "x" }, "", true }, { r[1], r[2], r[3], r[4] })
    end)

    it("skips 1xx answers before the real one", function()
        local r = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            .. "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        assert.are.equal(200, r[1])
        assert.is_nil(r[2].link)
        assert.are.equal("ok", r[3])
    end)

    it("reads chunked bodies with extensions and trailers", function()
        local r = parse({ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                          "5;name=value\r\nhello\r\n", "1\r\n \r\n6 ; x=\"y\"\r\nwo", "rld!\r\n",
                          "0\r\nX-Trailer: t\r\n\r\n", "NEXT" })
        assert.are.equal("hello world!", r[3])
        assert.is_true(r[4])
    end)

    it("reads chunk sizes in upper and lower case hex", function()
        local body = ("z"):rep(0x1aF)
        local r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1aF\r\n" .. body
            .. "\r\n0\r\n\r\n")
        assert.are.equal(body, r[3])
    end)

    it("reads until close without a length, and does not reuse that connection", function()
        local r = parse({ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nab", "cd", "ef" })
        assert.are.same({ 200, "abcdef", false }, { r[1], r[3], r[4] })
    end)

    it("closes after Connection: close and on HTTP/1.0 without keep-alive", function()
        assert.is_false(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")[4])
        assert.is_false(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")[4])
        assert.is_true(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")[4])
    end)

    it("has no body for HEAD, 204 and 304", function()
        local r = parse("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", { method = "HEAD" })
        assert.are.same({ 200, "" }, { r[1], r[3] })
        r = parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n")
        assert.are.same({ 304, "" }, { r[1], r[3] })
    end)

    it("decodes gzip bodies, chunked or not", function()
        local r = parse("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " .. #GZIP
            .. "\r\n\r\n" .. GZIP)
        assert.are.equal('{"a":1}', r[3])
        local half = math.floor(#GZIP / 2)
        r = parse("HTTP/1.1 200 OK\r\nContent-Encoding: GZIP\r\nTransfer-Encoding: chunked\r\n\r\n"
            .. ("%x\r\n"):format(half) .. GZIP:sub(1, half) .. ("\r\n%x\r\n"):format(#GZIP - half)
            .. GZIP:sub(half + 1) .. "\r\n0\r\n\r\n")
        assert.are.equal('{"a":1}', r[3])
    end)

    it("keeps a gzip 2xx body in C memory with opts.keep, and every other body a string", function()
        local core = require "leadpipe.core"
        local function answer(status, enc, body)
            return ("HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n"):format(status,
                enc and "Content-Encoding: gzip\r\n" or "", #body) .. body
        end
        local r = parse(answer("200 OK", true, GZIP), { keep = true })
        assert.are.equal("userdata", type(r[3]))
        assert.are.same({ a = 1 }, core.decode(r[3]))
        r[3]:close()
        -- without keep, an error status, or an identity body: a Lua string, as before
        for _, case in ipairs{ { "200 OK", true, GZIP, nil }, { "404 Not Found", true, GZIP, true },
            { "503 Service Unavailable", true, GZIP, true }, { "200 OK", false, '{"a":1}', true } } do
            r = parse(answer(case[1], case[2], case[3]), { keep = case[4] })
            assert.are.equal('{"a":1}', r[3], case[1])
        end
        -- a gzip member of nothing is the empty body, a string
        local empty = unhex("1f8b080000000000020303000000000000000000")
        r = parse(answer("200 OK", true, empty), { keep = true })
        assert.are.equal("", r[3])
    end)

    it("fails on a corrupt gzip body and an unknown encoding", function()
        local bad = GZIP:sub(1, 20)
        local r = parse("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " .. #bad
            .. "\r\n\r\n" .. bad)
        assert.are.same({ nil, "bad gzip body: inflate: truncated data", "network" }, { r[1], r[2], r[3] })
        r = parse("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 1\r\n\r\nx")
        assert.are.same({ nil, "network" }, { r[1], r[3] })
    end)

    it("refuses a header block over 1 MiB with kind too_large", function()
        local big = ("a"):rep(64 * 1024)
        local script = { "HTTP/1.1 200 OK\r\n" }
        for i = 1, 20 do script[#script + 1] = "X-" .. i .. ": " .. big .. "\r\n" end
        script[#script + 1] = "Content-Length: 0\r\n\r\n"
        local r = parse(script)
        assert.are.same({ nil, "too_large" }, { r[1], r[3] })
        assert.matches("headers exceed", r[2])
        -- one endless line is cut off too, without reading it all
        local endless = { "HTTP/1.1 200 OK\r\nX-Endless: " }
        for i = 2, 100 do endless[i] = ("b"):rep(16384) end
        local sock = fake_socket.new(endless)
        local status, _, kind = http1.read_response(sock, {})
        assert.are.same({ nil, "too_large" }, { status, kind })
        assert.is_true(sock.reads < 100)
    end)

    it("refuses bodies over max_response, declared or chunked or until close", function()
        local r = parse("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", { max_response = 1024 })
        assert.are.same({ nil, "too_large" }, { r[1], r[3] })
        local chunk = ("c"):rep(600)
        r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" .. chunk .. "\r\n258\r\n"
            .. chunk .. "\r\n0\r\n\r\n", { max_response = 1024 })
        assert.are.same({ nil, "too_large" }, { r[1], r[3] })
        r = parse({ "HTTP/1.1 200 OK\r\n\r\n", chunk, chunk }, { max_response = 1024 })
        assert.are.same({ nil, "too_large" }, { r[1], r[3] })
    end)

    it("reports a body cut short as reset, with the bytes it got", function()
        local r = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        assert.are.same({ nil, "reset" }, { r[1], r[3] })
        assert.matches("closed the connection while reading the body", r[2])
        assert.is_true(r[4] > 0)
        r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        assert.are.same({ nil, "reset" }, { r[1], r[3] })
        r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        assert.are.same({ nil, "reset" }, { r[1], r[3] })
    end)

    it("reports a connection closed before any byte with 0 bytes received", function()
        local r = parse({})
        assert.are.same({ nil, "reset", 0 }, { r[1], r[3], r[4] })
        r = parse({}, { finish = "connection reset by peer" })
        assert.are.same({ nil, "reset", 0 }, { r[1], r[3], r[4] })
    end)

    it("maps a socket timeout to kind timeout", function()
        local r = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", { finish = "timeout" })
        assert.are.same({ nil, "timeout" }, { r[1], r[3] })
    end)

    it("sets the socket timeout to what is left before the deadline", function()
        local t = 100
        local r, sock = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            { deadline = 102.5, now = function() return t end })
        assert.are.equal("ok", r[3])
        assert.are.equal(2501, sock.timeouts[1])
        t = 103
        r = parse("HTTP/1.1 200 OK\r\n\r\n", { deadline = 102.5, now = function() return t end })
        assert.are.same({ nil, "timeout" }, { r[1], r[3] })
    end)

    it("fails on malformed heads and framing", function()
        local cases = {
            "SMTP ready\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            "HTTP/1.1 200 OK\r\n continued first\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        }
        for _, text in ipairs(cases) do
            local r = parse(text)
            assert.is_nil(r[1], text)
            assert.are.equal("network", r[3], text)
        end
        -- agreeing repeated lengths are fine
        assert.are.equal("hello",
            parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")[3])
    end)

    it("does not reuse a connection with bytes past the answer", function()
        local r = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE")
        assert.are.equal("ok", r[3])
        assert.is_false(r[4])
    end)
end)

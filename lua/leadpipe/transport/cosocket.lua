-- leadpipe.transport.cosocket: moves bytes over OpenResty cosockets (ngx.socket.tcp).
--
-- The wire of the "openresty" host (see transport/curl.lua for the five methods every wire
-- has). A small HTTP/1.1 client, just what the API needs:
--   request   request line, Host, User-Agent, Accept-Encoding: gzip, Content-Length, the
--             caller's headers; the body in the same send
--   response  status line (1xx skipped), headers (names lower-cased, repeats joined with
--             ", ", obsolete folding unfolded, the block capped at 1 MiB: kind "too_large"),
--             body by Content-Length, chunked (extensions and trailers ignored) or until
--             close; capped at max_response (kind "too_large"); gzip decoded by core.inflate
--   sockets   connect/TLS/keep-alive are nginx's: its `resolver`, `lua_ssl_trusted_certificate`
--             and `lua_ssl_verify_depth`, `lua_socket_keepalive_timeout` and
--             `lua_socket_pool_size` apply. One pool per worker for each
--             scheme://host:port (plus ":noverify" when verify = false), shared by every
--             client and request of the worker. A request that fails on a reused connection
--             before any byte of the answer came back is sent again on another connection
--             (the server closed an idle one), as libcurl does.
--   time      connect_timeout for the connect and the TLS handshake; `timeout` bounds the
--             whole exchange (like libcurl's), enforced before every socket operation
-- Each request runs in its own light thread (ngx.thread.spawn) started by send, so pages
-- requested ahead travel while the caller works; wait is ngx.thread.wait, cancel is
-- ngx.thread.kill. send and wait for one request must run in the same request context and
-- the same coroutine (nginx lets only a thread's parent wait on it or kill it).
-- Cosockets exist only in some nginx phases: send checks ngx.get_phase() first, and in the
-- others (init, init_worker, set, header_filter, body_filter, log, ...) the request fails
-- with kind "host" and a message naming the phase, before anything is sent. A client may be
-- created anywhere (init_worker_by_lua* is the usual place).
--
-- The response parser (read_response) only needs an object with receive(n),
-- receiveany(max) and settimeout(ms) that behave like a cosocket's, so it is tested with a
-- fake socket outside nginx (spec/cosocket_spec.lua).

local core = require "leadpipe.core"

local setmetatable, tonumber, tostring, type, pairs, pcall, next, error =
    setmetatable, tonumber, tostring, type, pairs, pcall, next, error
local concat = table.concat
local find, sub, lower, match, gsub = string.find, string.sub, string.lower, string.match, string.gsub
local floor, min = math.floor, math.min

local _M = { _VERSION = "0.1.0" }

local HEADER_LIMIT = 1024 * 1024 -- bytes of status line + headers (libcurl's wire has the same)
local LINE_READ = 16384          -- receiveany size while reading the head (often the whole answer)
local BODY_READ = 65536          -- receiveany size for a body read until close
local MAX_ATTEMPTS = 4           -- reused connections that may be found closed, plus one fresh

-- Phases where cosockets and light threads work.
local IO_PHASES = {
    rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

-- ===== URL and request =====

--- Splits an http(s) URL: scheme, host (brackets of an IPv6 literal removed), port,
-- target (path and query, at least "/"), authority (for the Host header); nil, message.
function _M.parse_url(url)
    local scheme, authority, rest = match(url, "^(%a[%w+.-]*)://([^/?#]*)(.*)$")
    if not scheme then return nil, "not an absolute URL" end
    scheme = lower(scheme)
    if scheme ~= "http" and scheme ~= "https" then
        return nil, "unsupported URL scheme " .. scheme
    end
    authority = gsub(authority, "^.*@", "")
    local host, port = match(authority, "^%[([^%]]+)%]:?(%d*)$")
    if not host then host, port = match(authority, "^([^:]+):?(%d*)$") end
    if not host or host == "" then return nil, "no host in the URL" end
    port = tonumber(port) or (scheme == "https" and 443 or 80)
    if port < 1 or port > 65535 then return nil, "bad port in the URL" end
    local target = gsub(rest, "#.*$", "")
    if target == "" then target = "/"
    elseif sub(target, 1, 1) == "?" then target = "/" .. target end
    return scheme, lower(host), port, target, authority
end

local function has_ctl(s)
    return find(s, "[%c]") ~= nil
end

--- The request head and body as one array of strings (sock:send takes a table).
-- spec: method, headers (name -> value), body; nil, message when a header is unsafe.
function _M.build_request(spec, authority, target, user_agent)
    local method = spec.method or "GET"
    local out = { method, " ", target, " HTTP/1.1\r\nHost: ", authority,
                  "\r\nAccept-Encoding: gzip\r\n" }
    local n = #out
    local seen_ua = false
    if spec.headers then
        for name, value in pairs(spec.headers) do
            name, value = tostring(name), tostring(value)
            if has_ctl(name) or has_ctl(value) or find(name, "[%s:]") then
                return nil, "header " .. ("%q"):format(name) .. " has characters HTTP forbids"
            end
            local lname = lower(name)
            if lname ~= "host" and lname ~= "content-length" and lname ~= "accept-encoding"
                    and lname ~= "transfer-encoding" and lname ~= "connection" then
                if lname == "user-agent" then seen_ua = true end
                out[n + 1], out[n + 2], out[n + 3], out[n + 4] = name, ": ", value, "\r\n"
                n = n + 4
            end
        end
    end
    if user_agent and not seen_ua then
        out[n + 1], out[n + 2], out[n + 3] = "User-Agent: ", user_agent, "\r\n"
        n = n + 3
    end
    local body = spec.body
    if body or method == "POST" or method == "PUT" or method == "PATCH" then
        out[n + 1], out[n + 2], out[n + 3] = "Content-Length: ", tostring(body and #body or 0), "\r\n"
        n = n + 3
    end
    out[n + 1] = "\r\n"
    if body and body ~= "" then out[n + 2] = body end
    return out
end

-- ===== the response parser =====

-- A buffered reader over a cosocket-like object. `deadline` (seconds on `now`'s clock)
-- bounds every read: the socket's timeout is set to what is left before each one.
local function new_reader(sock, deadline, now)
    return { sock = sock, buf = "", pos = 1, received = 0, deadline = deadline, now = now }
end
_M.new_reader = new_reader

-- Socket error text -> kind.
local function io_kind(err)
    if err == "timeout" then return "timeout" end
    if err == "closed" or find(err, "reset", 1, true) or find(err, "broken pipe", 1, true) then
        return "reset"
    end
    return "network"
end

local function io_fail(what, err)
    if err == "timeout" then return nil, "timeout while " .. what, "timeout" end
    if err == "closed" then return nil, "the server closed the connection while " .. what, "reset" end
    return nil, tostring(err) .. " while " .. what, io_kind(err)
end

-- Sets the socket's timeout to what is left; false when nothing is.
local function arm(r)
    if not r.deadline then return true end
    local left = r.deadline - r.now()
    if left <= 0 then return false end
    r.sock:settimeout(floor(left * 1000) + 1)
    return true
end

local function refill(r, what)
    if not arm(r) then return io_fail(what, "timeout") end
    local data, err = r.sock:receiveany(LINE_READ)
    if not data then return io_fail(what, err) end
    r.received = r.received + #data
    if r.pos > #r.buf then
        r.buf, r.pos = data, 1
    else
        r.buf, r.pos = sub(r.buf, r.pos) .. data, 1
    end
    return true
end

-- Reads one line (LF-terminated, a CR before it dropped). `budget` is what the line may
-- take at most, line end included. -> line, bytes consumed | nil, message, kind
local function read_line(r, budget, what)
    while true do
        local i = find(r.buf, "\n", r.pos, true)
        if i then
            local used = i - r.pos + 1
            if used > budget then break end
            local line = sub(r.buf, r.pos, i - 1)
            r.pos = i + 1
            if sub(line, -1) == "\r" then line = sub(line, 1, -2) end
            return line, used
        end
        if #r.buf - r.pos + 1 > budget then break end
        local ok, err, kind = refill(r, what)
        if not ok then return nil, err, kind end
    end
    return nil, "response too large: the headers exceed " .. HEADER_LIMIT .. " bytes", "too_large"
end

-- Reads exactly n bytes. -> data | nil, message, kind
local function read_exact(r, n, what)
    local have = #r.buf - r.pos + 1
    if have >= n then
        local data = sub(r.buf, r.pos, r.pos + n - 1)
        r.pos = r.pos + n
        return data
    end
    local head = have > 0 and sub(r.buf, r.pos) or ""
    r.buf, r.pos = "", 1
    if not arm(r) then return io_fail(what, "timeout") end
    local data, err = r.sock:receive(n - have)
    if not data then return io_fail(what, err) end
    r.received = r.received + #data
    return head .. data
end

-- Reads until the server closes, at most max bytes. -> data | nil, message, kind
local function read_to_close(r, max)
    local parts, total = {}, #r.buf - r.pos + 1
    if total > 0 then parts[1] = sub(r.buf, r.pos) end
    r.buf, r.pos = "", 1
    while true do
        if total > max then
            return nil, "response too large: the body exceeds max_response (" .. max .. " bytes)",
                "too_large"
        end
        if not arm(r) then return io_fail("reading the body", "timeout") end
        local data, err = r.sock:receiveany(BODY_READ)
        if not data then
            if err == "closed" then return concat(parts) end
            return io_fail("reading the body", err)
        end
        r.received = r.received + #data
        parts[#parts + 1] = data
        total = total + #data
    end
end

local function too_large_body(max)
    return nil, "response too large: the body exceeds max_response (" .. max .. " bytes)", "too_large"
end

local function malformed(what)
    return nil, "malformed chunked body: " .. what, "network"
end

local function read_chunked(r, max)
    local parts, total = {}, 0
    for _ = 1, 1e9 do -- bounded by max: every round takes at least one byte
        local line, err, kind = read_line(r, 4096, "reading a chunk size")
        if not line then
            if kind == "too_large" then return malformed("chunk size line too long") end
            return nil, err, kind
        end
        local hex = match(line, "^%s*(%x+)%s*;?") or match(line, "^%s*(%x+)%s*$")
        if not hex or #hex > 12 then
            return malformed("bad chunk size " .. ("%q"):format(sub(line, 1, 40)))
        end
        local size = tonumber(hex, 16)
        if size == 0 then
            -- trailers, up to the empty line
            local budget = HEADER_LIMIT
            while true do
                local t, used
                t, used, kind = read_line(r, budget, "reading the trailers")
                if not t then return nil, used, kind end
                if t == "" then return concat(parts) end
                budget = budget - used
            end
        end
        total = total + size
        if total > max then return too_large_body(max) end
        local data
        data, err, kind = read_exact(r, size, "reading a chunk")
        if not data then return nil, err, kind end
        parts[#parts + 1] = data
        line, err, kind = read_line(r, 2, "reading a chunk end")
        if not line then
            if kind == "too_large" then return malformed("no CRLF after a chunk") end
            return nil, err, kind
        end
        if line ~= "" then return malformed("no CRLF after a chunk") end
    end
end

-- Reads the status line (skipping 1xx answers) and the headers.
-- -> status, headers, http minor version | nil, message, kind
local function read_head(r)
    local budget = HEADER_LIMIT
    local status, minor
    while true do
        local line, used, kind = read_line(r, budget, "waiting for the response")
        if not line then return nil, used, kind end
        budget = budget - used
        if line ~= "" or status then -- tolerate one empty line before the status line
            local maj, mnr, code, after = match(line, "^HTTP/(%d)%.(%d) (%d%d%d)(.?)")
            if not maj or (after ~= "" and after ~= " ") then
                return nil, "malformed status line " .. ("%q"):format(sub(line, 1, 60)), "network"
            end
            status, minor = tonumber(code), tonumber(mnr)
            if maj ~= "1" then minor = 1 end
            local headers, last = {}, nil
            while true do
                line, used, kind = read_line(r, budget, "reading the headers")
                if not line then return nil, used, kind end
                budget = budget - used
                if line == "" then break end
                local c = sub(line, 1, 1)
                if c == " " or c == "\t" then
                    -- obsolete line folding: the line continues the previous header
                    if not last then return nil, "malformed header: folded first line", "network" end
                    local v = match(line, "^%s*(.-)%s*$")
                    headers[last] = headers[last] .. " " .. v
                else
                    local name, value = match(line, "^([^:%s]+)%s*:%s*(.-)%s*$")
                    if not name then
                        return nil, "malformed header line " .. ("%q"):format(sub(line, 1, 60)), "network"
                    end
                    name = lower(name)
                    local prev = headers[name]
                    headers[name] = prev and (prev .. ", " .. value) or value
                    last = name
                end
            end
            if status >= 200 or status == 101 then return status, headers, minor end
            status = nil -- 1xx (100 Continue, 103 Early Hints): the real answer follows
        end
    end
end

local function token_list_has(value, token)
    if not value then return false end
    for item in value:gmatch("[^,]+") do
        if lower(match(item, "^%s*(.-)%s*$")) == token then return true end
    end
    return false
end

--- Reads one response from a cosocket-like object.
-- opts: method (HEAD has no body), max_response (bytes), deadline and now (optional).
-- -> status, headers, body, keepalive | nil, message, kind, bytes_received
-- `keepalive` is true when the connection may carry another request.
function _M.read_response(sock, opts)
    local r = new_reader(sock, opts.deadline, opts.now)
    local status, headers, minor = read_head(r)
    if not status then return nil, headers, minor, r.received end
    local max = opts.max_response or 256 * 1024 * 1024
    local conn = headers.connection
    local keepalive
    if minor == 0 then keepalive = token_list_has(conn, "keep-alive")
    else keepalive = not token_list_has(conn, "close") end
    local body, err, kind
    local te = headers["transfer-encoding"]
    if opts.method == "HEAD" or status == 204 or status == 304 then
        body = ""
    elseif te and not token_list_has(te, "identity") then
        if lower(match(te, "([^,%s]+)%s*$") or "") ~= "chunked" then
            return nil, "unsupported transfer-encoding " .. te, "network", r.received
        end
        body, err, kind = read_chunked(r, max)
    elseif headers["content-length"] then
        local cl = headers["content-length"]
        local n = match(cl, "^(%d+)$")
        if not n then
            -- "10, 10" from repeated headers is fine when every value agrees
            for v in cl:gmatch("[^,]+") do
                local d = match(v, "^%s*(%d+)%s*$")
                if not d or (n and d ~= n) then
                    return nil, "bad content-length " .. ("%q"):format(sub(cl, 1, 40)), "network", r.received
                end
                n = d
            end
        end
        if #n > 15 or tonumber(n) > max then
            return nil, "response too large: the body exceeds max_response (" .. max .. " bytes)",
                "too_large", r.received
        end
        body, err, kind = read_exact(r, tonumber(n), "reading the body")
    else
        keepalive = false
        body, err, kind = read_to_close(r, max)
    end
    if not body then return nil, err, kind, r.received end
    if r.pos <= #r.buf then keepalive = false end -- bytes past the answer: do not reuse
    local enc = headers["content-encoding"]
    if enc and body ~= "" then
        enc = lower(match(enc, "^%s*(.-)%s*$"))
        if enc == "gzip" or enc == "x-gzip" or enc == "deflate" then
            local out, ierr, ikind = core.inflate(body, max)
            if not out then
                if ikind == "too_large" then
                    return nil, "response too large: the decoded body exceeds max_response ("
                        .. max .. " bytes)", "too_large", r.received
                end
                return nil, "bad gzip body: " .. ierr, "network", r.received
            end
            body = out
        elseif enc ~= "identity" then
            return nil, "unsupported content-encoding " .. enc, "network", r.received
        end
    end
    return status, headers, body, keepalive
end

-- ===== the wire =====

local Wire = {}
Wire.__index = Wire

-- A handle nobody holds any more (an abandoned call) must not stay in a long-lived
-- per-worker client.
local WEAK_KEYS = { __mode = "k" }

local ngx_api -- the ngx table, looked up when the first wire is made

local function connect_kind(err)
    if err == "timeout" then return "timeout" end
    if find(err, "resolve", 1, true) or find(err, "resolver", 1, true) then return "resolve" end
    return "connect"
end

--- cfg: connect_timeout, timeout, max_response, user_agent, verify; host: the client's host.
function _M.new(cfg, host)
    local ngx = ngx -- luacheck: ignore (read global only here)
    if type(ngx) ~= "table" or type(ngx.socket) ~= "table" then
        error("leadpipe: the cosocket transport needs OpenResty (ngx.socket.tcp)", 2)
    end
    ngx_api = ngx
    return setmetatable({
        host = host,
        connect_ms = floor((cfg.connect_timeout or 10) * 1000 + 0.5),
        timeout = cfg.timeout or 60,
        max_response = cfg.max_response or 256 * 1024 * 1024,
        user_agent = cfg.user_agent,
        verify = cfg.verify ~= false,
        inflight = setmetatable({}, WEAK_KEYS), -- handles not yet waited for (close drops them)
        closed = false,
    }, Wire)
end

-- Opens (or takes from the pool) a connection; TLS handshake on a fresh one.
-- -> sock, reused | nil, message, kind
local function connect(self, h, scheme, host, port, deadline)
    local ngx = ngx_api
    local sock = ngx.socket.tcp()
    local left = deadline - self.host.now()
    if left <= 0 then return nil, "timeout before connecting", "timeout" end
    local cms = min(self.connect_ms, floor(left * 1000) + 1)
    sock:settimeouts(cms, floor(left * 1000) + 1, floor(left * 1000) + 1)
    local pool = scheme .. "://" .. host .. ":" .. port .. (self.verify and "" or ":noverify")
    h.sock = sock
    local ok, err = sock:connect(host, port, { pool = pool })
    if not ok then
        h.sock = nil
        return nil, "connect to " .. host .. ":" .. port .. ": " .. tostring(err), connect_kind(err)
    end
    local reused = (sock:getreusedtimes() or 0) > 0
    if scheme == "https" and not reused then
        sock:settimeout(cms)
        local sess
        sess, err = sock:sslhandshake(nil, host, self.verify)
        if not sess then
            sock:close()
            h.sock = nil
            if err == "timeout" then return nil, "timeout in the TLS handshake with " .. host, "timeout" end
            return nil, "TLS handshake with " .. host .. ":" .. port .. ": " .. tostring(err), "tls"
        end
    end
    return sock, reused
end

-- One request from connect to the last byte; runs in its own light thread.
-- -> status, headers, body | nil, message, kind
local function exchange(self, h)
    local spec = h.spec
    local scheme, host, port, target, authority = _M.parse_url(spec.url)
    if not scheme then return nil, "bad URL: " .. host, "network" end
    local request, rerr = _M.build_request(spec, authority, target, self.user_agent)
    if not request then return nil, rerr, "network" end
    local now = self.host.now
    local deadline = now() + (spec.timeout or self.timeout)
    for _ = 1, MAX_ATTEMPTS do
        local sock, reused, kind = connect(self, h, scheme, host, port, deadline)
        if not sock then return nil, reused, kind end
        local left = deadline - now()
        local ok, err
        if left > 0 then
            sock:settimeout(floor(left * 1000) + 1)
            ok, err = sock:send(request)
        else
            err = "timeout"
        end
        local status, headers, body, keepalive, received
        if ok then
            status, headers, body, keepalive = _M.read_response(sock, {
                method = spec.method, max_response = self.max_response, deadline = deadline, now = now,
            })
            if not status then err, kind, received = headers, body, keepalive end
        else
            err, kind, received = "sending the request: " .. tostring(err), io_kind(err), 0
        end
        if status then
            h.sock = nil
            if keepalive then
                if not sock:setkeepalive() then sock:close() end
            else
                sock:close()
            end
            return status, headers, body
        end
        sock:close()
        h.sock = nil
        -- A pooled connection the server had closed: try again on another one.
        if not (reused and received == 0 and (kind == "reset" or kind == "network")) then
            return nil, err, kind
        end
    end
    return nil, "every pooled connection was closed by the server", "reset"
end

local function run(self, h)
    local ok, status, headers, body = pcall(exchange, self, h)
    h.done = true
    if not ok then return nil, "cosocket transport: " .. tostring(status), "network" end
    return status, headers, body
end

-- nil when the current phase allows cosockets, else a message naming it.
local function phase_error(ngx)
    local phase = ngx.get_phase and ngx.get_phase() or "unknown"
    if IO_PHASES[phase] then return nil end
    return "the openresty host cannot send requests in nginx's " .. tostring(phase)
        .. " phase (cosockets work in rewrite, access, content and ngx.timer callbacks)"
end

function Wire:send(spec)
    local h = { spec = spec }
    if self.closed then
        h.err, h.kind = "aborted: the client was closed", "aborted"
        return h
    end
    local ngx = ngx_api
    local perr = phase_error(ngx)
    if perr then
        h.err, h.kind = perr, "host"
        return h
    end
    local ok, thread = pcall(ngx.thread.spawn, run, self, h)
    if not ok then
        h.err, h.kind = "cannot start a light thread: " .. tostring(thread), "host"
        return h
    end
    h.thread = thread
    self.inflight[h] = true
    return h
end

-- Stops a request's thread and closes its socket; idempotent.
local function drop(self, h, message, kind)
    local ngx = ngx_api
    self.inflight[h] = nil
    if h.thread then
        if not h.done then pcall(ngx.thread.kill, h.thread) end
        h.thread = nil
    end
    if h.sock then
        pcall(h.sock.close, h.sock)
        h.sock = nil
    end
    if not h.err then h.err, h.kind = message, kind end
end

-- Lets other events of the worker in when it has been busy for a while: an answer is
-- about to be decoded (a page takes milliseconds), and when many arrive together one
-- event-loop pass would decode them all before nginx reads anything else (a /ping behind
-- twenty pages waits for all of them). nginx updates its cached clock (ngx.now) once per
-- pass, after epoll: a new value means a new pass, whose start is noted on the monotonic
-- clock. Once a pass has run for BUSY_SLICE, an answer waits 1 ms (the next pass, after
-- nginx has read its sockets) and checks again on waking, since the other sleepers woke in
-- the same pass. An idle worker pays two clock reads per answer.
local BUSY_SLICE = 0.005
local pass_clock, pass_started = -1, 0

local function yield_if_busy(ngx)
    for _ = 1, 50 do -- at most ~50 passes: a busy worker still gets to this answer
        local t, real = ngx.now(), core.now()
        if t ~= pass_clock then pass_clock, pass_started = t, real end
        if real - pass_started <= BUSY_SLICE then return end
        ngx.sleep(0.001)
    end
end

-- Body of the light thread that bounds a wait (spawn takes only Lua functions).
local function sleep_for(seconds)
    ngx_api.sleep(seconds)
end

function Wire:wait(h, deadline)
    if h.err then return nil, h.err, h.kind end
    local thread = h.thread
    if not thread then return nil, "the request was already waited for", "aborted" end
    local ngx = ngx_api
    local res -- { pcall ok, thread ok, status, headers, body } or the thread's failure
    if deadline and not h.done then
        local left = deadline - self.host.now()
        if left <= 0 then
            drop(self, h, "the deadline passed while the request was in flight", "timeout")
            return nil, h.err, h.kind
        end
        local ok, sleeper = pcall(ngx.thread.spawn, sleep_for, left)
        if not ok then return nil, "cannot start a light thread: " .. tostring(sleeper), "host" end
        res = { pcall(ngx.thread.wait, thread, sleeper) }
        pcall(ngx.thread.kill, sleeper)
        if res[1] and not h.done then
            drop(self, h, "the deadline passed while the request was in flight", "timeout")
            return nil, h.err, h.kind
        end
    else
        res = { pcall(ngx.thread.wait, thread) }
    end
    if not res[1] then
        -- wait raised: not the thread's parent coroutine, or another request's thread
        drop(self, h, "cannot wait for the request here: " .. tostring(res[2]), "host")
        return nil, h.err, h.kind
    end
    self.inflight[h] = nil
    h.thread = nil
    if not res[2] then
        h.err, h.kind = "the request's light thread failed: " .. tostring(res[3]), "network"
        return nil, h.err, h.kind
    end
    yield_if_busy(ngx)
    return res[3], res[4], res[5]
end

function Wire:cancel(h)
    drop(self, h, "aborted: the request was cancelled", "aborted")
end

-- Light threads advance on their own whenever the caller yields; nothing to do here.
function Wire.pump() end

function Wire:close()
    self.closed = true
    for h in pairs(self.inflight) do
        drop(self, h, "aborted: the client was closed", "aborted")
    end
    if next(self.inflight) then self.inflight = setmetatable({}, WEAK_KEYS) end
end

return _M

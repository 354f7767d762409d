-- leadpipe.wire.cosocket: moves bytes over OpenResty cosockets (ngx.socket.tcp).
--
-- The wire of the "openresty" host (see wire/curl.lua for the five methods every wire
-- has). The HTTP/1.1 it speaks (request head, response parser, gzip) is
-- wire/http1_parser.lua; this file owns the sockets, the light threads and the phases:
--   sockets   connect/TLS/keep-alive are nginx's: its `resolver`, `lua_ssl_trusted_certificate`
--             and `lua_ssl_verify_depth`, `lua_socket_keepalive_timeout` and
--             `lua_socket_pool_size` apply. One pool per worker for each
--             scheme://host:port (plus ":noverify" when verify = false), shared by every
--             client and request of the worker. A request that fails on a reused connection
--             before any byte of the answer came back is sent again on another connection
--             (the server closed an idle one), as libcurl does.
--   TLS       sslhandshake(nil, host, verify) on fresh connections (verify on by default).
--   time      connect_timeout for the connect and the TLS handshake; `timeout` bounds the
--             whole exchange (like libcurl's), enforced before every socket operation
-- Each request runs in its own light thread (ngx.thread.spawn) started by send, so pages
-- requested ahead travel while the caller works; when its answer is in, the thread calls
-- wire.on_answer(status, headers, arrived) if the caller set it (http.lua: the rate gate),
-- and just before it sends, wire.hold(): when that says true (the gate is shut) nothing is
-- sent and wait answers nil, message, "held" (http.lua sends the call again when it opens).
-- wait is ngx.thread.wait, cancel is ngx.thread.kill. send and wait for one request must
-- run in the same request context and the same coroutine (nginx lets only a thread's parent
-- wait on it or kill it).
-- Cosockets exist only in some nginx phases: send checks ngx.get_phase() first, and in the
-- others (init, init_worker, set, header_filter, body_filter, log, ...) the request fails
-- with kind "host" and a message naming the phase, before anything is sent. A client may be
-- created anywhere (init_worker_by_lua* is the usual place).

local core = require "leadpipe.core"
local http1 = require "leadpipe.wire.http1_parser"

local setmetatable, tostring, type, pairs, pcall, next, error =
    setmetatable, tostring, type, pairs, pcall, next, error
local find = string.find
local floor, min = math.floor, math.min

local _M = { _VERSION = require "leadpipe.version" }

local MAX_ATTEMPTS = 4           -- reused connections that may be found closed, plus one fresh

-- Phases where cosockets and light threads work.
local IO_PHASES = {
    rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

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
        error("leadpipe: the cosocket wire needs OpenResty (ngx.socket.tcp)", 2)
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
    local scheme, host, port, target, authority = http1.parse_url(spec.url)
    if not scheme then return nil, "bad URL: " .. host, "network" end
    local request, rerr = http1.build_request(spec, authority, target, self.user_agent)
    if not request then return nil, rerr, "network" end
    local now = self.host.now
    local deadline = now() + (spec.timeout or self.timeout)
    for _ = 1, MAX_ATTEMPTS do
        local sock, reused, kind = connect(self, h, scheme, host, port, deadline)
        if not sock then return nil, reused, kind end
        local left = deadline - now()
        local ok, err
        -- the caller's rate gate may have shut while this thread connected
        local hold = self.hold
        if hold and hold() then
            if not sock:setkeepalive() then sock:close() end -- unused: back to the pool
            h.sock = nil
            return nil, "held back by the rate gate before it was sent", "held"
        end
        if left > 0 then
            sock:settimeout(floor(left * 1000) + 1)
            h.sent = true -- (recall no longer takes it back)
            ok, err = sock:send(request)
        else
            err = "timeout"
        end
        local status, headers, body, keepalive, received
        if ok then
            status, headers, body, keepalive = http1.read_response(sock, {
                method = spec.method, max_response = self.max_response, deadline = deadline, now = now,
                keep = spec.keep,
            })
            if not status then err, kind, received = headers, body, keepalive end
        else
            err, kind, received = "sending the request: " .. tostring(err), http1.io_kind(err), 0
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
    if not ok then return nil, "cosocket wire: " .. tostring(status), "network" end
    if status then -- for peek
        h.status, h.headers, h.arrived = status, headers, self.host.now()
        -- the caller learns of it at once, even while its own coroutine waits elsewhere
        local on_answer = self.on_answer
        if on_answer then pcall(on_answer, status, headers, h.arrived) end
    end
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

-- The answer's status and headers once its thread has read it (see wire/curl.lua).
function Wire.peek(_, h)
    if h.done and h.status then return h.status, h.headers, h.arrived end
end

-- Takes back a request whose thread has not sent it yet (still connecting); only the
-- thread's parent may kill it, so elsewhere the request goes on (false).
function Wire:recall(h)
    if h.sent or h.done or not h.thread then return false end
    local ok, killed = pcall(ngx_api.thread.kill, h.thread)
    if not ok or not killed then return false end
    drop(self, h, "aborted: taken back before it was sent", "aborted")
    return true
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

-- leadpipe.wire.curl: moves bytes with libcurl (a leadpipe.core session).
--
-- A wire is what the request layer (http.lua) sends requests through; the host names it
-- (host.wire, default "curl"). Every wire has the same five methods, so retries,
-- redirects, key scoping and error objects stay one piece of code above it (see
-- wire/cosocket.lua for the OpenResty one):
--   wire:send{ method=, url=, headers=, body=, keep= } -> handle   on the wire when it
--                                  returns (keep: what wait's keep will be, for a wire
--                                  that reads the answer before wait is called)
--   wire:wait(handle, deadline, keep) -> status, headers, body (headers: lower-case names;
--                                  keep: a 2xx body may stay in C memory, a
--                                  leadpipe.body that core.decode reads in place;
--                                  close it after)
--                                | nil, message, kind        (kind: "resolve", "connect",
--        "tls", "timeout", "reset", "too_large", "aborted", "network"); `deadline` (host
--        clock, optional) cuts the wait: the request is dropped and kind is "timeout"
--   wire:cancel(handle)   drops a request that is no longer wanted; idempotent
--   wire:pump()           advances transfers without waiting (prefetched pages arrive)
--   wire:close()          drops everything in flight; idempotent
-- and, so that a 429 to a request sent ahead is seen before anything else is sent:
--   wire:peek(handle) -> status, headers [, arrived]   once the answer is in, without
--                                  consuming it (wait still returns it); nil before, or
--                                  for a failed transfer; arrived: host clock, when known
--   wire:recall(handle) -> true    the request had not gone out yet (its connection was
--                                  still being made) and is now dropped; false: it is on
--                                  its way (or could not be taken back) and goes on
-- and, for bodies too large to hold (export.csv), optionally:
--   wire:send{ ..., stream = true, timeout = seconds } then
--   wire:stream(handle, sink, deadline) -> like wait, but the body of a 200 goes to
--        sink(chunk) piece by piece as it arrives (body "" then); a sink that returns
--        false or nil stops the transfer: nil, message, "aborted". Other statuses keep
--        their (small) body as wait does. (In socket mode the body is read whole, within
--        max_response, and handed to the sink once.)
-- This one owns one libcurl multi handle (kept-alive connections, several transfers in
-- flight). How it waits depends on the host (see hosts.lua):
--   poll mode (host.wait_io; the blocking host): wait() drives the session with perform()
--     and blocks in host.wait_io(session, seconds).
--   socket mode (host.io; the neovim and luv hosts): the session runs libcurl's
--     socket-action API. After every call into libcurl the wire applies what libcurl asked
--     for: one io.poll watcher per socket it named (started, changed, closed as told) and
--     one io.timer for its timeout (closed when it has none, so an idle wire holds no loop
--     handle). Readiness and timeouts call session:socket_action from the loop; wait()
--     suspends the calling coroutine (host.waker/await) and is woken only when its request
--     is done, its deadline passes or the loop failed: no polling.

local core = require "leadpipe.core"

local setmetatable, pairs, pcall, tostring, type = setmetatable, pairs, pcall, tostring, type
local min, ceil = math.min, math.ceil
local concat = table.concat

local MAX_HELD = 1024 * 1024 -- bytes of a streamed request's non-200 body kept
local DEADLINE = "the deadline passed while the request was in flight"

local _M = { _VERSION = require "leadpipe.version" }

local Wire = {}
Wire.__index = Wire

--- cfg: connect_timeout, timeout, max_response, user_agent, verify; host: the client's host.
function _M.new(cfg, host)
    local io = type(host.io) == "table" and host.io or nil
    local session = core.session{
        connect_timeout = cfg.connect_timeout,
        timeout = cfg.timeout,
        max_response = cfg.max_response,
        user_agent = cfg.user_agent,
        verify = cfg.verify,
        mode = io and "socket" or "poll",
    }
    return setmetatable({
        session = session, host = host, io = io,
        watchers = {},  -- fd -> io.poll watcher (socket mode)
        timer = nil,    -- io.timer for libcurl's timeout, while it has one
        waiters = {},   -- waker -> request its coroutine waits for
        failure = nil,  -- what broke the loop side (socket mode), reported by wait()
    }, Wire)
end

-- ===== socket mode =====

local drive

-- Applies what libcurl asked for since the last call: watchers and the timer.
local function apply(self)
    local session, io, watchers = self.session, self.io, self.watchers
    local changes = session:socket_changes()
    for i = 1, #changes, 2 do
        local fd, what = changes[i], changes[i + 1]
        local w = watchers[fd]
        if what == "remove" then
            if w then
                w:close()
                watchers[fd] = nil
            end
        else
            if not w then
                w = io.poll(fd, function(events) drive(self, fd, events) end)
                watchers[fd] = w
            end
            w:start(what)
        end
    end
    local ms, changed = session:timer()
    if changed then
        if ms then
            self.timer = self.timer or io.timer(function() drive(self) end)
            self.timer:start(ms)
        elseif self.timer then
            self.timer:close()
            self.timer = nil
        end
    end
end

-- Wakes the coroutines whose request is done (all of them when the loop side failed).
local function wake_done(self)
    local host, failure = self.host, self.failure
    for w, req in pairs(self.waiters) do
        local ok, done = pcall(req.done, req) -- (a request closed under its waiter: wake it)
        if failure or not ok or done then
            self.waiters[w] = nil
            host.wake(w)
        end
    end
end

-- From the loop: fd is ready for events (fd nil: libcurl's timeout expired). Never raises.
function drive(self, fd, events)
    if self.closed then return end
    local ok, err = pcall(self.session.socket_action, self.session, fd, events)
    if ok then ok, err = pcall(apply, self) end
    if not ok then
        -- an error object (a host's io that failed) or a message
        self.failure = self.failure or (type(err) == "table" and tostring(err.message) or tostring(err))
    end
    wake_done(self)
end

-- The outcome of a finished req, which is closed (with keep, a 2xx body comes as a
-- leadpipe.body that took the bytes over).
local function outcome(req, keep)
    local status, headers, body = req:response(keep)
    req:close()
    return status, headers, body
end

local function socket_wait(self, req, deadline, keep)
    local host = self.host
    local current, dtimer -- the waker of this turn; the deadline's timer
    local function finish(...)
        if dtimer then dtimer:close() end
        return ...
    end
    -- Done already (a prefetched page): no wait, but let the loop breathe if we ran long.
    if host.relax and req:done() then host.relax() end
    while true do
        if req:done() then return finish(outcome(req, keep)) end
        if self.failure then
            req:close()
            if not self.closed then pcall(apply, self) end
            return finish(nil, "event loop: " .. self.failure, "network")
        end
        if deadline and host.now() >= deadline then
            req:close()
            pcall(apply, self)
            return finish(nil, DEADLINE, "timeout")
        end
        current = host.waker("request")
        self.waiters[current] = req
        if deadline then
            -- (re)armed each turn: a loop's timer may fire a little before the host's clock
            -- says the deadline has come
            -- weak: if the coroutine dies at its yield (PUC 5.1 inside a generic for), this
            -- timer must not keep the loop alive on its own
            dtimer = dtimer or self.io.timer(function() host.wake(current) end, true)
            dtimer:start(ceil((deadline - host.now()) * 1000) + 1)
        end
        host.await(current)
        self.waiters[current] = nil
    end
end

-- ===== the wire =====

function Wire:send(spec)
    local req = self.session:request{
        method = spec.method, url = spec.url, headers = spec.headers, body = spec.body,
        stream = spec.stream and not self.io or nil, timeout = spec.timeout,
    }
    if self.io then apply(self) end
    return req
end

-- Poll mode: waits for the session's sockets (at most 1 s, or until `deadline`); false
-- (and req closed) once the deadline has passed.
local function idle(self, req, deadline)
    local wait = 1
    if deadline then
        wait = deadline - self.host.now()
        if wait <= 0 then
            req:close()
            return false
        end
        wait = min(wait, 1)
    end
    self.host.wait_io(self.session, wait)
    return true
end

function Wire:wait(req, deadline, keep)
    if self.io then return socket_wait(self, req, deadline, keep) end
    local session = self.session
    while true do
        session:perform()
        if req:done() then return outcome(req, keep) end
        if not idle(self, req, deadline) then return nil, DEADLINE, "timeout" end
    end
end

function Wire:stream(req, sink, deadline)
    if self.io then
        local status, headers, body = socket_wait(self, req, deadline)
        if status == 200 then
            if not sink(body) then return nil, "the sink refused the data", "aborted" end
            body = ""
        end
        return status, headers, body
    end
    local session = self.session
    local held, held_len = {}, 0 -- the body of a status other than 200 (an error, a 202)
    -- Passes on what arrived: true, or false, message, kind to stop.
    local function drain()
        local chunk, status = req:read()
        if chunk == "" then return true end
        if status ~= 200 then
            held[#held + 1] = chunk
            held_len = held_len + #chunk
            if held_len > MAX_HELD then
                return false, "response too large: a non-200 body over " .. MAX_HELD .. " bytes",
                    "too_large"
            end
            return true
        end
        if sink(chunk) then return true end
        return false, "the sink refused the data", "aborted"
    end
    while true do
        session:perform()
        local ok, msg, why = drain()
        if not ok then
            req:close()
            return nil, msg, why
        end
        if req:done() then
            ok, msg, why = drain()
            local status, headers, kind = req:response()
            req:close()
            if not ok then return nil, msg, why end
            if not status then return nil, headers, kind end
            return status, headers, status == 200 and "" or concat(held)
        end
        if not idle(self, req, deadline) then return nil, DEADLINE, "timeout" end
    end
end

function Wire.peek(_, req)
    if not req:done() then return nil end
    -- the status alone for a 2xx (read() leaves a body that is not streamed where it is;
    -- response(true) would move it out); the headers (Retry-After) of any other answer,
    -- whose small body response() copies
    local _, code = req:read()
    if code == 0 then return nil end
    if code >= 200 and code < 300 then return code, {} end
    local status, headers = req:response()
    if status then return status, headers end
end

function Wire:recall(req)
    if req:sent() then return false end
    self:cancel(req)
    return true
end

function Wire:cancel(req)
    req:close()
    if self.io and not self.closed then apply(self) end
end

-- Socket mode: transfers advance from the loop whenever the caller yields; nothing to do.
function Wire:pump()
    if not self.io then self.session:perform() end
end

function Wire:close()
    if self.io and not self.closed then
        self.closed = true
        -- Stop watching before libcurl closes its sockets.
        for fd, w in pairs(self.watchers) do
            w:close()
            self.watchers[fd] = nil
        end
        if self.timer then
            self.timer:close()
            self.timer = nil
        end
        self.session:close()
        self.failure = self.failure or "the client was closed"
        wake_done(self)
        return
    end
    self.session:close()
end

return _M

-- leadpipe.transport.curl: moves bytes with libcurl (a leadpipe.core session).
--
-- A transport ("wire") is what http.lua sends requests through. Every wire has the same
-- five methods, so retries, redirects, key scoping and error objects stay one piece of
-- code above it (see transport/cosocket.lua for the OpenResty one):
--   wire:send{ method=, url=, headers=, body= } -> handle    on the wire when it returns
--   wire:wait(handle, deadline) -> status, headers, body     (headers: lower-case names)
--                                | nil, message, kind        (kind: "resolve", "connect",
--        "tls", "timeout", "reset", "too_large", "aborted", "network"); `deadline` (host
--        clock, optional) cuts the wait: the request is dropped and kind is "timeout"
--   wire:cancel(handle)   drops a request that is no longer wanted; idempotent
--   wire:pump()           advances transfers without waiting (prefetched pages arrive)
--   wire:close()          drops everything in flight; idempotent
-- and, for bodies too large to hold (export.csv), optionally:
--   wire:send{ ..., stream = true, timeout = seconds } then
--   wire:stream(handle, sink, deadline) -> like wait, but the body of a 200 goes to
--        sink(chunk) piece by piece as it arrives (body "" then); a sink that returns
--        false or nil stops the transfer: nil, message, "aborted". Other statuses keep
--        their (small) body as wait does.
-- This one owns one libcurl multi handle (kept-alive connections, several transfers in
-- flight) and waits through the host's wait_io(session, seconds).

local core = require "leadpipe.core"

local setmetatable = setmetatable
local min = math.min
local concat = table.concat

local MAX_HELD = 1024 * 1024 -- bytes of a streamed request's non-200 body kept

local _M = { _VERSION = "0.1.0" }

local Wire = {}
Wire.__index = Wire

--- cfg: connect_timeout, timeout, max_response, user_agent, verify; host: the client's host.
function _M.new(cfg, host)
    local session = core.session{
        connect_timeout = cfg.connect_timeout,
        timeout = cfg.timeout,
        max_response = cfg.max_response,
        user_agent = cfg.user_agent,
        verify = cfg.verify,
    }
    return setmetatable({ session = session, host = host }, Wire)
end

function Wire:send(spec)
    return self.session:request{
        method = spec.method, url = spec.url, headers = spec.headers, body = spec.body,
        stream = spec.stream, timeout = spec.timeout,
    }
end

local DEADLINE = "the deadline passed while the request was in flight"

-- Waits for the session's sockets (at most 1 s, or until `deadline`); false (and req closed)
-- once the deadline has passed.
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

function Wire:wait(req, deadline)
    local session = self.session
    while true do
        session:perform()
        if req:done() then
            local status, headers, body = req:response()
            req:close()
            return status, headers, body
        end
        if not idle(self, req, deadline) then return nil, DEADLINE, "timeout" end
    end
end

function Wire:stream(req, sink, deadline)
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

function Wire.cancel(_, req)
    req:close()
end

function Wire:pump()
    self.session:perform()
end

function Wire:close()
    self.session:close()
end

return _M

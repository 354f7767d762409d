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
-- This one owns one libcurl multi handle (kept-alive connections, several transfers in
-- flight) and waits through the host's wait_io(session, seconds).

local core = require "leadpipe.core"

local setmetatable = setmetatable
local min = math.min

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
    }
end

function Wire:wait(req, deadline)
    local host, session = self.host, self.session
    while true do
        session:perform()
        if req:done() then
            local status, headers, body = req:response()
            req:close()
            return status, headers, body
        end
        local wait = 1
        if deadline then
            wait = deadline - host.now()
            if wait <= 0 then
                req:close()
                return nil, "the deadline passed while the request was in flight", "timeout"
            end
            wait = min(wait, 1)
        end
        host.wait_io(session, wait)
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

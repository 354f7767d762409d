-- leadpipe.http: the request layer. Its object, the requester (client.requester), makes
-- one logical API request of many attempts, with retries, backoff, Retry-After, redirects.
--
-- A requester moves its bytes through a "wire" (leadpipe.wire.curl by default, or
-- leadpipe.wire.cosocket when the host names it in host.wire): see wire/curl.lua for the
-- wire's five methods. A call is started with requester:start(spec), which sends its
-- first attempt at once (unless the rate gate is shut) and never waits, and finished with
-- requester:finish(call), which waits through the client's host, retries what a retry can
-- cure, and returns
--     status, headers, decoded_body        on a 2xx (decoded_body nil for an empty body;
--                                          the raw string when spec.raw is set)
--     nil, err                             otherwise (err from leadpipe.errors)
-- Retries: wire failures (connect, reset, timeout), 408, 429 and 5xx, and a 2xx whose
-- JSON is cut short, up to max_retries times; exponential backoff with jitter capped at
-- backoff_max; Retry-After (seconds or HTTP-date) is honoured up to max_retry_after, and a
-- longer demand ends the call at once with a rate_limited error carrying retry_after. Every
-- request the API documents is safe to repeat: GETs, DELETE, and POST /runs which carries
-- the same Idempotency-Key on every attempt.
-- Redirects are followed here, not in curl, and the API key is sent only to the origin of
-- base_url.
-- The rate gate (leadpipe.gate: this client's, or the node's in OpenResty): a 429/503 with
-- Retry-After pauses every request of the requester until that time (host clock), counted
-- from when the answer reached the client: a new send waits for it, and a retry of a
-- request that was already in flight waits for it too, whatever its own response said.
-- Before anything is sent (gate.sweep), every call on the wire whose answer has arrived is
-- looked at, so a 429 to a page requested ahead shuts the gate at once, not when that
-- page's turn comes.
-- Deadlines: spec.deadline (host clock) cuts the wait for the request in flight (the
-- wire drops it), caps the transfer's own timeout by what is left, and ends the call at
-- once when a backoff or gate wait would pass it; an error the deadline caused has
-- err.deadline = true (leadpipe.deadline turns it into the call's DEADLINE error).
-- Everything that came from the network is scrubbed (leadpipe.scrub) before it reaches
-- an error object or a log event; a closed requester answers with kind "closed".

local core = require "leadpipe.core"
local errors = require "leadpipe.errors"
local scrubber = require "leadpipe.scrub"
local gate = require "leadpipe.gate"

local setmetatable, type, tostring, pairs, pcall = setmetatable, type, tostring, pairs, pcall
local floor, min, max, random = math.floor, math.min, math.max, math.random
local concat, sort = table.concat, table.sort

local _M = { _VERSION = require "leadpipe.version" }

local Requester = {}
Requester.__index = Requester

-- The key lives here, keyed by requester, never in a table a user may print.
local secrets = setmetatable({}, { __mode = "k" })

-- ===== helpers =====

local function origin_of(url)
    local scheme, rest = url:match("^(%a[%w+.-]*)://([^/?#]*)")
    if not scheme then return nil end
    scheme = scheme:lower()
    local hostport = rest:gsub("^.*@", ""):lower()
    if not hostport:find(":%d+$") and not hostport:find("^%[.*%]:%d+$") then
        hostport = hostport .. (scheme == "https" and ":443" or ":80")
    end
    return scheme .. "://" .. hostport
end
_M.origin_of = origin_of -- (the cache keys pages by origin)

-- Resolves a Location header against the URL it came from.
local function resolve_location(base, loc)
    if loc:find("^%a[%w+.-]*://") then return loc end
    if loc:sub(1, 2) == "//" then return base:match("^(%a[%w+.-]*:)") .. loc end
    local root = base:match("^(%a[%w+.-]*://[^/?#]*)")
    if loc:sub(1, 1) == "/" then return root .. loc end
    local dir = base:match("^(.*/)") or (root .. "/")
    return dir .. loc
end

local function urlencode(s)
    return (tostring(s):gsub("[^%w%-%._~]", function(c)
        return ("%%%02X"):format(c:byte())
    end))
end

local function query_string(q)
    if not q then return "" end
    local keys = {}
    for k in pairs(q) do keys[#keys + 1] = k end
    if #keys == 0 then return "" end
    sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do
        local v = q[k]
        if math.type and math.type(v) == "float" and v == floor(v) then v = floor(v) end
        parts[i] = urlencode(k) .. "=" .. urlencode(v)
    end
    return "?" .. concat(parts, "&")
end

--- Seconds to wait from a Retry-After value, or nil (leadpipe.gate reads it).
_M.parse_retry_after = gate.parse_retry_after

-- The key masked as a whole token (see leadpipe.scrub).
local scrub = scrubber.string

-- A short printable form of a value that came from the network, scrubbed.
local function clean(v, key, limit)
    if v == nil then return nil end
    if type(v) ~= "string" and type(v) ~= "number" and type(v) ~= "boolean" then return nil end
    v = scrub(tostring(v), key)
    return (v:sub(1, limit or 200):gsub("%c", " "))
end

-- Builds the error for a non-2xx response from its (possibly JSON) body; every field that
-- came from the server is scrubbed of the key.
local function error_from_response(status, headers, body, method, path, key)
    local decoded = body and body ~= "" and core.decode(body) or nil
    local code, message, run
    local request_id = headers["x-request-id"]
    if type(decoded) == "table" then
        local e = decoded.error
        if type(e) == "table" then
            code, message, run = e.code, e.message, e.run
        elseif type(e) == "string" then
            message = e
        end
        for _, k in ipairs({ "message", "detail", "title" }) do
            if not message and type(decoded[k]) == "string" then message = decoded[k] end
        end
        if type(decoded.meta) == "table" and decoded.meta.request_id then
            request_id = decoded.meta.request_id
        end
    elseif body and body ~= "" then
        message = body:sub(1, 200):gsub("%s+", " ")
    end
    local kind = errors.kind_for_status(status)
    if status == 409 and type(run) == "table" then
        if run.status == "failed" or code == "RUN_FAILED" then kind = "run_failed"
        elseif run.status == "cancelled" or code == "RUN_CANCELLED" then kind = "run_cancelled" end
    end
    local retry_after = gate.parse_retry_after(headers["retry-after"])
    if type(run) == "table" then run = scrubber.deep(run, key) else run = nil end
    return errors.new(kind, clean(message, key, 500) or ("HTTP " .. status), {
        status = status,
        code = clean(code, key, 100),
        request_id = clean(request_id, key),
        retryable = errors.status_retryable(status),
        retry_after = retry_after,
        run = run,
        method = method,
        path = path,
    })
end

-- ===== requester =====

--- cfg: base_url, api_key, host (resolved), timeout, connect_timeout, max_retries,
-- backoff_base, backoff_max, max_retry_after, max_response, user_agent, verify, logger,
-- gate (nil or leadpipe.gate.shared(...)). The host's `wire` field names the wire
-- (default "curl").
function _M.new(cfg)
    local wire = require("leadpipe.wire." .. (cfg.host.wire or "curl")).new(cfg, cfg.host)
    local t = setmetatable({
        base_url = cfg.base_url,
        origin = origin_of(cfg.base_url),
        host = cfg.host,
        wire = wire,
        max_retries = cfg.max_retries,
        backoff_base = cfg.backoff_base,
        backoff_max = cfg.backoff_max,
        max_retry_after = cfg.max_retry_after,
        timeout = cfg.timeout or 60,
        logger = cfg.logger,
    }, Requester)
    secrets[t] = cfg.api_key
    t.gate = gate.new(cfg.gate, t.origin, cfg.api_key)
    -- calls with a request on the wire not yet finished (weak: an abandoned call goes)
    t.live = setmetatable({}, { __mode = "k" })
    gate.attach(t)
    return t
end

--- The requester's scrubber (leadpipe.scrub.new with its key), for pages and errors built
-- above it.
function Requester:scrubber()
    local s = self.scrub_fn
    if not s then
        s = scrubber.new(secrets[self])
        self.scrub_fn = s
    end
    return s
end

-- Events carry `at` (host clock); every string in them is scrubbed.
function Requester:log(event)
    local logger = self.logger
    if logger then
        local key = secrets[self]
        for k, v in pairs(event) do
            if type(v) == "string" then event[k] = scrub(v, key) end
        end
        event.at = event.at or self.host.now()
        pcall(logger, event)
    end
end

local function closed_error(call)
    return errors.new("closed", "the client is closed", {
        code = "CLOSED", method = call.method, path = call.path,
    })
end

-- The error for a deadline that passed (or would pass) before the call could end.
local function deadline_error(call)
    return errors.new("timeout", "the deadline passed before the request could end", {
        code = "timeout", retryable = true, method = call.method, path = call.path, deadline = true,
    })
end

-- Sends one attempt of the call (spec.url, spec.method, spec.body, ...) unless the rate
-- gate is shut: then the call is marked `gated` and finish() sends it once the gate opens.
-- The answers already arrived are swept first (a 429 among them shuts the gate now).
-- `waited` is the gate time the caller already slept until (the host's clock may be a
-- fake one): only a gate shut later than that holds the call back.
-- Returns nil, err when the wire refused the request (an error object, never a raise).
local function send(self, call, waited)
    if self.closed then return nil, closed_error(call) end
    gate.sweep(self)
    local gate_until = self.gate:until_at()
    if gate_until > (waited or 0) and self.host.now() < gate_until then
        if not call.gated then
            self:log{ type = "gate", method = call.method, path = call.path, until_at = gate_until }
        end
        call.gated = true
        return true
    end
    call.gated = nil
    local timeout = call.timeout
    call.deadline_bound = nil
    if call.deadline then
        local left = call.deadline - self.host.now()
        if left <= 0 then return nil, deadline_error(call) end
        -- the transfer's own timeout (libcurl's, the cosockets') ends by the deadline too
        if left < (timeout or self.timeout) then
            timeout, call.deadline_bound = max(left, 0.001), true
        end
    end
    local headers = { accept = "application/json" }
    if call.body then headers["content-type"] = "application/json" end
    if call.idempotency_key then headers["idempotency-key"] = call.idempotency_key end
    if origin_of(call.url) == self.origin then headers["x-api-key"] = secrets[self] end
    local ok, req = pcall(self.wire.send, self.wire, {
        method = call.method, url = call.url, headers = headers, body = call.body, timeout = timeout,
        stream = call.sink and true or nil, keep = call.keep,
    })
    if not ok then
        call.req = nil
        local message = scrub(tostring(req), secrets[self]):gsub("^[^:\n]*:%d+: ", "")
        return nil, errors.new("network", message, {
            code = "internal", retryable = false, method = call.method, path = call.path,
        })
    end
    call.req = req
    call.arrived = nil
    self.live[call] = true
    call.started = self.host.now()
    self:log{ type = "send", method = call.method, path = call.path, attempt = call.attempt }
    return true
end

--- Starts a call: { method=, path=, query=, body=, idempotency_key=, raw=, deadline=,
-- decode=, sink=, timeout=, keep_body= }. The first attempt is on the wire when this returns (unless
-- the rate gate is shut: then finish() sends it when the gate opens); nothing waits.
-- `decode(body)` replaces core.decode for a 2xx body (value, ... | nil, msg; finish
-- returns up to five values after the value). Before a 2xx body is decoded, finish calls
-- call.on_arrival() once when the caller set it, and a call that met a 429 or 503 has
-- call.rate_limited set. With keep_body, the 2xx body (a string) stays in call.body. With
-- sink = function(chunk) -> true|nil, the body of a 200 goes to it piece by piece (finish
-- then returns status, headers, nil) and is never held whole; once a piece has gone to the
-- sink the call is not retried. timeout: seconds for the whole transfer.
function Requester:start(spec)
    local call
    call = {
        sink = spec.sink and function(chunk)
            call.sunk = true
            return spec.sink(chunk)
        end or nil,
        timeout = spec.timeout,
        method = spec.method or "GET",
        path = spec.path,
        url = self.base_url .. spec.path .. query_string(spec.query),
        body = spec.body,
        idempotency_key = spec.idempotency_key,
        raw = spec.raw,
        keep_body = spec.keep_body,
        -- a 2xx body to decode may stay in the wire's memory (see release())
        keep = not (spec.raw or spec.sink or spec.keep_body),
        decode = spec.decode,
        deadline = spec.deadline,
        attempt = 0,
        redirects = 0,
    }
    local ok, err = send(self, call)
    if not ok then call.err = err end
    return call
end

--- Drops a call that is no longer wanted (a prefetched page, an abandoned iterator).
function Requester:cancel(call)
    call.gated = nil
    self.live[call] = nil
    if call.req then
        if not self.closed then self.wire:cancel(call.req) end
        call.req = nil
    end
end

--- Advances every transfer without waiting (lets prefetched pages arrive while the
-- caller works).
function Requester:pump()
    if not self.closed then gate.sweep(self) end
end

-- Delay before the next attempt, or nil when the server asked for more than we allow.
local function backoff(self, attempt, retry_after)
    if retry_after then
        if retry_after > self.max_retry_after then return nil end
        return retry_after
    end
    local d = min(self.backoff_max, self.backoff_base * 2 ^ attempt)
    return d / 2 + random() * d / 2
end

-- Waits until the rate gate opens, then sends a gated call. Returns true, or nil, err.
local function send_when_open(self, call)
    while call.gated do
        if self.closed then return nil, closed_error(call) end
        local target = self.gate:until_at()
        local wait = target - self.host.now()
        if call.deadline and self.host.now() + max(wait, 0) >= call.deadline then
            call.gated = nil
            return nil, deadline_error(call)
        end
        if wait > 0 then self.host.sleep(wait) end
        local ok, err = send(self, call, target)
        if not ok then return nil, err end
    end
    return true
end

-- A body the wire kept in its own memory (wire:wait's keep) is an object, not a string:
-- closed once decoded.
local function release(body)
    if type(body) == "userdata" then body:close() end
end

--- Waits for the call's outcome, retrying and following redirects as needed.
function Requester:finish(call)
    local key = secrets[self]
    while true do
        if call.err then
            local err = call.err
            call.err = nil
            err.attempts = call.attempt + 1
            return nil, err
        end
        local ok, gerr = send_when_open(self, call)
        if not ok then
            gerr.attempts = call.attempt + 1
            return nil, gerr
        end
        local req = call.req
        if self.closed then return nil, closed_error(call) end
        if not req then
            return nil, errors.new("network", "request was cancelled", {
                code = "aborted", retryable = false, method = call.method, path = call.path,
            })
        end
        local status, headers, body
        call.waiting = true -- (never recalled by a sweep meanwhile)
        if call.sink and self.wire.stream then
            status, headers, body = self.wire:stream(req, call.sink, call.deadline)
        else
            status, headers, body = self.wire:wait(req, call.deadline, call.keep)
            if call.sink and status == 200 then
                if call.sink(body) then
                    body = ""
                else
                    status, headers, body = nil, "the sink refused the data", "aborted"
                end
            end
        end
        call.req, call.waiting = nil, nil
        self.live[call] = nil
        if self.closed then
            release(body)
            return nil, closed_error(call)
        end
        -- a sweep may have seen it arrive earlier (the gate is never shut later than that)
        local arrived = call.arrived or self.host.now()
        call.arrived = nil
        local err
        if not status and body == "held" then
            -- the wire held it back: the gate shut before it went out (sent when it opens)
            call.gated = true
        elseif not status then
            local message, kind = headers, body
            -- kind "host": the host cannot do I/O here (an nginx phase without cosockets)
            local ekind = (kind == "timeout" or kind == "host") and kind or "network"
            err = errors.new(ekind, clean(message, key, 500), {
                code = kind,
                retryable = kind ~= "too_large" and kind ~= "tls" and kind ~= "aborted" and kind ~= "host",
                method = call.method,
                path = call.path,
            })
            if kind == "timeout" and call.deadline
                and (call.deadline_bound or self.host.now() >= call.deadline) then
                err.deadline = true
            end
        elseif status >= 300 and status < 400 and headers.location and call.redirects < 5 then
            call.redirects = call.redirects + 1
            call.url = resolve_location(call.url, headers.location)
            if status == 303 then call.method, call.body = "GET", nil end
            self:log{ type = "redirect", method = call.method, path = call.path, status = status }
            local sok, serr = send(self, call)
            if not sok then call.err = serr end
        elseif status >= 200 and status < 300 then
            if call.raw or body == "" then
                self:log{ type = "response", method = call.method, path = call.path, status = status,
                          attempt = call.attempt }
                return status, headers, call.raw and body or nil
            end
            -- The caller may put its next requests on the wire before this body is decoded.
            local on_arrival = call.on_arrival
            if on_arrival then
                call.on_arrival = nil
                on_arrival()
            end
            if call.keep_body then call.body = body end
            local data, derr, e2, e3, e4, e5 = (call.decode or core.decode)(body)
            release(body)
            if data then
                self:log{ type = "response", method = call.method, path = call.path, status = status,
                          attempt = call.attempt }
                return status, headers, data, derr, e2, e3, e4, e5
            end
            err = errors.new("decode", clean(derr, key, 500), {
                status = status, retryable = true, request_id = clean(headers["x-request-id"], key),
                method = call.method, path = call.path,
            })
        else
            err = error_from_response(status, headers, body, call.method, call.path, key)
        end
        if err then
            if err.status == 429 or err.status == 503 then call.rate_limited = true end
            local ra = err.status and gate.delay(err.status, headers, self.max_retry_after)
            if ra then self.gate:shut(arrived + ra) end
            local delay = err.retryable and not call.sunk and call.attempt < self.max_retries
                and backoff(self, call.attempt, err.retry_after)
            if delay then
                local now = self.host.now()
                -- a Retry-After counts from the answer's arrival (a sweep may have seen it
                -- long before this call's turn came)
                if err.retry_after then delay = max(0, delay - (now - arrived)) end
                -- a request that was in flight when the gate shut is not re-sent early
                delay = max(delay, self.gate:until_at() - now)
            end
            if err.deadline then delay = nil end
            if delay and call.deadline and self.host.now() + delay >= call.deadline then
                delay, err.deadline = nil, true
            end
            if not delay then
                self:log{ type = "error", at = arrived, method = call.method, path = call.path,
                          status = err.status,
                          message = err.message, attempt = call.attempt, retry_after = err.retry_after,
                          code = err.code, request_id = err.request_id }
                err.attempts = call.attempt + 1
                return nil, err
            end
            self:log{ type = "retry", at = arrived, method = call.method, path = call.path,
                      status = err.status,
                      message = err.message, attempt = call.attempt, delay = delay,
                      retry_after = err.retry_after, code = err.code, request_id = err.request_id }
            local target = self.gate:until_at()
            self.host.sleep(delay)
            call.attempt = call.attempt + 1
            local sok, serr = send(self, call, target)
            if not sok then call.err = serr end
        end
    end
end

--- start + finish.
function Requester:request(spec)
    return self:finish(self:start(spec))
end

function Requester:close()
    self.closed = true
    self.wire:close()
end

return _M

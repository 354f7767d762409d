-- leadpipe.http: one logical API request, with retries, backoff, Retry-After, redirects.
--
-- A transport moves its bytes through a "wire" (leadpipe.transport.curl by default, or
-- leadpipe.transport.cosocket when the host names it): see transport/curl.lua for the
-- wire's five methods. A call is started with transport:start(spec),
-- which sends its first attempt at once and never waits, and finished with
-- transport:finish(call), which waits through the client's host, retries what a retry can
-- cure, and returns
--     status, headers, decoded_body        on a 2xx (decoded_body nil for an empty body;
--                                          the raw string when spec.raw is set)
--     nil, err                             otherwise (err from leadpipe.errors)
-- Retries: transport failures (connect, reset, timeout), 408, 429 and 5xx, and a 2xx whose
-- JSON is cut short, up to max_retries times; exponential backoff with jitter capped at
-- backoff_max; Retry-After (seconds or HTTP-date) is honoured up to max_retry_after, and a
-- longer demand ends the call at once with a rate_limited error carrying retry_after. Every
-- request the API documents is safe to repeat: GETs, DELETE, and POST /runs which carries
-- the same Idempotency-Key on every attempt.
-- Redirects are followed here, not in curl, and the API key is sent only to the origin of
-- base_url.

local core = require "leadpipe.core"
local errors = require "leadpipe.errors"

local setmetatable, type, tostring, tonumber, pairs = setmetatable, type, tostring, tonumber, pairs
local floor, min, random = math.floor, math.min, math.random
local concat, sort = table.concat, table.sort
local os_time = os.time

local _M = { _VERSION = "0.1.0" }

local Transport = {}
Transport.__index = Transport

-- The key lives here, keyed by transport, never in a table a user may print.
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
_M.origin_of = origin_of

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

local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a proleptic Gregorian date (no time zones involved).
local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

--- Seconds to wait from a Retry-After value (delta-seconds or an IMF-fixdate), or nil.
-- `now` (epoch seconds) defaults to os.time().
function _M.parse_retry_after(value, now)
    if type(value) ~= "string" then return nil end
    local secs = value:match("^%s*(%d+)%s*$")
    if secs then return tonumber(secs) end
    local d, mon, y, hh, mm, ss = value:match("(%d%d?)[ -](%a%a%a)[ -](%d%d%d?%d?) (%d%d):(%d%d):(%d%d)")
    if not d or not months[mon] then return nil end
    y = tonumber(y)
    if y < 100 then y = y + (y < 70 and 2000 or 1900) end
    local at = days_from_civil(y, months[mon], tonumber(d)) * 86400
        + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
    local delta = at - (now or os_time())
    return delta > 0 and delta or 0
end

-- Replaces every occurrence of the key in s (plain text) by a mask.
local function scrub(s, key)
    if type(s) ~= "string" or not key or key == "" then return s end
    local out, i = {}, 1
    while true do
        local a, b = s:find(key, i, true)
        if not a then break end
        out[#out + 1] = s:sub(i, a - 1)
        out[#out + 1] = "[REDACTED]"
        i = b + 1
    end
    out[#out + 1] = s:sub(i)
    return concat(out)
end
_M.scrub = scrub

-- Builds the error for a non-2xx response from its (possibly JSON) body.
local function error_from_response(status, headers, body, method, path)
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
    local retry_after = _M.parse_retry_after(headers["retry-after"])
    return errors.new(kind, message or ("HTTP " .. status), {
        status = status,
        code = code,
        request_id = request_id,
        retryable = errors.status_retryable(status),
        retry_after = retry_after,
        run = run,
        method = method,
        path = path,
    })
end

-- ===== transport =====

--- cfg: base_url, api_key, host (resolved), timeout, connect_timeout, max_retries,
-- backoff_base, backoff_max, max_retry_after, max_response, user_agent, verify, logger.
-- The host's `transport` field names the wire (default "curl").
function _M.new(cfg)
    local wire = require("leadpipe.transport." .. (cfg.host.transport or "curl")).new(cfg, cfg.host)
    local t = setmetatable({
        base_url = cfg.base_url,
        origin = origin_of(cfg.base_url),
        host = cfg.host,
        wire = wire,
        max_retries = cfg.max_retries,
        backoff_base = cfg.backoff_base,
        backoff_max = cfg.backoff_max,
        max_retry_after = cfg.max_retry_after,
        logger = cfg.logger,
    }, Transport)
    secrets[t] = cfg.api_key
    return t
end

function Transport:log(event)
    local logger = self.logger
    if logger then
        event.message = scrub(event.message, secrets[self])
        pcall(logger, event)
    end
end

-- Sends one attempt of the call (spec.url, spec.method, spec.body, ...).
local function send(self, call)
    local headers = { accept = "application/json" }
    if call.body then headers["content-type"] = "application/json" end
    if call.idempotency_key then headers["idempotency-key"] = call.idempotency_key end
    if origin_of(call.url) == self.origin then headers["x-api-key"] = secrets[self] end
    call.req = self.wire:send{
        method = call.method, url = call.url, headers = headers, body = call.body,
        stream = call.sink and true or nil, timeout = call.timeout,
    }
    call.started = self.host.now()
end

--- Starts a call: { method=, path=, query=, body=, idempotency_key=, raw=, deadline=,
-- decode=, sink=, timeout= }. `decode(body)` replaces core.decode for a 2xx body (value,
-- a, b | nil, msg; finish returns a and b after the value). Before a 2xx body is decoded,
-- finish calls call.on_arrival() once when the caller set it, and a call that met a 429 or
-- 503 has call.rate_limited set. The first attempt is on the wire when this returns;
-- nothing waits. With sink = function(chunk) -> true|nil, the body of a 200 goes to it
-- piece by piece (finish then returns status, headers, nil) and is never held whole; once a
-- piece has gone to the sink the call is not retried. timeout: seconds for the whole transfer.
function Transport:start(spec)
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
        decode = spec.decode,
        deadline = spec.deadline,
        attempt = 0,
        redirects = 0,
    }
    send(self, call)
    return call
end

--- Drops a call that is no longer wanted (a prefetched page, an abandoned iterator).
function Transport:cancel(call)
    if call.req then
        self.wire:cancel(call.req)
        call.req = nil
    end
end

--- Advances every transfer without waiting (lets prefetched pages arrive while the
-- caller works).
function Transport:pump()
    self.wire:pump()
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

--- Waits for the call's outcome, retrying and following redirects as needed.
function Transport:finish(call)
    local key = secrets[self]
    while true do
        local req = call.req
        if not req then
            return nil, errors.new("network", "request was cancelled", { code = "aborted" })
        end
        local status, headers, body
        if call.sink and self.wire.stream then
            status, headers, body = self.wire:stream(req, call.sink)
        else
            status, headers, body = self.wire:wait(req)
            if call.sink and status == 200 then
                if call.sink(body) then
                    body = ""
                else
                    status, headers, body = nil, "the sink refused the data", "aborted"
                end
            end
        end
        call.req = nil
        local err
        if not status then
            local message, kind = headers, body
            -- kind "host": the host cannot do I/O here (an nginx phase without cosockets)
            local ekind = (kind == "timeout" or kind == "host") and kind or "network"
            err = errors.new(ekind, scrub(message, key), {
                code = kind,
                retryable = kind ~= "too_large" and kind ~= "tls" and kind ~= "aborted" and kind ~= "host",
                method = call.method,
                path = call.path,
            })
        elseif status >= 300 and status < 400 and headers.location and call.redirects < 5 then
            call.redirects = call.redirects + 1
            call.url = resolve_location(call.url, headers.location)
            if status == 303 then call.method, call.body = "GET", nil end
            self:log{ type = "redirect", method = call.method, path = call.path, status = status }
            send(self, call)
        elseif status >= 200 and status < 300 then
            if call.raw or body == "" then
                self:log{ type = "response", method = call.method, path = call.path, status = status,
                          attempt = call.attempt }
                return status, headers, call.raw and body or nil
            end
            -- The caller may put its next requests on the wire before this body is decoded.
            local arrived = call.on_arrival
            if arrived then
                call.on_arrival = nil
                arrived()
            end
            local data, derr, extra = (call.decode or core.decode)(body)
            if data then
                self:log{ type = "response", method = call.method, path = call.path, status = status,
                          attempt = call.attempt }
                return status, headers, data, derr, extra
            end
            err = errors.new("decode", derr, {
                status = status, retryable = true, request_id = headers["x-request-id"],
                method = call.method, path = call.path,
            })
        else
            err = error_from_response(status, headers, body, call.method, call.path)
            err.message = scrub(err.message, key)
        end
        if err then
            if err.status == 429 or err.status == 503 then call.rate_limited = true end
            local delay = err.retryable and not call.sunk and call.attempt < self.max_retries
                and backoff(self, call.attempt, err.retry_after)
            if delay and call.deadline and self.host.now() + delay >= call.deadline then
                delay = nil
            end
            if not delay then
                self:log{ type = "error", method = call.method, path = call.path, status = err.status,
                          message = err.message, attempt = call.attempt }
                err.attempts = call.attempt + 1
                return nil, err
            end
            self:log{ type = "retry", method = call.method, path = call.path, status = err.status,
                      message = err.message, attempt = call.attempt, delay = delay }
            self.host.sleep(delay)
            call.attempt = call.attempt + 1
            send(self, call)
        end
    end
end

--- start + finish.
function Transport:request(spec)
    return self:finish(self:start(spec))
end

function Transport:close()
    self.wire:close()
end

return _M

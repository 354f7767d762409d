-- leadpipe.errors: the one error object every leadpipe call returns or raises.
--
-- An error is a plain table with a metatable:
--   kind         "network", "timeout", "http", "auth", "rate_limited", "not_found",
--                "run_failed", "run_cancelled", "not_ready", "decode", "invalid_argument",
--                "closed" (a call on a closed client; err.call names it)
--   status       HTTP status (nil for transport failures and argument errors)
--   code         the API's error code ("RUN_FAILED", "NOT_FOUND", ...) or a transport kind
--   message      one line for people
--   request_id   the API's request id, for support
--   retryable    true when the same request may succeed later
--   retry_after  seconds the server asked to wait (429/503), if it said
--   run          for run_failed/run_cancelled: { id, status, errorCode, errorMessage }
--   method, path the request that failed (path without the query string's secrets: there are none)
-- It never holds the API key: every field that came from outside (message, code,
-- request_id, run) is scrubbed (leadpipe.scrub) where http.lua and page.lua build it.

local setmetatable, getmetatable = setmetatable, getmetatable
local tostring, type = tostring, type
local concat = table.concat

local _M = { _VERSION = require "leadpipe.version" }

local mt = {}
mt.__index = mt
mt.__name = "leadpipe.error"

mt.__tostring = function(e)
    local parts = { "leadpipe: ", e.kind }
    if e.status then parts[#parts + 1] = " (HTTP " .. tostring(e.status) .. ")" end
    if e.code and tostring(e.code):lower() ~= e.kind then parts[#parts + 1] = " " .. tostring(e.code) end
    if e.message then parts[#parts + 1] = ": " .. tostring(e.message) end
    if e.request_id then parts[#parts + 1] = " [request " .. tostring(e.request_id) .. "]" end
    return concat(parts)
end

-- Kinds whose failures a retry can cure.
local retryable_kinds = { network = true, timeout = true, rate_limited = true }

--- Makes an error. `fields` may set any of the documented keys.
function _M.new(kind, message, fields)
    local e = {}
    if fields then
        for k, v in pairs(fields) do e[k] = v end
    end
    e.kind = kind
    e.message = message or e.message or kind
    if e.retryable == nil then e.retryable = retryable_kinds[kind] or false end
    return setmetatable(e, mt)
end

function _M.is_error(x)
    return type(x) == "table" and getmetatable(x) == mt
end

-- Kind for an HTTP status that is not a success.
function _M.kind_for_status(status)
    if status == 401 or status == 403 then return "auth" end
    if status == 404 then return "not_found" end
    if status == 429 then return "rate_limited" end
    return "http"
end

-- Whether a failed HTTP status may succeed when the request is sent again.
function _M.status_retryable(status)
    return status == 429 or (status >= 500 and status <= 599) or status == 408
end

_M.metatable = mt

return _M

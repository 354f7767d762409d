-- leadpipe.errors: the one error object every leadpipe call returns or raises.
--
-- An error is a plain table with a metatable:
--   kind         "network", "timeout", "http", "auth", "rate_limited", "not_found",
--                "run_failed", "run_cancelled", "not_ready", "decode", "invalid_argument",
--                "closed" (a call on a closed client; err.call names it), "host" (the host
--                cannot do I/O here), "io" and "aborted" (export_csv's file or sink)
--   status       HTTP status (nil for wire failures and argument errors)
--   code         the API's error code ("RUN_FAILED", "NOT_FOUND", ...) or a wire kind
--   message      one line for people
--   request_id   the API's request id, for support
--   retryable    true when the same request may succeed later
--   retry_after  seconds the server asked to wait (429/503), if it said
--   run          for run_failed/run_cancelled: { id, status, errorCode, errorMessage }
--   method, path the request that failed (path without the query string's secrets: there are none)
--   attempts     how many times the request was sent
--   argument     for invalid_argument: the argument at fault; call: for closed, the method
--   deadline, rows, offset   for code DEADLINE (a call's deadline option ran out): its
--                seconds, the rows handed out and the offset reached (leadpipe.deadline)
-- (the LuaLS classes below, leadpipe.ErrorKind and leadpipe.Error, list them all)
-- It never holds the API key: every field that came from outside (message, code,
-- request_id, run) is scrubbed (leadpipe.scrub) where http.lua and page.lua build it.

---@alias leadpipe.ErrorKind
---| "network"          # the wire failed (connect, reset, tls, too_large, aborted...: see err.code)
---| "timeout"          # a request or a wait ran out of time (code "timeout", "WAIT_TIMEOUT", "DEADLINE")
---| "http"             # an HTTP status with no kind of its own, or a page that breaks the rules
---| "auth"             # HTTP 401 or 403
---| "rate_limited"     # HTTP 429 (retry_after says how long the server asked to wait)
---| "not_found"        # HTTP 404, or latest_run found no run (code "NO_RUN")
---| "run_failed"       # HTTP 409 for a failed run (err.run)
---| "run_cancelled"    # HTTP 409 for a cancelled run (err.run)
---| "not_ready"        # the run is still queued or running and the call was told not to wait
---| "decode"           # a body that is not the JSON the API documents
---| "invalid_argument" # a bad argument, caught before any request (err.argument names it)
---| "closed"           # a call on a closed client (err.call names it)
---| "host"             # the host cannot do I/O here (an nginx phase without cosockets)
---| "io"               # export_csv could not write its file
---| "aborted"          # the sink of export_csv stopped the export

--- The error details of a failed run, as the API sends them with a 409.
---@class leadpipe.ErrorRun
---@field id? string
---@field status? string
---@field errorCode? string
---@field errorMessage? string

--- The error object every leadpipe call returns (`nil, err`) or raises. `tostring(err)`
--- gives one line: "leadpipe: kind (HTTP status) CODE: message [request id]".
---@class leadpipe.Error
---@field kind leadpipe.ErrorKind what went wrong
---@field message string one line for people
---@field retryable boolean true when the same request may succeed later
---@field status? integer HTTP status (nil for wire failures and argument errors)
---@field code? string the API's error code ("RUN_FAILED", ...) or a wire kind ("tls", ...)
---@field request_id? string the API's request id, for support
---@field retry_after? number seconds the server asked to wait (429/503), if it said
---@field run? leadpipe.ErrorRun for run_failed/run_cancelled: id, status, errorCode, errorMessage
---@field attempts? integer how many times the request was sent (errors of the request layer)
---@field method? string HTTP method of the request that failed
---@field path? string path of the request that failed
---@field argument? string for invalid_argument: the argument or option at fault
---@field call? string for closed: the client method that was called
---@field where? string for code NOT_IN_COROUTINE: "file:line" of the call
---@field deadline? number|boolean for code DEADLINE: the call's deadline option (seconds)
---@field rows? integer for code DEADLINE from pages/people: rows handed out before it passed
---@field offset? integer for code DEADLINE: the offset the read had reached

local setmetatable, getmetatable = setmetatable, getmetatable
local tostring, type, error, pcall, xpcall, rawget = tostring, type, error, pcall, xpcall, rawget
local concat = table.concat
local running = coroutine.running
local getinfo = debug and debug.getinfo

---@class leadpipe.errors
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

-- `"failed: " .. err` and `err .. "\n"` give text, as tostring(err) would.
mt.__concat = function(a, b)
    return tostring(a) .. tostring(b)
end

-- Kinds whose failures a retry can cure.
local retryable_kinds = { network = true, timeout = true, rate_limited = true }

--- Makes an error. `fields` may set any of the documented keys; `retryable` defaults to
--- true for the kinds network, timeout and rate_limited.
---@param kind leadpipe.ErrorKind
---@param message? string defaults to fields.message, then to kind
---@param fields? table any other leadpipe.Error fields
---@return leadpipe.Error
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

--- Whether x is a leadpipe error object.
---@param x any
---@return boolean
function _M.is_error(x)
    return type(x) == "table" and getmetatable(x) == mt
end

--- Kind for an HTTP status that is not a success.
---@param status integer
---@return leadpipe.ErrorKind kind "auth", "not_found", "rate_limited" or "http"
function _M.kind_for_status(status)
    if status == 401 or status == 403 then return "auth" end
    if status == 404 then return "not_found" end
    if status == 429 then return "rate_limited" end
    return "http"
end

--- Whether a failed HTTP status may succeed when the request is sent again (408, 429, 5xx).
---@param status integer
---@return boolean
function _M.status_retryable(status)
    return status == 429 or (status >= 500 and status <= 599) or status == 408
end

-- ===== raising an error so that every Lua prints it =====
--
-- Lua 5.2+ and LuaJIT print an uncaught error object through its __tostring. PUC Lua 5.1's
-- standalone interpreter prints only strings ("(error object is not a string)"), and its
-- assert() (5.2's too) takes only a string message. So on PUC 5.1, an error that nothing
-- can catch is raised as its one line of text, and everywhere else as the object. What
-- can catch a raise is pcall or xpcall on the stack, or a coroutine's resume: then the
-- object is raised on every Lua, so a caught error always has its fields. Only a C caller
-- (the interpreter, a host's lua_pcall) can see the difference.

local PUC51 = _VERSION == "Lua 5.1" and rawget(_G, "jit") == nil

-- Whether a raise from the caller's caller can be caught by Lua code (PUC 5.1 only: no
-- coroutine.running() in the main thread).
local function catchable()
    if running() or not getinfo then return true end
    local level = 3
    while true do
        local info = getinfo(level, "f")
        if not info then return false end
        if info.func == pcall or info.func == xpcall then return true end
        level = level + 1
    end
end

--- Raises `err` like error(err, level): the error object, or on PUC Lua 5.1 when nothing
--- can catch it, its tostring() (see above). level 0 adds no position; the default, 1, is
--- the caller of raise.
---@param err any
---@param level? integer
---@return nil never returns
function _M.raise(err, level)
    level = level or 1
    if level > 0 then level = level + 1 end
    if PUC51 and getmetatable(err) == mt and not catchable() then
        error(mt.__tostring(err), level)
    end
    error(err, level)
end

--- leadpipe.assert(v, err, ...) -> v, err, ...: assert() for leadpipe's `value | nil, err`
--- calls, which prints the error on every Lua (assert() of PUC 5.1 and 5.2 refuses a table
--- message). A failure raises err (see raise), or err as assert() would when it is not an
--- error object ("assertion failed!" when nil).
---@generic T
---@param v T
---@param ... any the error, and what else the call returned
---@return T
function _M.assert(v, ...)
    if v then return v, ... end
    local err = ...
    if getmetatable(err) == mt then _M.raise(err, 2) end
    if err == nil then err = "assertion failed!" end
    error(err, 0)
end

return _M

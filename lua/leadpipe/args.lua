-- leadpipe.args: the one home of argument checks, for the library and the command line.
--
-- Every check returns nil when the value is fine, or an error object of kind
-- "invalid_argument" whose message names the function, the argument and the rule
-- ("create_run: audience_id must be a UUID ..."), with err.argument set. Nothing here sends;
-- callers return the error (calls) or raise it (constructors, iterators), and the helpers
-- that raise at once (filter, iter, path, json, format, hosts) raise it with fail().
-- Everything that reaches C (leadpipe.core) is checked here first, so C never raises
-- "bad argument" at a user: numbers are finite and in range, strings hold no control bytes.

local errors = require "leadpipe.errors"

local type, tostring, tonumber, pairs, ipairs, select = type, tostring, tonumber, pairs, ipairs, select
local getmetatable = getmetatable
local floor, min, huge = math.floor, math.min, math.huge
local concat, sort = table.concat, table.sort

local _M = { _VERSION = require "leadpipe.version" }

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

function _M.invalid(fname, arg, rule)
    return errors.new("invalid_argument", fname .. ": " .. arg .. " " .. rule,
        { code = "INVALID_ARGUMENT", argument = arg })
end

-- Raises invalid(fname, arg, rule), with no "file:line:" prefix (the message names the call).
function _M.fail(fname, arg, rule)
    errors.raise(_M.invalid(fname, arg, rule), 0)
end

function _M.is_integer(v)
    return type(v) == "number" and v == floor(v) and v > -huge and v < huge
end

function _M.check_id(fname, arg, v)
    if type(v) ~= "string" then
        return _M.invalid(fname, arg, "must be a UUID string (got " .. type(v) .. ")")
    end
    if not v:find(UUID) then
        return _M.invalid(fname, arg, "must be a UUID like 8c4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3a (got "
            .. ("%q"):format(v:sub(1, 60)) .. ")")
    end
end

function _M.check_int(fname, arg, v, lo, hi)
    if v == nil then return end
    if not _M.is_integer(v) or v < lo or (hi and v > hi) then
        local range = hi and ("an integer from " .. lo .. " to " .. ("%.0f"):format(hi))
            or ("an integer >= " .. lo)
        return _M.invalid(fname, arg, "must be " .. range .. " (got "
            .. (type(v) == "number" and tostring(v) or type(v)) .. ")")
    end
end

-- A finite number from lo to hi (hi defaults to MAX_SECONDS: C keeps times in range).
_M.MAX_SECONDS = 1e6

function _M.check_number(fname, arg, v, lo, hi)
    if v == nil then return end
    hi = hi or _M.MAX_SECONDS
    if type(v) ~= "number" or v ~= v or v < lo or v > hi then
        return _M.invalid(fname, arg, "must be a finite number from " .. lo .. " to " .. hi
            .. " (got " .. (type(v) == "number" and tostring(v) or type(v)) .. ")")
    end
end

function _M.check_boolean(fname, arg, v)
    if v ~= nil and type(v) ~= "boolean" then
        return _M.invalid(fname, arg, "must be a boolean (got " .. type(v) .. ")")
    end
end

-- A string of 1..max bytes, none of them control bytes (so it is safe in a header line).
function _M.check_text(fname, arg, v, max)
    if v == nil then return end
    if type(v) ~= "string" then
        return _M.invalid(fname, arg, "must be a string (got " .. type(v) .. ")")
    end
    if #v == 0 or #v > max then
        return _M.invalid(fname, arg, "must be 1 to " .. max .. " bytes long (got " .. #v .. ")")
    end
    if v:find("%c") then
        return _M.invalid(fname, arg, "must not contain control characters (CR, LF, NUL, ...)")
    end
end

-- An Idempotency-Key: printable ASCII (0x20..0x7E), 1 to 120 characters, no space at
-- either end (HTTP would trim it, and the replay would no longer match).
function _M.check_idempotency_key(fname, arg, v)
    if type(v) ~= "string" then
        return _M.invalid(fname, arg, "must be a string (got " .. type(v) .. ")")
    end
    if #v < 1 or #v > 120 or v:find("[^\32-\126]") or v:find("^ ") or v:find(" $") then
        return _M.invalid(fname, arg, "must be 1 to 120 printable ASCII characters "
            .. "(0x20-0x7E, no space at either end)")
    end
end

-- ===== base_url =====

local function is_loopback(host)
    host = host:lower()
    if host == "localhost" or host == "[::1]" then return true end
    local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if a then
        a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
        return a == 127 and b <= 255 and c <= 255 and d <= 255
    end
    return false
end
_M.is_loopback = is_loopback

--- check_base_url(fname, arg, url, allow_insecure_http) -> normalized url | nil, err
-- http(s) only; no userinfo, query, fragment, whitespace or control bytes; a host that
-- is a name, an IPv4 address or a bracketed IPv6 one, with an optional port; plain
-- http only to a loopback host (127.0.0.0/8, ::1, localhost) unless allowed.
function _M.check_base_url(fname, arg, url, allow_insecure)
    local function bad(rule)
        return nil, _M.invalid(fname, arg, rule)
    end
    if type(url) ~= "string" then
        return bad("must be an http:// or https:// URL string (got " .. type(url) .. ")")
    end
    if url:find("[%c%s]") then
        return bad("must not contain whitespace or control characters")
    end
    if #url > 2048 then return bad("must be at most 2048 bytes long") end
    local scheme, authority, path = url:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
    if not scheme then return bad("must be an http:// or https:// URL") end
    scheme = scheme:lower()
    if scheme ~= "http" and scheme ~= "https" then
        return bad("must be an http:// or https:// URL (got " .. scheme .. "://)")
    end
    if authority:find("@", 1, true) then
        return bad("must not contain user:password@ (the API key is the only credential)")
    end
    if path:find("?", 1, true) then return bad("must not contain a query string (?...)") end
    if path:find("#", 1, true) then return bad("must not contain a fragment (#...)") end
    local host, port = authority:match("^(%[[%x:.]+%])(.*)$")
    if not host then host, port = authority:match("^([%w.-]+)(.*)$") end
    if not host or host == "" or host:find("^[.-]") or host:find("%.%.") then
        return bad("must name a host (got " .. ("%q"):format(authority) .. ")")
    end
    if port ~= "" then
        local n = port:match("^:(%d+)$")
        if not n or tonumber(n) < 1 or tonumber(n) > 65535 then
            return bad("has a bad port (got " .. ("%q"):format(port) .. ")")
        end
    end
    if scheme == "http" and not allow_insecure and not is_loopback(host) then
        return bad("must use https:// for a host that is not loopback (the key would travel in "
            .. "clear text); pass allow_insecure_http = true to accept that")
    end
    return scheme .. "://" .. authority .. path:gsub("/+$", "")
end

-- ===== closed clients =====

--- closed(call) -> the error of kind "closed" for a call on a closed client.
function _M.closed(call)
    return errors.new("closed", call .. ": the client is closed", { code = "CLOSED", call = call })
end

-- A function, or a table or userdata with a __call metamethod (see is_callable).
function _M.check_function(fname, arg, v)
    if v ~= nil and not _M.is_callable(v) then
        return _M.invalid(fname, arg, "must be a function (got " .. type(v) .. ")")
    end
end

-- Checks an options table against the names it may hold; suggests the nearest name.
function _M.distance(a, b)
    local prev = {}
    for j = 0, #b do prev[j] = j end
    for i = 1, #a do
        local cur = { [0] = i }
        for j = 1, #b do
            local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
        end
        prev = cur
    end
    return prev[#b]
end

function _M.check_opts(fname, opts, allowed)
    if opts == nil then return {} end
    if type(opts) ~= "table" then
        return nil, _M.invalid(fname, "opts", "must be a table (got " .. type(opts) .. ")")
    end
    for k in pairs(opts) do
        if not allowed[k] then
            local names, best, bestd = {}, nil, 4
            for name in pairs(allowed) do
                names[#names + 1] = name
                local d = type(k) == "string" and _M.distance(k, name) or huge
                if d < bestd then best, bestd = name, d end
            end
            sort(names)
            local msg = "has an unknown option '" .. tostring(k) .. "'"
                .. (best and (" (did you mean '" .. best .. "'?)") or "")
                .. "; valid options: " .. concat(names, ", ")
            return nil, _M.invalid(fname, "opts", msg)
        end
    end
    return opts
end

function _M.set(list)
    local s = {}
    for _, v in ipairs(list) do s[v] = true end
    return s
end

-- Returns the first non-nil of its arguments (argument checks return an error or nil).
function _M.first(...)
    for i = 1, select("#", ...) do
        local v = select(i, ...)
        if v ~= nil then return v end
    end
end

-- ===== checks for audiences, stats and exports (lua/leadpipe/audiences.lua, exports.lua) =====

-- `choices` is an array of the allowed strings.
function _M.check_enum(fname, arg, v, choices)
    if v == nil then return end
    for _, c in ipairs(choices) do
        if v == c then return end
    end
    return _M.invalid(fname, arg, "must be one of " .. concat(choices, ", ") .. " (got "
        .. (type(v) == "string" and ("%q"):format(v:sub(1, 60)) or type(v)) .. ")")
end

function _M.check_path(fname, arg, v)
    if v ~= nil and (type(v) ~= "string" or v == "" or v:find("%z")) then
        return _M.invalid(fname, arg, "must be a non-empty file name (got " .. type(v) .. ")")
    end
end

-- Whether f can be called: a function, or a table or userdata with a __call metamethod.
function _M.is_callable(f)
    if type(f) == "function" then return true end
    local mt = getmetatable(f)
    return type(mt) == "table" and type(mt.__call) == "function"
end

return _M

-- leadpipe.args: the one home of argument checks, for the library and the command line.
--
-- Every check returns nil when the value is fine, or an error object of kind
-- "invalid_argument" whose message names the function, the argument and the rule
-- ("create_run: audience_id must be a UUID ..."), with err.argument set. Nothing here sends
-- or raises; callers return the error (calls) or raise it (constructors, iterators).

local errors = require "leadpipe.errors"

local type, tostring, pairs, ipairs, select = type, tostring, pairs, ipairs, select
local getmetatable = getmetatable
local floor, min, huge = math.floor, math.min, math.huge
local concat, sort = table.concat, table.sort

local _M = { _VERSION = "0.1.0" }

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

function _M.invalid(fname, arg, rule)
    return errors.new("invalid_argument", fname .. ": " .. arg .. " " .. rule,
        { code = "INVALID_ARGUMENT", argument = arg })
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
        local range = hi and ("an integer from " .. lo .. " to " .. hi) or ("an integer >= " .. lo)
        return _M.invalid(fname, arg, "must be " .. range .. " (got " .. tostring(v) .. ")")
    end
end

function _M.check_number(fname, arg, v, lo)
    if v == nil then return end
    if type(v) ~= "number" or v ~= v or v < lo then
        return _M.invalid(fname, arg, "must be a number >= " .. lo .. " (got " .. tostring(v) .. ")")
    end
end

function _M.check_function(fname, arg, v)
    if v ~= nil and type(v) ~= "function" then
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

function _M.check_boolean(fname, arg, v)
    if v ~= nil and type(v) ~= "boolean" then
        return _M.invalid(fname, arg, "must be a boolean (got " .. type(v) .. ")")
    end
end

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

-- leadpipe.json: decode (leadpipe.core's null-free decoder) and a compact, stable encoder.
--
--   json.decode(text)  -> value | nil, "decode: <reason>"
--       JSON null becomes an absent key (and is dropped from arrays); every array, empty ones
--       too, carries core.array_mt; integral numbers are integers on Lua 5.3+.
--   json.encode(value) -> string
--       Compact JSON (no spaces). A table is an array when it carries core.array_mt, or when
--       it is non-empty and its keys are exactly 1..n; an empty table with core.array_mt
--       encodes as [] and any other empty table as {}. Object keys are SORTED (Lua's string
--       order: byte order in the C locale), so the same row always gives the same text:
--       JSONL output and the tests are stable (Lua tables have no order of their own).
--       Integral numbers print without ".0" (84, not 84.0); other numbers print with 14
--       significant digits, or 17 when 14 would not read back exactly.
--       Strings are escaped as JSON requires (", \, control characters); other bytes,
--       UTF-8 included, pass through unchanged, and "/" is not escaped. Number keys become
--       strings. Raises an invalid_argument error on a value JSON cannot hold (function,
--       userdata, NaN, infinity, a key that is not a string or number) and on a cycle or
--       nesting deeper than 1000.
--   json.array(t)      -> t with core.array_mt, so that an empty t encodes as [].
--
-- Licensed under the MIT license, like the rest of leadpipe.

local core = require "leadpipe.core"
local args = require "leadpipe.args"
local cjson_encode = require("cjson").encode

local type, pairs, tostring, tonumber, error = type, pairs, tostring, tonumber, error
local getmetatable, setmetatable, pcall = getmetatable, setmetatable, pcall
local format, gsub, find = string.format, string.gsub, string.find
local concat, sort = table.concat, table.sort
local floor, huge = math.floor, math.huge

---@class leadpipe.json
local _M = { _VERSION = require "leadpipe.version" }

-- A value encode() cannot write: "json.encode: value <rule>".
local function cannot(rule)
    args.fail("json.encode", "value", rule)
end

--- decode(text) -> value | nil, "decode: <reason>". JSON null becomes an absent key (and is
--- dropped from arrays); every array carries array_mt; integral numbers are integers on 5.3+.
---@type fun(text: string): any, string|nil
_M.decode = core.decode

local array_mt = core.array_mt
--- The metatable of decoded arrays (an empty table with it encodes as []).
_M.array_mt = array_mt

--- array(t) -> t with array_mt, so that an empty t encodes as [].
---@param t? table default a new table
---@return table t
function _M.array(t)
    return setmetatable(t or {}, array_mt)
end

-- ===== ENCODING ============================================================================

-- lua-cjson escapes a string in C (", \, control characters and DEL; UTF-8 passes through)
-- many times faster than a Lua pattern can scan it; it also escapes "/" as "\/", which is
-- valid JSON but ugly in URLs, so that is undone. In cjson's output a "\/" is always an
-- escaped slash (a backslash of the text is "\\"), so the substitution is exact.
local function encode_string(s)
    local r = cjson_encode(s)
    if find(s, "/", 1, true) then r = gsub(r, "\\/", "/") end
    return r
end

local MAX_EXACT = 2 ^ 53
local math_type = math.type

local function encode_number(x)
    if x ~= x or x == huge or x == -huge then
        cannot("holds " .. tostring(x) .. ", which JSON cannot encode")
    end
    if math_type and math_type(x) == "integer" then return format("%d", x) end
    if x == floor(x) and x > -MAX_EXACT and x < MAX_EXACT then
        return format("%d", x)
    end
    local str = format("%.14g", x)
    if tonumber(str) ~= x then str = format("%.17g", x) end
    return str
end

-- Whether t encodes as an array, and its length.
local function array_length(t)
    if getmetatable(t) == array_mt then return true, #t end
    local n, max = 0, 0
    for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or k % 1 ~= 0 then return false end
        n = n + 1
        if k > max then max = k end
    end
    if n == 0 or max ~= n then return false end
    return true, n
end

-- Encoded object keys ('"name":'), which repeat from row to row; bounded.
local key_cache, key_cache_n = {}, 0

-- The encoder appends pieces to `buf` (n pieces so far) and returns the new n.
local encode_value

local function encode_table(t, buf, n, depth, seen)
    if depth > 1000 then cannot("is nested deeper than 1000 (a cycle?)") end
    if seen[t] then cannot("holds a cycle") end
    seen[t] = true
    local is_array, len = array_length(t)
    if is_array then
        if len == 0 then
            n = n + 1
            buf[n] = "[]"
        else
            for i = 1, len do
                n = n + 1
                buf[n] = i == 1 and "[" or ","
                n = encode_value(t[i], buf, n, depth + 1, seen)
            end
            n = n + 1
            buf[n] = "]"
        end
    else
        local keys, m, numeric = {}, 0, nil
        for k in pairs(t) do
            local kt = type(k)
            if kt == "number" then
                local str = encode_number(k)
                numeric = numeric or {}
                numeric[str] = k
                k = str
            elseif kt ~= "string" then
                cannot("has an object key that is not a string or number (a " .. kt .. ")")
            end
            m = m + 1
            keys[m] = k
        end
        if m == 0 then
            n = n + 1
            buf[n] = "{}"
        else
            sort(keys)
            for i = 1, m do
                local k = keys[i]
                local ek = key_cache[k]
                if not ek then
                    ek = encode_string(k) .. ":"
                    if key_cache_n >= 4096 then key_cache, key_cache_n = {}, 0 end
                    key_cache[k] = ek
                    key_cache_n = key_cache_n + 1
                end
                buf[n + 1] = i == 1 and "{" or ","
                buf[n + 2] = ek
                n = encode_value(t[numeric and numeric[k] or k], buf, n + 2, depth + 1, seen)
            end
            n = n + 1
            buf[n] = "}"
        end
    end
    seen[t] = nil
    return n
end

encode_value = function(v, buf, n, depth, seen)
    local t = type(v)
    n = n + 1
    if t == "string" then
        buf[n] = encode_string(v)
    elseif t == "number" then
        buf[n] = encode_number(v)
    elseif t == "table" then
        return encode_table(v, buf, n - 1, depth, seen)
    elseif t == "boolean" then
        buf[n] = v and "true" or "false"
    elseif v == nil then
        buf[n] = "null"
    else
        cannot("holds a " .. t .. ", which JSON cannot encode")
    end
    return n
end

--- encode(value) -> JSON text. Raises an invalid_argument error ("json.encode: value ...")
--- on a value JSON cannot hold.
--- Compact, object keys sorted, so the same value always gives the same text.
---@param value any
---@return string json
function _M.encode(value)
    local t = type(value)
    -- Fast paths for leaves.
    if t == "string" then return encode_string(value) end
    local buf = {}
    local ok, err = pcall(encode_value, value, buf, 0, 0, {})
    if not ok then error(err, 2) end
    return concat(buf)
end

return _M

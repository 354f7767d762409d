-- leadpipe.path: dotted paths into person rows ("company.name", "intent.matchedTopics.1"),
-- shared by the predicates (leadpipe.filter), the iterator helpers (leadpipe.iter) and the
-- writers (leadpipe.format).
--
--   path.valid(p) -> boolean       a non-empty string without empty segments
--   path.split(p) -> parts         { "company", "name" }; digit segments become numbers
--   path.get(row, p) -> value|nil  nil-safe; raises invalid_argument on a bad path
--   path.get_parts(row, parts)     the same without checks, for hot loops
--
-- Licensed under the MIT license, like the rest of leadpipe.

local errors = require "leadpipe.errors"

local type, tostring, tonumber = type, tostring, tonumber
local find, sub, match, format = string.find, string.sub, string.match, string.format

---@class leadpipe.path
local _M = { _VERSION = require "leadpipe.version" }

-- Misuse raises an error object (leadpipe.errors) of kind "invalid_argument".
local function fail(msg)
    errors.raise(errors.new("invalid_argument", msg, { code = "INVALID_ARGUMENT" }), 0)
end

-- Split dotted paths are cached; the cache is bounded so that many distinct paths cannot
-- grow it without limit.
local path_cache, path_cache_n = {}, 0

--- split(path) -> parts: "a.b.1" -> { "a", "b", 1 } (cached; the result must not be
--- changed). Digit segments become numbers. No checks: see valid().
---@param path string a dotted path
---@return (string|integer)[] parts
function _M.split(path)
    local parts = path_cache[path]
    if parts then return parts end
    parts = {}
    local start = 1
    while true do
        local dot = find(path, ".", start, true)
        local seg = sub(path, start, (dot or 0) - 1)
        if match(seg, "^%d+$") then
            parts[#parts + 1] = tonumber(seg)
        else
            parts[#parts + 1] = seg
        end
        if not dot then break end
        start = dot + 1
    end
    if path_cache_n >= 512 then path_cache, path_cache_n = {}, 0 end
    path_cache[path] = parts
    path_cache_n = path_cache_n + 1
    return parts
end

--- valid(path) -> boolean: a non-empty string without empty segments.
---@param path any
---@return boolean
function _M.valid(path)
    return type(path) == "string" and path ~= "" and not find(path, "..", 1, true)
        and sub(path, 1, 1) ~= "." and sub(path, -1) ~= "."
end

--- get_parts(row, parts) -> value | nil: get without argument checks, for hot paths (parts
--- from split).
---@param row any
---@param parts (string|integer)[] from split()
---@return any|nil value
function _M.get_parts(row, parts)
    local v = row
    for i = 1, #parts do
        if type(v) ~= "table" then return nil end
        local seg = parts[i]
        local nv = v[seg]
        if nv == nil and type(seg) == "number" then nv = v[tostring(seg)] end
        v = nv
    end
    return v
end

--- get(row, path) -> value | nil
--- Nil-safe access to a dotted path: get(row, "company.name") is row.company.name, or nil when
--- row, company or name is missing (or when a step is not a table). A numeric segment indexes
--- an array: get(row, "intent.matchedTopics.1.topicName"). Raises when path is not a dotted
--- path string.
---@param row any
---@param path string e.g. "company.name"
---@return any|nil value
function _M.get(row, path)
    if not _M.valid(path) then
        fail("get: path must be a dotted path string like \"company.name\", got "
            .. (type(path) == "string" and format("%q", path) or type(path)))
    end
    return _M.get_parts(row, _M.split(path))
end

return _M

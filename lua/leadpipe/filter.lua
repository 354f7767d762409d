-- leadpipe.filter: predicates over person rows (min_score, seniority, ..., where{}).
--
-- A row is a plain table as decoded by leadpipe.core: JSON nulls are ABSENT keys, so any
-- field, and any nested object (company, geo, intent), may be missing. Every predicate here
-- is nil-safe: a missing field simply does not match.
--
-- A predicate is a function(row) -> boolean. Build them with the constructors
-- (`min_score(80)`, `seniority("director", "vp")`, ...) or from a table with `where{...}`,
-- combine them with `all`, `any` and `negate`, and apply them with `filter`.
--
-- The iterator helpers (filter, map, take, collect, count, top) are leadpipe.iter; dotted
-- paths are leadpipe.path. How where{} becomes fast Lua source, or a predicate the C
-- decoder runs: leadpipe.predicate.
--
-- Misuse (a wrong argument type or value) raises an error object of kind
-- "invalid_argument" (leadpipe.args) whose message names the function, the argument and
-- the rule.
--
-- Licensed under the MIT license, like the rest of leadpipe.

local path = require "leadpipe.path"
local argcheck = require "leadpipe.args"
local predicate = require "leadpipe.predicate"

local type, tostring, tonumber, select = type, tostring, tonumber, select
local getmetatable, setmetatable = getmetatable, setmetatable
local pairs, ipairs, next = pairs, ipairs, next
local lower, find, match, format = string.lower, string.find, string.match, string.format
local concat, sort = table.concat, table.sort
local unpack = table.unpack or unpack -- luacheck: ignore (unpack: Lua 5.1)
local is_callable, fail = argcheck.is_callable, argcheck.fail

--- A test of a person row (any table): true when the row matches.
---@alias leadpipe.Predicate fun(row: leadpipe.Person|table): boolean

--- A where{} spec: each key builds the predicate of the same name; all must hold. A string
--- stands for a one-item list. An empty spec matches every row.
---@class leadpipe.Where
---@field min_score? number intent.score >= this
---@field max_score? number intent.score <= this
---@field seniority? string|string[] seniority is one of these (case-insensitive)
---@field seniority_at_least? string seniority ranks at least this (see filter.ranks)
---@field department? string|string[] department is one of these (case-insensitive)
---@field country? string|string[] geo.countryCode or geo.country is one of these
---@field has? string|string[] every dotted path holds a non-empty value
---@field topic? integer|string|(integer|string)[] one of intent.matchedTopics has this id or name

--- What compile() returns.
---@class leadpipe.CompiledWhere
---@field fn leadpipe.Predicate where(spec)
---@field native? userdata the same test for core.decode_page (nil when it cannot be pushed down)

---@class leadpipe.filter
---@field ranks table<string, number> the current rank table (see set_ranks)
---@field default_ranks table<string, number> the ranks leadpipe starts with
---@field where_keys string[] the keys a where{} may hold, sorted
local _M = { _VERSION = require "leadpipe.version" }

-- ===== Seniority ranks =====================================================================

--- The default rank of each seniority, used by `seniority_at_least`. Higher is more senior:
--   entry (1) < senior (2) < manager (3) < director (4) < vp (5) < c_suite (6)
-- `owner` and `partner` rank with `c_suite` (6): they run the business. `cxo` (a legacy
-- spelling of c_suite in the API's older examples) ranks 6 too. Any other value (e.g.
-- "training", "unpaid") and a missing seniority have no rank and never pass an at-least test.
-- Replace the table with `set_ranks{...}` (or by assigning `filter.ranks`); predicates read
-- the table that is current when they are built.
local default_ranks = {
    entry = 1, senior = 2, manager = 3, director = 4, vp = 5,
    c_suite = 6, owner = 6, partner = 6, cxo = 6,
}

local function copy_ranks(t)
    local c = {}
    for k, v in pairs(t) do c[k] = v end
    return c
end

_M.ranks = copy_ranks(default_ranks)
_M.default_ranks = copy_ranks(default_ranks)

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = tostring(k) end
    sort(keys)
    return keys
end

--- Replaces the rank table. `ranks` maps a seniority name (string) to a rank (a number);
--- names are matched case-insensitively. Returns the previous table. Raises on misuse.
---@param ranks table<string, number>
---@return table<string, number> previous
function _M.set_ranks(ranks)
    if type(ranks) ~= "table" then
        fail("set_ranks", "ranks", "must be a table of name = number, got " .. type(ranks))
    end
    local new = {}
    for k, v in pairs(ranks) do
        if type(k) ~= "string" or k == "" then
            fail("set_ranks", "ranks", "must have non-empty seniority names (strings) as keys")
        end
        if type(v) ~= "number" or v ~= v then
            fail("set_ranks", "ranks", "must map '" .. k .. "' to a number, got " .. type(v))
        end
        new[lower(k)] = v
    end
    if next(new) == nil then fail("set_ranks", "ranks", "must not be empty") end
    local old = _M.ranks
    _M.ranks = new
    return old
end

-- ===== Paths ===============================================================================

local valid_path, split_path, get_parts = path.valid, path.split, path.get_parts

-- ===== Argument checks =====================================================================

-- The values passed as fname(...): the arguments, or the list when the only argument is a
-- table. Returns the list and its length.
local function arg_list(...)
    local n = select("#", ...)
    local first = ...
    if n == 1 and type(first) == "table" then return first, #first end
    return { ... }, n
end

-- Collects the string arguments of fname(...) into a lower-cased set; raises on misuse.
-- A single table argument is taken as the list of values.
local function string_set(fname, ...)
    local args, n = arg_list(...)
    if n == 0 then fail(fname, "values", "must not be empty (give at least one)") end
    local set = {}
    for i = 1, n do
        local v = args[i]
        if type(v) ~= "string" or v == "" then
            fail(fname, "value #" .. i, "must be a non-empty string, got "
                .. (type(v) == "string" and "\"\"" or type(v)))
        end
        set[lower(v)] = true
    end
    return set
end

local function check_number(fname, name, n)
    if type(n) ~= "number" or n ~= n then
        fail(fname, name, "must be a number, got " .. type(n))
    end
end

-- ===== Predicates ==========================================================================

local function score_of(row)
    local intent = type(row) == "table" and row.intent
    local s = type(intent) == "table" and intent.score
    return type(s) == "number" and s or nil
end

--- min_score(n) -> predicate: intent.score >= n. A row without a score does not match.
---@param n number
---@return leadpipe.Predicate
function _M.min_score(n)
    check_number("min_score", "n", n)
    return function(row)
        local s = score_of(row)
        return s ~= nil and s >= n
    end
end

--- max_score(n) -> predicate: intent.score <= n. A row without a score does not match.
---@param n number
---@return leadpipe.Predicate
function _M.max_score(n)
    check_number("max_score", "n", n)
    return function(row)
        local s = score_of(row)
        return s ~= nil and s <= n
    end
end

-- A predicate matching a string field (case-insensitively) against a set.
local function field_in(field, set)
    return function(row)
        local v = type(row) == "table" and row[field]
        if type(v) ~= "string" then return false end
        if set[v] then return true end
        return set[lower(v)] == true
    end
end

--- seniority(...) -> predicate: row.seniority is one of the given values (case-insensitive).
--- Takes strings, or one list of strings.
---@param ... string|string[]
---@return leadpipe.Predicate
function _M.seniority(...)
    return field_in("seniority", string_set("seniority", ...))
end

--- department(...) -> predicate: row.department is one of the given values (case-insensitive).
--- Takes strings, or one list of strings.
---@param ... string|string[]
---@return leadpipe.Predicate
function _M.department(...)
    return field_in("department", string_set("department", ...))
end

--- seniority_at_least(level) -> predicate: the row's seniority ranks at least as high as
--- `level` in the rank table (see `ranks`). Unknown and missing seniorities never match.
--- Raises when `level` is not in the rank table.
---@param level string a seniority name, e.g. "director"
---@return leadpipe.Predicate
function _M.seniority_at_least(level)
    if type(level) ~= "string" then
        fail("seniority_at_least", "level", "must be a seniority name (string), got " .. type(level))
    end
    local ranks = _M.ranks
    local min = ranks[lower(level)]
    if type(min) ~= "number" then
        fail("seniority_at_least", "level", format("must be a known seniority (%s), got %q",
            concat(sorted_keys(ranks), ", "), level))
    end
    return function(row)
        local v = type(row) == "table" and row.seniority
        if type(v) ~= "string" then return false end
        local r = ranks[v] or ranks[lower(v)]
        return type(r) == "number" and r >= min
    end
end

--- country(...) -> predicate: geo.countryCode or geo.country equals one of the values,
--- case-insensitively ("US", "us" and "united states" all work). Takes strings, or one list.
---@param ... string|string[]
---@return leadpipe.Predicate
function _M.country(...)
    local set = string_set("country", ...)
    return function(row)
        local geo = type(row) == "table" and row.geo
        if type(geo) ~= "table" then return false end
        local code, name = geo.countryCode, geo.country
        return (type(code) == "string" and set[lower(code)] == true)
            or (type(name) == "string" and set[lower(name)] == true)
    end
end

--- topic(...) -> predicate: one of intent.matchedTopics has a given topic id or name.
--- A number matches topicId; a string matches topicName case-insensitively, and a string of
--- digits ("117796", as typed on a command line) also matches that topicId. Takes ids and
--- names, or one list of them.
---@param ... integer|string|(integer|string)[]
---@return leadpipe.Predicate
function _M.topic(...)
    local args, n = arg_list(...)
    if n == 0 then fail("topic", "values", "must not be empty (give at least one topic id or name)") end
    local ids, names = {}, {}
    for i = 1, n do
        local v = args[i]
        if type(v) == "number" and v == v then
            ids[v] = true
        elseif type(v) == "string" and v ~= "" then
            names[lower(v)] = true
            if match(v, "^%d+$") then ids[tonumber(v)] = true end
        else
            fail("topic", "value #" .. i, "must be a topic id (number) or name (non-empty string), got "
                .. (type(v) == "string" and "\"\"" or type(v)))
        end
    end
    return function(row)
        local intent = type(row) == "table" and row.intent
        local topics = type(intent) == "table" and intent.matchedTopics
        if type(topics) ~= "table" then return false end
        for _, t in ipairs(topics) do
            if type(t) == "table" then
                local id, name = t.topicId, t.topicName
                if (id ~= nil and ids[id]) or (type(name) == "string" and names[lower(name)]) then
                    return true
                end
            end
        end
        return false
    end
end

-- A value is "present" unless it is nil, false, a blank string or an empty table.
local function present(v)
    local t = type(v)
    if t == "string" then return find(v, "%S") ~= nil end
    if t == "table" then return next(v) ~= nil end
    return v ~= nil and v ~= false
end

--- has(field, ...) -> predicate: every named field (a dotted path such as "businessEmail",
--- "phone", "linkedinUrl" or "company.domain") holds a non-empty value: not missing, not
--- false, not a blank string, not an empty table. Takes paths, or one list of paths.
---@param ... string|string[] dotted paths
---@return leadpipe.Predicate
function _M.has(...)
    local args, n = arg_list(...)
    if n == 0 then fail("has", "fields", "must not be empty (give at least one field path)") end
    local paths = {}
    for i = 1, n do
        if not valid_path(args[i]) then
            fail("has", "field #" .. i, "must be a dotted path string like \"company.domain\", got "
                .. (type(args[i]) == "string" and format("%q", args[i]) or type(args[i])))
        end
        paths[i] = split_path(args[i])
    end
    if n == 1 then
        local parts = paths[1]
        return function(row) return present(get_parts(row, parts)) end
    end
    return function(row)
        for i = 1, n do
            if not present(get_parts(row, paths[i])) then return false end
        end
        return true
    end
end

-- ===== Combinators =========================================================================

local function check_predicates(fname, ...)
    local n = select("#", ...)
    local ps = { ... }
    for i = 1, n do
        if not is_callable(ps[i]) then
            fail(fname, "predicate #" .. i, "must be a function, got " .. type(ps[i]))
        end
    end
    return ps, n
end

--- all(p1, p2, ...) -> predicate true when every predicate is (true for no predicates).
---@param ... leadpipe.Predicate
---@return leadpipe.Predicate
function _M.all(...)
    local ps, n = check_predicates("all", ...)
    if n == 1 then return ps[1] end
    return function(row)
        for i = 1, n do
            if not ps[i](row) then return false end
        end
        return true
    end
end

--- any(p1, p2, ...) -> predicate true when at least one predicate is (false for none).
---@param ... leadpipe.Predicate
---@return leadpipe.Predicate
function _M.any(...)
    local ps, n = check_predicates("any", ...)
    if n == 1 then return ps[1] end
    return function(row)
        for i = 1, n do
            if ps[i](row) then return true end
        end
        return false
    end
end

--- negate(p) -> predicate true when p is false.
---@param p leadpipe.Predicate
---@return leadpipe.Predicate
function _M.negate(p)
    if not is_callable(p) then
        fail("negate", "predicate", "must be a function, got " .. type(p))
    end
    return function(row) return not p(row) end
end

-- ===== where{} =============================================================================

-- What each where{} key takes, in the order the predicates are built (cheap ones first).
local where_rules = {
    { key = "min_score", kind = "number", build = _M.min_score },
    { key = "max_score", kind = "number", build = _M.max_score },
    { key = "seniority", kind = "strings", build = _M.seniority },
    { key = "seniority_at_least", kind = "string", build = _M.seniority_at_least },
    { key = "department", kind = "strings", build = _M.department },
    { key = "country", kind = "strings", build = _M.country },
    { key = "has", kind = "strings", build = _M.has },
    { key = "topic", kind = "topics", build = _M.topic },
}
local where_keys = {}
for _, r in ipairs(where_rules) do where_keys[r.key] = r end
local where_key_list = sorted_keys(where_keys)
--- The keys a where{} may hold, sorted.
_M.where_keys = where_key_list

local rule_text = {
    number = "must be a number",
    string = "must be a string",
    strings = "must be a non-empty string or a non-empty list of non-empty strings",
    topics = "must be a topic id (number), a topic name (string) or a non-empty list of them",
}

-- Whether v fits the where{} rule `kind`; a list must be a non-empty array of fitting items.
local function fits(kind, v)
    if kind == "number" then return type(v) == "number" and v == v end
    if kind == "string" then return type(v) == "string" and v ~= "" end
    local function item(x)
        if kind == "topics" and type(x) == "number" then return x == x end
        return type(x) == "string" and x ~= ""
    end
    if type(v) ~= "table" then return item(v) end
    local n = #v
    if n == 0 then return false end
    for k in pairs(v) do
        if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
    end
    for i = 1, n do
        if not item(v[i]) then return false end
    end
    return true
end

-- Raises unless spec is a valid where{} table.
local function check_where(spec)
    if type(spec) ~= "table" then
        fail("where", "spec", "must be a table (or a predicate function), got " .. type(spec))
    end
    for k in pairs(spec) do
        if not where_keys[k] then
            fail("where", type(k) == "string" and format("%q", k) or tostring(k),
                "is not a where key (valid keys: " .. concat(where_key_list, ", ") .. ")")
        end
    end
    for _, r in ipairs(where_rules) do
        local v = spec[r.key]
        if v ~= nil then
            if not fits(r.kind, v) then
                fail("where", r.key, rule_text[r.kind] .. ", got "
                    .. ((type(v) == "table" and r.kind ~= "string" and r.kind ~= "number")
                        and "a table that is not such a list" or type(v)))
            end
            if r.kind == "string" and not _M.ranks[lower(v)] then
                fail("where", "seniority_at_least", format("must be a known seniority (%s), got %q",
                    concat(sorted_keys(_M.ranks), ", "), v))
            end
        end
    end
end

-- What compile() returns carries this metatable: where() and compile() take it as it is.
local compiled_mt = { __name = "leadpipe.compiled_where" }

-- The predicate of a checked spec, built from the constructors above (the reference the
-- generated code is held to, and the fallback when it cannot be loaded).
local function where_closures(spec)
    local ps = {}
    for _, r in ipairs(where_rules) do
        local v = spec[r.key]
        if v ~= nil then ps[#ps + 1] = r.build(v) end
    end
    if #ps == 0 then return function() return true end end
    return _M.all(unpack(ps))
end
--- where_closures(spec) -> where(spec) from the constructors only (the specs' reference).
---@param spec leadpipe.Where
---@return leadpipe.Predicate
_M.where_closures = function(spec) check_where(spec) return where_closures(spec) end

-- The fast predicate of a checked spec: specialised Lua source (leadpipe.predicate), or the
-- closures when it cannot be loaded (too many values for one chunk).
local function where_fast(spec)
    return predicate.lua(spec, _M.ranks, split_path) or where_closures(spec)
end

--- where(spec) -> predicate built from a table, as the CLI and config files use:
---   where{ min_score = 80, max_score = 99, seniority = {"director", "vp"},
---          seniority_at_least = "director", department = "marketing", country = {"US", "CA"},
---          topic = {117796, "internet marketing automation"}, has = {"businessEmail", "phone"} }
--- Each key builds the predicate of the same name; all of them must hold. A string stands
--- for a one-item list. An empty spec matches every row. A function is returned unchanged, so
--- a `where` option may take either. Raises naming the key and the rule on a wrong type, and
--- naming the valid keys on an unknown key. The predicate is Lua source specialised to the spec,
--- loaded once (see leadpipe.predicate), as fast as a hand-written test.
---@param spec leadpipe.Where|leadpipe.Predicate
---@return leadpipe.Predicate
function _M.where(spec)
    if is_callable(spec) then return spec end
    if getmetatable(spec) == compiled_mt then return spec.fn end
    check_where(spec)
    return where_fast(spec)
end

--- compile(spec) -> { fn = predicate, native = core predicate | nil }
--- `fn` is where(spec); `native` the same test compiled for core.decode_page (rows that fail
--- are never built); nil for a function, or a core without simdjson. A CompiledWhere is
--- returned as it is, so a `where` option may be one (client:changes pairs its own so).
---@param spec leadpipe.Where|leadpipe.Predicate|leadpipe.CompiledWhere
---@return leadpipe.CompiledWhere
function _M.compile(spec)
    if is_callable(spec) then return setmetatable({ fn = spec }, compiled_mt) end
    if getmetatable(spec) == compiled_mt then return spec end
    check_where(spec)
    return setmetatable({ fn = where_fast(spec), native = predicate.native(spec, _M.ranks) }, compiled_mt)
end

return _M

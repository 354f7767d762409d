-- leadpipe.predicate: compiles a checked where{} spec into a fast Lua function, and into the
-- core's native predicate for the page decoder.
--
-- leadpipe.filter owns the rules (what each where{} key means, argument checks, messages);
-- this module only makes them fast. `lua(spec, parts_of)` writes the Lua source of one
-- function specialised to the spec (only the rules present, field reads shared between
-- rules, sets looked up with a memo instead of string.lower on every row) and `load`s it
-- once. No value from the spec is ever written into the source: every value reaches the
-- code as an upvalue taken from a table passed to the chunk, so the text is made only of
-- this module's own fragments. The semantics are exactly those of the constructors in
-- filter.lua (min_score, seniority, has, ...), which the specs check row by row.
--
-- Licensed under the MIT license, like the rest of leadpipe.

local type, tostring, tonumber, pairs, ipairs, next = type, tostring, tonumber, pairs, ipairs, next
local pcall, require = pcall, require
local load = loadstring or load -- luacheck: ignore loadstring
local lower, find, match, format = string.lower, string.find, string.match, string.format
local concat = table.concat

local _M = { _VERSION = require "leadpipe.version" }

-- Strings memoised per set: a bounded cache of lower-case lookups.
local MEMO_MAX = 256

-- A lookup function for a lower-cased string set: memo[v] is true/false once v has been
-- seen. Returns the memo table and the slow path filling it.
local function set_memo(set)
    local memo, n = {}, 0
    for k in pairs(set) do memo[k] = true end
    local function slow(v)
        if type(v) ~= "string" then return false end
        local r = set[v] == true or set[lower(v)] == true
        if n < MEMO_MAX then
            memo[v] = r
            n = n + 1
        end
        return r
    end
    return memo, slow
end

local function list_of(v)
    if type(v) == "table" then return v end
    return { v }
end

local function lower_set(v)
    local set = {}
    for _, s in ipairs(list_of(v)) do set[lower(s)] = true end
    return set
end

-- Loads the generated source (it uses no globals) and returns the predicate it makes.
local function compile(src, values)
    local chunk, err = load(src, "=leadpipe.where")
    if not chunk then return nil, err end
    return chunk(type, lower, find, next, ipairs, values)
end

--- lua(spec, ranks, parts_of) -> function(row) -> boolean, or nil, message
-- spec: a where{} table already checked by filter.where; ranks: the rank table current
-- when it is built; parts_of(path): the split path (strings and numbers) as get() uses it.
function _M.lua(spec, ranks, parts_of)
    local out, values = {}, {}
    local function emit(s, ...) out[#out + 1] = format(s, ...) end
    local function value(v)
        values[#values + 1] = v
        return "U[" .. #values .. "]"
    end
    local function local_value(v)
        local name = "u" .. (#values + 1)
        emit("local %s = %s", name, value(v))
        return name
    end

    -- chunk header: shared helpers and every value as a local of the chunk
    emit("local type, lower, find, next, ipairs, U = ...")
    local body = {}
    local function b(s, ...) body[#body + 1] = format(s, ...) end

    local function set_rule(field, v)
        local memo, slow = set_memo(lower_set(v))
        local m, f = local_value(memo), local_value(slow)
        b("local v = row.%s", field)
        b("if v == nil then return false end")
        b("local m = %s[v]", m)
        b("if m == nil then m = %s(v) end", f)
        b("if not m then return false end")
    end

    if spec.seniority ~= nil then b("do"); set_rule("seniority", spec.seniority); b("end") end
    if spec.department ~= nil then b("do"); set_rule("department", spec.department); b("end") end

    if spec.country ~= nil then
        local memo, slow = set_memo(lower_set(spec.country))
        local m, f = local_value(memo), local_value(slow)
        b("do")
        b("local geo = row.geo")
        b("if type(geo) ~= 'table' then return false end")
        b("local ok = false")
        b("local c = geo.countryCode")
        b("if c ~= nil then ok = %s[c]; if ok == nil then ok = %s(c) end end", m, f)
        b("if not ok then")
        b("c = geo.country")
        b("if c ~= nil then ok = %s[c]; if ok == nil then ok = %s(c) end end", m, f)
        b("if not ok then return false end")
        b("end")
        b("end")
    end

    local need_intent = spec.min_score ~= nil or spec.max_score ~= nil or spec.topic ~= nil
    if need_intent then
        b("local intent = row.intent")
        b("if type(intent) ~= 'table' then return false end")
    end
    if spec.min_score ~= nil or spec.max_score ~= nil then
        -- the outcome per distinct score is memoised: one lookup instead of a type() call
        local min, max = spec.min_score, spec.max_score
        local memo, n = {}, 0
        local function slow(v)
            if type(v) ~= "number" then return false end
            local r = (min == nil or v >= min) and (max == nil or v <= max)
            if n < MEMO_MAX and v == v then
                memo[v] = r
                n = n + 1
            end
            return r
        end
        local m, f = local_value(memo), local_value(slow)
        b("do")
        b("local s = intent.score")
        b("local r = %s[s]", m)
        b("if r == nil then r = %s(s) end", f)
        b("if not r then return false end")
        b("end")
    end

    if spec.seniority_at_least ~= nil then
        local r = local_value(ranks)
        local min = local_value(ranks[lower(spec.seniority_at_least)])
        b("do")
        b("local v = row.seniority")
        b("if type(v) ~= 'string' then return false end")
        b("local r = %s[v] or %s[lower(v)]", r, r)
        b("if type(r) ~= 'number' or not (r >= %s) then return false end", min)
        b("end")
    end

    if spec.topic ~= nil then
        local ids, names = {}, {}
        for _, v in ipairs(list_of(spec.topic)) do
            if type(v) == "number" then
                ids[v] = true
            else
                names[lower(v)] = true
                if match(v, "^%d+$") then ids[tonumber(v)] = true end
            end
        end
        local i, n = local_value(ids), local_value(names)
        b("do")
        b("local topics = intent.matchedTopics")
        b("if type(topics) ~= 'table' then return false end")
        b("local found = false")
        b("for _, t in ipairs(topics) do")
        b("if type(t) == 'table' then")
        b("local id, name = t.topicId, t.topicName")
        b("if (id ~= nil and %s[id]) or (type(name) == 'string' and %s[lower(name)]) then", i, n)
        b("found = true")
        b("break")
        b("end")
        b("end")
        b("end")
        b("if not found then return false end")
        b("end")
    end

    if spec.has ~= nil then
        for _, path in ipairs(list_of(spec.has)) do
            b("do")
            b("local v = row")
            for k, seg in ipairs(parts_of(path)) do
                if k > 1 then b("if type(v) ~= 'table' then return false end") end
                local s = local_value(seg)
                if type(seg) == "number" then
                    local t = local_value(tostring(seg))
                    b("do local nv = v[%s]; if nv == nil then nv = v[%s] end; v = nv end", s, t)
                else
                    b("v = v[%s]", s)
                end
            end
            b("if v == nil or v == false then return false end")
            b("local tv = type(v)")
            b("if tv == 'string' then if not find(v, '%%S') then return false end")
            b("elseif tv == 'table' then if next(v) == nil then return false end end")
            b("end")
        end
    end

    emit("return function(row)")
    if #body > 0 then
        emit("if type(row) ~= 'table' then return false end")
        emit("%s", concat(body, "\n"))
    end
    emit("return true")
    emit("end")
    return compile(concat(out, "\n"), values)
end

--- native(spec, ranks) -> a core.where() predicate for core.decode_page, or nil when the
-- core has no page decoder (the lua-cjson build).
function _M.native(spec, ranks)
    local ok, core = pcall(require, "leadpipe.core")
    if not ok or type(core) ~= "table" or not core.decode_page or not core.where then return nil end
    local s = {}
    for k, v in pairs(spec) do s[k] = v end
    if s.seniority_at_least ~= nil then s.ranks = ranks end
    return core.where(s)
end

return _M

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
local pcall, require, setmetatable, rawset = pcall, require, setmetatable, rawset
local load = loadstring or load -- luacheck: ignore loadstring
local lower, find, match, format = string.lower, string.find, string.match, string.format
local byte = string.byte
local concat = table.concat

local _M = { _VERSION = require "leadpipe.version" }

-- Values memoised per test: a bounded cache of outcomes.
local MEMO_MAX = 256

-- A memo of the outcome of test(v), a function of v alone that returns true or false:
-- memo[v] is that outcome for any v, nil and NaN included. A value not yet in the table
-- reaches __index, which runs test(v) and stores the outcome when keep(v) allows it (at
-- most MEMO_MAX values), so that the generated code needs one lookup, `if not memo[v]`
-- (after `v == nil`, which the generated code tests first: nil is never stored).
local function memo_of(test, keep)
    local memo, n = {}, 0
    return setmetatable(memo, { __index = function(_, v)
        local r = test(v)
        if n < MEMO_MAX and keep(v) then
            rawset(memo, v, r)
            n = n + 1
        end
        return r
    end })
end

local function is_string(v) return type(v) == "string" end

-- The memo of a lower-cased string set: true for a string whose lower case is in the set.
local function set_memo(set)
    local memo = memo_of(function(v)
        return type(v) == "string" and (set[v] == true or set[lower(v)] == true)
    end, is_string)
    for k in pairs(set) do rawset(memo, k, true) end
    return memo
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

-- Bytes that start a string which is certainly not blank: the ASCII letters and digits.
-- "%S" is `not isspace(c)`, and the C standard lets a locale add to isspace() only
-- characters for which isalnum() is false; so for such a string `find(v, "%S")` need not
-- run, whatever the locale.
local ALNUM = {}
for _, range in ipairs({ { "0", "9" }, { "A", "Z" }, { "a", "z" } }) do
    for c = byte(range[1]), byte(range[2]) do ALNUM[c] = true end
end

-- Has paths read early (phases A and B below); any further ones are tested in one block, so
-- that a spec with many paths does not run out of locals.
local EARLY_HAS = 8

-- Loads the generated source (it uses no globals) and returns the predicate it makes.
local function compile(src, values)
    local chunk, err = load(src, "=leadpipe.where")
    if not chunk then return nil, err end
    return chunk(type, lower, find, byte, next, ipairs, values)
end

--- lua(spec, ranks, parts_of) -> function(row) -> boolean, or nil, message
-- spec: a where{} table already checked by filter.where; ranks: the rank table current
-- when it is built; parts_of(path): the split path (strings and numbers) as get() uses it.
--
-- The function tests the rules in this order, all of them with the semantics of filter.lua:
--   1. the row is a table;
--   2. the rules on the row's own string fields (seniority, department, seniority_at_least):
--      cheap and selective, they read no nested table;
--   3. has, phase A: each path is walked and a missing (nil), false or empty value rejects
--      the row before any nested object is read;
--   4. the guards of the nested objects the rules read (geo, intent must be tables);
--   5. has, phase B: type() of each value, and the first byte of a string value;
--   6. the rules on the nested objects (country, min/max_score, topic);
--   7. has, phase C: the verdict on each value: a string starting with a letter or digit
--      is present without a scan, any other string needs a non-space character, a table a
--      key.
-- All rules must hold and none has side effects, so the order changes only the speed: the
-- first byte of a string is read (5) before the nested objects (6), so that the memory
-- loads of both overlap instead of waiting one after the other, and decided on last (7).
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
    emit("local type, lower, find, byte, next, ipairs, U = ...")
    -- the phases of the function body, in the order they run (see above)
    local scalar, has_a, guards, has_b, nested, has_c = {}, {}, {}, {}, {}, {}
    local function add(phase, s, ...) phase[#phase + 1] = format(s, ...) end

    local function set_rule(field, v)
        local m = local_value(set_memo(lower_set(v)))
        add(scalar, "do")
        add(scalar, "local v = row.%s", field)
        add(scalar, "if v == nil or not %s[v] then return false end", m)
        add(scalar, "end")
    end

    if spec.seniority ~= nil then set_rule("seniority", spec.seniority) end
    if spec.department ~= nil then set_rule("department", spec.department) end

    if spec.seniority_at_least ~= nil then
        local r = local_value(ranks)
        local min = local_value(ranks[lower(spec.seniority_at_least)])
        add(scalar, "do")
        add(scalar, "local v = row.seniority")
        add(scalar, "if type(v) ~= 'string' then return false end")
        add(scalar, "local r = %s[v] or %s[lower(v)]", r, r)
        add(scalar, "if type(r) ~= 'number' or not (r >= %s) then return false end", min)
        add(scalar, "end")
    end

    if spec.country ~= nil then
        local m = local_value(set_memo(lower_set(spec.country)))
        add(guards, "local geo = row.geo")
        add(guards, "if type(geo) ~= 'table' then return false end")
        -- geo.countryCode, else geo.country, is in the set
        add(nested, "do")
        add(nested, "local c = geo.countryCode")
        add(nested, "if c == nil or not %s[c] then", m)
        add(nested, "c = geo.country")
        add(nested, "if c == nil or not %s[c] then return false end", m)
        add(nested, "end")
        add(nested, "end")
    end

    local need_intent = spec.min_score ~= nil or spec.max_score ~= nil or spec.topic ~= nil
    if need_intent then
        add(guards, "local intent = row.intent")
        add(guards, "if type(intent) ~= 'table' then return false end")
    end
    if spec.min_score ~= nil or spec.max_score ~= nil then
        -- the outcome per distinct score is memoised: one lookup instead of a type() call
        local min, max = spec.min_score, spec.max_score
        local m = local_value(memo_of(function(v)
            return type(v) == "number" and (min == nil or v >= min) and (max == nil or v <= max)
        end, function(v) return type(v) == "number" and v == v end))
        add(nested, "do")
        add(nested, "local s = intent.score")
        add(nested, "if s == nil or not %s[s] then return false end", m)
        add(nested, "end")
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
        add(nested, "do")
        add(nested, "local topics = intent.matchedTopics")
        add(nested, "if type(topics) ~= 'table' then return false end")
        add(nested, "local found = false")
        add(nested, "for _, t in ipairs(topics) do")
        add(nested, "if type(t) == 'table' then")
        add(nested, "local id, name = t.topicId, t.topicName")
        add(nested, "if (id ~= nil and %s[id]) or (type(name) == 'string' and %s[lower(name)]) then", i, n)
        add(nested, "found = true")
        add(nested, "break")
        add(nested, "end")
        add(nested, "end")
        add(nested, "end")
        add(nested, "if not found then return false end")
        add(nested, "end")
    end

    if spec.has ~= nil then
        local alnum = local_value(ALNUM)
        for k, path in ipairs(list_of(spec.has)) do
            -- early paths: value hK walked in phase A, its type tK and first byte bK in phase B,
            -- decided in phase C; later ones: all of it in one block of phase C
            local early = k <= EARLY_HAS
            local walk = early and has_a or has_c
            local v, t, b = "v", "t", "b"
            if early then
                v, t, b = "h" .. k, "t" .. k, "b" .. k
            else
                add(walk, "do")
            end
            for i, seg in ipairs(parts_of(path)) do
                local s = local_value(seg)
                local ts = type(seg) == "number" and local_value(tostring(seg))
                if i == 1 then
                    add(walk, "local %s = row[%s]", v, s)
                    if ts then add(walk, "if %s == nil then %s = row[%s] end", v, v, ts) end
                else
                    add(walk, "if type(%s) ~= 'table' then return false end", v)
                    if ts then
                        add(walk, "do local nv = %s[%s]; if nv == nil then nv = %s[%s] end; %s = nv end",
                            v, s, v, ts, v)
                    else
                        add(walk, "%s = %s[%s]", v, v, s)
                    end
                end
            end
            -- nil, false and "" are never present
            add(walk, "if not %s or %s == '' then return false end", v, v)
            local start = early and has_b or has_c
            add(start, "local %s = type(%s)", t, v)
            add(start, "local %s", b)
            add(start, "if %s == 'string' then %s = byte(%s) end", t, b, v)
            add(has_c, "if %s then", b)
            add(has_c, "if not %s[%s] and not find(%s, '%%S') then return false end", alnum, b, v)
            add(has_c, "elseif %s == 'table' then", t)
            add(has_c, "if next(%s) == nil then return false end", v)
            add(has_c, "end")
            if not early then add(has_c, "end") end
        end
    end

    emit("return function(row)")
    if #scalar + #has_a + #guards + #has_b + #nested + #has_c > 0 then
        emit("if type(row) ~= 'table' then return false end")
        for _, phase in ipairs({ scalar, has_a, guards, has_b, nested, has_c }) do
            if #phase > 0 then emit("%s", concat(phase, "\n")) end
        end
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

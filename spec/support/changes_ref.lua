-- The reference for the client:changes specs: both runs read whole with people() (every
-- row a table) and diffed in plain Lua, nothing shared with leadpipe.changes. Also a
-- collector of what a changes() loop hands out, and the comparison of the two.

local _M = {}

local function get(row, path)
    local v = row
    for seg in path:gmatch("[^.]+") do
        if type(v) ~= "table" then return nil end
        v = v[tonumber(seg) or seg]
    end
    return v
end
_M.get = get

local function same(a, b)
    if a == b then return true end
    if type(a) ~= "table" or type(b) ~= "table" then return false end
    for k, v in pairs(a) do
        if not same(v, b[k]) then return false end
    end
    for k in pairs(b) do
        if a[k] == nil then return false end
    end
    return true
end
_M.same = same

--- read(client, aud, run_id) -> { [hashedEmail] = row }, count
function _M.read(client, aud, run_id)
    local t, n = {}, 0
    for row in client:people(aud, run_id, { limit = 500 }) do
        assert(t[row.hashedEmail] == nil, "a run repeats a person")
        t[row.hashedEmail] = row
        n = n + 1
    end
    return t, n
end

--- expected(from_rows, to_rows, fields, where) -> { [id] = { kind =, fields = { {field,old,new} } } }
-- where(row) -> boolean or nil (every row).
function _M.expected(a, b, fields, where)
    local exp = {}
    local function ok(row) return where == nil or where(row) end
    for id, row in pairs(b) do
        local old = a[id]
        if not old then
            if ok(row) then exp[id] = { kind = "added" } end
        elseif ok(row) then
            local list = {}
            for _, f in ipairs(fields) do
                local was, now = get(old, f), get(row, f)
                if not same(was, now) then list[#list + 1] = { field = f, old = was, new = now } end
            end
            if #list > 0 then exp[id] = { kind = "changed", fields = list } end
        end
    end
    for id, row in pairs(a) do
        if not b[id] and ok(row) then exp[id] = { kind = "removed" } end
    end
    return exp
end

--- collect(iter) -> { [id] = { kind =, fields = } }, counts; asserts each person comes once.
function _M.collect(iter)
    local got, counts = {}, { added = 0, removed = 0, changed = 0 }
    for _ = 1, 1e7 do
        local kind, row, fields = iter()
        if kind == nil then return got, counts end
        assert(type(row) == "table" and type(row.hashedEmail) == "string", "a change without a row")
        assert(got[row.hashedEmail] == nil, "a person handed out twice: " .. row.hashedEmail)
        got[row.hashedEmail] = { kind = kind, fields = fields, row = row }
        counts[kind] = counts[kind] + 1
    end
    error("the loop did not end")
end

--- filter(exp, kinds) -> the expected changes of those kinds only
function _M.only(exp, kinds)
    local out = {}
    for id, e in pairs(exp) do
        if kinds[e.kind] then out[id] = e end
    end
    return out
end

--- check(exp, got): every expected change, with its field list, and nothing else.
function _M.check(exp, got)
    local n = 0
    for id, e in pairs(exp) do
        n = n + 1
        local g = got[id]
        assert(g, "missing " .. e.kind .. " " .. id)
        assert(g.kind == e.kind, id .. ": expected " .. e.kind .. ", got " .. g.kind)
        if e.kind == "changed" then
            assert(#g.fields == #e.fields, id .. ": field lists differ")
            for i, f in ipairs(e.fields) do
                local gf = g.fields[i]
                assert(gf.field == f.field and same(gf.old, f.old) and same(gf.new, f.new),
                    id .. ": field " .. f.field .. " differs")
            end
        else
            assert(g.fields == nil, id .. ": only changed rows list fields")
        end
    end
    for id, g in pairs(got) do
        assert(exp[id], "unexpected " .. g.kind .. " " .. id)
    end
    return n
end

return _M

-- leadpipe.iter: helpers for any "iterator of rows": a function that returns the next row
-- on each call and nil at the end (client:people(), io.lines() piped through json.decode,
-- another helper's result), or an array of rows. They never pull a row they do not need:
-- take(it, 5) calls `it` at most 5 times.
--
--   filter(iter, p)  map(iter, fn)  take(iter, n)  collect(iter)  count(iter)
--   top(iter, n, key)   the best n rows by a key, with a bounded heap
--
-- leadpipe.filter re-exports all of them. Misuse raises an error object of kind
-- "invalid_argument".
--
-- Licensed under the MIT license, like the rest of leadpipe.

local errors = require "leadpipe.errors"
local path = require "leadpipe.path"
local args = require "leadpipe.args"

local type, tostring = type, tostring
local format = string.format
local sort = table.sort
local huge = math.huge
local is_callable = args.is_callable

--- An iterator of rows (a function returning the next row, nil at the end) or an array.
---@alias leadpipe.Rows (fun(): any)|any[]
--- The key of a row for top(): a number or a string (all of one type), nil when missing.
---@alias leadpipe.KeyFn fun(row: any): number|string|nil

---@class leadpipe.iter
local _M = { _VERSION = require "leadpipe.version" }

-- Misuse raises an error object (leadpipe.errors) of kind "invalid_argument".
local function fail(msg)
    errors.raise(errors.new("invalid_argument", msg, { code = "INVALID_ARGUMENT" }), 0)
end

-- Turns the `iter` argument into a function returning the next row (nil at the end).
local function to_iter(fname, iter, level)
    if is_callable(iter) then return iter end
    if type(iter) == "table" then
        local i, n = 0, #iter
        return function()
            if i >= n then return nil end
            i = i + 1
            return iter[i]
        end
    end
    fail(fname .. ": iter must be an iterator function or an array of rows, got " .. type(iter),
        level + 1)
end

local function check_callable(fname, name, f, level)
    if not is_callable(f) then
        fail(format("%s: %s must be a function, got %s", fname, name, type(f)), level + 1)
    end
end

local function check_count(fname, n, level)
    if type(n) ~= "number" or n ~= n or n < 0 or n % 1 ~= 0 or n == huge then
        fail(format("%s: n must be a non-negative integer, got %s", fname,
            type(n) == "number" and tostring(n) or type(n)), level + 1)
    end
end

--- filter(iter, p) -> iterator of the rows for which p(row) is true.
--- `p` may also be a where{} table.
---@param iter leadpipe.Rows
---@param p leadpipe.Predicate|leadpipe.Where
---@return fun(): any
function _M.filter(iter, p)
    local it = to_iter("filter", iter, 2)
    if type(p) == "table" and not is_callable(p) then
        p = require("leadpipe.filter").where(p)
    else
        check_callable("filter", "p", p, 2)
    end
    return function()
        while true do
            local row = it()
            if row == nil then return nil end
            if p(row) then return row end
        end
    end
end

--- map(iter, fn) -> iterator of fn(row). A row for which fn returns nil is skipped (a nil
--- would otherwise end a for loop early and silently lose the rest).
---@param iter leadpipe.Rows
---@param fn fun(row: any): any
---@return fun(): any
function _M.map(iter, fn)
    local it = to_iter("map", iter, 2)
    check_callable("map", "fn", fn, 2)
    return function()
        while true do
            local row = it()
            if row == nil then return nil end
            local v = fn(row)
            if v ~= nil then return v end
        end
    end
end

--- take(iter, n) -> iterator of at most the first n rows; `iter` is called at most n times.
---@param iter leadpipe.Rows
---@param n integer >= 0
---@return fun(): any
function _M.take(iter, n)
    local it = to_iter("take", iter, 2)
    check_count("take", n, 2)
    local taken = 0
    return function()
        if taken >= n then return nil end
        local row = it()
        if row == nil then
            taken = n
            return nil
        end
        taken = taken + 1
        return row
    end
end

--- collect(iter) -> array of every row.
---@param iter leadpipe.Rows
---@return any[]
function _M.collect(iter)
    local it = to_iter("collect", iter, 2)
    local out, n = {}, 0
    while true do
        local row = it()
        if row == nil then return out end
        n = n + 1
        out[n] = row
    end
end

--- count(iter) -> number of rows.
---@param iter leadpipe.Rows
---@return integer
function _M.count(iter)
    local it = to_iter("count", iter, 2)
    local n = 0
    while it() ~= nil do n = n + 1 end
    return n
end

-- ===== top =================================================================================

-- Heap entries are { key, seq, row }. `worse(a, b)`: a ranks below b. A missing key (nil)
-- ranks below every key; between equal keys the later row (higher seq) ranks lower, so the
-- row seen first wins a tie and the result is stable.
local function worse(a, b)
    local ka, kb = a[1], b[1]
    if ka == kb then return a[2] > b[2] end
    if ka == nil then return true end
    if kb == nil then return false end
    return ka < kb
end

local function sift_up(h, i)
    while i > 1 do
        local parent = (i - i % 2) / 2
        if worse(h[i], h[parent]) then
            h[i], h[parent] = h[parent], h[i]
            i = parent
        else
            break
        end
    end
end

local function sift_down(h, i, n)
    while true do
        local l = 2 * i
        if l > n then return end
        local c = l
        if l + 1 <= n and worse(h[l + 1], h[l]) then c = l + 1 end
        if worse(h[c], h[i]) then
            h[i], h[c] = h[c], h[i]
            i = c
        else
            return
        end
    end
end

--- top(iter, n, key) -> array of the best n rows, best first.
--- `key` is a function(row) -> number|string|nil or a dotted path (default "intent.score").
--- Higher keys are better; a missing key (nil, or NaN) ranks below every other; keys must
--- all be numbers or all strings. Ties keep input order: of two rows with the same key the
--- earlier one ranks higher. Uses a bounded heap of n entries: O(rows * log n) time and O(n)
--- memory, never a sort of every row.
---@param iter leadpipe.Rows
---@param n integer >= 0
---@param key? string|leadpipe.KeyFn a dotted path or a function (default "intent.score")
---@return any[]
function _M.top(iter, n, key)
    local it = to_iter("top", iter, 2)
    check_count("top", n, 2)
    local keyfn
    if key == nil then key = "intent.score" end
    if type(key) == "string" then
        if not path.valid(key) then
            fail(format("top: key must be a function or a dotted path string, got %q", key), 2)
        end
        local parts = path.split(key)
        keyfn = function(row) return path.get_parts(row, parts) end
    elseif is_callable(key) then
        keyfn = key
    else
        fail("top: key must be a function or a dotted path string, got " .. type(key), 2)
    end
    local heap, size, seq, ktype = {}, 0, 0, nil
    if n == 0 then
        return {}
    end
    while true do
        local row = it()
        if row == nil then break end
        seq = seq + 1
        local k = keyfn(row)
        if k ~= k then k = nil end -- NaN
        if k ~= nil then
            local kt = type(k)
            if kt ~= "number" and kt ~= "string" then
                fail("top: key values must be numbers or strings, got " .. kt, 2)
            end
            if ktype == nil then
                ktype = kt
            elseif kt ~= ktype then
                fail("top: key values must all be numbers or all strings, got both", 2)
            end
        end
        if size < n then
            size = size + 1
            heap[size] = { k, seq, row }
            sift_up(heap, size)
        else
            -- The new row comes last, so it loses ties: it enters only with a strictly better
            -- key than the worst kept one (checked before making an entry for it).
            local rk = heap[1][1]
            if k ~= nil and (rk == nil or rk < k) then
                heap[1] = { k, seq, row }
                sift_down(heap, 1, size)
            end
        end
    end
    sort(heap, function(a, b) return worse(b, a) end)
    local out = {}
    for i = 1, size do out[i] = heap[i][3] end
    return out
end

return _M

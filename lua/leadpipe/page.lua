-- leadpipe.page: the page invariants, in one place.
--
-- The API docs are the contract (the run-results page): a page holds at most `limit` rows
-- and may hold fewer; a read goes on from offset + #results until
-- offset + #results >= total. What the docs allow is read; what contradicts itself is
-- refused. Every results response goes through page.from_response, which turns it into a
-- page or an error; the client's results() and its page pipeline both use it.
--
--   page.from_response(status, headers, body, ctx) -> page, ids | nil, err
--     status, headers, body   what http.lua's Requester:finish returned on a 2xx (body
--                             decoded)
--     ctx = { limit =, offset =,   what was asked for
--             prev_total =,        the total an earlier page of the same read reported
--             prev_ids =,          the `ids` this function returned for the page before
--             scrub =,             the client's scrubber (leadpipe.scrub.new(key))
--             rows =, kept =,      when the decoder was core.decode_page: how many rows
--             raw =,               the page had and how many it built (a pushed-down where
--                                  builds only some; raw builds JSON text); the count
--                                  rules then use `rows`
--             dup_row =, dup_of = }  decode_page's repeat check (below)
--   page = { state, run, results, total, limit, offset, request_id }
--   ids  = { [hashedEmail] = row } of the page's rows, for the next page's ctx.prev_ids;
--          nil when decode_page checked repeats (the caller hands decode_page's own ids
--          to the next decode instead)
--
-- Invariants (each breach is an error naming the offset and the request id):
--   decode  ("BAD_PAGE")      no data object; results not an array of objects; total
--                             missing on a completed page, or not a non-negative integer;
--                             offset or limit echoed as something other than an integer
--   http    "OFFSET_MISMATCH" the page echoes another offset than the one asked for
--                             (a proxy that drops the query string)
--   http    "TOO_MANY_ROWS"   more rows than the limit asked for (or the limit it
--                             states), or rows beyond total
--   http    "TOTAL_CHANGED"   total differs from an earlier page's (up or down), or from
--                             the run's resultCount on the same page
--   http    "REPEATED_ROWS"   a row whose hashedEmail already appeared on the same page or
--                             on the page before it (a run's rows are people, each once)
--   http    "EMPTY_PAGE"      no rows although offset < total; retryable (the page
--                             pipeline asks again with backoff, a bounded number of times)
--   http    "NOT_COMPLETED"   a 200 whose state or run.status is not "completed" (a
--                             rewritten 202 would otherwise read as an empty run)
-- A page shorter than its limit before total is legal: the read goes on from offset + n.
-- Repeats are checked in C by core.decode_page (ctx.dup_row/dup_of: row dup_row repeats
-- row dup_of of the same page, or one of the page before when dup_of is 0), and here for
-- rows another decoder built as tables; spec/page_spec.lua holds both to the same cases.
-- A 202 is never a page of rows: its results are ignored and its state is "queued" or
-- "running". A 202 that claims "completed" is contradictory; it is read as "running", so
-- waiting polls again (and ends with a timeout error if the server never answers 200).

local core = require "leadpipe.core"
local errors = require "leadpipe.errors"

local type, getmetatable, setmetatable, pairs, tostring = type, getmetatable, setmetatable, pairs,
    tostring
local floor = math.floor
local format = string.format

local _M = { _VERSION = require "leadpipe.version" }

local array_mt = core.array_mt

-- A non-negative integer that a double holds exactly (at most 2^53).
local function is_count(v)
    return type(v) == "number" and v >= 0 and v <= 2 ^ 53 and v == floor(v)
end

local function identity(s) return s end

-- True when t is a JSON array as the decoder builds it (array_mt), or a plain sequence
-- with at least one element and no other keys.
local function is_array(t)
    if type(t) ~= "table" then return false end
    if getmetatable(t) == array_mt then return true end
    local n = #t
    if n == 0 then return false end
    for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then return false end
    end
    return true
end

local function is_object(t)
    return type(t) == "table" and getmetatable(t) ~= array_mt
end

local PENDING = { queued = true, running = true }

--- page.from_response(status, headers, body, ctx) -> page | nil, err (see above).
function _M.from_response(status, headers, body, ctx)
    local scrub = ctx.scrub or identity
    local offset, limit = ctx.offset, ctx.limit
    local meta = type(body) == "table" and body.meta
    local request_id = type(meta) == "table" and meta.request_id or nil
    if request_id == nil and type(headers) == "table" then request_id = headers["x-request-id"] end
    request_id = request_id ~= nil and scrub(tostring(request_id)):sub(1, 200) or nil

    local function fail(kind, code, fmt, ...)
        return nil, errors.new(kind, format("results page at offset %d: ", offset)
            .. format(fmt, ...), { status = status, code = code, request_id = request_id })
    end

    local data = type(body) == "table" and body.data
    if not is_object(data) then
        return fail("decode", "BAD_PAGE", "the response has no data object")
    end
    local run = data.run
    if run == nil then
        run = {}
    elseif not is_object(run) then
        return fail("decode", "BAD_PAGE", "run is not an object")
    end
    if type(scrub) == "table" then run = scrub.deep(run) end

    if status == 202 then
        local state = data.state
        if not PENDING[state] then state = PENDING[run.status] and run.status or "running" end
        return {
            state = state, run = run, results = setmetatable({}, array_mt),
            total = is_count(data.total) and data.total or 0, limit = limit, offset = offset,
            request_id = request_id,
        }
    end

    if data.state ~= nil and data.state ~= "completed" then
        return fail("http", "NOT_COMPLETED", "HTTP %d with state %s", status,
            scrub(tostring(data.state)):sub(1, 40))
    end
    if run.status ~= nil and run.status ~= "completed" then
        return fail("http", "NOT_COMPLETED", "HTTP %d with run status %s", status,
            scrub(tostring(run.status)):sub(1, 40))
    end
    local results = data.results
    if not is_array(results) then
        if results == nil then return fail("decode", "BAD_PAGE", "results is missing") end
        return fail("decode", "BAD_PAGE", "results is not an array")
    end
    local n = ctx.rows or #results
    -- (a pushdown decoder always builds a row that is not an object, so it is seen here;
    -- a raw row is the JSON text of an object)
    for i = 1, #results do
        local row = results[i]
        local ok = is_object(row)
            or (ctx.raw and type(row) == "string" and row:sub(1, 1) == "{")
        if not ok then
            return fail("decode", "BAD_PAGE", "row %d is %s, not an object", i,
                row == false and "null" or getmetatable(row) == array_mt and "an array"
                or "a " .. type(row))
        end
    end
    local total = data.total
    if total == nil then return fail("decode", "BAD_PAGE", "total is missing") end
    if not is_count(total) then
        return fail("decode", "BAD_PAGE", "total is not a non-negative integer (got %s)",
            type(total) == "number" and tostring(total) or type(total))
    end
    local echoed = data.offset
    if echoed ~= nil then
        if not is_count(echoed) then
            return fail("decode", "BAD_PAGE", "offset is not a non-negative integer")
        end
        if echoed ~= offset then
            return fail("http", "OFFSET_MISMATCH",
                "the server answered for offset %d (a proxy may have dropped the query string)", echoed)
        end
    end
    local echoed_limit = data.limit
    if echoed_limit ~= nil and not is_count(echoed_limit) then
        return fail("decode", "BAD_PAGE", "limit is not a non-negative integer")
    end
    if n > limit then
        return fail("http", "TOO_MANY_ROWS", "%d rows, more than the limit of %d", n, limit)
    end
    if echoed_limit and n > echoed_limit then
        return fail("http", "TOO_MANY_ROWS", "%d rows, more than the limit of %d it states", n,
            echoed_limit)
    end
    if ctx.prev_total and total ~= ctx.prev_total then
        return fail("http", "TOTAL_CHANGED", "total changed from %d to %d during the read",
            ctx.prev_total, total)
    end
    local count = run.resultCount
    if is_count(count) and count ~= total then
        return fail("http", "TOTAL_CHANGED", "total %d differs from the run's resultCount %d",
            total, count)
    end
    if n > 0 and offset + n > total then
        return fail("http", "TOO_MANY_ROWS", "%d rows run past total %d", n, total)
    end
    if n == 0 and offset < total then
        local _, err = fail("http", "EMPTY_PAGE", "empty page although total is %d", total)
        err.retryable = true
        return nil, err
    end
    local ids -- { [hashedEmail] = its row }
    if ctx.dup_row then
        if ctx.dup_of == 0 then
            return fail("http", "REPEATED_ROWS", "row %d repeats a row of the page before",
                ctx.dup_row)
        end
        return fail("http", "REPEATED_ROWS", "row %d repeats row %d", ctx.dup_row, ctx.dup_of)
    elseif ctx.rows == nil then
        -- rows that another decoder built as tables: the same check as decode_page's
        local prev, at = ctx.prev_ids, {}
        for i = 1, n do
            local id = results[i].hashedEmail
            if type(id) == "string" then
                if at[id] then
                    return fail("http", "REPEATED_ROWS", "row %d repeats row %d", i, at[id])
                end
                if prev and prev[id] then
                    return fail("http", "REPEATED_ROWS", "row %d repeats a row of the page before", i)
                end
                at[id] = i
            end
        end
        ids = at
    end
    return {
        state = "completed", run = run, results = results, total = total,
        limit = echoed_limit or limit, offset = offset, request_id = request_id,
    }, ids
end

return _M

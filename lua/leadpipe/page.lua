-- leadpipe.page: the page invariants, in one place.
--
-- A hostile proxy or a server bug must never silently lose, repeat or invent rows. Every
-- results response goes through page.from_response, which turns it into a page or an
-- error; the client's results() and its page iterator both use it.
--
--   page.from_response(status, headers, body, ctx) -> page | nil, err
--     status, headers, body   what http.lua's Requester:finish returned on a 2xx (body
--                             decoded)
--     ctx = { limit =, offset =,   what was asked for
--             prev_total =,        the total an earlier page of the same read reported
--             prev_ids =,          { first, last }: hashedEmail of the previous page's
--                                  first and last rows (page.edge_ids(page) makes it)
--             scrub =,             the client's scrubber (leadpipe.scrub.new(key))
--             rows =, kept = }     when the decoder built only some rows (a pushed-down
--                                  where, or raw rows): how many rows the page had and how
--                                  many it built; the count rules then use `rows` (such a
--                                  decoder always builds a row that is not an object)
--   page = { state, run, results, total, limit, offset, request_id }
--
-- Invariants (each breach is an error naming the offset and the request id):
--   decode  ("BAD_PAGE")     no data object; results not an array of objects; total
--                            missing on a completed page, or not a non-negative integer;
--                            offset or limit echoed as something other than an integer
--   http    "OFFSET_MISMATCH" the page echoes another offset than the one asked for
--                            (a proxy that drops the query string)
--   http    "TOO_MANY_ROWS"  more rows than the limit asked for, or rows beyond total
--   http    "TOTAL_SHRANK"   total smaller than an earlier page's
--   http    "REPEATED_ROWS"  the page starts with a row the previous page started or
--                            ended with (a proxy that drops the query string, when the
--                            server does not echo the offset)
--   http    "SHORT_RESULTS"  an empty page, or one shorter than its own echoed limit,
--                            before total is reached
--   http    "NOT_COMPLETED"  a 200 whose state or run.status is not "completed" (a
--                            rewritten 202 would otherwise read as an empty run)
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
            or (ctx.kept and type(row) == "string" and row:sub(1, 1) == "{")
        if not ok then
            return fail("decode", "BAD_PAGE", "row %d is a %s, not an object", i,
                getmetatable(row) == array_mt and "array" or type(row))
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
    if ctx.prev_total and total < ctx.prev_total then
        return fail("http", "TOTAL_SHRANK", "total shrank from %d to %d", ctx.prev_total, total)
    end
    if n > 0 and offset + n > total then
        return fail("http", "TOO_MANY_ROWS", "%d rows run past total %d", n, total)
    end
    if offset + n < total then
        if n == 0 then
            return fail("http", "SHORT_RESULTS", "empty page although total is %d", total)
        end
        if echoed_limit and n < echoed_limit and n < limit then
            return fail("http", "SHORT_RESULTS", "%d rows, fewer than its limit of %d, although "
                .. "total is %d", n, echoed_limit, total)
        end
    end
    local prev = ctx.prev_ids
    if prev and #results > 0 and type(results[1]) == "table" then
        local id = results[1].hashedEmail
        if id ~= nil and (id == prev[1] or id == prev[2]) then
            return fail("http", "REPEATED_ROWS", "its first row repeats a row of the page before "
                .. "(a proxy may have dropped the query string)")
        end
    end
    return {
        state = "completed", run = run, results = results, total = total,
        limit = echoed_limit or limit, offset = offset, request_id = request_id,
    }
end

--- page.edge_ids(page) -> { first, last }: the ids (hashedEmail) of a page's first and
-- last rows, for the next page's ctx.prev_ids.
function _M.edge_ids(p)
    local r = p.results
    local n = #r
    if n == 0 or type(r[1]) ~= "table" then return nil end
    return { r[1].hashedEmail, r[n].hashedEmail }
end

return _M

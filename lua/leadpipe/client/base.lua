-- leadpipe.client.base: what every method family of the client shares. The Client class
-- (its methods are added by client/runs.lua, waiting.lua, results.lua, audiences.lua and
-- exports.lua), the one preamble every method runs first (enter), the API's paths, the
-- `data` of a response envelope, and the start and finish of one results page.
--
-- Conventions of every method: calls that do one thing return `value` or `nil, err`;
-- iterators raise `err` (a `for` loop that stopped silently would lose rows). Bad arguments
-- are caught before any request: calls return an error of kind "invalid_argument",
-- iterator constructors and leadpipe.new raise it. Every wait goes through the client's
-- host (leadpipe.hosts).

local core = require "leadpipe.core"
local errors = require "leadpipe.errors"
local args = require "leadpipe.args"
local page_mod = require "leadpipe.page"
local shape = require "leadpipe.shape"
local cache_mod = require "leadpipe.cache"

local type, getmetatable = type, getmetatable

local _M = { _VERSION = require "leadpipe.version" }

---@class leadpipe.Client
local Client = {}
Client.__index = Client
Client.__name = "leadpipe.client"
_M.Client = Client

local check_id, check_int, check_opts, first, closed =
    args.check_id, args.check_int, args.check_opts, args.first, args.closed

-- Calls that take no options still refuse any (a misspelt wait = true must not pass silently).
local NO_OPTS = {}

-- The preamble of every method: the client is open, its host may wait here (event-loop
-- hosts need a coroutine; the error names the caller's line) and `opts` holds only the
-- names of the set `allowed` (none when nil). Returns the options (a table, {} for nil),
-- or nil, err. Call it directly from the method: the host's error counts the frames.
function _M.enter(self, fname, opts, allowed)
    if getmetatable(self) ~= Client then
        -- `client.create_run(aud)`, a dot for a colon, makes the audience id `self`
        return nil, args.invalid(fname, "self", ("is not a client: call it with a colon, "
            .. "client:%s(...), not client.%s(...)"):format(fname, fname))
    end
    if self.closed then return nil, closed(fname) end
    local check = self.host.check
    local err = check and check(fname, 3)
    if err then return nil, err end
    return check_opts(fname, opts, allowed or NO_OPTS)
end

-- ===== paths and envelopes =====

function _M.audience_path(aud)
    return "/v1/intent/audiences/" .. aud
end

function _M.run_path(aud, run_id)
    return "/v1/intent/audiences/" .. aud .. "/runs/" .. run_id
end

-- The calls whose `data` is an array; every other call's is an object.
local ARRAY_DATA = { list_runs = true, audiences = true }

-- The `data` of a response envelope: returns data, or nil, err for the request layer's
-- error (status nil) or a body without a data object (an array for list_runs, audiences),
-- or whose data lacks the documented shape (leadpipe.shape).
function _M.data_of(what, status, headers_or_err, body)
    if not status then return nil, headers_or_err end
    local data = type(body) == "table" and body.data
    local want_array = ARRAY_DATA[what] == true
    if type(data) ~= "table" or (getmetatable(data) == core.array_mt) ~= want_array then
        return nil, errors.new("decode", what .. " response has no data " .. (want_array and "array"
            or "object"), { status = status, code = "BAD_RESPONSE" })
    end
    local why = shape.check(what, data)
    if why then
        return nil, errors.new("decode", what .. " response: " .. why, { status = status,
            code = "BAD_RESPONSE" })
    end
    return data
end

function _M.check_run_ids(fname, aud, run_id)
    return check_id(fname, "audience_id", aud) or check_id(fname, "run_id", run_id)
end

-- The run ids and the limit and offset of a results page.
function _M.check_page_args(fname, aud, run_id, o)
    return first(_M.check_run_ids(fname, aud, run_id),
        check_int(fname, "limit", o.limit, 1, 500), check_int(fname, "offset", o.offset, 0, 2 ^ 53))
end

-- ===== one results page =====

-- Puts the request for a results page on the wire (it never waits). `decode` replaces
-- core.decode for the body; `deadline` (host clock) cuts a wait for it.
-- With a cache (leadpipe.cache), a page of a completed run it holds is taken from it (no
-- request), and the body of a page read from the wire is kept for finish_page to store.
function _M.start_page(self, aud, run_id, limit, offset, decode, deadline)
    local cache = self.cache
    if cache then
        local body = cache:page(aud, run_id, limit, offset)
        if body then return { cached = body, decode = decode } end
    end
    local call = self.requester:start{
        path = _M.run_path(aud, run_id) .. "/results",
        query = { limit = limit, offset = offset },
        decode = decode,
        deadline = deadline,
        keep_body = cache and true or nil,
    }
    if cache then call.aud, call.run_id = aud, run_id end
    return call
end

-- Finishes a results call and checks the page invariants (leadpipe.page); `seen` is what
-- the same read learnt from its pages so far ({ total =, ids =, filtered =, raw = }), or
-- nil; seen.ids becomes this page's ids. A call decoded by core.decode_page (the pipeline's
-- decode) returns the page's row counts and its repeat check after the body. page.rows is
-- how many rows the page had; page.kept, when a pushed-down `where` built only some of them
-- (then page.results holds just those), how many it kept.
function _M.finish_page(self, call, limit, offset, seen)
    local requester = self.requester
    local status, headers, body, nrows, nkept, ids, dup_row, dup_of
    if call.cached then
        status, headers, body, nrows, nkept, ids, dup_row, dup_of = cache_mod.response(call)
    else
        status, headers, body, nrows, nkept, ids, dup_row, dup_of = requester:finish(call)
    end
    if not status then
        if seen and headers.kind == "decode" then
            headers.message = "results page at offset " .. offset .. ": " .. headers.message
        end
        return nil, headers
    end
    local paged = nkept ~= nil and status ~= 202
    local page, lua_ids = page_mod.from_response(status, headers, body, {
        limit = limit, offset = offset, prev_total = seen and seen.total,
        prev_ids = seen and seen.ids, scrub = requester:scrubber(),
        rows = paged and nrows or nil, kept = paged and nkept or nil, raw = seen and seen.raw,
        dup_row = paged and dup_row or nil, dup_of = dup_of,
    })
    if not page then return nil, lua_ids end
    page.rows = paged and nrows or #page.results
    page.kept = paged and seen.filtered and nkept or nil
    if seen and page.state == "completed" then
        seen.total, seen.ids = page.total, paged and ids or lua_ids
    end
    if call.body and status == 200 and page.state == "completed" then
        self.cache:put_page(call.aud, call.run_id, limit, offset, call.body)
    end
    return page
end

-- One results page for a waiting loop: the request in flight is cut at the deadline.
function _M.fetch_page(self, aud, run_id, limit, offset, deadline)
    return _M.finish_page(self, _M.start_page(self, aud, run_id, limit, offset, nil, deadline),
        limit, offset)
end

return _M

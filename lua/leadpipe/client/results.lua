-- leadpipe.client.results: a run's rows. client:results (one page), client:pages (every
-- page, through the page pipeline, leadpipe.pipeline), client:people (every row, with
-- `where` pushed down into the decoder when it can take it) and client:count (how many
-- rows pass `where`, counted in the decoder without building them).

local core = require "leadpipe.core"
local errors = require "leadpipe.errors"
local args = require "leadpipe.args"
local filter = require "leadpipe.filter"
local json = require "leadpipe.json"
local base = require "leadpipe.client.base"
local waiting = require "leadpipe.client.waiting"
local pipeline = require "leadpipe.pipeline"
local deadline_mod = require "leadpipe.deadline"

local setmetatable, getmetatable, type, tostring, pairs, pcall = setmetatable, getmetatable, type,
    tostring, pairs, pcall
-- Every raise here is of an error object: errors.raise makes it printable on PUC Lua 5.1 too.
local error = errors.raise

local _M = { _VERSION = require "leadpipe.version" }

local invalid, check_int, check_number, check_function, set, closed =
    args.invalid, args.check_int, args.check_number, args.check_function, args.set, args.closed
local enter, check_page_args, start_page, finish_page =
    base.enter, base.check_page_args, base.start_page, base.finish_page
local check_wait_opts, with_wait_opts = waiting.check_wait_opts, waiting.with_wait_opts
local page_iterator = pipeline.page_iterator

---@class leadpipe.Client
local Client = base.Client

local RESULTS_OPTS = set{ "limit", "offset", "deadline" }

--- client:results(audience_id, run_id, { limit = 100, offset = 0 }) -> page | nil, err
--- page = { state = "queued"|"running"|"completed", run, results, total, limit, offset }.
--- A failed or cancelled run is an error of kind run_failed / run_cancelled with err.run.
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? leadpipe.ResultsOpts
---@return leadpipe.Page|nil page
---@return leadpipe.Error|nil err
function Client:results(aud, run_id, opts)
    local fname = "results"
    local o, err = enter(self, fname, opts, RESULTS_OPTS)
    if not o then return nil, err end
    err = check_page_args(fname, aud, run_id, o) or check_number(fname, "deadline", o.deadline, 0.001)
    if err then return nil, err end
    local limit, offset = o.limit or 100, o.offset or 0
    local at = deadline_mod.at(self.host, o.deadline)
    local page
    page, err = finish_page(self, start_page(self, aud, run_id, limit, offset, nil, at), limit, offset)
    if not page and deadline_mod.passed(err, at, self.host.now()) then
        err = deadline_mod.error(fname, o.deadline, nil, offset, err)
    end
    return page, err
end

local PAGES_NAMES = { "limit", "offset", "wait", "prefetch" }
local PAGES_OPTS = with_wait_opts(PAGES_NAMES)

-- Checks the arguments shared by pages() and people().
local function check_iter_args(fname, aud, run_id, o)
    local err = check_page_args(fname, aud, run_id, o)
        or check_int(fname, "prefetch", o.prefetch, 0, pipeline.MAX_PREFETCH) or check_wait_opts(fname, o)
    if err then return err end
    if o.wait ~= nil and type(o.wait) ~= "boolean" then
        return invalid(fname, "wait", "must be a boolean (got " .. type(o.wait) .. ")")
    end
end

--- client:pages(audience_id, run_id, { limit = 100, offset = 0, wait = true, prefetch = 64,
---  timeout =, interval =, max_interval =, on_poll = }) -> iterator of pages
--- Follows the documented stop rule (offset + #results >= total). Waits for a pending run
--- unless wait = false. Up to `prefetch` pages (0..64, default 64; 0: one at a time) are on
--- the wire ahead of the one being read: as many as the reader gets through in one round
--- trip, plus two (leadpipe/window.lua), halved on a 429 or 503. Pages come out in offset
--- order.
--- Raises on bad arguments; the iterator raises a leadpipe.Error. The fourth value closes
--- the iterator (Lua 5.4 to-be-closed), dropping prefetched pages.
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? leadpipe.PagesOpts
---@return fun(): leadpipe.Page|nil iter
---@return nil
---@return nil
---@return table closer
function Client:pages(aud, run_id, opts)
    local fname = "pages"
    local o, err = enter(self, fname, opts, PAGES_OPTS)
    if not o then error(err, 2) end
    err = check_iter_args(fname, aud, run_id, o)
    if err then error(err, 2) end
    return page_iterator(self, aud, run_id, o, fname)
end

local PEOPLE_OPTS = with_wait_opts{ "limit", "offset", "wait", "prefetch", "where", "filter",
                                    "on_page", "raw" }

-- The where{} of people() as (native, lua_predicate): with a decoder that takes a compiled
-- predicate (core.decode_page), rows that fail it are never built and the Lua predicate is
-- nil; otherwise the Lua predicate runs on every decoded row. Raises an invalid_argument
-- error.
local function compile_where(fname, where)
    local compiled
    if where ~= nil then
        local ok, c = pcall(filter.compile, where)
        if not ok then
            error(invalid(fname, "where", (tostring(errors.is_error(c) and c.message or c)
                :gsub("^where: ", ""))), 0)
        end
        compiled = c
    end
    local native = compiled and compiled.native
    if core.decode_page and native then return native, nil end
    return nil, compiled and compiled.fn
end

-- An option of people() that is a where{} key (people(aud, run, { min_score = 80 })): the
-- error says where it goes.
local function where_hint(fname, opts)
    if type(opts) ~= "table" then return end
    local keys = filter.where_keys
    for i = 1, #keys do
        local k, v = keys[i], opts[keys[i]]
        if v ~= nil then
            local shown = type(v) == "number" and tostring(v)
                or type(v) == "string" and #v <= 40 and ("%q"):format(v):gsub("\\\n", "\\n") or "..."
            return invalid(fname, "opts", ("has %s, a key of where: write { where = { %s = %s } }")
                :format(k, k, shown))
        end
    end
end

-- What people() and count() check and compile first: their options (a where{} key among
-- them gets a hint), the ids, `filter`, check_more(o) when given, and `where` (native for
-- the decoder, or a Lua predicate). -> o, native, where_fn; raises at their caller.
local function rows_preamble(self, fname, aud, run_id, opts, allowed, check_more)
    local o, err = enter(self, fname, opts, allowed)
    if not o then error(err.kind == "invalid_argument" and where_hint(fname, opts) or err, 3) end
    err = check_iter_args(fname, aud, run_id, o) or check_function(fname, "filter", o.filter)
        or (check_more and check_more(o))
    if err then error(err, 3) end
    local ok, native, where_fn = pcall(compile_where, fname, o.where)
    if not ok then error(native, 3) end
    return o, native, where_fn
end

-- The options of the page pipeline for a read of people() or count(): `own` and PAGES_OPTS's.
local function pipeline_opts(o, own)
    for k in pairs(PAGES_OPTS) do own[k] = o[k] end
    return own
end

--- client:people(audience_id, run_id, { where = {...}, filter = fn, on_page = fn, raw = false,
---  ...pages opts }) -> iterator of person rows across pages, each exactly once.
--- `where` is data and is pushed down into the decoder when it can take it; `filter` is any
--- function, applied after. on_page(page) sees page.rows (rows on the page), page.kept (rows
--- that passed `where`) and page.results (only those rows). With raw = true each row is its
--- JSON text (for writing JSON lines without building tables); `filter` is then not allowed.
--- Raises on bad arguments; the iterator raises a leadpipe.Error. The fourth value closes
--- the iterator (Lua 5.4 to-be-closed).
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? leadpipe.PeopleOpts
---@return fun(): leadpipe.Person|nil iter rows (strings of JSON with raw = true)
---@return nil
---@return nil
---@return table closer
function Client:people(aud, run_id, opts)
    local fname = "people"
    local o, native, where_fn = rows_preamble(self, fname, aud, run_id, opts, PEOPLE_OPTS, function(o)
        local err = check_function(fname, "on_page", o.on_page)
        if not err and o.raw ~= nil and type(o.raw) ~= "boolean" then
            err = invalid(fname, "raw", "must be a boolean (got " .. type(o.raw) .. ")")
        end
        if not err and o.raw and o.filter then
            err = invalid(fname, "filter", "cannot be used with raw = true (rows are JSON text); use where")
        end
        return err
    end)
    -- raw rows come from core.decode_page when the core has it, else they are encoded here
    local raw = o.raw and core.decode_page ~= nil
    local progress = { rows = 0 } -- rows handed out, for a deadline error
    local pages, _, _, closer = page_iterator(self, aud, run_id,
        pipeline_opts(o, { native = native, raw = raw, progress = progress }), fname)
    local on_page, pred = o.on_page, o.filter
    local encode = o.raw and not raw and json.encode
    local requester = self.requester
    local results, i = nil, 0
    local iter = function()
        if self.closed then error(closed(fname), 0) end
        while true do
            if results then
                i = i + 1
                local row = results[i]
                if row == nil then
                    results = nil
                else
                    -- let prefetched pages arrive while the caller works on rows
                    if i % 128 == 0 then requester:pump() end
                    if not pred or pred(row) then
                        progress.rows = progress.rows + 1
                        return row
                    end
                end
            else
                local page = pages()
                if not page then return nil end
                if where_fn or encode then
                    local kept, n = setmetatable({}, core.array_mt), 0
                    local all = page.results
                    for j = 1, #all do
                        local row = all[j]
                        if not where_fn or where_fn(row) then
                            n = n + 1
                            kept[n] = encode and encode(row) or row
                        end
                    end
                    page.results = kept
                    if where_fn then page.kept = n end
                end
                if on_page then on_page(page) end
                results, i = page.results, 0
            end
        end
    end
    return iter, nil, nil, closer
end

local COUNT_OPTS = with_wait_opts{ "limit", "offset", "wait", "prefetch", "where", "filter" }

--- client:count(audience_id, run_id, { where = {...}, filter = fn, ...pages opts })
--- -> kept, rows: how many people of the run pass `where` (and `filter`), and how many
--- rows were read. Every page is read and checked as people() reads it, but with a `where`
--- the decoder can take (or none), no row is built: each page is only looked over, which
--- costs a fraction of building its rows. Without `where` and `filter`, kept is every row
--- (the run's resultCount says the same without reading a page). A `filter` function
--- needs the rows, so they are then built. Raises on bad arguments and on a failed read
--- (a leadpipe.Error: a `deadline` error's rows are the rows read so far).
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? leadpipe.CountOpts
---@return integer kept
---@return integer rows
function Client:count(aud, run_id, opts)
    local fname = "count"
    local o, native, where_fn = rows_preamble(self, fname, aud, run_id, opts, COUNT_OPTS)
    local pred = o.filter
    -- with the C decoder and no Lua test left, pages are counted in C and no row is built
    local counted = core.decode_page ~= nil and not where_fn and not pred
    local progress = { rows = 0 }
    local pages, _, _, closer = page_iterator(self, aud, run_id,
        pipeline_opts(o, { native = native, count = counted, progress = progress }), fname)
    local kept = 0
    local done, perr = pcall(function()
        for page in pages do
            progress.rows = progress.rows + page.rows
            if counted then
                kept = kept + (page.kept or page.rows)
            else
                local rows = page.results
                for i = 1, #rows do
                    local row = rows[i]
                    if (not where_fn or where_fn(row)) and (not pred or pred(row)) then
                        kept = kept + 1
                    end
                end
            end
        end
    end)
    if not done then
        getmetatable(closer).__close(closer)
        error(perr, 2)
    end
    return kept, progress.rows
end

return _M

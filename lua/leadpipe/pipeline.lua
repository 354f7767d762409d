-- leadpipe.pipeline: the page pipeline behind client:pages and client:people. Reads a run's
-- results pages with several requests on the wire at once and hands the pages out in
-- offset order, each row exactly once, until the documented stop rule
-- (offset + #results >= total). How many pages it keeps in flight: leadpipe.window.
--
--   pipeline.page_iterator(client, audience_id, run_id, o, fname) -> iter, nil, nil, closer
--       o: limit, offset, wait, prefetch, the wait options (client/waiting.lua), native
--       (a core.where predicate pushed down into core.decode_page) and raw (rows as JSON
--       text). The arguments are checked by the caller (client/results.lua).

local core = require "leadpipe.core"
local errors = require "leadpipe.errors"
local args = require "leadpipe.args"
local window = require "leadpipe.window"
local deadline_mod = require "leadpipe.deadline"
local base = require "leadpipe.client.base"
local waiting = require "leadpipe.client.waiting"

local setmetatable, tostring, pairs = setmetatable, tostring, pairs
-- Every raise here is of an error object: errors.raise makes it printable on PUC Lua 5.1 too.
local error = errors.raise
local min, ceil, random = math.min, math.ceil, math.random
local remove, insert = table.remove, table.insert

local _M = { _VERSION = require "leadpipe.version" }

local closed = args.closed
local start_page, finish_page = base.start_page, base.finish_page
local poll_until_complete = waiting.poll_until_complete

-- Most pages in flight ahead of the one being read, unless `prefetch` says otherwise.
local DEFAULT_PREFETCH = 64
local MAX_PREFETCH = 64
-- Most pages in flight ahead of their readers across all the iterators of one client (one
-- client shared by many requests in an nginx worker must not open 64 connections for each).
local CLIENT_AHEAD = 64

-- Iterator of pages. Raises errors. The fourth value closes it (Lua 5.4 to-be-closed).
--
-- The pipeline: once the first page has told the total, up to `win.size` further pages
-- are on the wire at once, and pages are handed out in offset order. The size follows
-- Little's law from the round trips the reader waited for and the reader's own time per
-- page, up to `prefetch`, halved by a 429 or 503 (leadpipe/window.lua). When a page has
-- arrived, the requests that refill the window are sent before the page is decoded
-- (http.lua's on_arrival), so the wire never idles while we decode.
--
-- Short pages (the docs: "a page may be shorter than limit"): the pages in flight are
-- planned as if every page were full. A page of n < limit rows before total leaves a gap
-- between offset + n and the next page in flight; the gap is asked for at once (as one
-- page of at most `limit` rows, which may be short again), ahead of the pages already in
-- flight, which stay valid. Rows come out exactly once, in offset order.
-- An empty page before total is asked for again with backoff, up to the client's
-- max_retries times, then the read fails with EMPTY_PAGE naming the offset.
--
-- o.native (a core.where predicate), o.raw (rows as JSON text) and o.count (rows counted
-- in page.kept, none built) go to core.decode_page when the core has it; it also checks
-- repeated rows in C (leadpipe.page). Without it (the cjson core) o.count is ignored and
-- the rows are built.
local function page_iterator(self, aud, run_id, o, fname)
    local limit = o.limit or 100
    local win = window.new(o.prefetch or DEFAULT_PREFETCH)
    local requester, host = self.requester, self.host
    local now = host.now
    local left_at                     -- when the last page was handed out
    local next_offset = o.offset or 0 -- offset of the next page handed out
    local ahead                       -- offset just past the last page requested
    local total
    -- what the pages so far said: total, the last page's row ids; how pages are decoded
    local seen = { filtered = o.native ~= nil or o.count == true, raw = o.raw }
    local done = false
    local inflight = {} -- { offset =, limit =, call =, sent = }, in offset order
    -- the deadline of the whole read; rows handed out (people() counts its own)
    local at, progress = deadline_mod.at(host, o.deadline), o.progress or { rows = 0 }

    local decode
    local decode_page = core.decode_page
    if decode_page then
        -- o.count: rows are counted (page.kept), never built
        local native, mode = o.native, o.count and "count" or o.raw
        decode = function(body) return decode_page(body, native, mode, seen.ids) end
    else
        -- the cjson decoder, in page mode: a null row is built as false, not dropped
        local decode_cjson = core.decode_cjson
        decode = function(body) return decode_cjson(body, true) end
    end

    local function drop_inflight()
        for i = #inflight, 1, -1 do
            requester:cancel(inflight[i].call)
            inflight[i] = nil
        end
    end

    -- Pages the client's other pipelines have ahead (a pipeline dropped without closing
    -- counts until it is collected: its requests are on the wire until then too).
    local pipelines = self.pipelines
    pipelines[inflight] = true
    local function others()
        local n = 0
        for list in pairs(pipelines) do
            if list ~= inflight then n = n + #list end
        end
        return n
    end

    local function refill()
        local room = min(win:room(#inflight + ceil((total - ahead) / limit)), CLIENT_AHEAD - others())
        while #inflight < room and ahead < total do
            inflight[#inflight + 1] = {
                offset = ahead, limit = limit, sent = now(),
                call = start_page(self, aud, run_id, limit, ahead, decode, at),
            }
            ahead = ahead + limit
        end
    end

    -- Waits for a call sent at `sent`; tells the window what the wait showed. `waited`:
    -- the call was sent just now, so the reader surely waits for it.
    local function finish_slot(call, offset, lim, sent, waited)
        local asked, arrived = now(), nil
        call.on_arrival = function()
            arrived = now()
            if total then refill() end
        end
        local page, err = finish_page(self, call, lim, offset, seen)
        if arrived then
            local wait, t = arrived - asked, now()
            -- a wait of under 0.5 ms: the page was there already, and arrived says nothing
            if waited or wait > 0.0005 then win:round_trip(arrived - sent) end
            -- the reader's own time for this page: since it had the last one, minus the wait
            win:reader(left_at and t - left_at - wait or t - arrived)
        end
        if call.rate_limited then win:rate_limited() else win:clean() end
        return page, err
    end

    local function fetch_at(offset, lim, deadline)
        local sent = now()
        return finish_slot(start_page(self, aud, run_id, lim, offset, decode,
            deadline_mod.earlier(deadline, at)), offset, lim, sent, true)
    end

    -- An empty page before total (EMPTY_PAGE, retryable) is asked for again with backoff,
    -- like a transient error, at most max_retries times.
    local function settle(page, err, offset, lim)
        local tries = 0
        while not page and err.code == "EMPTY_PAGE" and tries < requester.max_retries
            and not self.closed do
            tries = tries + 1
            local d = min(requester.backoff_max, requester.backoff_base * 2 ^ (tries - 1))
            d = d / 2 + random() * d / 2
            if at and now() + d >= at then break end -- (no backoff past the deadline)
            host.sleep(d)
            page, err = fetch_at(offset, lim)
        end
        if not page and err.code == "EMPTY_PAGE" then
            err.attempts = tries + 1
            err.message = err.message .. " (asked " .. (tries + 1) .. " times)"
        end
        return page, err
    end

    local function first_page()
        if o.wait == false then
            local page, err = fetch_at(next_offset, limit)
            page, err = settle(page, err, next_offset, limit)
            if page and page.state ~= "completed" then
                err = errors.new("not_ready", "run " .. run_id .. " is " .. tostring(page.state)
                    .. " (pass wait = true to wait for it)", { status = 202, retryable = true })
                page = nil
            end
            return page, err
        end
        local page, err = poll_until_complete(self, function(deadline)
            if self.closed then return nil, closed(fname) end
            return fetch_at(next_offset, limit, deadline)
        end, run_id, o, at)
        return settle(page, err, next_offset, limit)
    end

    local function next_page()
        local slot = remove(inflight, 1)
        local page, err, lim
        if slot then
            lim = slot.limit
            page, err = finish_slot(slot.call, slot.offset, lim, slot.sent)
        else
            lim, ahead = limit, next_offset + limit
            page, err = fetch_at(next_offset, lim)
        end
        return settle(page, err, next_offset, lim)
    end

    -- After a short page: the rows between next_offset and the first page in flight are
    -- asked for now, ahead of it (the pages in flight stay as they are).
    local function fill_gap()
        local head = inflight[1]
        if head and head.offset > next_offset then
            local lim = min(limit, head.offset - next_offset)
            insert(inflight, 1, {
                offset = next_offset, limit = lim, sent = now(),
                call = start_page(self, aud, run_id, lim, next_offset, decode, at),
            })
        end
    end

    local function iter()
        if done then return nil end
        local page, err
        if self.closed then
            err = closed(fname)
        elseif at and now() >= at then
            err = deadline_mod.error(fname, o.deadline, progress.rows, next_offset)
        elseif total == nil then
            page, err = first_page()
        else
            page, err = next_page()
        end
        if page and page.state ~= "completed" then
            err = errors.new("http", "run " .. run_id .. " went back to " .. tostring(page.state),
                { status = 202 })
            page = nil
        end
        if not page then
            done = true
            drop_inflight()
            if deadline_mod.passed(err, at, now()) then
                err = deadline_mod.error(fname, o.deadline, progress.rows, next_offset, err)
            end
            error(err, 0)
        end
        local is_first = total == nil
        total = page.total
        page.offset = next_offset
        next_offset = next_offset + page.rows
        if next_offset >= total then
            done = true
            drop_inflight()
        elseif is_first then
            ahead = next_offset
            refill()
        else
            fill_gap()
        end
        if not o.progress then progress.rows = progress.rows + #page.results end
        left_at = now()
        -- requests sent while this page was decoded go out (and answers come in) before
        -- the caller's own work holds the wire
        requester:pump()
        return page
    end

    local closer = setmetatable({}, { __close = function()
        done = true
        drop_inflight()
    end })
    return iter, nil, nil, closer
end
_M.page_iterator = page_iterator

--- The most pages a reader may ask to have in flight ahead of it (the prefetch option).
_M.MAX_PREFETCH = MAX_PREFETCH

return _M

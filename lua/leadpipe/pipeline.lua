-- leadpipe.pipeline: the page pipeline behind client:pages and client:people. Reads a run's
-- results pages with several requests on the wire at once and hands the pages out in
-- offset order, each row exactly once, until the documented stop rule
-- (offset + #results >= total). How many pages it keeps in flight: leadpipe.window.
--
--   pipeline.page_iterator(client, audience_id, run_id, o, fname) -> iter, nil, nil, closer
--       o: limit, offset, wait, prefetch, the wait options (client/waiting.lua), decode
--       (replaces core.decode for result bodies). The arguments are checked by the caller
--       (client/results.lua).

local errors = require "leadpipe.errors"
local args = require "leadpipe.args"
local page_mod = require "leadpipe.page"
local window = require "leadpipe.window"
local base = require "leadpipe.client.base"
local waiting = require "leadpipe.client.waiting"

local setmetatable, tostring, pairs = setmetatable, tostring, pairs
-- Every raise here is of an error object: errors.raise makes it printable on PUC Lua 5.1 too.
local error = errors.raise
local min, ceil = math.min, math.ceil
local remove = table.remove

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
-- o.decode (from people()) replaces core.decode for result bodies.
local function page_iterator(self, aud, run_id, o, fname)
    local limit = o.limit or 100
    local win = window.new(o.prefetch or DEFAULT_PREFETCH)
    local requester, host, decode = self.requester, self.host, o.decode
    local now = host.now
    local left_at                     -- when the last page was handed out
    local next_offset = o.offset or 0 -- offset of the next page handed out
    local ahead                       -- offset of the next page to request
    local total
    local seen = {} -- what the pages so far said: total, the edge row ids of the last one
    local done = false
    local inflight = {} -- { offset =, call =, sent = }, in offset order

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
                offset = ahead, sent = now(), call = start_page(self, aud, run_id, limit, ahead, decode),
            }
            ahead = ahead + limit
        end
    end

    -- Waits for a call sent at `sent`; tells the window what the wait showed. `waited`:
    -- the call was sent just now, so the reader surely waits for it.
    local function finish_slot(call, offset, sent, waited)
        local asked, arrived = now(), nil
        call.on_arrival = function()
            arrived = now()
            if total then refill() end
        end
        local page, err = finish_page(self, call, limit, offset, seen)
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

    local function fetch_at(offset, deadline)
        local sent = now()
        return finish_slot(start_page(self, aud, run_id, limit, offset, decode, deadline), offset, sent, true)
    end

    local function first_page()
        if o.wait == false then
            local page, err = fetch_at(next_offset)
            if page and page.state ~= "completed" then
                err = errors.new("not_ready", "run " .. run_id .. " is " .. tostring(page.state)
                    .. " (pass wait = true to wait for it)", { status = 202, retryable = true })
                page = nil
            end
            return page, err
        end
        return poll_until_complete(self, function(deadline)
            if self.closed then return nil, closed(fname) end
            return fetch_at(next_offset, deadline)
        end, run_id, o)
    end

    local function next_page()
        local slot = remove(inflight, 1)
        if slot and slot.offset ~= next_offset then
            -- a short page moved the offsets: what was requested ahead is of no use
            requester:cancel(slot.call)
            drop_inflight()
            ahead = next_offset
            slot = nil
        end
        if not slot then
            ahead = next_offset + limit
            return fetch_at(next_offset)
        end
        return finish_slot(slot.call, slot.offset, slot.sent)
    end

    local function iter()
        if done then return nil end
        local page, err
        if self.closed then
            err = closed(fname)
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
            error(err, 0)
        end
        local is_first = total == nil
        total = page.total
        seen.total, seen.ids = total, page_mod.edge_ids(page)
        local n = page.rows
        page.offset = next_offset
        next_offset = next_offset + n
        if next_offset >= total then
            done = true
            drop_inflight()
        elseif is_first then
            ahead = next_offset
            refill()
        end
        left_at = now()
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

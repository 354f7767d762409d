-- leadpipe.cli.progress: the one-line progress display of the command line tool, drawn in
-- place on a terminal (stderr) at most 10 times a second: rows read/total (and how many a
-- filter kept), pages, rows/s, ETA, or the wait for a pending run. The last frame is always
-- drawn: finish() shows the state of the last page even when it came too soon after the
-- frame before.
--
--   local p = progress.new(out, now, label)   out: has :write(s); now: clock in seconds;
--                                      label: optional text drawn first (e.g. "to 2/3:")
--   p:waiting(run_id, state)           the run is still queued or running
--   p:page(page, force)                a page arrived: page.rows rows read (#page.results
--                                      when absent), page.kept the rows a `where` kept (nil:
--                                      no filter); drawn at once when it is the last one or
--                                      force is true
--   p:finish(text)                     draws the last frame (or text, if any) and ends the
--                                      line, if anything was drawn
--   p:clear()                          erases the line (output stopped early), if anything was drawn

local format, rep = string.format, string.rep
local floor, min = math.floor, math.min
local tostring = tostring

local _M = { _VERSION = require "leadpipe.version" }

local function duration(s)
    s = floor(s + 0.5)
    if s < 60 then return s .. "s" end
    if s < 3600 then return format("%dm%02ds", floor(s / 60), s % 60) end
    return format("%dh%02dm", floor(s / 3600), floor(s % 3600 / 60))
end

function _M.new(out, now, label)
    local p = { rows = 0, kept = nil, pages = 0, total = nil, shown = false }
    local start, last = now(), -1
    -- rows/s counts from the last time the run was seen pending (or from the start)
    local flow_start = start
    local undrawn -- the latest frame, when it was not drawn (too soon after the one before)

    local function draw(text, force)
        local t = now()
        if not force and t - last < 0.1 then
            undrawn = text
            return
        end
        last, undrawn = t, nil
        out:write("\r\27[K" .. (label and (label .. " ") or "") .. text)
        if out.flush then out:flush() end
        p.shown = true
    end

    function p.waiting(_, run_id, state)
        flow_start = now()
        draw(format("run %s: %s, waiting %s", run_id, tostring(state), duration(flow_start - start)))
    end

    function p.page(_, page, force)
        local read = page.rows or #page.results
        p.pages = p.pages + 1
        p.rows = p.rows + read
        if page.kept ~= nil then p.kept = (p.kept or 0) + #page.results end
        p.total = page.total
        local elapsed = now() - flow_start
        local total = p.total or p.rows
        local frac = total > 0 and min(p.rows / total, 1) or 1
        local width = 24
        local filled = floor(frac * width + 0.5)
        local rate, eta = "-", ""
        if elapsed >= 0.05 then
            local r = p.rows / elapsed
            rate = tostring(floor(r + 0.5))
            if total > p.rows and r > 0 then eta = "  ETA " .. duration((total - p.rows) / r) end
        end
        local kept = p.kept and format(", %d kept", p.kept) or ""
        draw(format("[%s%s] %d/%d rows%s  %d pages  %s rows/s%s", rep("#", filled), rep("-", width - filled),
            p.rows, total, kept, p.pages, rate, eta), force or p.rows >= total)
    end

    function p.finish(_, text)
        if text then
            draw(text, true)
        elseif undrawn and p.shown then
            draw(undrawn, true)
        end
        if p.shown then
            out:write("\n")
            p.shown = false
        end
    end

    function p.clear()
        undrawn = nil
        if p.shown then
            out:write("\r\27[K")
            if out.flush then out:flush() end
            p.shown = false
        end
    end

    return p
end

return _M

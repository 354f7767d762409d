-- leadpipe.cli.progress: the one-line progress display of the command line tool, drawn in
-- place on a terminal (stderr) at most 10 times a second: rows/total, pages, rows/s, ETA,
-- or the wait for a pending run.
--
--   local p = progress.new(out, now, label)   out: has :write(s); now: clock in seconds;
--                                      label: optional text drawn first (e.g. "to 2/3:")
--   p:waiting(run_id, state)           the run is still queued or running
--   p:page(page, force)                a page arrived (force: draw even if drawn just now)
--   p:finish(text)                     draws text (if any) and ends the line, if anything was drawn
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
    local p = { rows = 0, pages = 0, total = nil, shown = false }
    local start, last = now(), -1
    -- rows/s counts from the last time the run was seen pending (or from the start)
    local flow_start = start

    local function draw(text, force)
        local t = now()
        if not force and t - last < 0.1 then return end
        last = t
        out:write("\r\27[K" .. (label and (label .. " ") or "") .. text)
        if out.flush then out:flush() end
        p.shown = true
    end

    function p.waiting(_, run_id, state)
        flow_start = now()
        draw(format("run %s: %s, waiting %s", run_id, tostring(state), duration(flow_start - start)))
    end

    function p.page(_, page, force)
        p.pages = p.pages + 1
        p.rows = p.rows + #page.results
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
        draw(format("[%s%s] %d/%d rows  %d pages  %s rows/s%s", rep("#", filled), rep("-", width - filled),
            p.rows, total, p.pages, rate, eta), force)
    end

    function p.finish(_, text)
        if text then draw(text, true) end
        if p.shown then
            out:write("\n")
            p.shown = false
        end
    end

    function p.clear()
        if p.shown then
            out:write("\r\27[K")
            if out.flush then out:flush() end
            p.shown = false
        end
    end

    return p
end

return _M

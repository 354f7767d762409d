-- leadpipe.window: how many pages the page pipeline keeps on the wire (client.lua).
--
-- Little's law: to keep the reader busy, the pages in flight must cover one round trip at
-- the reader's pace, so the window is floor(rtt / per_page) + 2 pages, where
--   rtt       the shortest time a request took from send to arrival, as seen by a reader
--             that was waiting for it (a page that arrived while the reader was busy
--             elsewhere says nothing about the wire, so it is not a sample);
--   per_page  the reader's own time per page (decoding it, and the caller's work until it
--             asks for the next one), a moving average over the last few pages.
-- A slow wire (or a fast reader) gets many pages in flight; a fast wire, or a reader whose
-- work per page is longer than a round trip, gets two, so no request waits in a queue at
-- the server for nothing and few bodies wait in memory. The window never exceeds the
-- ceiling, which starts at `cap` (the prefetch option): a request that met a 429 or 503
-- halves it, and each page that did not gives one back.
--
--   local w = window.new(cap)
--   w:round_trip(seconds)  -- a request the reader waited for took this long
--   w:reader(seconds)      -- the reader's own time for the page just handed out
--   w:rate_limited()       -- a request met a 429 or 503 (halves the ceiling)
--   w:clean()              -- a page arrived without one (the ceiling grows back by one)
--   w.size                 -- pages to keep in flight ahead of the reader
--   w:room(left)           -- how many may be in flight when `left` pages (in flight or
--                          -- not asked yet) remain: w.size, or all of them when they are
--                          -- at most twice that and the cap allows (a short tail then costs
--                          -- no round trip of its own)

local floor, min = math.floor, math.min

local Window = {}
Window.__index = Window

-- Until the first page has been measured: two in flight.
local START = 2
-- Weight of the newest per-page sample in the moving average.
local WEIGHT = 0.25

local function resize(self)
    local rtt, per_page = self.rtt, self.per_page
    if rtt and per_page then
        -- a reader that takes no measurable time gets the ceiling
        self.size = per_page > 0 and min(self.ceiling, floor(rtt / per_page) + 2) or self.ceiling
    elseif self.size > self.ceiling then
        self.size = self.ceiling
    end
end

function Window:round_trip(seconds)
    if seconds >= 0 and (not self.rtt or seconds < self.rtt) then
        self.rtt = seconds
        resize(self)
    end
end

function Window:reader(seconds)
    if seconds < 0 then seconds = 0 end
    local p = self.per_page
    self.per_page = p and p + (seconds - p) * WEIGHT or seconds
    resize(self)
end

function Window:rate_limited()
    self.ceiling = min(self.cap, self.size > 1 and floor(self.size / 2) or 1)
    resize(self)
end

function Window:clean()
    if self.ceiling < self.cap then
        self.ceiling = self.ceiling + 1
        resize(self)
    end
end

function Window:room(left)
    local size = self.size
    if left <= 2 * size and left <= self.ceiling then return left end
    return size
end

local function new(cap)
    return setmetatable({ cap = cap, ceiling = cap, size = min(START, cap) }, Window)
end

return { new = new }

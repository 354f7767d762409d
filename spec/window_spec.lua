-- The page pipeline's window (leadpipe/window.lua): Little's law from the measured round
-- trip and the reader's time per page, bounded by the prefetch cap, halved by a 429/503.
local window = require "leadpipe.window"

-- A window of `cap` that has seen one round trip and one page of the reader's time.
local function measured(cap, rtt, per_page)
    local w = window.new(cap)
    w:round_trip(rtt)
    w:reader(per_page)
    return w
end

describe("leadpipe.window", function()
    it("keeps two pages in flight until it has measured anything", function()
        assert.are.equal(2, window.new(64).size)
        assert.are.equal(1, window.new(1).size)
        assert.are.equal(0, window.new(0).size)
    end)

    it("covers one round trip at the reader's pace, plus two", function()
        local w = measured(64, 0.050, 0.002)
        assert.are.equal(27, w.size) -- floor(50 / 2) + 2
        local fast = measured(64, 0.001, 0.004)
        assert.are.equal(2, fast.size) -- the wire is faster than the reader
    end)

    it("never goes past the cap, and gives the cap to a reader that takes no time", function()
        local w = measured(16, 0.2, 0.001)
        assert.are.equal(16, w.size)
        local z = measured(8, 0.01, 0)
        assert.are.equal(8, z.size)
    end)

    it("keeps the shortest round trip: a late-seen arrival does not widen it", function()
        local w = window.new(64)
        w:reader(0.001)
        w:round_trip(0.010)
        w:round_trip(0.500)
        assert.are.equal(12, w.size)
        w:round_trip(0.004)
        assert.are.equal(6, w.size)
    end)

    it("follows the reader's pace as a moving average", function()
        local w = measured(64, 0.040, 0.010)
        assert.are.equal(6, w.size)
        for _ = 1, 40 do w:reader(0.001) end
        assert.is_true(w.size >= 40, "size " .. w.size)
        for _ = 1, 40 do w:reader(0.020) end
        assert.are.equal(4, w.size)
    end)

    it("halves on a 429 or 503 and grows back one page at a time", function()
        local w = measured(32, 1, 0.001)
        assert.are.equal(32, w.size)
        w:rate_limited()
        assert.are.equal(16, w.size)
        w:rate_limited()
        assert.are.equal(8, w.size)
        w:clean()
        assert.are.equal(9, w.size)
        for _ = 1, 100 do w:clean() end
        assert.are.equal(32, w.size)
        local one = window.new(4)
        one:rate_limited()
        one:rate_limited()
        one:rate_limited()
        assert.are.equal(1, one.size)
        local none = window.new(0)
        none:rate_limited()
        none:clean()
        assert.are.equal(0, none.size)
    end)

    it("lets a short tail go out with the window instead of a round trip later", function()
        local w = measured(64, 0.050, 0.002)
        assert.are.equal(27, w.size)
        assert.are.equal(39, w:room(39)) -- at most twice the window: all of it
        assert.are.equal(27, w:room(55)) -- more: the window
        assert.are.equal(5, w:room(5))
        local capped = measured(16, 1, 0.001)
        assert.are.equal(16, capped:room(20)) -- never past the cap
        assert.are.equal(0, window.new(0):room(3))
    end)
end)

-- spec/inflate_spec.lua: core.inflate, the zlib decompression the cosocket wire uses
-- for gzip bodies: both formats, several members, the size cap, and every kind of bad data.
local core = require "leadpipe.core"

local function unhex(s)
    return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

-- '{"a":1}' compressed by Python's gzip (mtime 0) and zlib.
local GZIP = unhex("1f8b0800000000000203ab564a54b232ac0500afac1b5607000000")
local ZLIB = unhex("789cab564a54b232ac0500082a0209")

-- Compresses text with the gzip command (nil when there is none).
local function gzip(text)
    local path = os.tmpname()
    local p = io.popen("gzip -c > " .. path, "w")
    if not p then return nil end
    p:write(text)
    p:close()
    local f = io.open(path, "rb")
    local data = f and f:read("*a")
    if f then f:close() end
    os.remove(path)
    if data == "" then return nil end
    return data
end

describe("core.inflate()", function()
    after_each(function() collectgarbage() end)

    it("decodes a gzip member", function()
        assert.are.equal('{"a":1}', core.inflate(GZIP))
    end)

    it("decodes a zlib stream", function()
        assert.are.equal('{"a":1}', core.inflate(ZLIB))
    end)

    it("decodes concatenated gzip members as one text", function()
        assert.are.equal('{"a":1}{"a":1}{"a":1}', core.inflate(GZIP .. GZIP .. GZIP))
    end)

    it("decodes a large body made by the gzip command", function()
        local parts = {}
        for i = 1, 20000 do parts[i] = ("row %d of the page, score %d\n"):format(i, i % 100) end
        local text = table.concat(parts)
        local data = gzip(text)
        if not data then return pending("no gzip command") end
        assert.is_true(#data < #text)
        assert.are.equal(text, core.inflate(data))
    end)

    it("leaves the output in C memory as a body when asked, which the decoders read in place", function()
        local body = core.inflate(GZIP, nil, true)
        assert.are.equal("userdata", type(body))
        assert.are.equal(7, #body)
        assert.are.same({ a = 1 }, core.decode(body))
        body:close()
        assert.are.equal(0, #body)
        local rows = {}
        for i = 1, 3000 do rows[i] = ('{"hashedEmail":"h%d","intent":{"score":%d}}'):format(i, i % 100) end
        local text = '{"data":{"total":3000,"results":[' .. table.concat(rows, ",") .. "]}}"
        local data = gzip(text)
        if not data then return pending("no gzip command") end
        local big = core.inflate(data, nil, true)
        assert.are.equal(#text, #big)
        if core.decode_page then
            local _, n, k = core.decode_page(big, core.where{ min_score = 50 }, "count")
            assert.are.same({ 3000, 1500 }, { n, k })
        end
        assert.are.same(core.decode(text), core.decode(big))
        big:close()
        -- the size cap and bad data are refused the same way
        assert.are.same({ nil, "inflate: output larger than 4 bytes", "too_large" },
            { core.inflate(GZIP, 4, true) })
        assert.are.equal("data", select(3, core.inflate(GZIP:sub(1, -3), nil, true)))
    end)

    it("refuses output over the cap with kind too_large", function()
        local data = gzip(("\0"):rep(1024 * 1024))
        if not data then return pending("no gzip command") end
        assert.is_true(#data < 4096)
        local out, msg, kind = core.inflate(data, 64 * 1024)
        assert.is_nil(out)
        assert.are.equal("inflate: output larger than 65536 bytes", msg)
        assert.are.equal("too_large", kind)
        assert.are.equal(1024 * 1024, #core.inflate(data, 1024 * 1024))
    end)

    it("reports truncated data", function()
        local out, msg, kind = core.inflate(GZIP:sub(1, -6))
        assert.is_nil(out)
        assert.are.equal("inflate: truncated data", msg)
        assert.are.equal("data", kind)
    end)

    it("reports data that is not compressed", function()
        local out, msg, kind = core.inflate('{"a":1}')
        assert.is_nil(out)
        assert.matches("^inflate: ", msg)
        assert.are.equal("data", kind)
    end)

    it("reports a corrupt stream", function()
        local bad = GZIP:sub(1, 12) .. ("\255"):rep(8) .. GZIP:sub(21)
        local out, msg, kind = core.inflate(bad)
        assert.is_nil(out)
        assert.matches("^inflate: ", msg)
        assert.are.equal("data", kind)
    end)

    it("reports trailing garbage and empty input", function()
        assert.are.same({ nil, "inflate: trailing data after the compressed stream", "data" },
            { core.inflate(GZIP .. "xyz") })
        assert.are.same({ nil, "inflate: no data", "data" }, { core.inflate("") })
    end)

    it("raises on bad arguments", function()
        assert.has_error(function() core.inflate() end)
        assert.has_error(function() core.inflate({}) end)
        assert.has_error(function() core.inflate(GZIP, -1) end)
        assert.has_error(function() core.inflate(GZIP, "many") end)
    end)
end)

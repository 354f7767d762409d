-- leadpipe.page: the page invariants, one response at a time.

local page = require "leadpipe.page"
local core = require "leadpipe.core"
local leadpipe = require "leadpipe"

local function arr(t) return setmetatable(t, core.array_mt) end

local function rows(from, n)
    local r = arr{}
    for i = from, from + n - 1 do r[#r + 1] = { hashedEmail = "h" .. i, i = i } end
    return r
end

local function body(data, meta) return { data = data, meta = meta } end

local function check(status, b, ctx)
    ctx = ctx or {}
    ctx.limit, ctx.offset = ctx.limit or 10, ctx.offset or 0
    return page.from_response(status, {}, b, ctx)
end

describe("page.from_response()", function()
    it("accepts a well-formed page and keeps the server's request id", function()
        local p = assert(check(200, body({ results = rows(0, 10), total = 25, offset = 0, limit = 10 },
            { request_id = "req_1" })))
        assert.are.equal("completed", p.state)
        assert.are.equal(10, #p.results)
        assert.are.equal(25, p.total)
        assert.are.equal("req_1", p.request_id)
    end)

    it("takes x-request-id when the body has no meta", function()
        local p = assert(page.from_response(200, { ["x-request-id"] = "hdr" },
            body({ results = rows(0, 1), total = 1 }), { limit = 10, offset = 0 }))
        assert.are.equal("hdr", p.request_id)
    end)

    it("accepts the empty page of an empty run and an offset at or past total", function()
        assert(check(200, body({ results = arr{}, total = 0 })))
        assert(check(200, body({ results = arr{}, total = 25, offset = 30 }), { offset = 30 }))
        assert(check(200, body({ results = arr{}, total = 25 }), { offset = 25 }))
    end)

    it("accepts a last page shorter than the limit and a server that caps the limit", function()
        assert(check(200, body({ results = rows(20, 5), total = 25, limit = 10, offset = 20 }),
            { offset = 20 }))
        assert(check(200, body({ results = rows(0, 5), total = 25, limit = 5 }), { limit = 10 }))
    end)

    it("accepts a plain Lua sequence of rows (a decoder without array_mt)", function()
        assert(check(200, body({ results = { { a = 1 }, { a = 2 } }, total = 2 })))
    end)

    local BAD = {
        { "no body", nil, "decode", "BAD_PAGE" },
        { "data is an array", { data = arr{ 1, 2 } }, "decode", "BAD_PAGE" },
        { "run is an array", body({ run = arr{ 1 }, results = rows(0, 1), total = 1 }), "decode",
            "BAD_PAGE" },
        { "results missing", body({ total = 1 }), "decode", "BAD_PAGE" },
        { "results an object", body({ results = {}, total = 0 }), "decode", "BAD_PAGE" },
        { "results with holes", body({ results = { [1] = {}, [3] = {} }, total = 3 }), "decode", "BAD_PAGE" },
        { "a row that is a number", body({ results = arr{ 1 }, total = 1 }), "decode", "BAD_PAGE" },
        { "a row that is an array", body({ results = arr{ arr{} }, total = 1 }), "decode", "BAD_PAGE" },
        { "total missing", body({ results = rows(0, 1) }), "decode", "BAD_PAGE" },
        { "total negative", body({ results = rows(0, 1), total = -1 }), "decode", "BAD_PAGE" },
        { "total fractional", body({ results = rows(0, 1), total = 1.5 }), "decode", "BAD_PAGE" },
        { "total infinite", body({ results = rows(0, 1), total = math.huge }), "decode", "BAD_PAGE" },
        { "total NaN", body({ results = rows(0, 1), total = 0 / 0 }), "decode", "BAD_PAGE" },
        { "total beyond 2^53", body({ results = rows(0, 1), total = 2 ^ 60 }), "decode", "BAD_PAGE" },
        { "total a string", body({ results = rows(0, 1), total = "1" }), "decode", "BAD_PAGE" },
        { "offset a string", body({ results = rows(0, 1), total = 1, offset = "0" }), "decode", "BAD_PAGE" },
        { "limit negative", body({ results = rows(0, 1), total = 1, limit = -1 }), "decode", "BAD_PAGE" },
        { "another offset", body({ results = rows(0, 10), total = 25, offset = 5 }), "http",
            "OFFSET_MISMATCH" },
        { "too many rows", body({ results = rows(0, 11), total = 25 }), "http", "TOO_MANY_ROWS" },
        { "rows past total", body({ results = rows(0, 10), total = 5 }), "http", "TOO_MANY_ROWS" },
        { "empty before total", body({ results = arr{}, total = 5 }), "http", "EMPTY_PAGE" },
        { "more rows than the limit it states", body({ results = rows(0, 6), total = 25, limit = 5 }),
            "http", "TOO_MANY_ROWS" },
        { "a total other than the run's resultCount", body({ run = { resultCount = 24 },
            results = rows(0, 10), total = 25 }), "http", "TOTAL_CHANGED" },
        { "a row repeated in the page", body({ results = arr{ { hashedEmail = "h0" }, { hashedEmail = "h1" },
            { hashedEmail = "h2" }, { hashedEmail = "h0" } }, total = 25 }), "http", "REPEATED_ROWS" },
        { "a null row (false, as the page decoders build it)", body({ results = arr{ { a = 1 }, false },
            total = 2 }), "decode", "BAD_PAGE" },
        { "a 200 still running", body({ state = "running", results = arr{}, total = 0 }), "http",
            "NOT_COMPLETED" },
        { "a 200 with a queued run", body({ run = { status = "queued" }, results = arr{},
            total = 0 }), "http",
          "NOT_COMPLETED" },
    }
    for _, case in ipairs(BAD) do
        it("rejects " .. case[1] .. " as " .. case[3] .. " " .. case[4], function()
            local p, err = check(200, case[2], { offset = 0 })
            assert.is_nil(p)
            assert.is_true(leadpipe.is_error(err))
            assert.are.equal(case[3], err.kind)
            assert.are.equal(case[4], err.code)
            assert.truthy(err.message:find("^results page at offset 0: "), err.message)
        end)
    end

    it("accepts a page shorter than its limit before total (the docs allow it)", function()
        local p = assert(check(200, body({ results = rows(0, 4), total = 25, limit = 10 })))
        assert.are.equal(4, #p.results)
        assert(check(200, body({ results = rows(10, 1), total = 25 }), { offset = 10 }))
    end)

    it("marks an empty page before total retryable (the pipeline asks again)", function()
        local _, err = check(200, body({ results = arr{}, total = 5 }), { offset = 0 })
        assert.are.equal("EMPTY_PAGE", err.code)
        assert.is_true(err.retryable)
    end)

    it("rejects a total that changes from the previous page's, down or up", function()
        local _, err = check(200, body({ results = rows(10, 10), total = 15 }), { offset = 10,
            prev_total = 25 })
        assert.are.equal("TOTAL_CHANGED", err.code)
        assert.truthy(err.message:find("offset 10: total changed from 25 to 15", 1, true), err.message)
        _, err = check(200, body({ results = rows(10, 10), total = 40 }), { offset = 10,
            prev_total = 25 })
        assert.are.equal("TOTAL_CHANGED", err.code)
    end)

    it("rejects a row that repeats one of the page before, and hands out this page's ids", function()
        local p, ids = check(200, body({ results = rows(0, 10), total = 30 }))
        assert.is_table(p)
        assert.are.equal(1, ids.h0)
        assert.are.equal(10, ids.h9)
        local _, err = check(200, body({ results = rows(9, 10), total = 30 }), { offset = 10,
            prev_ids = ids })
        assert.are.equal("REPEATED_ROWS", err.code)
        assert.truthy(err.message:find("row 1 repeats a row of the page before", 1, true), err.message)
        local mid = rows(10, 10)
        mid[6] = { hashedEmail = "h3" }
        _, err = check(200, body({ results = mid, total = 30 }), { offset = 10, prev_ids = ids })
        assert.are.equal("REPEATED_ROWS", err.code)
        assert(check(200, body({ results = rows(10, 10), total = 30 }), { offset = 10, prev_ids = ids }))
    end)

    -- decode_page checks repeats in C; the Lua check above covers rows another decoder built.
    -- Both must refuse (and accept) the same pages, naming the same rows.
    it("agrees with decode_page's C repeat check on the same pages", function()
        if not core.decode_page then
            pending("core.decode_page needs simdjson")
            return
        end
        local json = require "leadpipe.json"
        local function text(ids)
            local r = arr{}
            for i, id in ipairs(ids) do r[i] = { hashedEmail = id, i = i } end
            return json.encode{ data = { results = r, total = 100 } }
        end
        local CASES = {
            { { "a", "b", "c" }, { "d", "e" } },
            { { "a", "b", "c" }, { "d", "a" } },
            { { "a", "b", "c" }, { "c", "d" } },
            { { "a", "b", "a" }, nil },
            { { "x", "y" }, { "z", "z", "y" } },
            { { "x", "y" }, { "q", "r", "s", "r" } },
        }
        for _, case in ipairs(CASES) do
            local first, second = case[1], case[2]
            -- C: decode_page with the ids of the page before
            local v1, _, _, ids1, dup1, of1 = core.decode_page(text(first))
            local c_err1 = dup1 and { dup1, of1 }
            local c_err2
            if second and not dup1 then
                local _, _, _, _, dup2, of2 = core.decode_page(text(second), nil, false, ids1)
                c_err2 = dup2 and { dup2, of2 }
            end
            -- Lua: page.from_response on the same rows built as tables
            local p1, lids = check(200, core.decode(text(first)), { limit = 100 })
            local l_err2
            if second and p1 then
                local p2, e = check(200, core.decode(text(second)), { limit = 100, offset = #first,
                    prev_ids = lids })
                l_err2 = not p2 and e or nil
            end
            assert.are.equal(c_err1 == nil, p1 ~= nil, table.concat(first, ","))
            assert.are.equal(c_err2 == nil, l_err2 == nil, table.concat(second or {}, ","))
            local cerr = c_err1 or c_err2
            if cerr then
                local lerr = p1 == nil and select(2, check(200, core.decode(text(first)), { limit = 100 }))
                    or l_err2
                local want = cerr[2] == 0 and ("row %d repeats a row of the page before"):format(cerr[1])
                    or ("row %d repeats row %d"):format(cerr[1], cerr[2])
                assert.truthy(lerr.message:find(want, 1, true), lerr.message .. " / " .. want)
            end
            assert.is_table(v1)
        end
    end)

    it("never takes a 202 for rows, whatever its state says", function()
        for _, state in ipairs{ "queued", "running", "completed", "failed", "weird" } do
            local p = assert(check(202, body({ state = state, results = rows(0, 5), total = 5 })))
            assert.are.equal(0, #p.results)
            assert.is_true(p.state == "queued" or p.state == "running", p.state)
            assert.are.equal(state == "queued" and "queued" or "running", p.state)
        end
    end)

    it("scrubs the request id and the run with the scrubber it is given", function()
        local scrub = require "leadpipe.scrub"
        local p = assert(check(200, body({ run = { note = "sk_secret_123" }, results = rows(0, 1),
            total = 1 },
            { request_id = "sk_secret_123" }), { scrub = scrub.new("sk_secret_123") }))
        assert.are.equal("[REDACTED]", p.request_id)
        assert.are.equal("[REDACTED]", p.run.note)
    end)
end)

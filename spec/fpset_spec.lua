-- core.fpset, the fingerprint table of client:changes: its C boundary, its passes, and the
-- two copies of its fingerprints (the page decoder's on the parsed document, fs:visit's on
-- decoded rows) held to each other on the fake's pages and on awkward rows.

local core = require "leadpipe.core"
local mock = require "leadpipe.mock"
local path = require "leadpipe.path"
local json = require "leadpipe.json"

local unpack = table.unpack or unpack
local F = core.fpset_flags
local FIELDS = { "intent.score", "jobTitle", "seniority", "company.name", "company", "intent.matchedTopics",
                 "geo.city", "missing.field", "intent.matchedTopics.1.topicName" }

local function has(flags, bit) return flags ~= nil and flags % (2 * bit) >= bit end

-- fs:visit of a decoded row with the FIELDS values.
local function visit(fs, op, only, changed, ok, row, fields)
    fields = fields or FIELDS
    local vals = {}
    for i, f in ipairs(fields) do vals[i] = path.get(row, f) end
    return fs:visit(op, only, changed, ok, row, #fields, unpack(vals, 1, #fields))
end

local function page_of(rows_json)
    return '{"data":{"results":[' .. table.concat(rows_json, ",") .. '],"total":'
        .. #rows_json .. ',"limit":500,"offset":0}}'
end

-- Rows the fake never sends: no id, ids of other types, nulls, repeated keys, floats that
-- are integers, big integers, nested arrays with nulls, empty objects and arrays, escapes.
local AWKWARD = {
    '{"name":"no id","intent":{"score":84}}',
    '{"name":"no id, a float score","intent":{"score":84.0}}',
    '{"hashedEmail":null,"name":"null id","company":{"name":"x","name":"y"}}',
    '{"hashedEmail":12345,"intent":{"score":1e2}}',
    '{"hashedEmail":"a","company":{"name":"acme","domain":null},'
        .. '"intent":{"matchedTopics":[null,{"topicName":"t"}]}}',
    '{"hashedEmail":"b","jobTitle":"x","jobTitle":null,"seniority":"vp"}',
    '{"hashedEmail":"c","intent":{"score":9007199254740993},"company":{}}',
    '{"hashedEmail":"d","intent":{"score":-0,"matchedTopics":[]},"geo":{"city":"S\\u00e3o \\"P\\""}}',
    '{"hashedEmail":"e","intent":{"score":18446744073709551615},"flag":true,"arr":[[1,[2,null]],{}]}',
    '{"hashedEmail":"","company":{"name":"\\ud83d\\ude80 rocket"},"x":1.5e-3}',
    '{"hashedEmail":"f","company":null,"seniority":"director","intent":{"score":0.5}}',
}

describe("core.fpset", function()
    after_each(function() collectgarbage() end)

    it("checks its arguments, closes once and refuses use after close", function()
        assert.has_error(function() core.fpset(-1) end)
        assert.has_error(function() core.fpset("x") end)
        assert.has_error(function() core.fpset(2 ^ 41) end)
        local fs = core.fpset(10)
        assert.matches("leadpipe.fpset %(0 people%)", tostring(fs))
        assert.has_error(function() fs:visit("upsert", false, false, true, {}, 0) end)
        assert.has_error(function() fs:visit("insert", false, false, true, "row", 0) end)
        assert.has_error(function() fs:visit("insert", false, false, true, {}, 65) end)
        assert.has_error(function() fs:put_old("id", {}) end)
        assert.has_error(function() fs:flags(42) end)
        fs:close()
        fs:close()
        assert.matches("closed", tostring(fs))
        assert.has_error(function() fs:stats() end, "attempt to use a closed fpset")
        assert.has_error(function() fs:flags("a") end)
        assert.are.same({ IN_A = 1, WHERE_A = 2, SEEN_B = 4, CHANGED = 8, B_ONLY = 16, OLD = 32,
                          REST_SEEN = 64 }, F)
    end)

    it("runs the three passes: insert, probe, rest", function()
        local fs = core.fpset(0) -- grows as needed
        local a = { { hashedEmail = "p1", s = 1 }, { hashedEmail = "p2", s = 2 },
                    { hashedEmail = "p3", s = 3 } }
        local b = { { hashedEmail = "p2", s = 2 }, { hashedEmail = "p3", s = 30 },
                    { hashedEmail = "p4", s = 4 } }
        local f = { "s" }
        for _, r in ipairs(a) do assert.is_false(visit(fs, "insert", false, false, true, r, f)) end
        assert.is_false(visit(fs, "insert", false, false, true, a[1], f)) -- a repeat: counted
        assert.are.equal(1, fs:stats().dups)
        assert.are.same({ false, true, true }, {
            visit(fs, "probe", true, true, true, b[1], f), -- unchanged
            visit(fs, "probe", true, true, true, b[2], f), -- changed
            visit(fs, "probe", true, true, true, b[3], f), -- only in B
        })
        assert.is_true(has(fs:flags("p3"), F.CHANGED))
        assert.is_true(has(fs:flags("p4"), F.B_ONLY))
        assert.is_true(fs:put_old("p3", "[[3]]"))
        assert.is_nil(fs:put_old("p3", "again"))   -- once
        assert.is_nil(fs:put_old("p2", "[[2]]"))   -- not changed
        assert.are.equal("[[3]]", fs:old("p3"))
        assert.is_nil(fs:old("p1"))
        assert.are.same({ true, false, true }, {
            visit(fs, "rest", true, true, true, a[1], f), -- only in A
            visit(fs, "rest", true, true, true, a[2], f),
            visit(fs, "rest", true, true, true, a[3], f), -- changed
        })
        assert.is_false(visit(fs, "rest", true, true, true, { hashedEmail = "zz" }, f))
        local st = fs:stats()
        assert.are.equal(1, st.strays)
        assert.are.equal(4, st.entries)
        assert.is_true(st.bytes >= 16 * st.capacity)
        -- where_ok and the only/changed choices
        local g = core.fpset(4)
        visit(g, "insert", false, false, false, a[3], f) -- A's row failed the where
        assert.is_false(visit(g, "probe", true, true, true, b[2], f)) -- so not marked changed
        assert.is_false(visit(g, "probe", true, false, false, b[3], f)) -- B-only failing the where
        fs:close()
        g:close()
    end)

    local decode_page = core.decode_page
    local srv
    setup(function() srv = assert(mock.start{ seed = 5 }) end)
    teardown(function() srv:stop() end)

    if not decode_page then
        pending("the page decoder's fingerprints (this core has no decode_page)")
        return
    end

    -- A results body of the fake: run day `day` of the daily audience, rows from `offset`.
    local function fake_page(offset)
        local leadpipe = require "leadpipe"
        local c = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
        local runs = assert(c:latest_runs(mock.AUDIENCE.daily, 2))
        local status, _, body = c.requester:request{
            path = "/v1/intent/audiences/" .. mock.AUDIENCE.daily .. "/runs/" .. runs[1].id .. "/results",
            query = { limit = 500, offset = offset }, raw = true,
        }
        c:close()
        assert.are.equal(200, status)
        return body
    end

    it("gives the decoder's fingerprints to the same rows as fs:visit, field by field", function()
        local bodies = { fake_page(0), fake_page(1500), page_of(AWKWARD) }
        for _, body in ipairs(bodies) do
            local fs = core.fpset(10)
            local pred = core.where{ fpset = fs, fpset_op = "insert", fpset_fields = FIELDS }
            local page, nrows, nkept = decode_page(body, pred)
            assert.are.equal(0, nkept)
            assert.are.equal(0, #page.data.results)
            local rows = assert(core.decode(body)).data.results
            assert.are.equal(#rows, nrows)
            assert.are.equal(#rows, fs:stats().entries)
            for _, row in ipairs(rows) do
                -- found by id, and the same fields: probing marks nothing changed
                assert.is_true(has(fs:flags(row), F.IN_A), json.encode(row))
                assert.is_false(visit(fs, "probe", true, true, true, row), json.encode(row))
            end
            local st = fs:stats()
            assert.are.equal(0, st.dups)
            assert.are.equal(#rows, st.entries)
            -- each field on its own: a row with that field changed is marked changed
            for i, f in ipairs(FIELDS) do
                local g = core.fpset(10)
                decode_page(body, core.where{ fpset = g, fpset_op = "insert", fpset_fields = { f } })
                -- (a row with an id: a row without one is matched by all of it)
                local row
                for k = 0, #rows - 1 do
                    row = rows[(i + k) % #rows + 1]
                    if type(row.hashedEmail) == "string" then break end
                end
                local copy = assert(core.decode(json.encode(row)))
                local parts = path.split(f)
                local t = copy
                for k = 1, #parts - 1 do
                    if type(t[parts[k]]) ~= "table" then t[parts[k]] = {} end
                    t = t[parts[k]]
                end
                t[parts[#parts]] = { "new" }
                assert.is_true(visit(g, "probe", false, true, true, copy, { f }), f)
                g:close()
            end
            fs:close()
        end
    end)

    it("keeps what the where keeps in the probe and rest passes, and nothing once closed", function()
        local body = fake_page(0)
        local fs = core.fpset(10)
        decode_page(body, core.where{ fpset = fs, fpset_op = "insert" })
        local g = core.fpset(10) -- empty: every row of B is B's only
        local _, n, kept = decode_page(body, core.where{ min_score = 80, fpset = g, fpset_op = "probe",
                                                         fpset_only = true })
        local want = 0
        for _, r in ipairs(core.decode(body).data.results) do
            if r.intent and r.intent.score and r.intent.score >= 80 then want = want + 1 end
        end
        assert.are.equal(500, n)
        assert.are.equal(want, kept)
        _, _, kept = decode_page(body, core.where{ fpset = fs, fpset_op = "rest", fpset_only = true })
        assert.are.equal(500, kept) -- none was seen in B
        fs:close()
        local pred = core.where{ fpset = g, fpset_op = "probe", fpset_only = true }
        g:close()
        _, n, kept = decode_page(body, pred)
        assert.are.equal(500, n)
        assert.are.equal(0, kept)
        assert.has_error(function() core.where{ fpset = g, fpset_op = "probe" } end)
        assert.has_error(function() core.where{ fpset = core.fpset(1), fpset_op = "merge" } end)
        assert.has_error(function()
            core.where{ fpset = core.fpset(1), fpset_op = "insert", fpset_fields = { "" } }
        end)
    end)
end)

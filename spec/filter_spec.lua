-- Specs for leadpipe.filter (predicates, where{}, combinators), with the iterator helpers
-- (leadpipe.iter) and dotted paths (leadpipe.path) they are used with.
-- Pure Lua: needs neither the C core nor the fake API.

local filter = require "leadpipe.filter"
local iter = require "leadpipe.iter"
local path = require "leadpipe.path"
local errors = require "leadpipe.errors"

-- Asserts that fn raises an error object of kind invalid_argument (with this message).
local function assert_invalid(fn, message)
    local ok, err = pcall(fn)
    assert.is_false(ok)
    assert.is_true(errors.is_error(err), "not an error object: " .. tostring(err))
    assert.are.equal("invalid_argument", err.kind)
    if message then assert.are.equal(message, err.message) end
end

-- Rows shaped as core.decode gives them: JSON nulls are absent keys.
local function rows()
    return {
        { -- 1: complete
            hashedEmail = "a1", fullName = "Ann Lee", seniority = "director", department = "marketing",
            businessEmail = "ann@example.com", phone = "+18005551212", linkedinUrl = "https://l/ann",
            company = { name = "Acme", domain = "acme.com" },
            geo = { country = "united states", countryCode = "US" },
            intent = { score = 84, topicOverlap = 2,
                matchedTopics = { { topicId = 117796, topicName = "Internet Marketing Automation" },
                                  { topicId = 5, topicName = "CRM" } } },
        },
        { -- 2: vp in Canada, high score, no email
            hashedEmail = "b2", seniority = "vp", department = "sales",
            businessEmail = "", phone = "   ",
            company = { name = "Beta" },
            geo = { country = "canada", countryCode = "CA" },
            intent = { score = 95, matchedTopics = {} },
        },
        { -- 3: unknown seniority, low score, no geo at all
            hashedEmail = "c3", seniority = "training", department = "Engineering",
            company = {},
            intent = { score = 40, matchedTopics = { { topicId = 7, topicName = "Kubernetes" } } },
        },
        { -- 4: nothing but an id (every nullable field was null)
            hashedEmail = "d4",
        },
        { -- 5: C-suite, upper case values, score exactly 80, intent without topics
            hashedEmail = "e5", seniority = "C_SUITE", department = "MARKETING",
            geo = { countryCode = "us" },
            intent = { score = 80 },
            company = { domain = "eta.io" },
        },
        { -- 6: owner, country by name only, score 100
            hashedEmail = "f6", seniority = "owner",
            geo = { country = "United States" },
            intent = { score = 100, matchedTopics = { { topicId = 117796 } } },
        },
    }
end

local function ids(list)
    local out = {}
    for i, r in ipairs(list) do out[i] = r.hashedEmail end
    return table.concat(out, ",")
end

local function select_rows(p)
    local out = {}
    for _, r in ipairs(rows()) do
        if p(r) then out[#out + 1] = r end
    end
    return ids(out)
end

-- An iterator over `list` that counts how often it was called.
local function counting_iter(list)
    local state = { calls = 0 }
    local i = 0
    state.iter = function()
        state.calls = state.calls + 1
        i = i + 1
        return list[i]
    end
    return state
end

describe("leadpipe.filter", function()
    after_each(function()
        filter.ranks = {}
        for k, v in pairs(filter.default_ranks) do filter.ranks[k] = v end
    end)

    describe("get()", function()
        it("reads top-level and nested dotted paths", function()
            local r = rows()[1]
            assert.are.equal("Ann Lee", path.get(r, "fullName"))
            assert.are.equal("Acme", path.get(r, "company.name"))
            assert.are.equal(84, path.get(r, "intent.score"))
        end)

        it("returns nil for a missing field, a missing object and a nil row", function()
            assert.is_nil(path.get(rows()[4], "company.name"))
            assert.is_nil(path.get(rows()[4], "geo.country"))
            assert.is_nil(path.get(rows()[3], "company.name"))
            assert.is_nil(path.get(nil, "company.name"))
        end)

        it("returns nil when a step is not a table", function()
            assert.is_nil(path.get(rows()[1], "fullName.first"))
            assert.is_nil(path.get(rows()[1], "intent.score.value"))
        end)

        it("indexes arrays with numeric segments", function()
            local r = rows()[1]
            assert.are.equal("CRM", path.get(r, "intent.matchedTopics.2.topicName"))
            assert.is_nil(path.get(r, "intent.matchedTopics.3.topicName"))
        end)

        it("raises on a path that is not a dotted path string", function()
            assert_invalid(function() path.get({}, 5) end,
                'get: path must be a dotted path string like "company.name", got number')
            assert_invalid(function() path.get({}, "") end)
            assert_invalid(function() path.get({}, "a..b") end)
            assert_invalid(function() path.get({}, ".a") end)
        end)
    end)

    describe("min_score() and max_score()", function()
        it("keep rows by intent score, inclusive", function()
            assert.are.equal("a1,b2,e5,f6", select_rows(filter.min_score(80)))
            assert.are.equal("b2,f6", select_rows(filter.min_score(85)))
            assert.are.equal("a1,c3,e5", select_rows(filter.max_score(84)))
        end)

        it("never keep a row without a score", function()
            assert.is_false(filter.min_score(0)(rows()[4]))
            assert.is_false(filter.max_score(100)(rows()[4]))
            assert.is_false(filter.min_score(0)({ intent = { score = "90" } }))
        end)

        it("raise on a threshold that is not a number", function()
            assert_invalid(function() filter.min_score("80") end,
                "min_score: n must be a number, got string")
            assert_invalid(function() filter.max_score(0 / 0) end,
                "max_score: n must be a number, got number")
        end)
    end)

    describe("seniority()", function()
        it("keeps rows whose seniority is in the set, case-insensitively", function()
            assert.are.equal("a1,b2", select_rows(filter.seniority("director", "vp")))
            assert.are.equal("e5", select_rows(filter.seniority("c_suite")))
            assert.are.equal("a1,e5", select_rows(filter.seniority({ "DIRECTOR", "c_suite" })))
        end)

        it("never keeps a row without a seniority", function()
            assert.is_false(filter.seniority("director")(rows()[4]))
        end)

        it("raises without values or with a non-string value", function()
            assert_invalid(function() filter.seniority() end,
                "seniority: values must not be empty (give at least one)")
            assert_invalid(function() filter.seniority("vp", 3) end,
                "seniority: value #2 must be a non-empty string, got number")
            assert_invalid(function() filter.seniority("") end,
                'seniority: value #1 must be a non-empty string, got ""')
        end)
    end)

    describe("seniority_at_least()", function()
        it("uses the documented rank: entry < senior < manager < director < vp < c_suite", function()
            local r = filter.ranks
            assert.is_true(r.entry < r.senior and r.senior < r.manager and r.manager < r.director
                and r.director < r.vp and r.vp < r.c_suite)
            assert.are.equal(r.c_suite, r.owner)
            assert.are.equal(r.c_suite, r.partner)
        end)

        it("keeps director and above, owner included", function()
            assert.are.equal("a1,b2,e5,f6", select_rows(filter.seniority_at_least("director")))
            assert.are.equal("b2,e5,f6", select_rows(filter.seniority_at_least("VP")))
            assert.are.equal("e5,f6", select_rows(filter.seniority_at_least("c_suite")))
        end)

        it("never keeps an unknown or missing seniority", function()
            local p = filter.seniority_at_least("entry")
            assert.is_false(p(rows()[3]))   -- "training"
            assert.is_false(p(rows()[4]))   -- absent
            assert.is_false(p({ seniority = 5 }))
        end)

        it("raises on an unknown level, listing the known ones", function()
            assert_invalid(function() filter.seniority_at_least("boss") end,
                'seniority_at_least: level must be a known seniority (c_suite, cxo, director, entry, '
                .. 'manager, owner, partner, senior, vp), got "boss"')
            assert_invalid(function() filter.seniority_at_least(nil) end,
                "seniority_at_least: level must be a seniority name (string), got nil")
        end)

        it("follows a replaced rank table", function()
            local old = filter.set_ranks{ Intern = 0, Training = 1, director = 5 }
            assert.are.equal(filter.default_ranks.director, old.director)
            local p = filter.seniority_at_least("training")
            assert.are.equal("a1,c3", select_rows(p))
            assert_invalid(function() filter.seniority_at_least("vp") end)
        end)

        it("rejects a bad rank table", function()
            assert_invalid(function() filter.set_ranks("x") end,
                "set_ranks: ranks must be a table of name = number, got string")
            assert_invalid(function() filter.set_ranks{ vp = "high" } end,
                "set_ranks: ranks must map 'vp' to a number, got string")
            assert_invalid(function() filter.set_ranks{} end, "set_ranks: ranks must not be empty")
            assert_invalid(function() filter.set_ranks{ 1 } end)
        end)
    end)

    describe("department()", function()
        it("matches case-insensitively and skips rows without one", function()
            assert.are.equal("a1,e5", select_rows(filter.department("marketing")))
            assert.are.equal("b2,c3", select_rows(filter.department("Sales", "engineering")))
        end)
    end)

    describe("country()", function()
        it("matches the code or the name, case-insensitively", function()
            assert.are.equal("a1,e5", select_rows(filter.country("US")))
            assert.are.equal("a1,f6", select_rows(filter.country("united states")))
            assert.are.equal("a1,b2,e5", select_rows(filter.country({ "us", "ca" })))
        end)

        it("never matches a row without geo", function()
            assert.is_false(filter.country("US")(rows()[3]))
            assert.is_false(filter.country("US")(rows()[4]))
        end)
    end)

    describe("topic()", function()
        it("matches a topic id", function()
            assert.are.equal("a1,f6", select_rows(filter.topic(117796)))
            assert.are.equal("a1,c3", select_rows(filter.topic(5, 7)))
        end)

        it("matches a topic name case-insensitively, and an id given as digits", function()
            assert.are.equal("a1", select_rows(filter.topic("internet marketing automation")))
            assert.are.equal("a1,f6", select_rows(filter.topic("117796")))
            assert.are.equal("c3", select_rows(filter.topic({ "KUBERNETES" })))
        end)

        it("skips rows without intent, without topics and with empty topics", function()
            local p = filter.topic(117796)
            assert.is_false(p(rows()[2]))
            assert.is_false(p(rows()[4]))
            assert.is_false(p(rows()[5]))
        end)

        it("raises on a value that is neither id nor name", function()
            assert_invalid(function() filter.topic(true) end,
                "topic: value #1 must be a topic id (number) or name (non-empty string), got boolean")
            assert_invalid(function() filter.topic() end,
                "topic: values must not be empty (give at least one topic id or name)")
        end)
    end)

    describe("has()", function()
        it("keeps rows with a non-empty value at the path", function()
            assert.are.equal("a1", select_rows(filter.has("businessEmail")))
            assert.are.equal("a1", select_rows(filter.has("phone")))
            assert.are.equal("a1", select_rows(filter.has("linkedinUrl")))
            assert.are.equal("a1,e5", select_rows(filter.has("company.domain")))
        end)

        it("needs every field when given several", function()
            assert.are.equal("a1", select_rows(filter.has("company.domain", "phone")))
            assert.are.equal("a1,e5", select_rows(filter.has({ "company.domain" })))
        end)

        it("treats empty strings, blank strings, empty tables and false as missing", function()
            local p = filter.has("x")
            assert.is_false(p({ x = "" }))
            assert.is_false(p({ x = " \t" }))
            assert.is_false(p({ x = {} }))
            assert.is_false(p({ x = false }))
            assert.is_true(p({ x = 0 }))
            assert.is_true(p({ x = { 1 } }))
            assert.is_false(filter.has("intent.matchedTopics")(rows()[2]))
        end)

        it("raises on a bad path", function()
            assert_invalid(function() filter.has("a..b") end,
                'has: field #1 must be a dotted path string like "company.domain", got "a..b"')
            assert_invalid(function() filter.has() end,
                "has: fields must not be empty (give at least one field path)")
        end)
    end)

    describe("all(), any() and negate()", function()
        it("combine predicates", function()
            local hi, dir = filter.min_score(80), filter.seniority("director", "vp")
            assert.are.equal("a1,b2", select_rows(filter.all(hi, dir)))
            assert.are.equal("a1,b2,e5,f6", select_rows(filter.any(hi, dir)))
            assert.are.equal("c3,d4", select_rows(filter.negate(hi)))
            assert.are.equal("e5,f6", select_rows(filter.all(hi, filter.negate(dir))))
        end)

        it("treat no predicates as true for all() and false for any()", function()
            assert.are.equal("a1,b2,c3,d4,e5,f6", select_rows(filter.all()))
            assert.are.equal("", select_rows(filter.any()))
        end)

        it("stop at the first deciding predicate", function()
            local called = 0
            local function spy() called = called + 1; return true end
            filter.all(function() return false end, spy)({})
            filter.any(function() return true end, spy)({})
            assert.are.equal(0, called)
        end)

        it("accept callable tables and raise on anything else", function()
            local callable = setmetatable({}, { __call = function(_, r) return r.ok end })
            assert.is_true(filter.all(callable)({ ok = true }))
            assert_invalid(function() filter.all(filter.min_score(1), "x") end,
                "all: predicate #2 must be a function, got string")
            assert_invalid(function() filter.any(nil) end, "any: predicate #1 must be a function, got nil")
            assert_invalid(function() filter.negate({}) end,
                "negate: predicate must be a function, got table")
        end)
    end)

    describe("where()", function()
        it("builds the same predicates from a table", function()
            assert.are.equal("a1,b2", select_rows(filter.where{ min_score = 80,
                seniority = { "director", "vp" } }))
            assert.are.equal("a1,b2,e5,f6", select_rows(filter.where{ seniority_at_least = "director" }))
            assert.are.equal("a1", select_rows(filter.where{ department = "marketing", has = "phone" }))
            assert.are.equal("e5", select_rows(filter.where{ country = "US", max_score = 80 }))
            assert.are.equal("a1,f6", select_rows(filter.where{ topic = { 117796, "nothing" } }))
            assert.are.equal("b2", select_rows(filter.where{ country = { "CA" }, min_score = 90 }))
        end)

        it("matches every row when empty and passes a function through", function()
            assert.are.equal("a1,b2,c3,d4,e5,f6", select_rows(filter.where{}))
            local p = function() return false end
            assert.are.equal(p, filter.where(p))
        end)

        it("names the valid keys on an unknown key", function()
            assert_invalid(function() filter.where{ min_scor = 80 } end,
                'where: "min_scor" is not a where key (valid keys: country, department, has, max_score, '
                .. 'min_score, seniority, seniority_at_least, topic)')
            assert_invalid(function() filter.where{ 80 } end)
        end)

        it("names the key and the rule on a wrong type", function()
            assert_invalid(function() filter.where{ min_score = "80" } end,
                "where: min_score must be a number, got string")
            assert_invalid(function() filter.where{ seniority = 3 } end,
                "where: seniority must be a non-empty string or a non-empty list of non-empty strings, "
                .. "got number")
            assert_invalid(function() filter.where{ department = {} } end,
                "where: department must be a non-empty string or a non-empty list of non-empty strings, "
                .. "got a table that is not such a list")
            assert_invalid(function() filter.where{ country = { "US", 1 } } end)
            assert_invalid(function() filter.where{ seniority_at_least = { "vp" } } end,
                "where: seniority_at_least must be a string, got table")
            assert_invalid(function() filter.where{ topic = { true } } end)
            assert_invalid(function() filter.where("x") end,
                "where: spec must be a table (or a predicate function), got string")
        end)

        it("rejects an unknown seniority_at_least level", function()
            assert_invalid(function() filter.where{ seniority_at_least = "boss" } end,
                'where: seniority_at_least must be a known seniority (c_suite, cxo, director, entry, '
                .. 'manager, owner, partner, senior, vp), got "boss"')
        end)

        -- where{} is generated Lua source (leadpipe.predicate); these rows meet each of its
        -- shortcuts with values of the wrong type, missing objects and blank strings.
        it("rejects rows with missing or wrongly typed nested values, never raising", function()
            local p = filter.where{ country = { "US", "united states" }, has = "businessEmail" }
            local email = "ann@example.com"
            for _, row in ipairs{ false, true, 5, "row", function() end, {},
                { businessEmail = email },
                { businessEmail = email, geo = "US" },
                { businessEmail = email, geo = 5 },
                { businessEmail = email, geo = true },
                { businessEmail = email, geo = {} },
                { businessEmail = email, geo = { countryCode = 5, country = { "us" } } },
                { businessEmail = email, geo = { countryCode = "CA", country = "canada" } },
                { geo = { countryCode = "US" } },
                { businessEmail = false, geo = { countryCode = "US" } },
                { businessEmail = "", geo = { countryCode = "US" } },
                { businessEmail = " \t\r\n\v\f", geo = { countryCode = "US" } },
                { businessEmail = {}, geo = { countryCode = "US" } },
            } do
                assert.is_false(p(row))
            end
            assert.is_false(p(nil))
            for _, row in ipairs{
                { businessEmail = email, geo = { countryCode = "US" } },
                { businessEmail = email, geo = { countryCode = "us", country = "canada" } },
                { businessEmail = email, geo = { countryCode = 5, country = "United States" } },
                { businessEmail = email, geo = { countryCode = "CA", country = "us" } },
                { businessEmail = "  a", geo = { countryCode = "US" } },
                { businessEmail = "\tx\t", geo = { countryCode = "US" } },
                { businessEmail = "+1", geo = { countryCode = "US" } },
                { businessEmail = "\195\169", geo = { countryCode = "US" } },
                { businessEmail = 0, geo = { countryCode = "US" } },
                { businessEmail = true, geo = { countryCode = "US" } },
                { businessEmail = { "x" }, geo = { countryCode = "US" } },
                { businessEmail = { a = false }, geo = { countryCode = "US" } },
            } do
                assert.is_true(p(row))
            end
        end)

        it("walks has paths through missing and non-table steps, and numeric segments", function()
            local p = filter.where{ has = { "company.domain", "intent.matchedTopics.1.topicName" } }
            local topics = { { topicName = "CRM" } }
            local function row(company, mt)
                return { company = company, intent = { matchedTopics = mt } }
            end
            assert.is_true(p(row({ domain = "a.io" }, topics)))
            assert.is_true(p(row({ domain = "a.io" }, { ["1"] = { topicName = "CRM" } })))
            assert.is_false(p(row(nil, topics)))
            assert.is_false(p(row("acme", topics)))
            assert.is_false(p(row({ domain = " " }, topics)))
            assert.is_false(p(row({ domain = "a.io" }, {})))
            assert.is_false(p(row({ domain = "a.io" }, { "CRM" })))
            assert.is_false(p(row({ domain = "a.io" }, { { topicName = "" } })))
            assert.is_false(p({ company = { domain = "a.io" }, intent = 5 }))
        end)

        it("rejects scores and set values of the wrong type", function()
            local p = filter.where{ min_score = 80, seniority = { "director", "vp" } }
            assert.is_true(p({ seniority = "VP", intent = { score = 80 } }))
            assert.is_true(p({ seniority = "Director", intent = { score = 80.5 } }))
            for _, row in ipairs{
                { seniority = "vp" }, { seniority = "vp", intent = "80" },
                { seniority = "vp", intent = { score = "90" } },
                { seniority = "vp", intent = { score = 0 / 0 } },
                { seniority = "vp", intent = { score = 79 } },
                { seniority = 5, intent = { score = 90 } },
                { seniority = { "vp" }, intent = { score = 90 } },
                { intent = { score = 90 } },
            } do
                assert.is_false(p(row))
            end
        end)

        it("keeps the rows the closures keep, for many specs over awkward rows", function()
            -- rows drawn from a fixed pseudo-random sequence (Park-Miller: exact in doubles,
            -- so the same rows on every Lua), each field a value of some type or a table
            local seed = 7
            local function rnd(n)
                seed = seed * 16807 % 2147483647
                return seed % n + 1
            end
            local strs = { "", " ", "\t\n", " x", "US", "us", "united states", "Canada", "director",
                "VP", "Marketing", "a@b.c", "+1", "\195\169", "5", "owner", "CRM" }
            local keys = { "countryCode", "country", "score", "matchedTopics", "domain", "topicId",
                "topicName", "a", 1, 2, "1" }
            local function value(depth)
                local k = rnd(14)
                if k <= 3 and depth < 3 then
                    local t = {}
                    for _ = 1, rnd(5) - 1 do t[keys[rnd(#keys)]] = value(depth + 1) end
                    return t
                end
                if k <= 8 then return strs[rnd(#strs)] end
                if k == 9 then return rnd(121) - 1 end
                if k == 10 then return rnd(100) / 3 end
                if k == 11 then return k == 11 end
                if k == 12 then return 0 / 0 end
                if k == 13 then return false end
                return nil
            end
            local awkward = { false, 5, "row", function() end }
            for i = 1, 4000 do
                local r = {}
                for _, f in ipairs{ "seniority", "department", "geo", "intent", "businessEmail", "phone",
                    "company", "x" } do
                    r[f] = value(0)
                end
                if rnd(2) == 1 then r.geo = { countryCode = value(1), country = value(1) } end
                if rnd(2) == 1 then
                    r.intent = { score = value(1),
                        matchedTopics = { { topicId = rnd(3), topicName = value(2) }, value(1) } }
                end
                if rnd(2) == 1 then r.company = { domain = value(1) } end
                if rnd(3) == 1 then r.x = { value(1), { a = value(2) } } end
                if rnd(4) == 1 then r.x = { ["1"] = { a = value(2) } } end
                awkward[#awkward + 1] = r
                if i % 500 == 0 then awkward[#awkward + 1] = rows()[i / 500] end
            end
            local many = {}
            for i = 1, 11 do many[i] = ({ "phone", "businessEmail", "x", "company.domain" })[i % 4 + 1] end
            local specs = {
                { country = "US", has = "businessEmail" }, { country = { "us", "CANADA" } },
                { has = { "phone", "company.domain", "x.1" } }, { has = "x.1.a" }, { min_score = 5 },
                { max_score = 50, seniority = { "vp", "Director" } }, { has = "x.2" },
                { seniority_at_least = "director", department = "marketing" }, { has = many },
                { topic = { 1, "crm" }, has = "x" }, { has = "intent.matchedTopics.1.topicName" },
                { country = { "united states", "us" }, has = { "businessEmail", "phone" }, topic = { 1, 2 } },
                { min_score = 1, max_score = 90, has = "company.domain", department = { "marketing", "us" } },
            }
            for n, spec in ipairs(specs) do
                local fast, reference = filter.where(spec), filter.where_closures(spec)
                local kept = 0
                for i, row in ipairs(awkward) do
                    local want = reference(row)
                    assert.are.equal(want, fast(row), ("spec %d, row %d"):format(n, i))
                    if want then kept = kept + 1 end
                end
                assert.is_truthy(kept > 0, "spec " .. n .. " keeps no row")
            end
        end)
    end)

    describe("filter()", function()
        it("keeps matching rows from an iterator function", function()
            local src = counting_iter(rows())
            local out = iter.collect(iter.filter(src.iter, filter.min_score(80)))
            assert.are.equal("a1,b2,e5,f6", ids(out))
        end)

        it("takes an array of rows and a where table", function()
            assert.are.equal("a1,b2", ids(iter.collect(iter.filter(rows(), { min_score = 80,
                seniority = { "director", "vp" } }))))
        end)

        it("ends cleanly on an empty iterator", function()
            local it = iter.filter(function() return nil end, filter.min_score(1))
            assert.is_nil(it())
            assert.is_nil(it())
            assert.are.same({}, iter.collect(iter.filter({}, filter.all())))
        end)

        it("works on rows decoded from lines, as from a JSONL file", function()
            local lines = { "a,84", "b,12", "c," }
            local i = 0
            local function line_rows()
                i = i + 1
                local l = lines[i]
                if not l then return nil end
                local id, score = l:match("^(%w+),(%d*)$")
                return { hashedEmail = id, intent = score ~= "" and { score = tonumber(score) } or nil }
            end
            assert.are.equal("a", ids(iter.collect(iter.filter(line_rows, filter.min_score(50)))))
        end)

        it("raises on misuse", function()
            assert_invalid(function() iter.filter(42, filter.all()) end,
                "filter: iter must be an iterator function or an array of rows, got number")
            assert_invalid(function() iter.filter({}, 1) end, "filter: p must be a function, got number")
        end)
    end)

    describe("map()", function()
        it("transforms rows and skips nil results", function()
            local names = iter.collect(iter.map(rows(), function(r)
                return path.get(r, "company.name")
            end))
            assert.are.same({ "Acme", "Beta" }, names)
        end)

        it("raises without a function", function()
            assert_invalid(function() iter.map({}, "x") end, "map: fn must be a function, got string")
        end)
    end)

    describe("take()", function()
        it("yields at most n rows and never pulls one more", function()
            local src = counting_iter(rows())
            assert.are.equal("a1,b2", ids(iter.collect(iter.take(src.iter, 2))))
            assert.are.equal(2, src.calls)
        end)

        it("stops at the end of a short iterator and for n = 0", function()
            assert.are.equal(6, #iter.collect(iter.take(rows(), 100)))
            local src = counting_iter(rows())
            assert.are.same({}, iter.collect(iter.take(src.iter, 0)))
            assert.are.equal(0, src.calls)
        end)

        it("raises on a bad n", function()
            assert_invalid(function() iter.take({}, -1) end,
                "take: n must be a non-negative integer, got -1")
            assert_invalid(function() iter.take({}, 1.5) end)
            assert_invalid(function() iter.take({}, "3") end,
                "take: n must be a non-negative integer, got string")
        end)
    end)

    describe("collect() and count()", function()
        it("gather and count every row", function()
            assert.are.equal(6, #iter.collect(rows()))
            assert.are.equal(6, iter.count(rows()))
            assert.are.equal(4, iter.count(iter.filter(rows(), filter.min_score(80))))
        end)

        it("handle an empty iterator", function()
            assert.are.same({}, iter.collect(function() end))
            assert.are.equal(0, iter.count(function() end))
        end)

        it("raise on something that is not an iterator", function()
            assert_invalid(function() iter.count("rows") end,
                "count: iter must be an iterator function or an array of rows, got string")
            assert_invalid(function() iter.collect(nil) end)
        end)
    end)

    describe("top()", function()
        it("returns the best n by intent score, best first", function()
            assert.are.equal("f6,b2,a1", ids(iter.top(rows(), 3)))
        end)

        it("ranks rows without a score lowest", function()
            assert.are.equal("f6,b2,a1,e5,c3,d4", ids(iter.top(rows(), 10)))
        end)

        it("keeps input order between equal keys", function()
            local list = {}
            for i = 1, 20 do list[i] = { hashedEmail = "r" .. i, intent = { score = i % 3 } } end
            assert.are.equal("r2,r5,r8,r11,r14", ids(iter.top(list, 5)))
            assert.are.equal("r3,r6,r9", ids(iter.top(list, 3, function(r) return -r.intent.score end)))
        end)

        it("agrees with a full stable sort on many rows", function()
            local list, seed = {}, 7
            for i = 1, 500 do
                seed = (seed * 1103515245 + 12345) % 2147483648
                local s = seed % 101
                list[i] = { hashedEmail = "r" .. i, intent = s ~= 100 and { score = s } or nil }
            end
            local sorted = {}
            for i, r in ipairs(list) do
                sorted[i] = { r = r, i = i, s = r.intent and r.intent.score or -1 }
            end
            table.sort(sorted, function(a, b)
                if a.s ~= b.s then return a.s > b.s end
                return a.i < b.i
            end)
            local expect = {}
            for i = 1, 25 do expect[i] = sorted[i].r end
            assert.are.equal(ids(expect), ids(iter.top(list, 25)))
        end)

        it("takes a dotted path or a function as the key", function()
            assert.are.equal("b2,a1", ids(iter.top(rows(), 2, "company.name")))
            local overlap = function(r) return r.intent and r.intent.topicOverlap end
            assert.are.equal("a1", ids(iter.top(rows(), 1, overlap)))
        end)

        it("returns an empty list for an empty iterator and for n = 0", function()
            assert.are.same({}, iter.top(function() end, 5))
            assert.are.same({}, iter.top(rows(), 0))
        end)

        it("raises on mixed key types and on misuse", function()
            assert_invalid(function()
                iter.top({ { k = 1 }, { k = "a" } }, 2, "k")
            end, "top: key values must all be numbers or all strings, got both")
            assert_invalid(function() iter.top({ { k = {} } }, 2, "k") end,
                "top: key values must be numbers or strings, got table")
            assert_invalid(function() iter.top({}, 2, 3) end,
                "top: key must be a function or a dotted path string, got number")
            assert_invalid(function() iter.top({}, -2) end)
        end)
    end)
end)

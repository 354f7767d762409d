-- Differential specs of leadpipe.core's decoders: core.decode (simdjson when built with it)
-- and core.decode_cjson (lua-cjson) must give deep-equal values (number subtypes, the sign of
-- zero and core.array_mt included) or the same error, over every page the fake API serves
-- and over an adversarial corpus; core.decode_page with a core.where() predicate must keep
-- exactly the rows that filter.where keeps from a full decode.
local core = require "leadpipe.core"
local filter = require "leadpipe.filter"
local mock = require "leadpipe.mock"

local math_type = math.type
-- Under valgrind (make valgrind) the heaviest loops run on less data.
local LIGHT = os.getenv("LEADPIPE_VALGRIND") ~= nil
local array_mt = core.array_mt

-- ===== helpers ============================================================================

-- Whether a and b are deep-equal as decoded values; else false and where they differ.
local function same(a, b, path)
    path = path or "$"
    if type(a) ~= type(b) then
        return false, ("%s: %s vs %s"):format(path, type(a), type(b))
    end
    if type(a) == "number" then
        if math_type and math_type(a) ~= math_type(b) then
            return false, ("%s: %s vs %s"):format(path, math_type(a), math_type(b))
        end
        if a ~= b then return false, ("%s: %s vs %s"):format(path, tostring(a), tostring(b)) end
        if a == 0 and 1 / a ~= 1 / b then return false, path .. ": sign of zero" end
        return true
    end
    if type(a) ~= "table" then
        if a ~= b then return false, ("%s: %q vs %q"):format(path, tostring(a), tostring(b)) end
        return true
    end
    local ma, mb = getmetatable(a), getmetatable(b)
    if ma ~= mb then return false, path .. ": metatables differ" end
    if ma ~= nil and ma ~= array_mt then return false, path .. ": unknown metatable" end
    for k, v in pairs(a) do
        local ok, where = same(v, b[k], path .. "." .. tostring(k))
        if not ok then return false, where end
    end
    for k in pairs(b) do
        if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing on the left" end
    end
    return true
end

local function assert_same(a, b, what)
    local ok, where = same(a, b)
    assert(ok, (what or "values") .. " differ at " .. tostring(where))
end

-- Every table is an array with array_mt (keys exactly 1..n) or an object without it.
local function assert_shape(v, path)
    path = path or "$"
    if type(v) ~= "table" then return end
    if getmetatable(v) == array_mt then
        local n = 0
        for _ in pairs(v) do n = n + 1 end
        assert(n == #v, path .. ": array with holes or extra keys")
    else
        assert(getmetatable(v) == nil, path .. ": object with a metatable")
        for k in pairs(v) do assert(type(k) == "string", path .. ": object key not a string") end
    end
    for k, x in pairs(v) do assert_shape(x, path .. "." .. tostring(k)) end
end

-- Decodes text with both decoders and demands the same outcome; returns it.
local function both(text)
    local a, ea = core.decode(text)
    local b, eb = core.decode_cjson(text)
    if a == nil or b == nil then
        assert.is_nil(a, "decode succeeded where decode_cjson failed: " .. tostring(eb))
        assert.is_nil(b, "decode_cjson succeeded where decode failed: " .. tostring(ea))
        assert.is_string(ea)
        assert.is_truthy(ea:find("^decode: "), ea)
        assert.are.equal(eb, ea)
        return nil, ea
    end
    assert_same(a, b, "decode and decode_cjson")
    assert_shape(a)
    return a
end

local quote = require("spec.support.shell").quote

-- GETs url with curl; returns status, body.
local function get(url, key, extra)
    local out = os.tmpname()
    local cmd = ("curl -s --max-time 30 %s -H %s -o %s -w '%%{http_code}' %s"):format(
        extra or "", quote("x-api-key: " .. key), quote(out), quote(url))
    local p = assert(io.popen(cmd))
    local code = p:read("*a")
    p:close()
    local f = assert(io.open(out, "rb"))
    local body = f:read("*a")
    f:close()
    os.remove(out)
    return tonumber(code), body
end

local function post(url, key)
    local p = assert(io.popen(("curl -s --max-time 30 -X POST -H %s %s"):format(
        quote("x-api-key: " .. key), quote(url))))
    local body = p:read("*a")
    p:close()
    return body
end

-- ===== the fake API's pages ===============================================================

-- Every body shape the fake serves: { name, status, body }, fetched once.
local pages
local function fetch_pages()
    if pages then return pages end
    pages = {}
    local srv = assert(mock.start{ seed = 3, gzip = true })
    local slow = assert(mock.start{ seed = 4, queued_ms = 60000 })
    local function add(name, status, body)
        pages[#pages + 1] = { name = name, status = status, body = body }
    end
    for _, name in ipairs{ "small", "medium", "empty", "failing", "large" } do
        local base = srv.url .. "/v1/intent/audiences/" .. mock.AUDIENCE[name] .. "/runs"
        local created = post(base, srv.api_key)
        add(name .. " created", 201, created)
        local run = assert(created:match('"id":"([^"]+)"'), created)
        for _, limit in ipairs{ 1, 100, 500 } do
            for _, gz in ipairs{ "", "--compressed" } do
                local url = ("%s/%s/results?limit=%d&offset=%d"):format(base, run, limit, limit * 3)
                local status, body = get(url, srv.api_key, gz)
                add(("%s limit %d %s"):format(name, limit, gz), status, body)
            end
        end
        add(name .. " stats", get(base .. "/" .. run .. "/stats", srv.api_key))
        add(name .. " runs", get(base, srv.api_key))
    end
    local base = slow.url .. "/v1/intent/audiences/" .. mock.AUDIENCE.small .. "/runs"
    local run = assert(post(base, slow.api_key):match('"id":"([^"]+)"'))
    add("pending results", get(base .. "/" .. run .. "/results?limit=10", slow.api_key))
    add("pending stats", get(base .. "/" .. run .. "/stats", slow.api_key, "--compressed"))
    add("unauthorized", get(base, "sk_wrong"))
    add("not found", get(slow.url .. "/v1/nowhere", slow.api_key))
    add("bad limit", get(base .. "/" .. run .. "/results?limit=0", slow.api_key))
    add("bad run id", get(base .. "/nope/results", slow.api_key))
    srv:stop()
    slow:stop()
    return pages
end

-- ===== the adversarial corpus =============================================================

local function deep(n, open, close, inner)
    return open:rep(n) .. (inner or "") .. close:rep(n)
end

local function deep_objects(n)
    return ('{"a":'):rep(n) .. "1" .. ("}"):rep(n)
end

local CORPUS = {
    '{"a":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\u0000z"}',
    '["\\ud83d\\ude00", "\\uD83D\\uDE00"]',
    '["\\ud800"]', '["\\udc00"]', '["a\\ud800b"]', '["\\ud800\\ud800\\udc00"]', '["\\udbff"]',
    '["\\ud800\\u0041"]', '["\\\\ud800"]',
    '["a\255b"]', '["\192\175"]', '["\224\128\128"]', '["\237\160\128"]', '["\244\144\128\128"]',
    '["\240\159\152"]', '["\226\130"]', '["ok \226\130\172 \240\159\152\128"]', '{"k\255":1}',
    '["a\1b\31c"]', '["tab\there"]',
    "[8.4e1]", "[84.0]", "[1.0]", "[1e3]", "[1E+2]", "[1e-2]", "[0.1]", "[-1.5e-7]", "[123.456]",
    "[1e400]", "[-1e400]", "[1e-400]", "[1.7976931348623157e308]", "[4.9e-324]",
    "[0]", "[-0]", "[-0.0]", "[0.0]", "[0e0]",
    "[9007199254740993]", "[-9007199254740993]", "[9223372036854775807]", "[-9223372036854775808]",
    "[9223372036854775808]", "[-9223372036854775809]", "[18446744073709551615]",
    "[18446744073709551616]", "[123456789012345678901234567890]", "[1" .. ("0"):rep(400) .. "]",
    "[01]", "[1.]", "[.5]", "[+1]", "[-]", "[1e]", "[0x10]", "[NaN]", "[Infinity]", "[-Infinity]",
    "[1.5.5]", "[--1]",
    deep(999, "[", "]"), deep(1000, "[", "]"), deep(1001, "[", "]"),
    deep_objects(1000), deep_objects(1001),
    deep(500, "[", "]", "{}"), deep(3, "[", "]", deep_objects(997)),
    '{"a":[],"b":{},"c":[[]],"d":[{}],"e":{"f":[]},"g":[[],[[]],{}]}',
    '[[], [ ], [\n\t], {"x": [ ]}]', '["[]", "{}", "[ ]"]',
    '[null]', '[null, null]', '[1, null, 2, null]', '{"a":null}', '{"a":{"b":null}}',
    '{"a":[null,{"b":null,"c":[null]}]}',
    "\239\187\191[1]", "\239\187\191", "\239\187\191{}", " \239\187\191[1]",
    " \t\n\r[1] \t\n\r", "[1] x", "[1],", "[1]]", "{} {}", "[1,]", '{"a":1,}', "[1 2]", "{",
    "[", '{"a"}', '{"a":}', "{1:2}", "", "   ", "\0", "[1]\0",
    "null", "true", "false", "0", "-0", "1.5", '"x"', '""', "84", "1e400",
    '{"a":1,"a":2}', '{"a":1,"a":null}', '{"a":null,"a":1}', '{"a":{"x":1},"a":[2]}',
    '["tru"]', "[nul]", "[True]", '{"a" 1}', "['a']", '{"a":1 "b":2}',
    '["unterminated]', '["bad \\x escape"]', '["\\u12"]', '["\\uZZZZ"]',
}

local function huge_string(n)
    return ('["%s"]'):format(("abcdefgh\\n\\u00e9"):rep(n))
end

-- ===== specs ==============================================================================

describe("core decoders", function()
    it("name the decoder in use", function()
        assert.is_truthy(core.decoder == "simdjson" or core.decoder == "cjson")
        assert.are.equal(core.decoder == "simdjson", core.decode_page ~= nil)
        assert.is_function(core.decode_cjson)
        if core.decoder == "cjson" then assert.are.equal(core.decode_cjson, core.decode) end
    end)

    it("agree on every page shape the fake API serves", function()
        for _, page in ipairs(fetch_pages()) do
            local v, err = both(page.body)
            assert(v ~= nil, page.name .. ": " .. tostring(err))
            assert.is_table(v.meta, page.name)
            if v.data and v.data.results then
                assert.are.equal(array_mt, getmetatable(v.data.results), page.name)
                for _, row in ipairs(v.data.results) do
                    local t = row.intent and row.intent.matchedTopics
                    if t then assert.are.equal(array_mt, getmetatable(t)) end
                    if math_type and row.intent then
                        assert.are.equal("integer", math_type(row.intent.score))
                    end
                end
            end
        end
        assert.is_truthy(#fetch_pages() >= 40)
    end)

    it("agree on every text of the adversarial corpus", function()
        for _, text in ipairs(CORPUS) do both(text) end
    end)

    it("agree on huge strings and long arrays", function()
        local n = LIGHT and 20000 or 200000
        local v = both(huge_string(n))
        assert.are.equal(n * 11, #v[1])
        local list = {}
        for i = 1, n / 2 do list[i] = i % 7 == 0 and "null" or tostring(i) end
        local a = both("[" .. table.concat(list, ",") .. "]")
        assert.are.equal(n / 2 - math.floor(n / 2 / 7), #a)
    end)

    it("refuse bad UTF-8 and lone surrogates, naming the field, and replace nothing", function()
        local function fails(text, want)
            local v, err = both(text)
            assert.is_nil(v, text)
            assert.are.equal("decode: " .. want, err)
        end
        fails('["a\255b"]', "invalid UTF-8 in a string at character 4")
        fails('{"firstName":"a\255b"}', 'invalid UTF-8 in the value of "firstName" at character 16')
        fails('{"hashedEmail":"\\ud800"}',
            'unpaired surrogate escape \\ud800 in the value of "hashedEmail" at character 17')
        fails('{"a":1,"company":{"name":"x\\udc00"}}',
            'unpaired surrogate escape \\udc00 in the value of "name" at character 28')
        fails('["\\ud800\\u0041"]', "unpaired surrogate escape \\ud800 in a string at character 3")
        fails('["\\ud800\\ud800\\udc00"]', "unpaired surrogate escape \\ud800 in a string at character 3")
        fails('["\192\175"]', "invalid UTF-8 in a string at character 3")        -- overlong
        fails('["\237\160\128"]', "invalid UTF-8 in a string at character 3")   -- encoded surrogate
        fails('["\240\159\152"]', "invalid UTF-8 in a string at character 3")   -- truncated
        fails('{"k\255":1}', "invalid UTF-8 in an object key at character 4")
        fails('{"k":["ok","\\udbff"]}',
            'unpaired surrogate escape \\udbff in the value of "k" at character 13')
        assert.are.equal("\240\159\152\128", both('["\\ud83d\\ude00"]')[1])
        assert.are.equal("\240\144\128\128", both('["\\ud800\\udc00"]')[1])
        assert.are.equal("\\ud800", both('["\\\\ud800"]')[1])
        assert.are.equal("a\1b", both('["a\1b"]')[1])
    end)

    it("read a fraction or exponent as a float and an integer literal as an integer", function()
        assert.are.equal(84, both("[8.4e1]")[1])
        assert.are.equal(1000, both("[1e3]")[1])
        assert.are.equal(0, both("[-0]")[1])
        assert.are.equal(1 / 0, 1 / both("[-0]")[1])
        assert.are.equal(-1 / 0, 1 / both("[-0.0]")[1])
        assert.are.equal(0, both("[1e-400]")[1])
        if math_type then
            assert.are.equal("float", math_type(both("[8.4e1]")[1]))
            assert.are.equal("float", math_type(both("[1.0]")[1]))
            assert.are.equal("integer", math_type(both("[-0]")[1]))
            assert.are.equal(9007199254740993, both("[9007199254740993]")[1])
            assert.are.equal("integer", math_type(both("[9007199254740993]")[1]))
            assert.are.equal(math.maxinteger, both("[9223372036854775807]")[1])
            assert.are.equal(math.mininteger, both("[-9223372036854775808]")[1])
            assert.are.equal("float", math_type(both("[9223372036854775808]")[1]))
            assert.are.equal(2 ^ 64, both("[18446744073709551616]")[1])
            assert.are.equal("float", math_type(both("[18446744073709551616]")[1]))
        else
            assert.are.equal(2 ^ 53, both("[9007199254740993]")[1])
            assert.are.equal(2 ^ 64, both("[18446744073709551616]")[1])
        end
    end)

    it("fail alike on out-of-range and malformed numbers", function()
        local _, err = both("[1e400]")
        assert.are.equal("decode: number out of range at character 2", err)
        _, err = both("1" .. ("0"):rep(400))
        assert.are.equal("decode: number out of range at character 1", err)
        for _, t in ipairs{ "[01]", "[1.]", "[-]", "[1e]", "[--1]" } do
            _, err = both(t)
            assert.are.equal("decode: invalid number at character 2", err, t)
        end
        for _, t in ipairs{ "[.5]", "[+1]", "[0x10]", "[NaN]", "[Infinity]" } do
            assert.is_nil((both(t)), t)
        end
    end)

    it("limit nesting to 1000 levels alike", function()
        assert.is_table(both(deep(1000, "[", "]")))
        assert.is_table(both(deep_objects(1000)))
        local _, err = both(deep(1001, "[", "]"))
        assert.are.equal("decode: nested too deeply at character 1001", err)
        _, err = both(deep_objects(1001))
        assert.is_truthy(err:find("nested too deeply", 1, true))
    end)

    it("skip a BOM, let the last duplicate key win and take any top-level value", function()
        assert.are.equal(1, both("\239\187\191[1]")[1])
        assert.is_nil((both(" \239\187\191[1]")))
        assert.are.equal(2, both('{"a":1,"a":2}').a)
        assert.is_nil(both('{"a":1,"a":null}').a)
        assert.are.equal(1, both('{"a":null,"a":1}').a)
        assert.are.equal(array_mt, getmetatable(both('{"a":{"x":1},"a":[2]}').a))
        assert.are.equal(84, both("84"))
        assert.are.equal("", both('""'))
        assert.are.equal(false, both("false"))
        local _, err = both("null")
        assert.are.equal("decode: the document is null", err)
        assert.is_nil((both("[1] x")))
        assert.is_nil((both("")))
    end)

    it("drop nulls at every depth and mark every array", function()
        local v = both('{"a":[null,{"b":null,"c":[null]}],"d":[],"e":{}}')
        assert.are.equal(1, #v.a)
        assert.is_nil(next(v.a[1].c))
        assert.are.equal(array_mt, getmetatable(v.a[1].c))
        assert.are.equal(array_mt, getmetatable(v.d))
        assert.is_nil(getmetatable(v.e))
    end)

    it("decode while a finaliser decodes too", function()
        if not (_VERSION ~= "Lua 5.1" or newproxy) then return end
        local text = fetch_pages()[3].body
        local want = core.decode(text)
        local seen = 0
        local function finaliser() seen = seen + 1; assert_same(want, core.decode(text)) end
        for _ = 1, 5 do
            for _ = 1, 200 do
                if _VERSION == "Lua 5.1" then
                    local u = newproxy(true) -- luacheck: ignore newproxy
                    getmetatable(u).__gc = finaliser
                else
                    setmetatable({}, { __gc = finaliser })
                end
            end
            assert_same(want, core.decode(text))
        end
        collectgarbage()
        collectgarbage()
        assert.is_truthy(seen > 0)
    end)

    it("raise only on a non-string argument", function()
        assert.has_error(function() core.decode(nil) end)
        assert.has_error(function() core.decode_cjson({}) end)
        assert.has_error(function() core.decode(84) end)
    end)
end)

-- ===== decode_page ========================================================================

-- A page of awkward rows for the predicates: every rule meets wrong types, case, nulls.
local AWKWARD = [==[{"data":{"results":[
 null, 5, "row", [1,2], {},
 {"seniority":"DIRECTOR","department":"Marketing","geo":{"countryCode":"us"},"intent":{"score":80}},
 {"seniority":"vp","intent":{"score":80.5,"matchedTopics":[null,{"topicId":117796.0}]}},
 {"seniority":5,"intent":"x","geo":[],"department":null,"phone":"   "},
 {"seniority":"Entry","intent":{"score":"90"},"geo":{"country":"United States"},"phone":"\t5"},
 {"seniority":"c_suite","intent":[],"company":{"domain":""},"phone":false},
 {"seniority":"manager","intent":{"score":9007199254740993,"matchedTopics":{"topicId":1}}},
 {"seniority":"Training","intent":{"score":-0.0,"matchedTopics":[{"topicId":"117796"}]}},
 {"seniority":"director","seniority":null,"intent":{"score":99,"score":null}},
 {"seniority":null,"seniority":"VP","company":{"domain":"x.com","domain":null}},
 {"company":{"a":null},"phone":0,"linkedinUrl":[],"intent":{"matchedTopics":[[]]}},
 {"company":{"domain":"a.com"},"phone":"+1","linkedinUrl":[null],"x":{"1":"one"}},
 {"intent":{"score":1e3,"matchedTopics":[{"topicName":"TELEHEALTH"},{"topicId":8860}]}},
 {"x":["a",null,"b"],"intent":{"matchedTopics":[{"topicName":"Telehealth","topicId":null}]}},
 {"geo":{"countryCode":5,"country":"CANADA"},"department":"SALES","seniority":"Owner"}
],"total":99},"meta":{"request_id":"x"}}]==]

local SPECS = {
    {}, { min_score = 80 }, { min_score = 80.5 }, { max_score = 80 }, { min_score = 0, max_score = 99 },
    { min_score = 9007199254740992 }, { max_score = -0.0 }, { min_score = 1000 },
    { seniority = "director" }, { seniority = { "VP", "Entry", "training" } },
    { seniority_at_least = "director" }, { seniority_at_least = "entry" },
    { seniority_at_least = "c_suite" }, { department = { "marketing", "Sales" } },
    { country = "US" }, { country = { "united states", "canada" } }, { country = "br" },
    { has = "phone" }, { has = { "company.domain" } }, { has = { "phone", "linkedinUrl" } },
    { has = "company" }, { has = "intent.matchedTopics.1.topicName" }, { has = "x.1" },
    { has = "intent.matchedTopics.1" }, { has = "nothing.here" }, { has = "seniority" },
    { topic = 117796 }, { topic = { "telehealth", 8860 } }, { topic = "117796" },
    { topic = { "11190", "Electric Vehicles" } }, { topic = 1 },
    { min_score = 50, seniority = { "director", "vp", "c_suite" }, has = "businessEmail" },
    { country = "US", department = "marketing", topic = { 14520, "mortgage refinancing" } },
    { seniority_at_least = "manager", max_score = 90, has = { "company.domain", "phone" } },
}

describe("core.decode_page()", function()
    local function need_page()
        if not core.decode_page then
            pending("this build has no page decoder (SIMDJSON=0)")
            return false
        end
        return true
    end

    -- Checks decode_page(body, compiled native) against filter.where over the cjson decoder
    -- in page mode (a null row is false there too, so the page rules refuse it).
    local function check(body, spec, name)
        local c = filter.compile(spec)
        assert.is_not_nil(c.native)
        local full = assert(core.decode_cjson(body, true))
        local rows = full.data.results
        local reference = filter.where_closures(spec)
        local want = setmetatable({}, array_mt)
        for _, row in ipairs(rows) do
            local keep = c.fn(row)
            assert.are.equal(reference(row), keep, name .. ": generated where differs from the closures")
            -- a row that is not an object is always built, so the page check can refuse it
            local object = type(row) == "table" and getmetatable(row) ~= array_mt
            if keep or not object then want[#want + 1] = row end
        end
        local page, nrows, nkept = core.decode_page(body, c.native)
        assert.are.equal(#rows, nrows, name)
        assert.are.equal(#want, nkept, name)
        assert_same(want, page.data.results, name .. ": kept rows")
        page.data.results = rows
        assert_same(full, page, name .. ": envelope")
        -- "count": the same counts and ids, and only the rows that are not objects built
        local counted, cn, ck, cids = core.decode_page(body, c.native, "count")
        local _, _, _, ids = core.decode_page(body, c.native)
        assert.are.equal(nrows, cn, name .. ": count mode rows")
        assert.are.equal(nkept, ck, name .. ": count mode kept")
        assert.are.equal(ids, cids, name .. ": count mode ids")
        local odd = setmetatable({}, array_mt)
        for _, row in ipairs(rows) do
            if not (type(row) == "table" and getmetatable(row) ~= array_mt) then odd[#odd + 1] = row end
        end
        assert_same(odd, counted.data.results, name .. ": count mode builds only rows that are not objects")
        -- a core.body copy of the text (how a cache keeps a page) is read in place, alike
        local copy = core.body(body)
        local bcounted, bn, bk, bids = core.decode_page(copy, c.native, "count")
        assert.are.same({ cn, ck, cids }, { bn, bk, bids }, name .. ": count mode over a body")
        assert_same(counted, bcounted, name .. ": count mode over a body")
        assert_same(want, core.decode_page(copy, c.native).data.results, name .. ": kept rows over a body")
        local raw, rn, rk = core.decode_page(body, c.native, true)
        assert.are.equal(nrows, rn)
        assert.are.equal(nkept, rk)
        assert.are.equal(array_mt, getmetatable(raw.data.results))
        for i, text in ipairs(raw.data.results) do
            if want[i] == false then
                assert.are.equal(false, text, name .. ": a null row is false, raw or not")
            else
                assert.is_string(text)
                assert.is_falsy(text:find("null", 1, true) and text:find("[:,%[]null"), "raw rows drop nulls")
                assert_same(want[i], assert(core.decode(text)), name .. ": raw row " .. i)
                assert_same(want[i], assert(core.decode_cjson(text)), name .. ": raw row " .. i .. " (cjson)")
            end
        end
    end

    it("keeps exactly the rows filter.where keeps, for many specs over the fake's pages", function()
        if not need_page() then return end
        local bodies = {}
        for _, page in ipairs(fetch_pages()) do
            if page.name:find("limit 500 $") or page.name:find("limit 100 ") then
                bodies[#bodies + 1] = page
            end
            if LIGHT and #bodies == 2 then break end
        end
        assert.is_truthy(#bodies >= 2)
        for _, page in ipairs(bodies) do
            local v = core.decode(page.body)
            if v.data and v.data.results then
                for _, spec in ipairs(SPECS) do check(page.body, spec, page.name) end
            end
        end
    end)

    it("keeps exactly the rows filter.where keeps on awkward rows", function()
        if not need_page() then return end
        for i, spec in ipairs(SPECS) do check(AWKWARD, spec, "awkward spec " .. i) end
        local old = filter.set_ranks{ Owner = 9, TRAINING = 7, director = 4, entry = 1 }
        local ok, err = pcall(function()
            for _, lvl in ipairs{ "director", "entry", "owner", "training" } do
                check(AWKWARD, { seniority_at_least = lvl }, "custom ranks " .. lvl)
            end
        end)
        filter.ranks = old
        assert(ok, err)
    end)

    it("counts without building, with or without a predicate, and checks repeats the same way", function()
        if not need_page() then return end
        local v, nrows, nkept = core.decode_page(AWKWARD, nil, "count")
        assert.are.equal(19, nrows)
        assert.are.equal(19, nkept)
        -- only the rows that are not objects (the null one as false): the page rules refuse them
        local odd = setmetatable({}, array_mt)
        for _, row in ipairs(core.decode_cjson(AWKWARD, true).data.results) do
            if type(row) ~= "table" or getmetatable(row) == array_mt then odd[#odd + 1] = row end
        end
        assert.is_true(#odd >= 1)
        assert_same(odd, v.data.results)
        assert.are.equal(false, v.data.results[1])
        local page = '{"data":{"results":[{"hashedEmail":"a","intent":{"score":90}},'
            .. '{"hashedEmail":"b","intent":{"score":10}},{"hashedEmail":"a","intent":{"score":95}}]}}'
        for _, pred in ipairs{ false, core.where{ min_score = 50 } } do
            local p, n, k, ids, dup_row, dup_of = core.decode_page(page, pred or nil, "count")
            assert.are.equal(3, n)
            assert.are.equal(pred and 2 or 3, k)
            assert.are.equal(0, #p.data.results)
            local _, _, _, built_ids, built_dup, built_of = core.decode_page(page, pred or nil)
            assert.are.equal(built_ids, ids)
            assert.are.same({ 3, 1 }, { dup_row, dup_of })
            assert.are.same({ built_dup, built_of }, { dup_row, dup_of })
        end
        local first = '{"data":{"results":[{"hashedEmail":"x"}]}}'
        local _, _, _, ids = core.decode_page(first, nil, "count")
        local _, _, _, _, dup_row, dup_of = core.decode_page(first, nil, "count", ids)
        assert.are.same({ 1, 0 }, { dup_row, dup_of })
        assert.has_error(function() core.decode_page(first, nil, "rows") end)
    end)

    it("counts rows and keeps all of them without a predicate", function()
        if not need_page() then return end
        local v, nrows, nkept = core.decode_page(AWKWARD)
        assert.are.equal(19, nrows) -- 18 rows and a null one (built as false)
        assert.are.equal(19, nkept)
        assert.are.equal(false, v.data.results[1])
        assert_same(core.decode_cjson(AWKWARD, true), v)
        -- page mode of both decoders: null rows are false, a lone null is no row (as `[]`)
        for _, text in ipairs{ '{"data":{"results":[null]}}', '{"data":{"results":[]}}',
            '{"data":{"results":[null,{"a":1},null]}}', '{"data":{"results":[{"a":null}]}}' } do
            local p, n = core.decode_page(text)
            assert_same(core.decode_cjson(text, true), p, text)
            assert.are.equal(#p.data.results, n, text)
        end
    end)

    it("returns other bodies as decode does, with no rows", function()
        if not need_page() then return end
        local texts = { "[1,2]", "84", '"x"', '{"data":[1]}', '{"data":{"results":{}}}', '{"meta":{}}',
            '{"data":{"results":null}}', '{"data":null,"results":[1]}' }
        for _, page in ipairs(fetch_pages()) do
            if page.status ~= 200 then texts[#texts + 1] = page.body end
        end
        local pred = core.where{ min_score = 1 }
        for _, text in ipairs(texts) do
            local v, nrows, nkept = core.decode_page(text, pred)
            assert_same(core.decode(text), v, text)
            assert.are.equal(0, nrows)
            assert.are.equal(0, nkept)
        end
    end)

    it("fails like decode on bad text, and raises on a bad predicate", function()
        if not need_page() then return end
        for _, text in ipairs{ "", "{", "null", "[1e400]", '{"data":{"results":[1,]}}' } do
            local v, err = core.decode_page(text, core.where{})
            local _, want = core.decode(text)
            assert.is_nil(v)
            assert.are.equal(want, err)
        end
        local v, err = core.decode_page('{"data":{"results":[{"a":"\255"}]}}', nil, true)
        assert.is_nil(v)
        assert.are.equal('decode: invalid UTF-8 in the value of "a" at character 27', err)
        assert.has_error(function() core.decode_page(AWKWARD, {}) end)
        assert.has_error(function() core.decode_page(nil) end)
        assert.has_error(function() core.where{ min_score = "x" } end)
        assert.has_error(function() core.where{ seniority_at_least = "vp" } end)
        assert.has_error(function() core.where{ has = "a..b" } end)
        assert.is_truthy(tostring(core.where{ min_score = 1, has = "x" }):find("^leadpipe.where"))
    end)

    it("gives raw rows in compact JSON with floats kept as floats", function()
        if not need_page() then return end
        local v = core.decode_page('{"data":{"results":[{"a":1.0,"b":[1,null,-0.0,0.1,1e300],'
            .. '"c":"q\\"\\\\\\n\\u0001","d":null,"e":true,"a":2.5}]}}', nil, true)
        assert.are.equal('{"b":[1,-0.0,0.1,1e+300],"c":"q\\"\\\\\\n\\u0001","e":true,"a":2.5}',
            v.data.results[1])
    end)
end)

describe("core.body()", function()
    after_each(function() collectgarbage() end)

    it("keeps a padded copy of a text in Lua memory, which every decoder reads in place", function()
        local function page_text()
            local rows = {}
            for i = 1, 200 do rows[i] = ('{"hashedEmail":"h%d","intent":{"score":%d}}'):format(i, i % 100) end
            return '{"data":{"total":200,"results":[' .. table.concat(rows, ",") .. "]}}"
        end
        local body = core.body(page_text()) -- the text itself is garbage from here on
        collectgarbage()
        collectgarbage()
        local text = page_text()
        assert.are.equal("userdata", type(body))
        assert.are.equal(#text, #body)
        assert.is_truthy(tostring(body):find("^leadpipe%.body %(" .. #text .. " bytes%)"))
        assert_same(core.decode(text), core.decode(body))
        assert_same(core.decode_cjson(text), core.decode_cjson(body))
        if core.decode_page then
            local half = core.where{ min_score = 50 }
            local _, n, k, ids = core.decode_page(text, half, "count")
            assert.are.same({ 200, 100, ids }, { select(2, core.decode_page(body, half, "count")) })
            assert.are.equal(200, n)
            assert.are.equal(100, k)
        end
        -- bad text is refused as it would be as a string
        for _, bad in ipairs{ "", "{", '{"a":"\255"}', "[1e400]" } do
            assert.are.same({ core.decode(bad) }, { core.decode(core.body(bad)) }, bad)
        end
        body:close()
        body:close()
        assert.are.equal(0, #body)
        assert.are.equal("leadpipe.body (closed)", tostring(body))
        assert.has_error(function() core.decode(body) end, "decode: the body is closed")
        assert.has_error(function() core.body(nil) end)
        assert.has_error(function() core.body({}) end)
    end)

    it("is counted by the collector, bytes included (it frees them too)", function()
        local text = '"' .. ("x"):rep(4 * 1024 * 1024) .. '"'
        collectgarbage()
        collectgarbage()
        local before = collectgarbage("count")
        local body = core.body(text)
        local grown = collectgarbage("count") - before
        assert.is_true(grown >= 4 * 1024, ("the collector saw %.0f KiB for a 4 MiB body"):format(grown))
        assert.are.equal(4 * 1024 * 1024, #core.decode(body))
        body = nil -- luacheck: ignore 311
        collectgarbage()
        collectgarbage()
        assert.is_true(collectgarbage("count") - before < 1024, "a collected body's bytes are freed")
    end)
end)

describe("filter.compile()", function()
    it("returns the Lua predicate and, with simdjson, the native one", function()
        local c = filter.compile{ min_score = 80 }
        assert.is_function(c.fn)
        assert.are.equal(core.decode_page ~= nil, c.native ~= nil)
        local f = function() return true end
        assert.are.equal(f, filter.compile(f).fn)
        assert.is_nil(filter.compile(f).native)
        assert.has_error(function() filter.compile{ min_scor = 1 } end)
    end)
end)

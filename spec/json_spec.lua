-- Specs for leadpipe.json: decode is the core's null-free decoder, encode keeps [] and is stable.

local json = require "leadpipe.json"
local core = require "leadpipe.core"

local PERSON = [[{"hashedEmail":"50c41e8bb3919b482ed996c139cc85935d2bef278ebc42a22f8c84b04b73709b",
"firstName":"sherry","lastName":null,"fullName":"sherry lynn","businessEmail":"sherry@example.com",
"phone":null,"linkedinUrl":"https://linkedin.com/in/example","headline":"Ünïcödé \"quoted\" \\ back\nslash",
"seniority":"director","department":"marketing",
"company":{"name":"example company","domain":"example.com","industry":null},
"geo":null,
"intent":{"score":84,"topicOverlap":2,"matchedTopics":[
{"topicId":117796,"topicName":"Internet Marketing Automation","type":"b2b",
"industry":"Marketing","category":"Technology"},
null]}}]]

describe("leadpipe.json", function()
    describe("decode", function()
        it("is the core's decoder", function()
            assert.are.equal(core.decode, json.decode)
        end)

        it("drops nulls and marks arrays", function()
            local row = assert(json.decode(PERSON))
            assert.is_nil(row.lastName)
            assert.is_nil(row.geo)
            assert.are.equal(1, #row.intent.matchedTopics)
            assert.are.equal(core.array_mt, getmetatable(row.intent.matchedTopics))
        end)

        it("returns nil and a message on bad JSON", function()
            local v, err = json.decode("{bad")
            assert.is_nil(v)
            assert.is_truthy(err:find("^decode: "))
        end)
    end)

    describe("encode()", function()
        it("encodes scalars, with integral numbers free of .0", function()
            assert.are.equal("null", json.encode(nil))
            assert.are.equal("true", json.encode(true))
            assert.are.equal("false", json.encode(false))
            assert.are.equal("84", json.encode(84))
            assert.are.equal("84", json.encode(84.0))
            assert.are.equal("-3", json.encode(-3))
            assert.are.equal("0.1", json.encode(0.1))
            assert.are.equal("1e+300", json.encode(1e300))
            assert.are.equal(1 / 3, json.decode("[" .. json.encode(1 / 3) .. "]")[1])
        end)

        it("escapes quotes, backslashes and control characters, and passes UTF-8 through", function()
            assert.are.equal([["a\"b\\c\nd\te\r\b\f\u0001\u001f\u007f/é日本"]],
                json.encode('a"b\\c\nd\te\r\b\f\1\31\127/é日本'))
            assert.are.equal([["a\u0000b"]], json.encode("a\0b"))
        end)

        it("keeps [] for an empty decoded array and {} for an empty table", function()
            assert.are.equal('{"a":[],"b":{}}', json.encode(json.decode('{"a":[],"b":{}}')))
            assert.are.equal("[]", json.encode(json.array()))
            assert.are.equal("{}", json.encode({}))
        end)

        it("encodes arrays and objects, keys sorted", function()
            assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
            assert.are.equal('{"a":1,"b":[true,"x"],"c":{"d":"e"}}',
                json.encode({ c = { d = "e" }, b = { true, "x" }, a = 1 }))
            assert.are.equal('{"1":"a","3":"c"}', json.encode({ [1] = "a", [3] = "c" }))
            assert.are.equal('{"1":"a","k":"v"}', json.encode({ "a", k = "v" }))
        end)

        it("raises on values JSON cannot hold", function()
            assert.has_error(function() json.encode(print) end, "json.encode: cannot encode a function")
            assert.has_error(function() json.encode({ 0 / 0 }) end)
            assert.has_error(function() json.encode({ x = math.huge }) end, "json.encode: cannot encode inf")
            assert.has_error(function() json.encode({ [true] = 1 }) end,
                "json.encode: object keys must be strings or numbers, got boolean")
            local t = {}
            t.self = t
            assert.has_error(function() json.encode(t) end, "json.encode: cycle in the value")
        end)

        it("allows the same table twice when it is not a cycle", function()
            local shared = { 1 }
            assert.are.equal('{"a":[1],"b":[1]}', json.encode({ a = shared, b = shared }))
        end)
    end)

    describe("round trip", function()
        it("decode -> encode -> decode gives the same row, empty arrays included", function()
            local row = assert(json.decode(PERSON))
            row.intent.matchedTopics = json.decode("[]")
            local text = json.encode(row)
            assert.is_truthy(text:find('"matchedTopics":[]', 1, true))
            local again = assert(json.decode(text))
            assert.are.same(row, again)
            assert.are.equal(core.array_mt, getmetatable(again.intent.matchedTopics))
            assert.are.equal(text, json.encode(again))
        end)

        it("keeps integers as integers and text byte for byte", function()
            local row = assert(json.decode(PERSON))
            local again = assert(json.decode(json.encode(row)))
            assert.are.equal(84, again.intent.score)
            assert.are.equal("84", tostring(again.intent.score))
            assert.are.equal(row.headline, again.headline)
            assert.are.equal(117796, again.intent.matchedTopics[1].topicId)
        end)
    end)
end)

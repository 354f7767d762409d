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

        it("raises an invalid_argument error object on values JSON cannot hold", function()
            local function raised(v)
                local ok, err = pcall(json.encode, v)
                assert.is_false(ok)
                assert.is_true(require("leadpipe.errors").is_error(err), tostring(err))
                assert.are.equal("invalid_argument", err.kind)
                assert.are.equal("value", err.argument)
                return err.message
            end
            assert.are.equal("json.encode: value holds a function, which JSON cannot encode",
                raised(print))
            assert.truthy(raised({ 0 / 0 }):find("which JSON cannot encode", 1, true))
            assert.are.equal("json.encode: value holds inf, which JSON cannot encode",
                raised({ x = math.huge }))
            assert.are.equal("json.encode: value has an object key that is not a string or number "
                .. "(a boolean)", raised({ [true] = 1 }))
            local t = {}
            t.self = t
            assert.are.equal("json.encode: value holds a cycle", raised(t))
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

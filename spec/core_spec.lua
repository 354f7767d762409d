-- spec/core_spec.lua: leadpipe.core, the C module: the module table, uuid/sleep/now and the
-- decoders. Sessions and requests: spec/core_session_spec.lua; real HTTP:
-- spec/core_http_spec.lua.
local core = require "leadpipe.core"

local function count_keys(t)
    local n = 0
    for _ in pairs(t) do n = n + 1 end
    return n
end

describe("leadpipe.core", function()
    after_each(function()
        collectgarbage()
        collectgarbage()
    end)

    describe("module", function()
        it("has a version, the libcurl version and its functions", function()
            assert.are.equal("leadpipe.core 0.1.0", core._VERSION)
            assert.truthy(core.curl_version:match("^libcurl/%d"))
            for _, name in ipairs{ "session", "decode", "uuid", "sleep", "now" } do
                assert.are.equal("function", type(core[name]))
            end
            assert.are.equal("table", type(core.array_mt))
        end)

        it("sets no globals", function()
            assert.is_nil(rawget(_G, "leadpipe"))
            assert.is_nil(rawget(_G, "core"))
        end)
    end)

    describe("uuid()", function()
        it("returns a lower-case RFC 4122 version 4 UUID", function()
            local pattern = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
            for _ = 1, 50 do
                local id = core.uuid()
                assert.truthy(id:match(pattern), id)
                assert.are.equal(id:lower(), id)
            end
        end)

        it("never repeats itself over 1000 calls", function()
            local seen = {}
            for _ = 1, 1000 do
                local id = core.uuid()
                assert.is_nil(seen[id])
                seen[id] = true
            end
        end)
    end)

    describe("sleep() and now()", function()
        it("sleeps at least the time asked for on the monotonic clock", function()
            local t0 = core.now()
            assert.are.equal(0, core.sleep(0.02))
            local t1 = core.now()
            assert.are.equal("number", type(t0))
            assert.is_true(t1 - t0 >= 0.02)
            core.sleep(0)
            assert.is_true(core.now() >= t1)
        end)

        it("raises on a bad duration", function()
            assert.has_error(function() core.sleep() end)
            assert.has_error(function() core.sleep("soon") end)
            assert.has_error(function() core.sleep(-1) end)
            assert.has_error(function() core.sleep(0 / 0) end)
            assert.has_error(function() core.sleep(math.huge) end)
        end)
    end)

    describe("decode()", function()
        local decode = core.decode

        it("leaves the collector as it found it, running or stopped, and pays for what it built", function()
            local ok, running = pcall(collectgarbage, "isrunning")
            if not ok or type(running) ~= "boolean" then
                pending("collectgarbage('isrunning') is not there on " .. _VERSION)
                return
            end
            -- in incremental mode (5.4), where a debt left unpaid would let the heap grow
            local mode_ok, mode = pcall(collectgarbage, "incremental")
            if mode_ok and (mode == "generational" or mode == "incremental") then
                finally(function() collectgarbage(mode) end)
            end
            local parts = {}
            for i = 1, 2000 do parts[i] = ('{"n":%d,"s":"row %d","t":{"u":[1,2,3]}}'):format(i, i) end
            local text = "[" .. table.concat(parts, ",") .. "]"
            collectgarbage("collect")
            local base = collectgarbage("count")
            for _ = 1, 200 do assert(decode(text)) end
            assert.is_true(collectgarbage("isrunning"))
            -- 200 decodes of about 1 MB of tables each: the collector kept up with them
            assert.is_true(collectgarbage("count") - base < 64 * 1024,
                ("heap grew by %.0f KiB"):format(collectgarbage("count") - base))
            collectgarbage("stop")
            finally(function() collectgarbage("restart") end)
            assert(decode(text))
            assert.is_false(collectgarbage("isrunning"))
            collectgarbage("restart")
            -- a text that fails to decode, and one that raises, leave it running too
            assert.is_nil(decode("[1,"))
            assert.has_error(function() decode({}) end)
            assert.is_true(collectgarbage("isrunning"))
        end)

        it("makes JSON null an absent key at every depth", function()
            local v = assert(decode('{"a":null,"b":1,"c":{"d":null,"e":{"f":null,"g":"x"}}}'))
            assert.is_nil(v.a)
            assert.are.equal(1, v.b)
            assert.is_nil(v.c.d)
            assert.is_nil(v.c.e.f)
            assert.are.equal("x", v.c.e.g)
            assert.are.equal(2, count_keys(v))
            assert.are.equal(1, count_keys(v.c))
            assert.are.equal(1, count_keys(v.c.e))
        end)

        it("drops nulls from arrays and keeps the other elements in order", function()
            local v = assert(decode('[null,1,null,null,2,{"x":[null,"a",null,"b"]},3,null]'))
            assert.are.equal(4, #v)
            assert.are.same({ 1, 2, { x = { "a", "b" } }, 3 }, v)
            local seen = {}
            for i, e in ipairs(v) do seen[i] = e end
            assert.are.equal(4, #seen)
            assert.are.equal(4, count_keys(v))
            assert.are.equal(2, #v[3].x)
            assert.are.equal(2, count_keys(v[3].x))
            assert.are.equal(core.array_mt, getmetatable(v[3].x))
        end)

        it("gives every array core.array_mt, empty ones too, and objects none", function()
            local v = assert(decode('{"a":[],"b":{},"c":[[],[ \n\t]],"d":[null,null],"e":[1]}'))
            assert.are.equal(core.array_mt, getmetatable(v.a))
            assert.are.equal(0, #v.a)
            assert.is_nil(next(v.a))
            assert.is_nil(getmetatable(v.b))
            assert.is_nil(next(v.b))
            assert.is_nil(getmetatable(v))
            assert.are.equal(core.array_mt, getmetatable(v.c))
            assert.are.equal(2, #v.c)
            assert.are.equal(core.array_mt, getmetatable(v.c[1]))
            assert.are.equal(core.array_mt, getmetatable(v.c[2]))
            assert.is_nil(next(v.c[2]))
            assert.are.equal(core.array_mt, getmetatable(v.d))
            assert.is_nil(next(v.d))
            assert.are.equal(core.array_mt, getmetatable(v.e))
            local top = assert(decode("[]"))
            assert.are.equal(core.array_mt, getmetatable(top))
            assert.is_nil(next(top))
            assert.is_nil(getmetatable(assert(decode("{}"))))
        end)

        it("leaves [] inside strings alone, escapes included", function()
            local v = assert(decode('{"s":"[]","t":"a\\"[ ]\\\\","u":["[]"],"w":[],"k[]":"[ ]"}'))
            assert.are.equal("[]", v.s)
            assert.are.equal('a"[ ]\\', v.t)
            assert.are.same({ "[]" }, v.u)
            assert.are.equal(core.array_mt, getmetatable(v.w))
            assert.are.equal("[ ]", v["k[]"])
        end)

        it("turns integer literals into integers and keeps floats (written with . or e)", function()
            local v = assert(decode('{"n":84,"f":84.5,"neg":-3,"e":1e3,"big":1e19,"z":0}'))
            assert.are.equal(84, v.n)
            assert.are.equal(84.5, v.f)
            assert.are.equal(-3, v.neg)
            assert.are.equal(1000, v.e)
            assert.are.equal(1e19, v.big)
            if math.type then
                assert.are.equal("integer", math.type(decode("[84]")[1]))
                assert.are.equal("integer", math.type(v.n))
                assert.are.equal("integer", math.type(v.neg))
                assert.are.equal("float", math.type(v.e))
                assert.are.equal("integer", math.type(v.z))
                assert.are.equal("float", math.type(v.f))
                assert.are.equal("float", math.type(v.big))
                assert.are.equal("84", tostring(v.n))
            end
        end)

        it("decodes top-level scalars", function()
            assert.are.equal(84, decode("84"))
            assert.are.equal("x", decode('"x"'))
            assert.are.equal(false, decode("false"))
            local v, err = decode("null")
            assert.is_nil(v)
            assert.truthy(err:match("^decode: "))
        end)

        it("handles deep nesting up to the cjson limit and fails cleanly beyond", function()
            local depth = 1000
            local v = assert(decode(string.rep("[", depth) .. string.rep("]", depth)))
            local n = 0
            while v[1] do
                v = v[1]
                n = n + 1
            end
            assert.are.equal(depth - 1, n)
            assert.are.equal(core.array_mt, getmetatable(v))
            local o = assert(decode(string.rep('{"a":', 999) .. "[null]" .. string.rep("}", 999)))
            assert.are.equal("table", type(o.a.a.a))
            local bad, err = decode(string.rep("[", 5000) .. string.rep("]", 5000))
            assert.is_nil(bad)
            assert.truthy(err:match("^decode: "))
        end)

        it("returns nil and a message for invalid JSON", function()
            for _, text in ipairs{ "", "[1,", "{", '{"a":}', "nul", "[1 2]", '"abc', "NaN",
                                   "[Infinity]", "{'a':1}", "[1]x" } do
                local v, err = decode(text)
                assert.is_nil(v, text)
                assert.are.equal("string", type(err))
                assert.truthy(err:match("^decode: .+"), err)
            end
        end)

        it("reports positions in the caller's text, not in its rewritten copy", function()
            local _, plain = decode("[1,x]")
            local _, with_empty = decode("[[],x]")
            assert.truthy(plain:match("character 4"), plain)
            assert.truthy(with_empty:match("character 5"), with_empty)
        end)

        it("raises only when the argument is not a string", function()
            assert.has_error(function() decode() end)
            assert.has_error(function() decode(84) end)
            assert.has_error(function() decode({}) end)
        end)

        it("is not affected by the settings of the user's cjson", function()
            local cjson = require "cjson"
            cjson.decode_max_depth(5)
            finally(function() cjson.decode_max_depth(1000) end)
            assert.truthy(decode(string.rep("[", 50) .. string.rep("]", 50)))
        end)
    end)
end)

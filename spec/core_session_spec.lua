-- spec/core_session_spec.lua: leadpipe.core's sessions and requests at their Lua boundary:
-- bad arguments raise, closed handles raise, close is idempotent.
local core = require "leadpipe.core"
local wait = require("spec.support.core_helpers").wait

local LUA54 = _VERSION == "Lua 5.4"

describe("leadpipe.core", function()
    after_each(function()
        collectgarbage()
        collectgarbage()
    end)

    describe("session()", function()
        it("raises on bad options", function()
            assert.has_error(function() core.session(42) end)
            assert.has_error(function() core.session{ nope = 1 } end, nil)
            assert.has_error(function() core.session{ [1] = true } end)
            assert.has_error(function() core.session{ timeout = "60" } end)
            assert.has_error(function() core.session{ timeout = -1 } end)
            assert.has_error(function() core.session{ connect_timeout = 0 } end)
            assert.has_error(function() core.session{ max_response = 0 } end)
            assert.has_error(function() core.session{ max_response = 1.5 } end)
            assert.has_error(function() core.session{ max_connections = -1 } end)
            assert.has_error(function() core.session{ verify = "yes" } end)
            assert.has_error(function() core.session{ user_agent = 5 } end)
            assert.has_error(function() core.session{ user_agent = "a\r\nX-Evil: 1" } end)
            local ok, err = pcall(core.session, { nope = 1 })
            assert.is_false(ok)
            assert.truthy(err:match("unknown option 'nope'"), err)
        end)

        it("accepts every documented option", function()
            local s = core.session{
                connect_timeout = 2.5, timeout = 30, max_response = 1024, user_agent = "spec/1",
                verify = false, max_connections = 2,
            }
            assert.truthy(tostring(s):match("^leadpipe%.session %(open"))
            s:close()
            core.session():close()
        end)

        it("closes idempotently and raises when used closed", function()
            local s = core.session()
            assert.are.equal(0, s:perform())
            assert.is_nil(s:timeout())
            s:close()
            s:close()
            assert.are.equal("leadpipe.session (closed)", tostring(s))
            for _, f in ipairs{
                function() s:perform() end,
                function() s:poll(0) end,
                function() s:timeout() end,
                function() s:request{ url = "http://127.0.0.1:1/" } end,
            } do
                local ok, err = pcall(f)
                assert.is_false(ok)
                assert.truthy(err:match("attempt to use a closed session"), err)
            end
        end)

        it("raises on a bad poll duration and on a non-session self", function()
            local s = core.session()
            assert.has_error(function() s:poll() end)
            assert.has_error(function() s:poll(-1) end)
            assert.has_error(function() s:poll({}) end)
            assert.has_error(function() s.perform({}) end)
            assert.has_error(function() s.close(42) end)
            s:close()
        end)

        it("polls for the time given when nothing is in flight", function()
            local s = core.session()
            local t0 = core.now()
            assert.are.equal(0, s:poll(0.01))
            assert.is_true(core.now() - t0 >= 0.01)
            s:close()
        end)

        if LUA54 then
            it("is closed by a to-be-closed variable", function()
                local chunk = assert(load([[
                    local core = ...
                    local kept
                    do
                        local s <close> = core.session()
                        kept = s
                    end
                    return kept
                ]]))
                assert.are.equal("leadpipe.session (closed)", tostring(chunk(core)))
            end)
        end
    end)

    describe("session:request()", function()
        local s
        before_each(function() s = core.session{ timeout = 5 } end)
        after_each(function() s:close() end)

        it("raises on bad arguments before anything starts", function()
            local url = "http://127.0.0.1:1/"
            for _, opts in ipairs{
                {},
                { url = 42 },
                { url = url .. "\0.evil" },
                { url = url .. "\r\nx-evil: 1" },
                { url = url, method = "get" },
                { url = url, method = "TRACE" },
                { url = url, body = "x" },
                { url = url, method = "HEAD", body = "x" },
                { url = url, method = "POST", body = 42 },
                { url = url, headers = "x-a: b" },
                { url = url, headers = { ["x-a"] = true } },
                { url = url, headers = { [1] = "b" } },
                { url = url, headers = { ["x-a"] = "b\r\nx-evil: 1" } },
                { url = url, headers = { ["x-a\n"] = "b" } },
                { url = url, headers = { ["x:a"] = "b" } },
                { url = url, headers = { [""] = "b" } },
                { url = url, timeout = -1 },
                { url = url, timeout = "1" },
                { url = url, retries = 3 },
            } do
                assert.has_error(function() s:request(opts) end)
            end
            assert.has_error(function() s:request() end)
            assert.has_error(function() s:request("http://127.0.0.1:1/") end)
            assert.are.equal(0, s:perform())
        end)
    end)

    describe("request", function()
        it("raises while running, and after close; closes idempotently", function()
            local s = core.session{ timeout = 5 }
            local req = s:request{ url = "http://127.0.0.1:1/" }
            assert.truthy(tostring(req):match("^leadpipe%.request %((%a+)%)"))
            if not req:done() then
                assert.truthy(tostring(req):match("^leadpipe%.request %(running%)"))
                local ok, err = pcall(req.response, req)
                assert.is_false(ok)
                assert.truthy(err:match("still running"), err)
            end
            req:close()
            req:close()
            assert.are.equal("leadpipe.request (closed)", tostring(req))
            for _, f in ipairs{ req.done, req.response } do
                local ok, err = pcall(f, req)
                assert.is_false(ok)
                assert.truthy(err:match("attempt to use a closed request"), err)
            end
            assert.has_error(function() req.done(s) end)
            assert.are.equal(0, s:perform())
            s:close()
        end)

        it("fails with kind 'connect' on a closed loopback port", function()
            local s = core.session{ timeout = 5 }
            local req = s:request{ url = "http://127.0.0.1:1/" }
            local status, msg, kind = wait(s, req)
            assert.is_nil(status)
            assert.are.equal("connect", kind)
            assert.truthy(msg:match("onnect"), msg)
            assert.truthy(tostring(req):match("^leadpipe%.request %(done%)"))
            s:close()
        end)

        it("refuses protocols other than HTTP(S) with kind 'network'", function()
            local s = core.session{ timeout = 5 }
            local status, msg, kind = wait(s, s:request{ url = "file:///etc/hostname" })
            assert.is_nil(status)
            assert.are.equal("network", kind)
            assert.are.equal("string", type(msg))
            s:close()
        end)
    end)
end)

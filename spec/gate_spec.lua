-- The rate gate of http.lua, on a scripted wire and a virtual clock: a 429/503 with
-- Retry-After holds every request of the client, including the retry of a request that
-- was already in flight when the gate shut, and a request started while it is shut.

local leadpipe = require "leadpipe"
local core = require "leadpipe.core"

local BASE = "https://api.example.test"

-- A wire that answers each path from a script: responses[path] = { {status, headers}, ... }.
local function scripted(host, responses, sends)
    local wire = {}
    function wire.send(_, spec)
        local path = spec.url:sub(#BASE + 1):gsub("%?.*", "")
        sends[#sends + 1] = { path = path, at = host.now() }
        return { path = path }
    end
    function wire.wait(_, h)
        local r = table.remove(responses[h.path], 1)
        return r[1], r[2] or {}, r[3] or '{"data":{}}'
    end
    function wire.cancel() end
    function wire.pump() end
    function wire.close() end
    return wire
end

describe("the rate gate", function()
    local host, responses, sends, client

    before_each(function()
        local skew = 0
        host = {
            name = "virtual", wire = "scripted",
            now = function() return core.now() + skew end,
            sleep = function(s) if s > 0 then skew = skew + s end end,
        }
        responses, sends = {}, {}
        package.loaded["leadpipe.wire.scripted"] = {
            new = function(_, h) return scripted(h, responses, sends) end,
        }
        client = leadpipe.new{ api_key = "sk_gate_test_key", base_url = BASE, host = host,
                               max_retries = 1, backoff_base = 0.001, backoff_max = 0.001 }
    end)

    after_each(function()
        client:close()
        package.loaded["leadpipe.wire.scripted"] = nil
    end)

    local function sends_of(path)
        local t = {}
        for _, s in ipairs(sends) do if s.path == path then t[#t + 1] = s.at end end
        return t
    end

    it("holds the retry of a request that was in flight when another got a 429", function()
        responses["/a"] = { { 500 }, { 429, { ["retry-after"] = "2" } } }
        responses["/b"] = { { 500 }, { 200 } }
        local t = client.requester
        local a, b = t:start{ path = "/a" }, t:start{ path = "/b" }
        local _, err = t:finish(a)
        assert.are.equal("rate_limited", err.kind)
        local opens, now = t.gate_until, host.now()
        assert.is_true(opens >= now + 1.9)
        assert(t:finish(b))
        local bs = sends_of("/b")
        assert.are.equal(2, #bs)
        assert.is_true(bs[2] >= opens, ("resent %.4f s before the gate opened"):format(opens - bs[2]))
    end)

    it("holds a request started while the gate is shut until it opens", function()
        responses["/a"] = { { 503, { ["retry-after"] = "3" } }, { 503, { ["retry-after"] = "3" } } }
        responses["/c"] = { { 200 } }
        local t = client.requester
        local _, err = t:finish(t:start{ path = "/a" })
        assert.are.equal(503, err.status)
        local opens = t.gate_until
        local c = t:start{ path = "/c" }
        assert.are.equal(0, #sends_of("/c"))
        assert(t:finish(c))
        assert.is_true(sends_of("/c")[1] >= opens)
    end)

    it("ends a held request at its deadline instead of waiting for the gate", function()
        responses["/a"] = { { 429, { ["retry-after"] = "30" } }, { 429, { ["retry-after"] = "30" } } }
        local t = client.requester
        t:finish(t:start{ path = "/a" })
        local c = t:start{ path = "/c", deadline = host.now() + 1 }
        local _, err = t:finish(c)
        assert.are.equal("timeout", err.kind)
        assert.are.equal(0, #sends_of("/c"))
    end)

    it("ignores a Retry-After beyond max_retry_after for the gate", function()
        responses["/a"] = { { 429, { ["retry-after"] = "100000" } } }
        responses["/c"] = { { 200 } }
        local t = client.requester
        t:finish(t:start{ path = "/a" })
        local before = host.now()
        assert(t:finish(t:start{ path = "/c" }))
        assert.is_true(host.now() - before < 1)
    end)
end)

-- The API key never leaks: a server that echoes it in every field it can (x-request-id,
-- meta.request_id, error.code, error.message, run fields, Location, a text body) gets it
-- back into no error, page, log event or tostring. And the scrubber leaves other text alone.

local leadpipe = require "leadpipe"
local scrub = require "leadpipe.scrub"
local servers = require "spec.support.servers"

local AUD = "6f1c0a4e-2b7d-4c3e-9a8f-1d2e3f4a5b6c"
local RUN = "8c4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3a"
local KEY = "sk_live_LEAK_0123456789abc"

describe("key leaks", function()
    local srv, nonce = nil, 0

    setup(function() srv = servers.start("hostile_server.py") end)
    teardown(function() if srv then srv.stop() end end)

    local function client_for(scenario, events, key)
        nonce = nonce + 1
        return leadpipe.new{
            api_key = key or KEY, base_url = srv.url .. "/s/" .. scenario .. "/" .. nonce,
            max_retries = 2, backoff_base = 0.001, backoff_max = 0.01, max_retry_after = 5,
            poll_interval = 0.01, logger = function(e) events[#events + 1] = e end,
        }
    end

    local function assert_clean(what, v, key)
        local text = servers.dump(v)
        assert.is_nil(text:find(key or KEY, 1, true), what .. " leaks the key: " .. text)
    end

    local function check(scenario, call)
        local events = {}
        local c = client_for(scenario, events)
        local ok, a, b = pcall(call, c)
        assert.is_true(ok, tostring(a))
        assert_clean("tostring(client)", tostring(c))
        assert_clean("the result", a)
        assert_clean("the error", b)
        assert_clean("tostring(err)", tostring(b))
        assert.is_true(#events > 0)
        assert_clean("the log events", events)
        c:close()
        return a, b, events
    end

    local function results(c) return c:results(AUD, RUN) end

    it("a 409 echoing the key in code, message, request id, run and headers", function()
        local _, err = check("leak_error", results)
        assert.are.equal("run_failed", err.kind)
        assert.are.equal("[REDACTED]", err.code)
        assert.are.equal("[REDACTED]", err.request_id)
        assert.are.equal("[REDACTED]", err.run.id)
        assert.are.equal("key=[REDACTED]", err.run.errorMessage)
        assert.truthy(err.message:find("bad key [REDACTED] ([REDACTED])", 1, true))
    end)

    it("a 401 whose error is a string with the key", function()
        local _, err = check("leak_401", results)
        assert.are.equal("auth", err.kind)
    end)

    it("a plain-text 502 body and x-request-id with the key", function()
        local _, err = check("leak_text", results)
        assert.are.equal("http", err.kind)
        assert.are.equal("req-[REDACTED]", err.request_id)
    end)

    it("a 429 then a page, both echoing the key", function()
        local page = check("leak_429", results)
        assert.are.equal("completed", page.state)
        assert.are.equal("[REDACTED]", page.request_id)
        assert.are.equal("[REDACTED]", page.run.idempotencyKey)
    end)

    it("a completed page with the key in meta, run fields and run keys", function()
        local page = check("leak_page", results)
        assert.are.equal("[REDACTED]", page.request_id)
        assert.are.equal("[REDACTED]", page.run["[REDACTED]"].nested)
    end)

    it("a pending page with the key", function()
        local page = check("leak_pending", results)
        assert.are.equal("running", page.state)
    end)

    it("a page iterator that meets the key", function()
        check("leak_page", function(c)
            local pages = {}
            for p in c:pages(AUD, RUN, { limit = 100 }) do pages[#pages + 1] = p end
            return pages
        end)
    end)

    it("redirects whose Location carries the key", function()
        local _, err = check("leak_redirect", results)
        assert.are.equal("not_found", err.kind)
    end)

    it("a cut JSON body with the key (decode error)", function()
        local _, err = check("leak_decode", results)
        assert.are.equal("decode", err.kind)
    end)

    it("a create_run and wait_run against key echoes", function()
        check("leak_error", function(c) return c:create_run(AUD) end)
        check("leak_error", function(c) return c:wait_run(AUD, RUN, { timeout = 1 }) end)
        check("leak_text", function(c) return c:list_runs(AUD) end)
        check("leak_text", function(c) return c:stats(AUD, RUN) end)
        local function sink() return true end
        check("leak_401", function(c) return c:export_csv(AUD, RUN, { sink = sink }) end)
        check("leak_error", function(c) return c:audiences() end)
        check("leak_text", function(c) return c:audience(AUD) end)
        check("leak_error", function(c) return c:create_export(AUD, RUN) end)
        check("leak_error", function(c) return c:cancel_run(AUD, RUN) end)
    end)

    it("the command line prints no server text with the key, whatever the command", function()
        local cli = require "leadpipe.cli"
        local h = require "spec.support.cli_helpers"
        local CMDS = {
            { "audiences" }, { "runs", AUD }, { "run", AUD }, { "cancel", AUD, RUN },
            { "results", AUD, RUN }, { "results", AUD, RUN, "--format", "csv" },
            { "results", AUD, RUN, "--format", "table" }, { "stats", AUD, RUN },
            { "export", AUD, RUN }, { "export", AUD, RUN, "--no-wait" },
        }
        for _, args in ipairs(CMDS) do
            nonce = nonce + 1
            local out, err = h.buffer(), h.buffer()
            local status = cli.main(args, { stdout = out, stderr = err, isatty = false,
                getenv = h.getenv{ LEADPIPE_API_KEY = KEY,
                    LEADPIPE_BASE_URL = srv.url .. "/s/leak_all/" .. nonce } })
            local what = table.concat(args, " ")
            assert.are.equal(0, status, what .. ": " .. err.text())
            assert.is_nil(out.text():find(KEY, 1, true), what .. " prints the key: " .. out.text())
            assert.is_nil(err.text():find(KEY, 1, true), what .. " prints the key: " .. err.text())
            if args[1] ~= "run" and args[1] ~= "cancel" then -- (these print only an id, a status)
                assert.truthy(out.text():find("[REDACTED]", 1, true), what .. ": " .. out.text())
            end
        end
    end)

    it("with a one-letter key, masks it as a token and leaves words alone", function()
        local events = {}
        local c = client_for("leak_error", events, "k")
        local _, err = c:results(AUD, RUN)
        assert.are.equal("bad key [REDACTED] ([REDACTED])", err.message)
        c:close()
    end)
end)

describe("leadpipe.scrub", function()
    it("masks a key as a whole token only, whatever its length", function()
        assert.are.equal("SSH remote key", scrub.string("SSH remote key", "k"))
        assert.are.equal("key [REDACTED], ([REDACTED]) [REDACTED]",
            scrub.string("key k, (k) k", "k"))
        assert.are.equal("a_b ab1 1ab", scrub.string("a_b ab1 1ab", "ab"))
        assert.are.equal("x=[REDACTED]&y", scrub.string("x=ab&y", "ab"))
    end)

    it("masks a long key anywhere, also glued to other text or percent-encoded", function()
        local key = "sk_live_abc/123"
        assert.are.equal("x[REDACTED]y", scrub.string("x" .. key .. "y", key))
        assert.are.equal("?k=[REDACTED]", scrub.string("?k=sk_live_abc%2F123", key))
    end)

    it("leaves text without the key untouched, and non-strings alone", function()
        local s = "nothing to see: sk_live_ab"
        assert.are.equal(s, scrub.string(s, "sk_live_abc"))
        assert.are.equal(42, scrub.string(42, "sk_live_abc"))
        assert.are.equal("x", scrub.string("x", ""))
    end)

    it("scrubs keys and values of nested tables", function()
        local t = scrub.deep({ a = { ["sk_live_abc"] = "sk_live_abc" } }, "sk_live_abc")
        assert.are.equal("[REDACTED]", t.a["[REDACTED]"])
        assert.is_nil(t.a.sk_live_abc)
    end)
end)

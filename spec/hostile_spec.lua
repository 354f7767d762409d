-- The client against a hostile server (spec/support/hostile_server.py): every malformed
-- shape ends in the exact error kind, and no row is ever lost, repeated or invented: the
-- rows a read delivers before it raises are always a prefix of the true rows, in order.

local leadpipe = require "leadpipe"
local core = require "leadpipe.core"
local servers = require "spec.support.servers"

local AUD = "6f1c0a4e-2b7d-4c3e-9a8f-1d2e3f4a5b6c"
local RUN = "8c4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3a"
local TOTAL = 250

describe("hostile server", function()
    local srv, nonce = nil, 0

    setup(function()
        srv = servers.start("hostile_server.py")
    end)

    teardown(function()
        if srv then srv.stop() end
    end)

    after_each(function()
        collectgarbage()
    end)

    local function client_for(scenario, opts)
        nonce = nonce + 1
        local o = {
            api_key = "sk_hostile_0123456789", base_url = srv.url .. "/s/" .. scenario .. "/" .. nonce,
            max_retries = 1, backoff_base = 0.001, backoff_max = 0.01, timeout = 10,
            poll_interval = 0.01, max_poll_interval = 0.02, max_response = 1024 * 1024,
        }
        for k, v in pairs(opts or {}) do o[k] = v end
        return leadpipe.new(o)
    end

    -- Reads every row with people(); returns the rows and the error raised (or nil).
    local function read_all(scenario, opts, copts)
        local c = client_for(scenario, copts)
        local rows = {}
        local ok, err = pcall(function()
            for row in c:people(AUD, RUN, opts or { limit = 100 }) do rows[#rows + 1] = row end
        end)
        c:close()
        return rows, not ok and err or nil
    end

    -- The delivered rows are 0, 1, 2, ... in order: nothing lost, repeated or invented.
    local function assert_prefix(rows)
        for j, r in ipairs(rows) do
            if type(r) == "string" then r = core.decode(r) end -- raw rows
            assert.are.equal(j - 1, r.i, "row " .. j .. " is row " .. tostring(r.i))
            assert.are.equal(("h%05d"):format(j - 1), r.hashedEmail)
        end
        assert.is_true(#rows <= TOTAL)
    end

    local function assert_error(err, kind, code)
        assert.is_true(leadpipe.is_error(err), "not an error object: " .. tostring(err))
        if type(kind) == "table" then
            assert.is_true(kind[err.kind] == true, tostring(err))
        else
            assert.are.equal(kind, err.kind, tostring(err))
        end
        if code then assert.are.equal(code, err.code, tostring(err)) end
        assert.is_string(err.message)
        assert.is_nil(tostring(err):find("%.lua:%d+:"), "a raw Lua error: " .. tostring(err))
    end

    it("reads a well-formed run completely (the reference)", function()
        local rows, err = read_all("good")
        assert.is_nil(err)
        assert.are.equal(TOTAL, #rows)
        assert_prefix(rows)
    end)

    it("reads pages that start with a UTF-8 byte order mark (the decoder skips it)", function()
        local rows, err = read_all("bom")
        assert.is_nil(err)
        assert.are.equal(TOTAL, #rows)
        assert_prefix(rows)
    end)

    -- scenario, people() options, kind, code, rows expected before the error
    local BROKEN = {
        { "data_object", nil, "decode", "BAD_PAGE", 0 },
        { "data_array", nil, "decode", "BAD_PAGE", 0 },
        { "no_data", nil, "decode", "BAD_PAGE", 0 },
        { "no_total", nil, "decode", "BAD_PAGE", 0 },
        { "negative_total", nil, "decode", "BAD_PAGE", 0 },
        { "float_total", nil, "decode", "BAD_PAGE", 0 },
        { "string_total", nil, "decode", "BAD_PAGE", 0 },
        { "bignum_total", nil, "decode", "BAD_PAGE", 0 },
        { "results_object", nil, "decode", "BAD_PAGE", 0 },
        { "results_string", nil, "decode", "BAD_PAGE", 0 },
        { "mixed_rows", nil, "decode", "BAD_PAGE", 0 },
        { "array_rows", nil, "decode", "BAD_PAGE", 0 },
        -- a where pushed down into the decoder must not hide a row that is not an object
        { "mixed_rows", { limit = 100, where = { min_score = 90 } }, "decode", "BAD_PAGE", 0 },
        { "array_rows", { limit = 100, where = { seniority = "vp" } }, "decode", "BAD_PAGE", 0 },
        { "mixed_rows", { limit = 100, raw = true }, "decode", "BAD_PAGE", 0 },
        { "null_row", nil, "decode", "BAD_PAGE", 0 },
        { "null_row", { limit = 100, where = { min_score = 90 } }, "decode", "BAD_PAGE", 0 },
        { "drop_query", { limit = 100 }, "http", "OFFSET_MISMATCH", 100 },
        { "drop_query", { limit = 50 }, "http", "TOO_MANY_ROWS", 0 },
        { "drop_query", { limit = 100, prefetch = 4 }, "http", "OFFSET_MISMATCH", 100 },
        { "drop_query_silent", { limit = 100 }, "http", "REPEATED_ROWS", 100 },
        { "shrink", nil, "http", "TOTAL_CHANGED", 100 },
        { "shrink", { limit = 100, prefetch = 3 }, "http", "TOTAL_CHANGED", 100 },
        { "grow", nil, "http", "TOTAL_CHANGED", 100 },
        { "grow", { limit = 100, prefetch = 0 }, "http", "TOTAL_CHANGED", 100 },
        { "result_count", nil, "http", "TOTAL_CHANGED", 0 },
        { "empty_mid", nil, "http", "EMPTY_PAGE", 100 },
        { "repeat_in_page", nil, "http", "REPEATED_ROWS", 0 },
        { "repeat_in_page", { limit = 100, where = { min_score = 90 } }, "http", "REPEATED_ROWS", 0 },
        { "repeat_in_page", { limit = 100, raw = true }, "http", "REPEATED_ROWS", 0 },
        { "repeat_prev", nil, "http", "REPEATED_ROWS", 100 },
        { "repeat_prev", { limit = 100, prefetch = 4, where = { min_score = 90 } }, "http",
          "REPEATED_ROWS", 0 },
        { "bad_utf8", nil, "decode", nil, 100 },
        { "bad_utf8", { limit = 100, raw = true }, "decode", nil, 100 },
        { "lone_surrogate", nil, "decode", nil, 100 },
        { "lone_surrogate", { limit = 100, where = { min_score = 90 } }, "decode", nil, 0 },
        { "too_many", nil, "http", "TOO_MANY_ROWS", 0 },
        { "past_total", nil, "http", "TOO_MANY_ROWS", 0 },
        { "wrong_offset", nil, "http", "OFFSET_MISMATCH", 0 },
        { "running_200", nil, "http", "NOT_COMPLETED", 0 },
        { "run_status_200", nil, "http", "NOT_COMPLETED", 0 },
        { "html_200", nil, "decode", nil, 0 },
        { "empty_200", nil, "decode", "BAD_PAGE", 0 },
        { "deep_json", nil, "decode", nil, 0 },
        -- the bytes past Content-Length may be read as the next response on a reused
        -- connection (libcurl: "Received HTTP/0.9"): an error either way
        { "long_length", nil, { decode = true, network = true }, nil, 0 },
        { "huge_total", nil, "decode", nil, 0 },
        { "redirect_loop", nil, "http", nil, 0 },
        { "header_flood", nil, "network", "too_large", 0 },
        { "long_header", nil, "network", "too_large", 0 },
        { "gzip_bomb", nil, "network", "too_large", 0 },
        { "big_body", nil, "network", "too_large", 0 },
        { "short_length", nil, "network", "reset", 0 },
        { "reset", nil, "network", "reset", 0 },
        { "retry_after_long", nil, "rate_limited", "RATE_LIMITED", 0 },
        { "error_html", nil, "http", nil, 0 },
        { "error_run_string", nil, "http", "RUN_FAILED", 0 },
        { "error_code_table", nil, "http", nil, 0 },
    }

    for _, case in ipairs(BROKEN) do
        local scen, opts, kind, code, n = case[1], case[2], case[3], case[4], case[5]
        local kinds = kind
        if type(kind) == "table" then
            kinds = {}
            for k in pairs(kind) do kinds[#kinds + 1] = k end
            table.sort(kinds)
            kinds = table.concat(kinds, "|")
        end
        it(("ends '%s'%s with %s %s after %d rows"):format(scen,
            opts and (" (limit " .. opts.limit .. (opts.prefetch and ", prefetch " .. opts.prefetch or "")
                .. (opts.where and ", where pushed down" or "") .. (opts.raw and ", raw" or "")
                .. ")") or "", kinds, tostring(code), n), function()
            local rows, err = read_all(scen, opts)
            assert_error(err, kind, code)
            assert_prefix(rows)
            assert.are.equal(n, #rows)
        end)
    end

    -- client:count reads the same pages without building rows (decode_page's "count"): each
    -- broken answer ends it with the same error as people()
    for _, case in ipairs(BROKEN) do
        local scen, opts, kind, code = case[1], case[2], case[3], case[4]
        if not (opts and opts.raw) then
            it(("ends client:count on '%s'%s with the same error"):format(scen,
                opts and opts.where and " (where counted in the decoder)" or ""), function()
                local c = client_for(scen)
                local ok, err = pcall(c.count, c, AUD, RUN, opts)
                c:close()
                assert.is_false(ok, "count read a broken run: " .. tostring(err))
                assert_error(err, kind, code)
            end)
        end
    end

    it("counts a well-formed run and short pages exactly, with where or a filter", function()
        for _, scen in ipairs{ "good", "short_all" } do
            for _, prefetch in ipairs{ 0, 4 } do
                local c = client_for(scen)
                assert.are.same({ TOTAL, TOTAL }, { c:count(AUD, RUN, { limit = 100, prefetch = prefetch }) })
                -- these rows have no score: where counts none; a filter function sees built rows
                assert.are.same({ 0, TOTAL },
                    { c:count(AUD, RUN, { where = { min_score = 50 }, limit = 100, prefetch = prefetch }) })
                local third = function(r) return r.i % 3 == 0 end
                assert.are.same({ math.ceil(TOTAL / 3), TOTAL },
                    { c:count(AUD, RUN, { filter = third, limit = 100, prefetch = prefetch }) })
                c:close()
            end
        end
    end)

    it("names the offset and the request id in a page error", function()
        local _, err = read_all("shrink")
        assert.truthy(err.message:find("offset 100", 1, true), err.message)
        assert.are.equal("req_100", err.request_id)
    end)

    it("reads short pages (the docs allow them) completely, at every prefetch", function()
        for _, scen in ipairs{ "short_mid", "short_all" } do
            for _, prefetch in ipairs{ 0, 1, 4, 64 } do
                for _, limit in ipairs{ 1, 7, 100, 500 } do
                    local pages = 0
                    local rows, err = read_all(scen, { limit = limit, prefetch = prefetch,
                        on_page = function() pages = pages + 1 end })
                    assert.is_nil(err, tostring(err))
                    assert.are.equal(TOTAL, #rows, scen .. " " .. prefetch .. " " .. limit)
                    assert_prefix(rows)
                    assert.is_true(pages >= math.ceil(TOTAL / limit))
                end
            end
        end
    end)

    it("refuses a run, a run list or stats without their documented shape", function()
        for _, scen in ipairs{ "data_object", "good" } do
            local c = client_for(scen)
            local calls = {
                create_run = function() return c:create_run(AUD) end,
                cancel_run = function() return c:cancel_run(AUD, RUN) end,
                stats = function() return c:stats(AUD, RUN) end,
                list_runs = function() return c:list_runs(AUD) end,
            }
            for name, call in pairs(calls) do
                local v, err = call()
                assert.is_nil(v, scen .. " " .. name)
                assert_error(err, "decode", "BAD_RESPONSE")
                assert.truthy(err.message:find(name, 1, true), err.message)
            end
            c:close()
        end
        -- and the command line says so instead of printing nil
        local cli = require "leadpipe.cli"
        local h = require "spec.support.cli_helpers"
        for _, args in ipairs{ { "run", AUD }, { "cancel", AUD, RUN } } do
            nonce = nonce + 1
            local out, err = h.buffer(), h.buffer()
            local status = cli.main(args, { stdout = out, stderr = err, isatty = false,
                getenv = h.getenv{ LEADPIPE_API_KEY = "sk_hostile_0123456789",
                    LEADPIPE_BASE_URL = srv.url .. "/s/data_object/" .. nonce } })
            assert.are.equal(1, status)
            assert.are.equal("", out.text())
            assert.truthy(err.text():find("BAD_RESPONSE", 1, true), err.text())
        end
    end)

    it("names the field and the offset of a string that is not UTF-8", function()
        local _, err = read_all("bad_utf8")
        assert.are.equal("decode", err.kind)
        assert.truthy(err.message:find("results page at offset 100: ", 1, true), err.message)
        assert.truthy(err.message:find('"hashedEmail"', 1, true), err.message)
        _, err = read_all("lone_surrogate")
        assert.truthy(err.message:find('unpaired surrogate escape \\ud800 in the value of "hashedEmail"',
            1, true), err.message)
    end)

    it("reads JSON sent as text/plain (the body counts, not the label)", function()
        local rows, err = read_all("text_json")
        assert.is_nil(err)
        assert.are.equal(TOTAL, #rows)
    end)

    it("reads duplicate keys as one consistent page or fails, never a quiet loss", function()
        local rows, err = read_all("dup_keys")
        assert_prefix(rows)
        if err then assert_error(err, "http") else assert.are.equal(TOTAL, #rows) end
    end)

    it("polls again after a 202 that claims completed, then reads every row", function()
        local rows, err = read_all("accepted_completed")
        assert.is_nil(err)
        assert.are.equal(TOTAL, #rows)
        assert_prefix(rows)
    end)

    it("never takes a 202 for a page: results() reports it pending, without rows", function()
        local c = client_for("accepted_forever")
        local p = assert(c:results(AUD, RUN))
        assert.are.equal("running", p.state)
        assert.are.equal(0, #p.results)
        c:close()
    end)

    it("ends wait_run with a timeout when a 202 keeps claiming completed", function()
        local c = client_for("accepted_forever")
        local run, err = c:wait_run(AUD, RUN, { timeout = 0.2 })
        assert.is_nil(run)
        assert_error(err, "timeout", "WAIT_TIMEOUT")
        c:close()
    end)

    it("raises not_ready for pages{ wait = false } on a 202 that claims completed", function()
        local rows, err = read_all("accepted_forever", { wait = false })
        assert_error(err, "not_ready")
        assert.are.equal(0, #rows)
    end)

    it("cuts a request in flight at the wait_run deadline", function()
        local c = client_for("slow")
        local t0 = core.now()
        local run, err = c:wait_run(AUD, RUN, { timeout = 1 })
        local took = core.now() - t0
        assert.is_nil(run)
        assert_error(err, "timeout", "WAIT_TIMEOUT")
        assert.is_true(took < 1.5, "took " .. took .. " s")
        c:close()
    end)

    it("cuts a request in flight at the pages() wait timeout", function()
        local t0 = core.now()
        local _, err = read_all("slow", { timeout = 0.5 })
        assert_error(err, "timeout")
        assert.is_true(core.now() - t0 < 1.2)
    end)

    it("gives up at once on a Retry-After beyond max_retry_after", function()
        local c = client_for("retry_after_long")
        local t0 = core.now()
        local p, err = c:results(AUD, RUN)
        assert.is_nil(p)
        assert_error(err, "rate_limited")
        assert.are.equal(100000, err.retry_after)
        assert.are.equal(1, err.attempts)
        assert.is_true(core.now() - t0 < 1)
        c:close()
    end)

    it("keeps a 409 whose run is not an object an http error without err.run", function()
        local c = client_for("error_run_string")
        local _, err = c:results(AUD, RUN)
        assert_error(err, "http", "RUN_FAILED")
        assert.is_nil(err.run)
        c:close()
    end)

    it("drops error codes and request ids that are not strings", function()
        local c = client_for("error_code_table")
        local _, err = c:results(AUD, RUN)
        assert_error(err, "http")
        assert.is_nil(err.code)
        assert.is_nil(err.request_id)
        assert.are.equal("HTTP 400", err.message)
        c:close()
    end)

    it("rejects a create_run answer whose data is an array", function()
        local c = client_for("create_array")
        local run, err = c:create_run(AUD)
        assert.is_nil(run)
        assert_error(err, "decode", "BAD_RESPONSE")
        c:close()
    end)

    it("flattens an HTML error page into a one-line message", function()
        local c = client_for("error_html")
        local _, err = c:results(AUD, RUN)
        assert_error(err, "http")
        assert.are.equal(500, err.status)
        assert.is_nil(err.message:find("\n"))
        c:close()
    end)
end)

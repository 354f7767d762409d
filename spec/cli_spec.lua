-- Specs for the command line tool: leadpipe.cli in-process and bin/leadpipe as a subprocess,
-- end to end against the fake API started in this process. One file (over 500 lines): the
-- blocks share one fake server, one completed run and the in-process runner.

local cli = require "leadpipe.cli"
local mock = require "leadpipe.mock"
local json = require "leadpipe.json"
local format = require "leadpipe.format"
local core = require "leadpipe.core"
local h = require "spec.support.cli_helpers"

local AUD = mock.AUDIENCE
local unpack = table.unpack or unpack
local ROWS = 600

-- Runs the tool in-process. Returns status, stdout, stderr.
local function run_cli(args, vars, isatty)
    local out, err = h.buffer(), h.buffer()
    local status = cli.main(args, { stdout = out, stderr = err, getenv = h.getenv(vars or {}),
        isatty = isatty or false })
    return status, out.text(), err.text()
end

-- Asserts a usage error: status 2 and exactly one line on stderr, containing `text`.
local function assert_usage(text, args, vars)
    local status, out, err = run_cli(args, vars)
    assert.are.equal(2, status)
    assert.are.equal("", out)
    assert.are.equal(1, #h.lines(err), "expected one line on stderr, got: " .. err)
    assert.is_truthy(err:find(text, 1, true), "stderr lacks '" .. text .. "': " .. err)
    assert.is_truthy(err:find("^leadpipe: "))
    return err
end

local function decode_lines(text)
    local rows = {}
    for _, line in ipairs(h.lines(text)) do rows[#rows + 1] = assert(json.decode(line)) end
    return rows
end

local function hashes(rows)
    local out = {}
    for i, r in ipairs(rows) do out[i] = r.hashedEmail end
    return table.concat(out, ",")
end

-- Independent of leadpipe.filter: the expected rows for a filter, as plain Lua.
local function only(rows, pred)
    local out = {}
    for _, r in ipairs(rows) do
        if pred(r) then out[#out + 1] = r end
    end
    return out
end

local function lset(list)
    local s = {}
    for _, v in ipairs(list) do s[v:lower()] = true end
    return s
end

-- What a CSV cell must hold for a value, computed here rather than by leadpipe.format.
local function expected_cell(v, path)
    if v == nil then return "" end
    if type(v) == "string" then return v end
    if type(v) == "number" then return string.format("%d", v) end
    if path == "intent.matchedTopics" then
        local names = {}
        for i, t in ipairs(v) do names[i] = t.topicName end
        return table.concat(names, "; ")
    end
    error("no expectation for " .. path)
end

local function get(row, path)
    local v = row
    for seg in path:gmatch("[^.]+") do
        if type(v) ~= "table" then return nil end
        v = v[seg]
    end
    return v
end

describe("leadpipe cli", function()
    describe("arguments", function()
        it("prints help for the tool and for every subcommand", function()
            for _, args in ipairs({ { "--help" }, { "-h" }, { "help" } }) do
                local status, out, err = run_cli(args)
                assert.are.equal(0, status)
                assert.are.equal("", err)
                assert.is_truthy(out:find("^Usage: leadpipe %["))
                for _, cmd in ipairs({ "audiences", "runs", "run", "cancel", "results", "stats",
                                       "export", "mock", "help" }) do
                    assert.is_truthy(out:find("\n   " .. cmd .. " ", 1, true), cmd)
                end
            end
            for _, cmd in ipairs({ "audiences", "run", "results", "runs", "cancel", "stats", "export",
                                   "mock" }) do
                for _, args in ipairs({ { cmd, "--help" }, { cmd, "-h" }, { "help", cmd } }) do
                    local status, out = run_cli(args)
                    assert.are.equal(0, status)
                    assert.is_truthy(out:find("^Usage: leadpipe " .. cmd .. " "), out)
                    assert.is_truthy(out:find("Exit status: 0 ok, 1 API or network error, 2 usage error",
                        1, true))
                end
            end
        end)

        it("prints the help on stdout and exits 2 when no command is given", function()
            local status, out, err = run_cli({})
            assert.are.equal(2, status)
            assert.are.equal("", err)
            assert.is_truthy(out:find("^Usage: leadpipe %["))
        end)

        it("prints the version", function()
            local status, out = run_cli({ "--version" })
            assert.are.equal(0, status)
            assert.are.equal("leadpipe " .. require("leadpipe").VERSION .. "\n", out)
        end)

        it("explains an unknown command, with a hint for a typo", function()
            assert_usage("unknown command 'fetch'", { "fetch" })
            assert_usage("unknown command 'reslts' (did you mean 'results'?) (see 'leadpipe --help')",
                { "reslts" })
            assert_usage('unknown command "nope" (see \'leadpipe --help\')', { "help", "nope" })
        end)

        it("rejects unknown options, with a hint for a typo, naming the subcommand's help", function()
            assert_usage("unknown option '--colour' (see 'leadpipe results --help')",
                { "results", AUD.small, AUD.small, "--colour" })
            assert_usage("unknown option '--min-scor' (did you mean '--min-score'?)",
                { "results", AUD.small, AUD.small, "--min-scor", "80" })
            assert_usage("unknown option '-x'", { "runs", AUD.small, "-x" })
            assert_usage("unknown option '--wait'", { "runs", AUD.small, "--wait" })
        end)

        it("rejects missing, malformed and extra arguments, naming them as typed", function()
            assert_usage("missing argument 'AUDIENCE'", { "run" })
            assert_usage("missing argument 'RUN'", { "results", AUD.small })
            assert_usage('RUN must be a UUID like 8c4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3a (got "x")',
                { "results", AUD.small, "x" })
            assert_usage('AUDIENCE must be a UUID', { "export", "nope", AUD.small })
            assert_usage("too many arguments", { "cancel", AUD.small, AUD.small, "extra" })
        end)

        it("rejects bad option values", function()
            local r = { "results", AUD.small, AUD.small }
            local function with(...)
                local args = { unpack(r) }
                for _, a in ipairs({ ... }) do args[#args + 1] = a end
                return args
            end
            assert_usage('--format must be one of jsonl, json, csv, table, got "xml"',
                with("--format", "xml"))
            assert_usage('--limit must be an integer from 1 to 500, got "0"', with("--limit", "0"))
            assert_usage('--limit must be an integer from 1 to 500, got "501"', with("--limit=501"))
            assert_usage('--max must be an integer >= 0, got "-1"', with("--max=-1"))
            assert_usage('--max must be an integer >= 0, got "ten"', with("--max", "ten"))
            assert_usage('--min-score must be a number', with("--min-score", "high"))
            assert_usage("--fields: bad field", with("--fields", "a,,b"))
            assert_usage("--seniority takes a comma-separated list without empty items",
                with("--seniority", ""))
            assert_usage("--seniority-at-least must be a known seniority",
                with("--seniority-at-least", "boss"))
            assert_usage("option '--format' requires an argument", with("--format"))
            assert_usage("option '--wait' does not take arguments", { "run", AUD.small, "--wait=yes" })
            assert_usage('--port must be an integer from 0 to 65535, got "70000"',
                { "mock", "--port", "70000" })
            assert_usage("--idempotency-key must be 1 to 120 printable characters, got 121",
                { "run", AUD.small, "--idempotency-key", string.rep("k", 121) })
            assert_usage("--retries must be an integer from 0 to 10",
                { "runs", AUD.small, "--retries", "11" })
        end)

        it("needs an API key and a valid base URL and ids", function()
            assert_usage("no API key: set LEADPIPE_API_KEY or pass --api-key", { "runs", AUD.small })
            assert_usage("--base-url must be an http:// or https:// URL",
                { "runs", AUD.small, "--api-key", "k", "--base-url", "ftp://example" })
            assert_usage("AUDIENCE must be a UUID", { "runs", "not-a-uuid" },
                { LEADPIPE_API_KEY = "k", LEADPIPE_BASE_URL = "http://127.0.0.1:9" })
        end)

        it("reports output it cannot write, with status 1", function()
            local full = { write = function() return nil, "No space left on device" end }
            local err = h.buffer()
            assert.are.equal(1, cli.main({ "help" }, { stdout = full, stderr = err, getenv = h.getenv({}) }))
            assert.are.equal("leadpipe: cannot write the output: No space left on device\n", err.text())
            local _, err2, status = h.sh(h.lua .. " bin/leadpipe runs --help > /dev/full")
            assert.are.equal(1, status)
            assert.are.equal("leadpipe: cannot write the output: No space left on device\n", err2)
        end)

        it("parses --name=value, repeated lists, options anywhere and --", function()
            local run = "00000000-0000-4000-8000-000000000001"
            local opts = cli.parse_for_tests({ "--api-key=k1", "results", "--seniority", "vp,director",
                AUD.small, "--seniority=owner", "--", run })
            assert.are.equal("k1", opts.api_key)
            assert.are.same({ "vp", "director", "owner" }, opts.seniority)
            assert.are.same({ AUD.small, run }, { opts.AUDIENCE, opts.RUN })
        end)

        it("splits --topic only when it is a list of ids, since topic names hold commas", function()
            local opts = cli.parse_for_tests({ "results", AUD.small, AUD.small, "--topic", "117796, 5",
                "--topic", "Personal Finance, Budgeting & Saving" })
            assert.are.same({ "117796", "5", "Personal Finance, Budgeting & Saving" }, opts.topic)
        end)

        it("turns filter options into a where table", function()
            assert.is_nil(cli.where_from({}))
            assert.are.same({ min_score = 80, topic = { 117796, "crm" }, has = { "phone" } },
                cli.where_from({ min_score = 80, topic = { "117796", "crm" }, has = { "phone" } }))
        end)
    end)

    describe("against the fake API", function()
        local srv, vars, run_id, all_text, all_rows

        setup(function()
            srv = assert(mock.start{ audiences = {
                { id = AUD.small, rows = ROWS },
                { id = AUD.empty, rows = 0 },
                { id = AUD.failing, rows = 50, fail = { code = "HYDRATION_FAILED", message = "no people" } },
            } })
            vars = { LEADPIPE_API_KEY = srv.api_key, LEADPIPE_BASE_URL = srv.url }
            local status, out = run_cli({ "run", AUD.small, "--wait" }, vars)
            assert.are.equal(0, status)
            run_id = out:match("^(%S+)\n$")
            status, all_text = run_cli({ "results", AUD.small, run_id }, vars)
            assert.are.equal(0, status)
            all_rows = decode_lines(all_text)
        end)

        teardown(function()
            if srv then srv:stop() end
        end)

        after_each(function()
            srv:configure{ queued_ms = 0, running_ms = 0, faults = false }
        end)

        describe("run and runs", function()
            it("queues a run and prints its id, which runs then lists", function()
                local status, out, err = run_cli({ "run", AUD.small }, vars)
                assert.are.equal(0, status)
                assert.are.equal("", err)
                local id = out:match("^(%x+%-%x+%-%x+%-%x+%-%x+)\n$")
                assert.is_truthy(id, out)
                local st, listed = run_cli({ "runs", AUD.small, "--format", "jsonl" }, vars)
                assert.are.equal(0, st)
                local found = false
                for _, r in ipairs(decode_lines(listed)) do
                    if r.id == id then found = true end
                end
                assert.is_true(found)
                local st2, tbl = run_cli({ "runs", AUD.small, "--limit", "5" }, vars)
                assert.are.equal(0, st2)
                local lines = h.lines(tbl)
                assert.is_truthy(lines[1]:find("^id%s+status%s+runType%s+resultCount"))
                assert.is_truthy(lines[2]:find("^%-+  %-+"))
                assert.is_truthy(#lines >= 3 and #lines <= 7)
            end)

            it("waits for a queued run with --wait", function()
                srv:configure{ queued_ms = 100, running_ms = 100 }
                local status, out, err = run_cli({ "run", AUD.small, "--wait" }, vars)
                assert.are.equal(0, status)
                assert.are.equal("", err)
                local id = out:match("^(%S+)\n$")
                local st, rows = run_cli({ "results", AUD.small, id, "--no-wait", "--max", "3" }, vars)
                assert.are.equal(0, st)
                assert.are.equal(3, #h.lines(rows))
            end)

            it("fails with status 1 when the run fails", function()
                local status, out, err = run_cli({ "run", AUD.failing, "--wait" }, vars)
                assert.are.equal(1, status)
                assert.is_truthy(out:find("^%S+\n$"))
                assert.are.equal(1, #h.lines(err))
                assert.is_truthy(err:find("run_failed", 1, true), err)
                assert.is_truthy(err:find("HYDRATION_FAILED", 1, true), err)
            end)
        end)

        describe("results", function()
            it("streams every row exactly once as sorted-key JSON lines", function()
                assert.are.equal(ROWS, #all_rows)
                local seen = {}
                for _, r in ipairs(all_rows) do
                    assert.is_nil(seen[r.hashedEmail])
                    seen[r.hashedEmail] = true
                end
                for _, line in ipairs(h.lines(all_text)) do
                    assert.are.equal(line, json.encode(json.decode(line)))
                end
            end)

            it("draws progress on stderr only, when told stderr is a terminal", function()
                local status, out, err = run_cli({ "results", AUD.small, run_id, "--limit", "200" }, vars,
                    true)
                assert.are.equal(0, status)
                assert.are.equal(all_text, out)
                assert.is_truthy(err:find("\r\27[K[", 1, true))
                assert.is_truthy(err:find(("%d/%d rows  3 pages"):format(ROWS, ROWS), 1, true), err)
                assert.are.equal("\n", err:sub(-1))
                local _, _, quiet = run_cli({ "results", AUD.small, run_id, "--no-progress" }, vars, true)
                assert.are.equal("", quiet)
            end)

            it("gives the same rows whatever the page size", function()
                local status, out = run_cli({ "results", AUD.small, run_id, "--limit", "37" }, vars)
                assert.are.equal(0, status)
                assert.are.equal(all_text, out)
            end)

            it("writes RFC 4180 CSV that parses back to the JSONL rows", function()
                local fields = { "hashedEmail", "fullName", "headline", "company.name", "geo.state",
                    "intent.score", "intent.matchedTopics", "phone" }
                local status, out, err = run_cli({ "results", AUD.small, run_id, "--format", "csv",
                    "--fields", table.concat(fields, ",") }, vars)
                assert.are.equal(0, status)
                assert.are.equal("", err)
                assert.is_truthy(out:find('"', 1, true), "no field needed quoting")
                assert.is_truthy(out:find("\r\n", 1, true))
                local records = h.parse_csv(out)
                assert.are.same(fields, records[1])
                assert.are.equal(ROWS + 1, #records)
                for i, row in ipairs(all_rows) do
                    local rec = records[i + 1]
                    for c, path in ipairs(fields) do
                        assert.are.equal(expected_cell(get(row, path), path), rec[c])
                    end
                end
            end)

            it("uses the default CSV columns without --fields", function()
                local status, out = run_cli({ "results", AUD.small, run_id, "--format", "csv",
                    "--max", "10" }, vars)
                assert.are.equal(0, status)
                local records = h.parse_csv(out)
                assert.are.same(format.default_fields.csv, records[1])
                assert.are.equal(11, #records)
                assert.are.equal(all_rows[10].hashedEmail, records[11][1])
            end)

            it("prints an aligned table", function()
                local status, out = run_cli({ "results", AUD.small, run_id, "--format", "table",
                    "--fields", "fullName,company.name,intent.score", "--max", "25" }, vars)
                assert.are.equal(0, status)
                local lines = h.lines(out)
                assert.are.equal(27, #lines)
                -- the score column is right-aligned, so every line ends in the same column
                local function columns(s)
                    local n = 0
                    for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
                        -- U+3000..U+9FFF (CJK) take two columns
                        local b = ch:byte(1)
                        n = n + ((#ch == 3 and b >= 0xE3 and b <= 0xE9) and 2 or 1)
                    end
                    return n
                end
                for _, line in ipairs(lines) do
                    assert.are.equal(columns(lines[1]), columns(line))
                end
                for i = 1, 25 do
                    local row = all_rows[i]
                    if row.fullName then assert.are.equal(1, lines[i + 2]:find(row.fullName, 1, true)) end
                    assert.is_truthy(lines[i + 2]:find(tostring(row.intent.score) .. "$"))
                end
            end)

            local function is_director_up(r)
                local up = { director = true, vp = true, c_suite = true, owner = true, partner = true }
                return up[r.seniority or ""] or false
            end
            local function score(r) return r.intent and r.intent.score end

            local cases = {
                { { "--min-score", "80", "--seniority-at-least", "director" }, function(r)
                    return score(r) and score(r) >= 80 and is_director_up(r)
                end },
                { { "--max-score", "30" }, function(r) return score(r) and score(r) <= 30 end },
                { { "--seniority", "vp,manager", "--country", "US" }, function(r)
                    local geo = r.geo or {}
                    return lset{ "vp", "manager" }[r.seniority or ""]
                        and ((geo.countryCode or ""):lower() == "us" or (geo.country or ""):lower() == "us")
                end },
                { { "--has", "businessEmail,phone", "--department", "marketing" }, function(r)
                    return (r.businessEmail or "") ~= "" and (r.phone or "") ~= ""
                        and r.department == "marketing"
                end },
                { { "--country", "united states,CH" }, function(r)
                    local geo = r.geo or {}
                    local c = lset{ "united states", "ch" }
                    return c[(geo.countryCode or ""):lower()] or c[(geo.country or ""):lower()]
                end },
            }
            for _, case in ipairs(cases) do
                it("filters with " .. table.concat(case[1], " "), function()
                    local args = { "results", AUD.small, run_id }
                    for _, a in ipairs(case[1]) do args[#args + 1] = a end
                    local status, out = run_cli(args, vars)
                    assert.are.equal(0, status)
                    local expect = only(all_rows, case[2])
                    assert.is_true(#expect > 0 and #expect < ROWS, "the case should keep some rows")
                    assert.are.equal(hashes(expect), hashes(decode_lines(out)))
                end)
            end

            it("filters by a matched topic id or name", function()
                local topic = all_rows[1].intent.matchedTopics[1]
                for _, t in ipairs({ tostring(topic.topicId), topic.topicName:upper() }) do
                    local status, out = run_cli({ "results", AUD.small, run_id, "--topic", t }, vars)
                    assert.are.equal(0, status)
                    local expect = only(all_rows, function(r)
                        for _, m in ipairs(r.intent and r.intent.matchedTopics or {}) do
                            if m.topicId == topic.topicId then return true end
                        end
                        return false
                    end)
                    assert.are.equal(hashes(expect), hashes(decode_lines(out)))
                end
            end)

            it("stops after --max rows", function()
                local status, out = run_cli({ "results", AUD.small, run_id, "--max", "120",
                    "--limit", "50" }, vars)
                assert.are.equal(0, status)
                local rows = decode_lines(out)
                assert.are.equal(120, #rows)
                assert.are.equal(hashes({ unpack(all_rows, 1, 120) }), hashes(rows))
                local st, none = run_cli({ "results", AUD.small, run_id, "--max", "0" }, vars)
                assert.are.equal(0, st)
                assert.are.equal("", none)
            end)

            it("keeps only --fields in JSONL, nested as in the row", function()
                local status, out = run_cli({ "results", AUD.small, run_id, "--fields",
                    "fullName,company.name,intent.score", "--max", "5" }, vars)
                assert.are.equal(0, status)
                for i, row in ipairs(decode_lines(out)) do
                    local src = all_rows[i]
                    assert.are.same({ fullName = src.fullName, intent = { score = src.intent.score },
                        company = src.company and src.company.name and { name = src.company.name } or nil },
                        row)
                end
            end)

            it("prints nothing but a CSV header for an empty run", function()
                local _, out = run_cli({ "run", AUD.empty, "--wait" }, vars)
                local id = out:match("^(%S+)")
                local st1, jsonl = run_cli({ "results", AUD.empty, id }, vars)
                assert.are.equal(0, st1)
                assert.are.equal("", jsonl)
                local st2, csv = run_cli({ "results", AUD.empty, id, "--format", "csv",
                    "--fields", "a,b" }, vars)
                assert.are.equal(0, st2)
                assert.are.equal("a,b\r\n", csv)
            end)

            it("fails with status 1 for a run that is not ready, with --no-wait", function()
                srv:configure{ queued_ms = 60000 }
                local _, out = run_cli({ "run", AUD.small }, vars)
                local id = out:match("^(%S+)")
                local status, rows, err = run_cli({ "results", AUD.small, id, "--no-wait" }, vars)
                assert.are.equal(1, status)
                assert.are.equal("", rows)
                assert.is_truthy(err:find("not_ready", 1, true), err)
            end)
        end)

        describe("cancel", function()
            it("cancels a queued run once, then reports the refusal", function()
                srv:configure{ queued_ms = 60000 }
                local _, out = run_cli({ "run", AUD.small }, vars)
                local id = out:match("^(%S+)")
                local status, text, err = run_cli({ "cancel", AUD.small, id }, vars)
                assert.are.equal(0, status)
                assert.are.equal("", err)
                assert.are.equal(id .. " cancelled\n", text)
                local st2, out2, err2 = run_cli({ "cancel", AUD.small, id }, vars)
                assert.are.equal(1, st2)
                assert.are.equal("", out2)
                assert.are.equal(1, #h.lines(err2))
                local st3, _, err3 = run_cli({ "results", AUD.small, id }, vars)
                assert.are.equal(1, st3)
                assert.is_truthy(err3:find("run_cancelled", 1, true), err3)
            end)
        end)

        describe("API and network errors", function()
            it("exit 1 for a wrong key without showing the key", function()
                local bad = { LEADPIPE_API_KEY = "sk_wrong_key_12345", LEADPIPE_BASE_URL = srv.url }
                local status, out, err = run_cli({ "runs", AUD.small }, bad)
                assert.are.equal(1, status)
                assert.are.equal("", out)
                assert.are.equal(1, #h.lines(err))
                assert.is_truthy(err:find("auth", 1, true), err)
                assert.is_nil(err:find("sk_wrong_key_12345", 1, true))
            end)

            it("exit 1 for an unknown audience", function()
                local status, _, err = run_cli({ "run", core.uuid() }, vars)
                assert.are.equal(1, status)
                assert.is_truthy(err:find("not_found", 1, true), err)
            end)

            it("exit 1 when nothing listens at the base URL", function()
                local status, _, err = run_cli({ "runs", AUD.small, "--retries", "0",
                    "--base-url", "http://127.0.0.1:1" }, vars)
                assert.are.equal(1, status)
                assert.are.equal(1, #h.lines(err))
                assert.is_truthy(err:find("network", 1, true), err)
            end)

            it("retry through injected faults and still give every row once", function()
                srv:configure{ faults = { every = 2, seed = 3, kinds = { "500", "503", "drop" } } }
                local status, out = run_cli({ "results", AUD.small, run_id, "--limit", "100" }, vars)
                assert.are.equal(0, status)
                assert.are.equal(all_text, out)
            end)
        end)

        describe("audiences, stats and export", function()
            it("lists the audiences as a table, JSON or JSONL, filtered by status", function()
                local status, out = run_cli({ "audiences" }, vars)
                assert.are.equal(0, status)
                local lines = h.lines(out)
                assert.is_truthy(lines[1]:find("^id%s+name%s+status%s+audienceSize"))
                assert.are.equal(2 + 3, #lines)
                local st, js = run_cli({ "audiences", "--format", "json", "--status", "active" }, vars)
                assert.are.equal(0, st)
                local list = assert(json.decode(js))
                assert.are.equal(3, #list)
                assert.are.equal(AUD.small, list[1].id)
                assert_usage("--status must be one of draft, active, paused",
                    { "audiences", "--status", "on" })
            end)

            it("prints a run's stats as one JSON line", function()
                local status, out = run_cli({ "stats", AUD.small, run_id }, vars)
                assert.are.equal(0, status)
                assert.are.equal(1, #h.lines(out))
                assert.are.equal(ROWS, assert(json.decode(out)).stats.total)
            end)

            it("fails a pending run's stats or export with --no-wait, status 1", function()
                srv:configure{ queued_ms = 60000 }
                local _, id = run_cli({ "run", AUD.small }, vars)
                id = id:match("^(%S+)")
                for _, cmd in ipairs({ "stats", "export" }) do
                    local status, out, err = run_cli({ cmd, AUD.small, id, "--no-wait" }, vars)
                    assert.are.equal(1, status)
                    assert.are.equal("", out)
                    assert.is_truthy(err:find("not_ready", 1, true), err)
                end
                run_cli({ "cancel", AUD.small, id }, vars)
            end)

            it("exports the CSV to stdout or to a file, which parses back", function()
                local status, out = run_cli({ "export", AUD.small, run_id }, vars)
                assert.are.equal(0, status)
                local records = require("spec.support.csv").parse(out)
                assert.are.equal(ROWS + 1, #records)
                assert.are.equal("hashedEmail", records[1][1])
                local file = os.tmpname()
                status = run_cli({ "export", AUD.small, run_id, "--output", file }, vars)
                assert.are.equal(0, status)
                assert.are.equal(out, h.read_file(file))
                os.remove(file)
            end)

            it("leaves no file when the export fails", function()
                local run = select(2, run_cli({ "run", AUD.failing }, vars)):match("^(%S+)")
                local dir = os.tmpname()
                os.remove(dir)
                assert(os.execute("mkdir " .. dir))
                local status, _, err = run_cli({ "export", AUD.failing, run, "-o", dir .. "/x.csv" }, vars)
                assert.are.equal(1, status)
                assert.is_truthy(err:find("run_failed", 1, true), err)
                local p = io.popen("ls -A " .. dir)
                assert.are.equal("", p:read("*a"))
                p:close()
                os.execute("rm -rf " .. dir)
            end)
        end)

        describe("results output", function()
            it("writes --format json as one array of the same rows", function()
                local status, out = run_cli({ "results", AUD.small, run_id, "--format", "json" }, vars)
                assert.are.equal(0, status)
                local rows = assert(json.decode(out))
                assert.are.equal(hashes(all_rows), hashes(rows))
                local _, empty = run_cli({ "results", AUD.small, run_id, "--format", "json", "--max", "0" },
                    vars)
                assert.are.equal("[]\n", empty)
            end)

            it("neutralises formula cells with --csv-safe", function()
                local _, out = run_cli({ "results", AUD.small, run_id, "--format", "csv", "--fields",
                    "phone,fullName", "--csv-safe" }, vars)
                local _, plain = run_cli({ "results", AUD.small, run_id, "--format", "csv", "--fields",
                    "phone,fullName" }, vars)
                local csv = require("spec.support.csv")
                local safe_rows, plain_rows = csv.parse(out), csv.parse(plain)
                local changed = 0
                for i = 2, #plain_rows do
                    local a, b = plain_rows[i][1], safe_rows[i][1]
                    if a:find("^[=+%-@]") then
                        assert.are.equal("'" .. a, b)
                        changed = changed + 1
                    else
                        assert.are.equal(a, b)
                    end
                end
                assert.is_true(changed > 0) -- the fake's phones start with +
            end)

            it("clears the progress bar when --max stops the output early", function()
                local out, err = h.buffer(), h.buffer()
                local t = 0
                local status = cli.main({ "results", AUD.small, run_id, "--limit", "50", "--max", "120" },
                    { stdout = out, stderr = err, getenv = h.getenv(vars), isatty = true,
                      now = function() t = t + 1 return t end })
                assert.are.equal(0, status)
                assert.are.equal(120, #h.lines(out.text()))
                local e = err.text()
                assert.is_truthy(e:find("rows/s", 1, true), e)
                assert.are.equal("\r\27[K", e:sub(-4))
                assert.is_nil(e:find("\n", 1, true))
            end)
        end)

        describe("as a subprocess", function()
            it("gives the same output as in-process, with nothing on a piped stderr", function()
                local out, err, status = h.run({ "results", AUD.small, run_id, "--max", "50" }, vars)
                assert.are.equal(0, status)
                assert.are.equal("", err)
                local _, expect = run_cli({ "results", AUD.small, run_id, "--max", "50" }, vars)
                assert.are.equal(expect, out)
            end)

            it("exits 1 with the error when the run id cannot be written", function()
                for _, extra in ipairs({ "", " --wait" }) do
                    local out, err, status = h.sh(("env LEADPIPE_API_KEY=%s LEADPIPE_BASE_URL=%s %s "
                        .. "bin/leadpipe run %s%s > /dev/full"):format(srv.api_key, srv.url, h.lua,
                        AUD.small, extra))
                    assert.are.equal("", out)
                    assert.are.equal(1, status)
                    assert.are.equal("leadpipe: cannot write the output: No space left on device\n", err)
                end
            end)

            it("exits 1 without a message when the reader goes away and SIGPIPE is ignored", function()
                for _, cmd in ipairs({ "results", "export" }) do
                    local _, err, status = h.sh(("bash -c \"trap '' PIPE; env LEADPIPE_API_KEY=%s "
                        .. "LEADPIPE_BASE_URL=%s %s bin/leadpipe %s %s %s | head -c 10 >/dev/null; "
                        .. "exit \\${PIPESTATUS[0]}\""):format(srv.api_key, srv.url, h.lua, cmd, AUD.small,
                        run_id))
                    assert.are.equal(1, status, cmd .. ": " .. err)
                    assert.are.equal("", err)
                end
            end)

            it("says curl's message once when nothing listens", function()
                local _, err, status = h.run({ "runs", AUD.small }, { LEADPIPE_API_KEY = "k",
                    LEADPIPE_BASE_URL = "http://127.0.0.1:9", LEADPIPE_PROGRESS = "0" })
                assert.are.equal(1, status)
                local _, n = err:gsub("Couldn't connect to server", "")
                assert.are.equal(1, n, err)
            end)

            it("exits 2 on usage errors and 1 on API errors, with one line on stderr", function()
                local out, err, status = h.run({ "results", AUD.small }, vars)
                assert.are.equal(2, status)
                assert.are.equal("", out)
                assert.are.equal("leadpipe: missing argument 'RUN' (see 'leadpipe results --help')\n", err)
                out, err, status = h.run({ "runs", AUD.small }, { LEADPIPE_API_KEY = "sk_bad",
                    LEADPIPE_BASE_URL = srv.url })
                assert.are.equal(1, status)
                assert.are.equal("", out)
                assert.are.equal(1, #h.lines(err))
                assert.is_nil(err:find("traceback", 1, true))
            end)

            it("shows a progress bar when stderr is a terminal, and keeps stdout clean", function()
                local file = os.tmpname()
                local cmd = ("env LEADPIPE_API_KEY=%s LEADPIPE_BASE_URL=%s %s bin/leadpipe results %s %s "
                    .. "--limit 50 > %s")
                    :format(srv.api_key, srv.url, h.lua, AUD.small, run_id, file)
                local transcript, status = h.in_terminal(cmd)
                local rows = h.read_file(file)
                os.remove(file)
                if not transcript then
                    pending("script(1) is not installed")
                    return
                end
                assert.are.equal(0, status)
                assert.are.equal(all_text, rows)
                assert.is_truthy(transcript:find("\r\27[K[", 1, true), transcript)
                local summary = ("%d/%d rows  %d pages"):format(ROWS, ROWS, math.floor(ROWS / 50))
                assert.is_truthy(transcript:find(summary, 1, true), transcript)
                assert.is_truthy(transcript:find("rows/s", 1, true))
                assert.is_truthy(transcript:find("[########################]", 1, true))
            end)

            it("shows the wait for a run on a terminal", function()
                -- long enough that the first poll, right after creation, sees it pending
                srv:configure{ queued_ms = 600, running_ms = 0 }
                local cmd = ("env LEADPIPE_API_KEY=%s LEADPIPE_BASE_URL=%s %s bin/leadpipe run %s --wait")
                    :format(srv.api_key, srv.url, h.lua, AUD.small)
                local transcript, status = h.in_terminal(cmd)
                if not transcript then
                    pending("script(1) is not installed")
                    return
                end
                assert.are.equal(0, status)
                assert.is_truthy(transcript:find("\r\27%[Krun %S+: queued, waiting %ds"), transcript)
                assert.is_truthy(transcript:find(": completed, " .. ROWS .. " rows", 1, true), transcript)
            end)

            it("stops cleanly on Ctrl-C with status 130 and no traceback", function()
                srv:configure{ queued_ms = 60000 }
                local out, err = os.tmpname(), os.tmpname()
                local script = table.concat({
                    ("env LEADPIPE_API_KEY=%s LEADPIPE_BASE_URL=%s %s bin/leadpipe run %s --wait >%s 2>%s &")
                        :format(srv.api_key, srv.url, h.lua, AUD.small, out, err),
                    "pid=$!",
                    "i=0",
                    ("while [ ! -s %s ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done"):format(out),
                    "kill -INT $pid",
                    "wait $pid",
                    "echo $?",
                }, "\n")
                local status_text = h.sh(script)
                local id, msg = h.read_file(out), h.read_file(err)
                os.remove(out)
                os.remove(err)
                assert.are.equal("130", status_text:match("%d+"))
                assert.is_truthy(id:find("^%S+\n$"))
                assert.are.equal("leadpipe: interrupted\n", msg)
            end)

            it("runs the fake API in the foreground with mock", function()
                local out = os.tmpname()
                local pidfile = os.tmpname()
                h.sh(("%s bin/leadpipe mock --port 0 --rows 40 --duration 30 >%s 2>&1 & echo $! >%s")
                    :format(h.lua, out, pidfile))
                local pid = h.read_file(pidfile):match("%d+")
                h.sh(("i=0; while ! grep -q 'stop with' %s && [ $i -lt 200 ]; do sleep 0.05; "
                    .. "i=$((i+1)); done"):format(out))
                local banner = h.read_file(out)
                local url = banner:match("listening on (http://127%.0%.0%.1:%d+)")
                local key = banner:match("api key%s+(%S+)")
                local aud = banner:match("audience%s+(%S+)%s+%(small, 40 rows%)")
                assert.is_truthy(url and key and aud, banner)
                local there = { LEADPIPE_API_KEY = key, LEADPIPE_BASE_URL = url }
                local status, id = run_cli({ "run", aud, "--wait" }, there)
                assert.are.equal(0, status)
                local st2, rows = run_cli({ "results", aud, id:match("%S+") }, there)
                assert.are.equal(0, st2)
                assert.are.equal(40, #h.lines(rows))
                local _, _, killed = h.sh("kill -TERM " .. pid .. " && i=0; while kill -0 " .. pid
                    .. " 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; ! kill -0 " .. pid
                    .. " 2>/dev/null")
                local final = h.read_file(out)
                os.remove(out)
                os.remove(pidfile)
                assert.are.equal(0, killed)
                assert.is_truthy(final:find("leadpipe mock API stopped", 1, true), final)
            end)
        end)
    end)
end)

-- Specs for `leadpipe results`: filters, formats, fields and limits, in-process against
-- the fake API; the expected rows are computed here without leadpipe.filter or .format.

local cli = require "leadpipe.cli"
local json = require "leadpipe.json"
local format = require "leadpipe.format"
local mock = require "leadpipe.mock"
local h = require "spec.support.cli_helpers"
local cr = require "spec.support.cli_run"

local AUD = mock.AUDIENCE
local unpack = table.unpack or unpack
local run_cli, decode_lines, hashes, only = cr.run_cli, cr.decode_lines, cr.hashes, cr.only
local ROWS = cr.ROWS

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
    describe("against the fake API", function()
        local fx = cr.fake_api()
        local srv, vars, run_id, all_text, all_rows

        setup(function()
            srv, vars, run_id, all_text, all_rows = fx.srv, fx.vars, fx.run_id, fx.all_text, fx.all_rows
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

    end)
end)

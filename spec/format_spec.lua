-- Specs for leadpipe.format: cells, RFC 4180 CSV, display width, tables, projection, writers.

local format = require "leadpipe.format"
local json = require "leadpipe.json"
local helpers = require "spec.support.cli_helpers"

local function row()
    return json.decode([[{"hashedEmail":"h1","fullName":"José Müller","seniority":"director",
        "company":{"name":"Acme, \"Inc\"","domain":"acme.com"},
        "headline":"line one\nline two",
        "geo":{"countryCode":"DE","country":null},
        "intent":{"score":84,"topicOverlap":2,"matchedTopics":[
            {"topicId":1,"topicName":"CRM"},{"topicId":2,"topicName":"Marketing Automation"}]}}]])
end

describe("leadpipe.format", function()
    describe("cell()", function()
        it("renders scalars, with integers free of .0", function()
            assert.are.equal("", format.cell(nil))
            assert.are.equal("84", format.cell(84))
            assert.are.equal("84", format.cell(84.0))
            assert.are.equal("0.5", format.cell(0.5))
            assert.are.equal("true", format.cell(true))
            assert.are.equal("x y", format.cell("x y"))
        end)

        it("joins arrays, showing topic names for matched topics", function()
            assert.are.equal("CRM; Marketing Automation", format.cell(row().intent.matchedTopics))
            assert.are.equal("a; 2", format.cell({ "a", 2 }))
            assert.are.equal("", format.cell(json.decode("[]")))
            assert.are.equal('{"x":1}; b', format.cell({ { x = 1 }, "b" }))
        end)

        it("renders objects as JSON with sorted keys", function()
            assert.are.equal('{"domain":"acme.com","name":"x"}',
                format.cell({ name = "x", domain = "acme.com" }))
            assert.are.equal("", format.cell({}))
        end)
    end)

    describe("csv_record()", function()
        it("quotes fields with commas, quotes, CR and LF only, and ends with CRLF", function()
            assert.are.equal('plain,"a,b","say ""hi""","x\ny","r\rr",é日本\r\n',
                format.csv_record({ "plain", "a,b", 'say "hi"', "x\ny", "r\rr", "é日本" }))
        end)

        it("writes missing values as empty fields", function()
            assert.are.equal("a,,c\r\n", format.csv_record({ "a", nil, "c" }, 3))
        end)

        it("round-trips through an RFC 4180 parser", function()
            local values = { "", ",", '"', '""', "\r\n", "a\"b,c\nd", "ünï", " lead and trail " }
            local parsed = helpers.parse_csv(format.csv_record(values))
            assert.are.same({ values }, parsed)
        end)
    end)

    describe("width()", function()
        it("counts terminal columns, not bytes", function()
            assert.are.equal(5, format.width("hello"))
            assert.are.equal(4, format.width("José"))
            assert.are.equal(4, format.width("日本"))
            assert.are.equal(1, format.width("e\204\129"))   -- e + combining acute accent
            assert.are.equal(2, format.width("\255a"))       -- a stray byte counts one column
            assert.are.equal(0, format.width(""))
        end)
    end)

    describe("table_lines()", function()
        it("aligns columns by display width and right-aligns numbers", function()
            local rows = {
                { fullName = "José Müller", company = { name = "日本" }, intent = { score = 84 } },
                { fullName = "Al", intent = { score = 7 } },
            }
            local lines = format.table_lines(rows, { "fullName", "company.name", "intent.score" })
            assert.are.same({
                "fullName     company.name  intent.score",
                "-----------  ------------  ------------",
                "José Müller  日本                    84",
                "Al                                    7",
            }, lines)
        end)

        it("cuts long cells with an ellipsis and flattens control characters", function()
            local lines = format.table_lines({ { a = "abcdefghijkl", b = "x\ny" } }, { "a", "b" },
                { max_width = 5 })
            assert.are.equal("abcd…  x y", lines[3])
            assert.are.equal("a      b", lines[1])
        end)

        it("prints only the header for no rows", function()
            assert.are.same({ "a  b", "-  -" }, format.table_lines({}, { "a", "b" }))
        end)
    end)

    describe("project()", function()
        it("keeps only the given paths, nested as in the row", function()
            local p = format.project(row(), { "fullName", "company.name", "intent.score", "geo.country" })
            assert.are.same({ fullName = "José Müller", company = { name = 'Acme, "Inc"' },
                intent = { score = 84 } }, p)
        end)
    end)

    describe("parse_fields()", function()
        it("splits a comma-separated list of dotted paths", function()
            assert.are.same({ "a", "company.name", "b" }, format.parse_fields("a, company.name,b"))
        end)

        it("rejects empty items and malformed paths", function()
            assert.is_nil(format.parse_fields("a,,b"))
            local ok, err = format.parse_fields("company..name")
            assert.is_nil(ok)
            assert.are.equal('bad field "company..name": use dotted paths like company.name, '
                .. "separated by commas", err)
        end)
    end)

    describe("writer()", function()
        it("writes JSONL with sorted keys, whole or projected", function()
            local out = helpers.buffer()
            local w = format.writer("jsonl", out)
            assert.is_true(w:write({ b = 1, a = { 2, 3 } }))
            assert.is_true(w:finish())
            w = format.writer("jsonl", out, { "company.name" })
            w:write(row())
            assert.are.equal('{"a":[2,3],"b":1}\n{"company":{"name":"Acme, \\"Inc\\""}}\n', out.text())
        end)

        it("writes a CSV header even when there are no rows", function()
            local out = helpers.buffer()
            local w = format.writer("csv", out, { "a", "company.name" })
            w:finish()
            assert.are.equal("a,company.name\r\n", out.text())
        end)

        it("writes CSV rows that parse back to the row's values", function()
            local out = helpers.buffer()
            local fields = { "fullName", "company.name", "headline", "intent.score", "intent.matchedTopics",
                "geo.country" }
            local w = format.writer("csv", out, fields)
            w:write(row())
            w:finish()
            local records = helpers.parse_csv(out.text())
            assert.are.same({ fields, { "José Müller", 'Acme, "Inc"', "line one\nline two", "84",
                "CRM; Marketing Automation", "" } }, records)
        end)

        it("writes a table at finish", function()
            local out = helpers.buffer()
            local w = format.writer("table", out, { "fullName", "intent.score" })
            w:write(row())
            assert.are.equal("", out.text())
            w:finish()
            assert.are.equal("fullName     intent.score\n-----------  ------------\n"
                .. "José Müller            84\n", out.text())
        end)

        it("reports a failed write", function()
            local closed = { write = function() return nil, "Broken pipe" end }
            local ok, err = format.writer("jsonl", closed):write({})
            assert.is_nil(ok)
            assert.are.equal("Broken pipe", err)
        end)

        it("rejects an unknown format with an invalid_argument error object", function()
            local ok, err = pcall(format.writer, "xml", helpers.buffer())
            assert.is_false(ok)
            assert.are.equal("invalid_argument", err.kind)
            assert.are.equal("fmt", err.argument)
            assert.are.equal("writer: fmt must be jsonl, json, csv or table, got xml", err.message)
        end)
    end)
end)

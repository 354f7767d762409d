-- Specs for the command line tool's commands other than results (run, runs, cancel,
-- audiences, stats, export) and its API and network errors, in-process against the fake API.

local json = require "leadpipe.json"
local core = require "leadpipe.core"
local mock = require "leadpipe.mock"
local h = require "spec.support.cli_helpers"
local cr = require "spec.support.cli_run"

local AUD = mock.AUDIENCE
local run_cli, assert_usage, decode_lines = cr.run_cli, cr.assert_usage, cr.decode_lines
local ROWS = cr.ROWS

describe("leadpipe cli", function()
    describe("against the fake API", function()
        local fx = cr.fake_api()
        local srv, vars, run_id, all_text

        setup(function()
            srv, vars, run_id, all_text = fx.srv, fx.vars, fx.run_id, fx.all_text
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

    end)
end)

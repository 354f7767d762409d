-- Specs for the command line tool's arguments and progress display, in-process (no server).
-- Against the fake API: spec/cli_commands_spec.lua, spec/cli_results_spec.lua and
-- spec/cli_subprocess_spec.lua. Helpers: spec/support/cli_run.lua.

local cli = require "leadpipe.cli"
local mock = require "leadpipe.mock"
local h = require "spec.support.cli_helpers"
local cr = require "spec.support.cli_run"

local AUD = mock.AUDIENCE
local unpack = table.unpack or unpack
local run_cli, assert_usage = cr.run_cli, cr.assert_usage

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
end)

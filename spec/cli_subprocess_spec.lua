-- Specs for bin/leadpipe as a subprocess against the fake API: the same output as
-- in-process, exit statuses, a full stdout, signals, `leadpipe mock`.

local mock = require "leadpipe.mock"
local h = require "spec.support.cli_helpers"
local cr = require "spec.support.cli_run"

local AUD = mock.AUDIENCE
local run_cli, ROWS = cr.run_cli, cr.ROWS

describe("leadpipe cli", function()
    describe("against the fake API", function()
        local fx = cr.fake_api()
        local srv, vars, run_id, all_text

        setup(function()
            srv, vars, run_id, all_text = fx.srv, fx.vars, fx.run_id, fx.all_text
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

-- spec/support/cli_run.lua: running the command line tool in the CLI specs: in-process
-- (leadpipe.cli.main with in-memory stdout and stderr), the usage-error check, JSON lines,
-- and the fake API with one completed run that the CLI specs against it share.
local assert = require "luassert"
local busted = require "busted"
local cli = require "leadpipe.cli"
local mock = require "leadpipe.mock"
local json = require "leadpipe.json"
local h = require "spec.support.cli_helpers"

local AUD = mock.AUDIENCE

local _M = {}

--- Rows of the fake's small audience in the shared run.
_M.ROWS = 600

--- run_cli(args, vars, isatty) -> status, stdout, stderr: the tool in-process.
function _M.run_cli(args, vars, isatty)
    local out, err = h.buffer(), h.buffer()
    local status = cli.main(args, { stdout = out, stderr = err, getenv = h.getenv(vars or {}),
        isatty = isatty or false })
    return status, out.text(), err.text()
end
local run_cli = _M.run_cli

--- assert_usage(text, args, vars) -> stderr: a usage error (status 2, one line on stderr
--- containing `text`, nothing on stdout).
function _M.assert_usage(text, args, vars)
    local status, out, err = run_cli(args, vars)
    assert.are.equal(2, status)
    assert.are.equal("", out)
    assert.are.equal(1, #h.lines(err), "expected one line on stderr, got: " .. err)
    assert.is_truthy(err:find(text, 1, true), "stderr lacks '" .. text .. "': " .. err)
    assert.is_truthy(err:find("^leadpipe: "))
    return err
end

--- decode_lines(text) -> rows: each line decoded (JSON lines).
function _M.decode_lines(text)
    local rows = {}
    for _, line in ipairs(h.lines(text)) do rows[#rows + 1] = assert(json.decode(line)) end
    return rows
end

--- hashes(rows) -> their hashedEmail, joined with commas.
function _M.hashes(rows)
    local out = {}
    for i, r in ipairs(rows) do out[i] = r.hashedEmail end
    return table.concat(out, ",")
end

--- only(rows, pred) -> the rows pred keeps: the expectation of a filter, computed without
--- leadpipe.filter.
function _M.only(rows, pred)
    local out = {}
    for _, r in ipairs(rows) do
        if pred(r) then out[#out + 1] = r end
    end
    return out
end

--- fake_api() -> f: the fake API with a small audience of ROWS rows, an empty one and a
--- failing one, and one completed run read whole. Call it in a describe block: it registers
--- the hooks there. Its setup sets f.srv, f.vars (the environment of the tool), f.run_id,
--- f.all_text (its rows as JSON lines) and f.all_rows; its teardown stops the server; after
--- each test it turns delays and faults off.
function _M.fake_api()
    local f = {}
    busted.setup(function()
        f.srv = assert(mock.start{ audiences = {
            { id = AUD.small, rows = _M.ROWS },
            { id = AUD.empty, rows = 0 },
            { id = AUD.failing, rows = 50, fail = { code = "HYDRATION_FAILED", message = "no people" } },
        } })
        f.vars = { LEADPIPE_API_KEY = f.srv.api_key, LEADPIPE_BASE_URL = f.srv.url }
        local status, out = run_cli({ "run", AUD.small, "--wait" }, f.vars)
        assert.are.equal(0, status)
        f.run_id = out:match("^(%S+)\n$")
        status, f.all_text = run_cli({ "results", AUD.small, f.run_id }, f.vars)
        assert.are.equal(0, status)
        f.all_rows = _M.decode_lines(f.all_text)
    end)
    busted.teardown(function()
        if f.srv then f.srv:stop() end
    end)
    busted.after_each(function()
        f.srv:configure{ queued_ms = 0, running_ms = 0, faults = false }
    end)
    return f
end

return _M

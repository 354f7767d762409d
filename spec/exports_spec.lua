-- Audiences (audiences.lua), stats and CSV exports (exports.lua) against the fake API:
-- GET /audiences, /audiences/{id}, latest_run, stats with waiting, export.csv streamed to a
-- file or a function across the redirect, and stored exports (create-or-reuse).

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"

local AUD_NONE = "00000000-0000-4000-8000-000000000000"
local EXPORT_NONE = "00000000-0000-4000-8000-0000000000ee"

local function tmpdir()
    local p = os.tmpname()
    os.remove(p)
    assert(os.execute("mkdir -p " .. p))
    return p
end

local function listing(dir)
    local f = assert(io.popen("ls -A " .. dir))
    local out = f:read("*a")
    f:close()
    return out
end

local read_file = require("spec.support.shell").read_file

describe("audiences and exports", function()
    local srv, client, A = nil, nil, mock.AUDIENCE

    setup(function()
        srv = assert(mock.start{ seed = 5, export_cap = 600 })
    end)

    teardown(function()
        srv:stop()
    end)

    before_each(function()
        srv:configure{ queued_ms = 0, running_ms = 0 }
        client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url, poll_interval = 0.01,
                               max_poll_interval = 0.05 }
    end)

    after_each(function()
        client:close()
    end)

    local function completed_run(aud)
        local run = assert(client:create_run(aud))
        assert(client:wait_run(aud, run.id))
        return run
    end

    describe("audiences()", function()
        it("lists every audience with its name, status and size", function()
            local list = assert(client:audiences())
            assert.are.equal(#mock.AUDIENCES, #list)
            assert.are.equal("small", list[1].name)
            assert.are.equal(A.small, list[1].id)
            assert.are.equal("active", list[1].status)
            assert.are.equal(1000, list[1].audienceSize)
            assert.are.equal("paid", list[1].accessType)
        end)

        it("filters by status and limits", function()
            local paused = assert(client:audiences{ status = "paused" })
            assert.are.equal(1, #paused)
            assert.are.equal("large", paused[1].name)
            assert.are.equal(2, #assert(client:audiences{ limit = 2 }))
            assert.are.equal(0, #assert(client:audiences{ status = "draft" }))
        end)

        it("refuses bad options before any request", function()
            local _, err = client:audiences{ status = "gone" }
            assert.are.equal("invalid_argument", err.kind)
            assert.matches("draft, active, paused", err.message)
            _, err = client:audiences{ limit = 0 }
            assert.are.equal("invalid_argument", err.kind)
            _, err = client:audiences{ staus = "active" }
            assert.matches("did you mean 'status'", err.message)
        end)
    end)

    describe("audience()", function()
        it("reads one audience", function()
            local a = assert(client:audience(A.medium))
            assert.are.equal("medium", a.name)
            assert.are.equal(20000, a.audienceSize)
        end)

        it("is not_found for an unknown id and invalid_argument for a malformed one", function()
            local _, err = client:audience(AUD_NONE)
            assert.are.equal("not_found", err.kind)
            assert.are.equal("AUDIENCE_NOT_FOUND", err.code)
            _, err = client:audience("nope")
            assert.are.equal("invalid_argument", err.kind)
        end)
    end)

    describe("latest_run()", function()
        it("is the newest run, or the newest with a status", function()
            local older = completed_run(A.small)
            srv:configure{ queued_ms = 60000 }
            local newer = assert(client:create_run(A.small))
            assert.are.equal(newer.id, assert(client:latest_run(A.small)).id)
            assert.are.equal(older.id, assert(client:latest_run(A.small, { status = "completed" })).id)
            assert(client:cancel_run(A.small, newer.id))
        end)

        it("is nil and a not_found error when there is none", function()
            local run, err = client:latest_run(A.empty, { status = "failed" })
            assert.is_nil(run)
            assert.are.equal("not_found", err.kind)
            assert.are.equal("NO_RUN", err.code)
            assert.is_nil((select(1, client:latest_run(A.empty, { status = "done" }))))
            err = select(2, client:latest_run(A.empty, { status = "done" }))
            assert.are.equal("invalid_argument", err.kind)
        end)
    end)

    describe("stats()", function()
        it("is not_ready while the run is pending, and waits when asked", function()
            srv:configure{ queued_ms = 150, running_ms = 150 }
            local run = assert(client:create_run(A.small))
            local _, err = client:stats(A.small, run.id)
            assert.are.equal("not_ready", err.kind)
            local polls = 0
            local st = assert(client:stats(A.small, run.id, { wait = true, timeout = 10,
                on_poll = function() polls = polls + 1 end }))
            assert.are.equal(1000, st.stats.total)
            assert.is_true(polls >= 1)
        end)

        it("times out, and refuses unknown options", function()
            srv:configure{ queued_ms = 60000 }
            local run = assert(client:create_run(A.small))
            local _, err = client:stats(A.small, run.id, { wait = true, timeout = 0.05 })
            assert.are.equal("timeout", err.kind)
            _, err = client:stats(A.small, run.id, { wiat = true })
            assert.matches("did you mean 'wait'", err.message)
            assert(client:cancel_run(A.small, run.id))
        end)
    end)

    describe("export_csv()", function()
        it("streams to a file across the redirect, without the key, and reports the cap", function()
            local dir = tmpdir()
            local run = completed_run(A.medium)
            srv:reset_stats()
            local path = dir .. "/out.csv"
            local r = assert(client:export_csv(A.medium, run.id, { path = path }))
            assert.are.equal(path, r.path)
            assert.are.equal(600, r.row_cap)
            local csv = read_file(path)
            assert.are.equal(#csv, r.bytes)
            local lines = select(2, csv:gsub("\r\n", ""))
            assert.are.equal(601, lines) -- header + the capped rows
            local s = srv:stats()
            assert.are.equal(1, s.redirect_requests)
            assert.is_false(s.redirect_key_seen)
            assert.are.equal("out.csv\n", listing(dir)) -- no temporary file left
            os.execute("rm -rf " .. dir)
        end)

        it("streams to a function in pieces", function()
            local run = completed_run(A.small)
            local chunks, bytes = 0, 0
            local r = assert(client:export_csv(A.small, run.id, { sink = function(c)
                chunks, bytes = chunks + 1, bytes + #c
                return true
            end }))
            assert.is_nil(r.path)
            assert.are.equal(bytes, r.bytes)
            assert.is_true(chunks >= 1)
        end)

        it("waits for a pending run instead of writing its 202 body", function()
            srv:configure{ queued_ms = 100, running_ms = 100 }
            local run = assert(client:create_run(A.small))
            local got = {}
            local r = assert(client:export_csv(A.small, run.id, { timeout = 10, sink = function(c)
                got[#got + 1] = c
                return true
            end }))
            local csv = table.concat(got)
            assert.matches("^hashedEmail,", csv)
            assert.are.equal(#csv, r.bytes)
        end)

        it("with wait = false refuses a pending run (not_ready) and leaves no file", function()
            local dir = tmpdir()
            srv:configure{ queued_ms = 60000 }
            local run = assert(client:create_run(A.small))
            local r, err = client:export_csv(A.small, run.id, { path = dir .. "/x.csv", wait = false })
            assert.is_nil(r)
            assert.are.equal("not_ready", err.kind)
            assert.are.equal("", listing(dir))
            assert(client:cancel_run(A.small, run.id))
            os.execute("rm -rf " .. dir)
        end)

        it("leaves no file when the run failed", function()
            local dir = tmpdir()
            local run = assert(client:create_run(A.failing))
            local r, err = client:export_csv(A.failing, run.id, { path = dir .. "/x.csv" })
            assert.is_nil(r)
            assert.are.equal("run_failed", err.kind)
            assert.are.equal("", listing(dir))
            os.execute("rm -rf " .. dir)
        end)

        it("stops when the sink refuses or raises, with that error", function()
            local run = completed_run(A.medium)
            local _, err = client:export_csv(A.medium, run.id, { sink = function() return false end })
            assert.are.equal("aborted", err.kind)
            _, err = client:export_csv(A.medium, run.id, { sink = function() error({ mine = true }) end })
            assert.is_true(err.mine)
        end)

        it("is an io error when the file cannot be written, with no file left", function()
            local run = completed_run(A.small)
            local _, err = client:export_csv(A.small, run.id, { path = "/nonexistent-dir/x.csv" })
            assert.are.equal("io", err.kind)
        end)

        it("refuses unknown options, both or neither destination", function()
            local run = completed_run(A.small)
            local _, err = client:export_csv(A.small, run.id, { path = "/tmp/x", sync = print })
            assert.matches("did you mean 'sink'", err.message)
            _, err = client:export_csv(A.small, run.id, {})
            assert.matches("needs path = FILE", err.message, 1, true)
            _, err = client:export_csv(A.small, run.id, { path = "/tmp/x", sink = print })
            assert.matches("has both path and sink", err.message, 1, true)
            _, err = client:export_csv(A.small, "x", { path = "/tmp/x" })
            assert.are.equal("invalid_argument", err.kind)
        end)
    end)

    describe("people() with a bad where", function()
        it("names the key and the rule, with no file:line from leadpipe.filter", function()
            local ok, err = pcall(client.people, client, A.small, EXPORT_NONE,
                { where = { min_score = "x" } })
            assert.is_false(ok)
            assert.are.equal("invalid_argument", err.kind)
            assert.are.equal("people: where min_score must be a number, got string", err.message)
        end)
    end)

    describe("create_export() and export()", function()
        it("creates (201) then reuses (200) a stored export with a signed URL", function()
            local run = completed_run(A.small)
            local e1 = assert(client:create_export(A.small, run.id))
            assert.is_true(e1.created)
            assert.are.equal(run.id, e1.export.runId)
            assert.are.equal("csv", e1.export.exportType)
            assert.matches("^" .. srv.redirect_url:gsub("%p", "%%%0") .. "/exports/.*sig=", e1.downloadUrl)
            assert.are.equal(3600, e1.downloadUrlTtlSeconds)
            local e2 = assert(client:create_export(A.small, run.id))
            assert.is_false(e2.created)
            assert.are.equal(e1.export.id, e2.export.id)
            local e3 = assert(client:export(A.small, run.id, e1.export.id))
            assert.are.equal(e1.export.id, e3.export.id)
            assert.is_string(e3.downloadUrlExpiresAt)
        end)

        it("is not_ready for a pending run, run_failed for a failed one, not_found otherwise", function()
            srv:configure{ queued_ms = 60000 }
            local run = assert(client:create_run(A.small))
            local _, err = client:create_export(A.small, run.id)
            assert.are.equal("not_ready", err.kind)
            assert(client:cancel_run(A.small, run.id))
            srv:configure{ queued_ms = 0 }
            local failed = assert(client:create_run(A.failing))
            _, err = client:create_export(A.failing, failed.id)
            assert.are.equal("run_failed", err.kind)
            local done = completed_run(A.small)
            _, err = client:export(A.small, done.id, EXPORT_NONE)
            assert.are.equal("not_found", err.kind)
            assert.are.equal("EXPORT_NOT_FOUND", err.code)
            _, err = client:export(A.small, done.id, "nope")
            assert.are.equal("invalid_argument", err.kind)
            _, err = client:create_export(A.small, done.id, { wait = true })
            assert.matches("unknown option 'wait'", err.message)
            _, err = client:audience(A.small, { name = "x" })
            assert.matches("unknown option 'name'", err.message)
        end)
    end)

    describe("examples/export_audience.lua", function()
        it("finds the audience by name, exports its CSV and prints a signed URL", function()
            local h = require "spec.support.cli_helpers"
            local file = os.tmpname()
            local build = os.getenv("LEADPIPE_BUILD") or "build/5.4"
            local out, err, status = h.sh(("env -u LEADPIPE_API_KEY -u LEADPIPE_BASE_URL "
                .. "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./%s/?.so;;' %s "
                .. "examples/export_audience.lua small %s"):format(build, h.lua, file))
            assert.are.equal(0, status, err)
            assert.matches("^http://127%.0%.0%.1:%d+/exports/.+%.csv%?sig=%x+\n$", out)
            assert.matches("wrote .*: %d+ bytes", err)
            local lines = select(2, read_file(file):gsub("\r\n", ""))
            assert.are.equal(1001, lines)
            os.remove(file)
        end)
    end)
end)

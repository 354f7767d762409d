-- `leadpipe changes`, in-process (leadpipe.cli) and once as a subprocess, against the fake's
-- daily audience: the rows, their change columns, the runs it picked, its usage errors.

local cli = require "leadpipe.cli"
local mock = require "leadpipe.mock"
local json = require "leadpipe.json"
local leadpipe = require "leadpipe"
local h = require "spec.support.cli_helpers"

local DAILY = mock.AUDIENCE.daily

describe("leadpipe changes", function()
    local srv, client, vars, day1, day2, day3
    local function run_cli(args)
        local out, err = h.buffer(), h.buffer()
        local status = cli.main(args, { stdout = out, stderr = err, getenv = h.getenv(vars), isatty = false })
        return status, out.text(), err.text()
    end

    -- What the library says: { [hashedEmail] = change } and the changed fields' names.
    local function expected(from, to, opts)
        local exp, names = {}, {}
        for kind, row, fields in client:changes(DAILY, from, to, opts) do
            exp[row.hashedEmail] = kind
            if fields then
                local n = {}
                for i, f in ipairs(fields) do n[i] = f.field end
                names[row.hashedEmail] = n
            end
        end
        return exp, names
    end

    setup(function()
        srv = assert(mock.start{ seed = 6 })
        vars = { LEADPIPE_API_KEY = srv.api_key, LEADPIPE_BASE_URL = srv.url }
        client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
        local runs = assert(client:latest_runs(DAILY, 3))
        day1, day2, day3 = runs[3].id, runs[2].id, runs[1].id
    end)
    teardown(function()
        client:close()
        srv:stop()
    end)

    it("compares the two latest completed runs, says which on stderr, and writes JSON lines", function()
        local status, out, err = run_cli({ "changes", DAILY })
        assert.are.equal(0, status, err)
        local lines = h.lines(err)
        assert.are.equal(2, #lines, err)
        assert.is_truthy(lines[1]:find("comparing run " .. day2, 1, true), err)
        assert.is_truthy(lines[1]:find("with run " .. day3, 1, true), err)
        assert.is_truthy(lines[1]:find("2000 rows", 1, true))
        local exp, names = expected(day2, day3)
        local counts = { added = 0, removed = 0, changed = 0 }
        local n = 0
        for _, line in ipairs(h.lines(out)) do
            local row = assert(json.decode(line))
            n = n + 1
            assert.are.equal(exp[row.hashedEmail], row.change)
            counts[row.change] = counts[row.change] + 1
            if row.change == "changed" then
                assert.are.same(names[row.hashedEmail], row.changed)
                assert.is_table(row.was)
            else
                assert.is_nil(row.changed)
            end
        end
        local want = 0
        for _ in pairs(exp) do want = want + 1 end
        assert.are.equal(want, n)
        assert.are.equal(("leadpipe: %d added, %d removed, %d changed"):format(counts.added, counts.removed,
            counts.changed), lines[2])
    end)

    it("takes --from/--to, --only, --compare, the filters and CSV with --fields", function()
        local status, out, err = run_cli({ "changes", DAILY, "--from", day1, "--to", day3, "--only",
            "added,changed", "--compare", "intent.score", "--min-score", "70", "--format", "csv",
            "--fields", "hashedEmail,intent.score" })
        assert.are.equal(0, status, err)
        assert.is_nil(err:find("comparing", 1, true)) -- the runs were given
        local recs = h.parse_csv(out)
        assert.are.same({ "change", "changed", "hashedEmail", "intent.score" }, recs[1])
        local exp = expected(day1, day3, { only = { "added", "changed" }, fields = { "intent.score" },
            where = { min_score = 70 } })
        local n = 0
        for i = 2, #recs do
            local r = recs[i]
            n = n + 1
            assert.are.equal(exp[r[3]], r[1])
            assert.are.equal(r[1] == "changed" and "intent.score" or "", r[2])
            assert.is_true(tonumber(r[4]) >= 70)
        end
        assert.is_true(n > 10)
    end)

    it("writes a table and stops after --max rows", function()
        local status, out = run_cli({ "changes", DAILY, "--format", "table", "--max", "3", "--only",
            "removed" })
        assert.are.equal(0, status)
        local lines = h.lines(out)
        assert.are.equal(5, #lines)
        assert.is_truthy(lines[1]:find("^change%s+changed%s+fullName"))
        for i = 3, 5 do assert.is_truthy(lines[i]:find("^removed ")) end
    end)

    it("refuses bad lines with usage errors and missing runs with an API error", function()
        for _, c in ipairs({
            { { "changes", DAILY, "--from", day1, "--to", day1 }, "same run" },
            { { "changes", DAILY, "--only", "new" }, "--only takes added, removed and changed" },
            { { "changes", DAILY, "--from", "nope" }, "UUID" },
            { { "changes", DAILY, "--min-scor", "80" }, "did you mean" },
        }) do
            local status, out, err = run_cli(c[1])
            assert.are.equal(2, status)
            assert.are.equal("", out)
            assert.is_truthy(err:find(c[2], 1, true), err)
        end
        local status, _, err = run_cli({ "changes", mock.AUDIENCE.small })
        assert.are.equal(1, status)
        assert.is_truthy(err:find("NO_RUN", 1, true), err)
    end)

    it("runs as a command, listed in the help", function()
        local out, err, status = h.run({ "changes", DAILY, "--only", "removed", "--format", "csv", "--fields",
            "hashedEmail" }, vars)
        assert.are.equal(0, status, err)
        local recs = h.parse_csv(out)
        local exp = expected(day2, day3, { only = "removed" })
        local want = 0
        for _ in pairs(exp) do want = want + 1 end
        assert.are.equal(want + 1, #recs)
        local help = h.run({ "help" }, vars)
        assert.is_truthy(help:find("changes", 1, true))
        help = h.run({ "help", "changes" }, vars)
        assert.is_truthy(help:find("--compare", 1, true))
        assert.is_truthy(help:find("--min-score", 1, true))
    end)
end)

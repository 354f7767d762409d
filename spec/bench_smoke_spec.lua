-- Smoke spec of `make bench` (tools/bench.sh + bench/harness.lua): the harness runs in its
-- quick mode (1,000-row runs, one repetition, a few seconds) so it cannot rot unnoticed.
-- Contenders whose tools are missing are skipped by the harness itself; leadpipe never is.
local helpers = require "spec.support.cli_helpers"

local LUA = helpers.lua
local BUILD = os.getenv("LEADPIPE_BUILD") or "build/5.4"
local quote = helpers.shell_quote

-- The rows of the markdown table that follows `heading`: array of arrays of cells.
local function table_after(out, heading)
    local start = out:find(heading, 1, true)
    assert(start, "no section " .. heading .. " in:\n" .. out)
    local rows = {}
    local in_table = false
    for line in out:sub(start):gmatch("[^\n]*") do
        if line:match("^|") then
            in_table = true
            local cells = {}
            for cell in line:sub(2):gmatch("%s*([^|]-)%s*|") do cells[#cells + 1] = cell end
            rows[#rows + 1] = cells
        elseif in_table and line ~= "" then
            break
        end
    end
    -- drop the header and the |---| line
    table.remove(rows, 1)
    table.remove(rows, 1)
    return rows
end

-- bench(env_words) -> stdout, stderr, status of tools/bench.sh in quick mode
local function bench(extra)
    return helpers.sh(table.concat({
        "env",
        "LUA_PATH=" .. quote("./lua/?.lua;./lua/?/init.lua;;"),
        "LUA_CPATH=" .. quote("./" .. BUILD .. "/?.so;;"),
        "LEADPIPE_BUILD=" .. quote(BUILD),
        "BENCH_QUICK=1 BENCH_REPS=1 BENCH_TIMEOUT=60",
        extra,
        "sh tools/bench.sh", quote(LUA),
    }, " "))
end

local function tmpdir()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. quote(dir)))
    return dir
end

describe("make bench (quick mode)", function()
    local out, err, status, hook_dir

    setup(function()
        hook_dir = tmpdir()
        local f = assert(io.open(hook_dir .. "/decode_page.lua", "w"))
        f:write('print("decode hook ran against " .. tostring(os.getenv("LEADPIPE_BENCH_URL")))\n')
        f:close()
        out, err, status = bench("BENCH_HOOK_DIR=" .. quote(hook_dir))
    end)

    teardown(function()
        os.execute("rm -rf " .. quote(hook_dir))
    end)

    it("exits 0 and says every contender agrees", function()
        assert.are.equal(0, status, "stdout:\n" .. out .. "\nstderr:\n" .. err)
        assert.matches("All contenders agree.", out, 1, true)
        assert.matches("# leadpipe benchmark (quick mode)", out, 1, true)
        assert.matches("machine: %d+ CPUs", out)
    end)

    it("prints a table per scenario in which every contender read the same rows and kept the same", function()
        for _, heading in ipairs({ "## 1. Filtered job", "## 1b. Every row", "## 2. Filtered job" }) do
            local rows = table_after(out, heading)
            local kept, ran = nil, 0
            for _, cells in ipairs(rows) do
                if not cells[2]:match("^skipped") then
                    ran = ran + 1
                    assert.matches("^%d+%.%d+$", cells[2], 1, false)  -- median seconds
                    assert.are.equal("1,000", cells[6], heading .. ": " .. cells[1])
                    if cells[7]:match("^[%d,]+$") then
                        kept = kept or cells[7]
                        assert.are.equal(kept, cells[7], heading .. ": " .. cells[1])
                    end
                end
            end
            assert.is_true(ran >= 1, heading)
            assert.matches("^leadpipe ", rows[1][1])
            assert.is_not.matches("^skipped", rows[1][2])
            assert.is_truthy(kept, heading .. ": no contender reported a kept count")
        end
    end)

    it("reports the peak RSS and the ideal of the latency scenario", function()
        assert.matches("RSS difference ≤ 8 MB: %-?%d+%.%d MB", out)
        assert.matches("ideal = 3 × 0.050 + ", out, 1, true)
    end)

    it("runs the decode hook and quotes its output", function()
        assert.matches("decode hook ran against http://127.0.0.1:", out, 1, true)
        assert.matches("where_plain.lua not present yet", out, 1, true)
    end)
end)

describe("make bench with a contender that keeps the wrong rows", function()
    it("fails loudly, naming the contenders that disagree", function()
        if helpers.sh("command -v python3") == "" then
            pending("python3 is not installed")
            return
        end
        local dir = tmpdir()
        finally(function() os.execute("rm -rf " .. quote(dir)) end)
        assert(os.execute("cp bench/contenders/* " .. quote(dir)))
        local f = assert(io.open(dir .. "/python_stdlib.py", "w"))
        f:write('print("rows=1000 kept=1")\n')
        f:close()
        local out, err, status = bench("BENCH_CONTENDER_DIR=" .. quote(dir))
        assert.are.equal(1, status, out .. err)
        assert.matches("counts disagree: leadpipe %S+ kept [%d,]+ rows, python3 stdlib kept 1\n", out)
        assert.matches("Check: FAILED", out, 1, true)
        assert.matches("**FAILED**", out, 1, true)
        assert.is_not.matches("All contenders agree.", out, 1, true)
    end)
end)

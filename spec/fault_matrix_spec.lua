-- Every row exactly once, as the docs define a page: the fake answers a deterministic
-- fraction of pages short (legal: "a page may be shorter than limit") mixed with 429, 503,
-- 5xx, dropped connections, truncated bodies, gzip and latency, and each faulty read must
-- hand out the same rows, in the same order, as a sequential read of the clean fake, with
-- one run created, at every prefetch.

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"

-- 20 seeds on Lua 5.4 and LuaJIT; 5 on the other Luas; 3 under valgrind or ASan (slow).
local LIGHT = os.getenv("LEADPIPE_VALGRIND") ~= nil or os.getenv("LD_PRELOAD") ~= nil
local FULL = _VERSION == "Lua 5.4" or rawget(_G, "jit") ~= nil
local SEEDS = LIGHT and 3 or FULL and 20 or 5
local ROWS = 400
local AUD = "3d7a9c2e-5b1f-4e8a-9c6d-0f1e2d3c4b5a"
local PREFETCH = { 0, 1, 4, false } -- false: the default
local LIMITS = { 3, 7, 50, 100, 128, 333, 500, 64, 1, 37 }

-- name, faults (seed added per run), extra server settings
local MIXES = {
    { "short pages", { short = 0.4 } },
    { "short pages, 429 and 503", { short = 0.3, rate = 0.25, kinds = { "429", "503" },
        retry_after = 0 } },
    { "short pages, drops and truncated bodies", { short = 0.5, rate = 0.2,
        kinds = { "drop", "truncate" } } },
    { "short pages, 500 and 502", { short = 0.3, rate = 0.2, kinds = { "500", "502" } } },
    -- (a 429 with an HTTP date waits whole seconds: client_spec covers it)
    { "short pages and every fault, gzip off, latency", { short = 0.25, rate = 0.15,
        kinds = { "429", "500", "502", "503", "drop", "truncate" }, retry_after = 0 },
        { gzip = false, latency_ms = 1 } },
}

describe("fault matrix", function()
    local srv

    setup(function()
        srv = assert(mock.start{ audiences = { { id = AUD, rows = ROWS } }, queued_ms = 0,
            running_ms = 0, threads = 0 })
    end)

    teardown(function()
        if srv then srv:stop() end
    end)

    local function client()
        return leadpipe.new{ api_key = srv.api_key, base_url = srv.url, max_retries = 6,
            backoff_base = 0.001, backoff_max = 0.005, max_retry_after = 2, timeout = 10,
            poll_interval = 0.01 }
    end

    -- Every row of a run: hashedEmail and score in order, and how many pages and rows the
    -- pages said they had.
    local function read(c, run_id, opts)
        local ids, pages, page_rows = {}, 0, 0
        opts.on_page = function(p)
            pages = pages + 1
            page_rows = page_rows + p.rows
            assert.are.equal(#p.results, p.rows)
        end
        for row in c:people(AUD, run_id, opts) do
            ids[#ids + 1] = row.hashedEmail .. ":" .. tostring(row.intent and row.intent.score)
        end
        return ids, pages, page_rows
    end

    for _, mix in ipairs(MIXES) do
        local name, faults, extra = mix[1], mix[2], mix[3] or {}
        it(("reads every row once with %s, %d seeds x prefetch 0, 1, 4, default"):format(name,
            SEEDS), function()
            local short_pages = 0
            for seed = 1, SEEDS do
                local limit = LIMITS[(seed - 1) % #LIMITS + 1]
                for _, prefetch in ipairs(PREFETCH) do
                    local f = {}
                    for k, v in pairs(faults) do f[k] = v end
                    f.seed = seed * 7919 + (prefetch or 99)
                    local c = client()
                    srv:configure{ faults = f, gzip = extra.gzip ~= false,
                        latency_ms = extra.latency_ms or 0 }
                    local before = srv:stats().runs_created
                    local run = assert(c:create_run(AUD))
                    assert.are.equal(before + 1, srv:stats().runs_created)
                    local got, pages, page_rows = read(c, run.id, { limit = limit,
                        prefetch = prefetch or nil })
                    assert.are.equal(before + 1, srv:stats().runs_created)
                    -- the reference: the clean fake, one page at a time
                    srv:configure{ faults = false, gzip = true, latency_ms = 0 }
                    local want = read(c, run.id, { limit = limit, prefetch = 0 })
                    local what = ("%s, seed %d, limit %d, prefetch %s"):format(name, seed, limit,
                        tostring(prefetch or "default"))
                    assert.are.equal(ROWS, #want, what)
                    assert.are.equal(#want, #got, what)
                    for i = 1, #want do
                        if want[i] ~= got[i] then
                            error(("%s: row %d is %s, want %s"):format(what, i, got[i], want[i]))
                        end
                    end
                    assert.are.equal(ROWS, page_rows, what)
                    if pages > math.ceil(ROWS / limit) then short_pages = short_pages + 1 end
                    c:close()
                end
            end
            -- the fault did make short pages (else the matrix tests nothing new)
            assert.is_true(short_pages > 0)
        end)
    end

    it("a clean read takes as many pages as the limit says, short pages none", function()
        srv:configure{ faults = false }
        local c = client()
        local run = assert(c:create_run(AUD))
        local _, pages = read(c, run.id, { limit = 100 })
        assert.are.equal(4, pages)
        srv:configure{ faults = { short = 1, seed = 5 } }
        local ids
        ids, pages = read(c, run.id, { limit = 100 })
        assert.are.equal(ROWS, #ids)
        assert.is_true(pages > 4)
        srv:configure{ faults = false }
        c:close()
    end)
end)

-- bench/where_plain.lua: filter.where{} over rows already in memory, against hand-written code.
--
-- Decodes 200 pages of 500 rows of the fake API (leadpipe.mock) into 100,000 rows, then for
-- several specs times one pass over all of them with: the predicate of filter.where(spec)
-- (specialised Lua source), the reference closures (filter.where_closures), a hand-written
-- predicate function doing the same test, and the same test written inline in the loop.
-- Reports the best of N passes; the target is filter.where <= 1.3x the hand-written code.
-- Not a test: numbers only.
--
--   make bench      or      lua5.4 bench/where_plain.lua      (LEADPIPE_BENCH_RUNS=N)
local mock = require "leadpipe.mock"
local core = require "leadpipe.core"
local filter = require "leadpipe.filter"

local RUNS = tonumber(os.getenv("LEADPIPE_BENCH_RUNS") or "") or 15
local clock = os.clock

-- run from the repository root, like bench/harness.lua
package.path = "./?.lua;" .. package.path
local shell = require "bench.lib.shell"
local sh, quote = shell.sh, shell.quote

-- 100,000 rows: 200 pages fetched by one curl process into a temporary directory
local srv = assert(mock.start{ seed = 1, threads = 2 })
local key = "-H " .. quote("x-api-key: " .. srv.api_key)
local base = srv.url .. "/v1/intent/audiences/" .. mock.AUDIENCE.large .. "/runs"
local run_id = assert(sh("curl -s -X POST " .. key .. " " .. quote(base)):match('"id":"([^"]+)"'))
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. quote(dir)))
sh(("curl -s %s -o %s %s"):format(key, quote(dir .. "/p#1.json"),
    quote(base .. "/" .. run_id .. "/results?limit=500&offset=[0-99500:500]")))
srv:stop()
local rows = {}
for i = 0, 99500, 500 do
    local path = dir .. "/p" .. i .. ".json"
    local f = assert(io.open(path, "rb"))
    local page = assert(core.decode(f:read("*a")))
    f:close()
    os.remove(path)
    for _, r in ipairs(page.data.results) do rows[#rows + 1] = r end
end
os.remove(dir)
assert(#rows == 100000, "expected 100,000 rows, got " .. #rows)

local function best(f)
    local b = math.huge
    for _ = 1, RUNS do
        local t0 = clock()
        f()
        local t = clock() - t0
        if t < b then b = t end
    end
    return b * 1000
end

local function count_with(p)
    return function()
        local n = 0
        for i = 1, #rows do
            if p(rows[i]) then n = n + 1 end
        end
        return n
    end
end

local lower = string.lower
local CASES = {
    {
        name = "min_score = 80",
        spec = { min_score = 80 },
        hand = function(r)
            local it = r.intent
            return it ~= nil and it.score ~= nil and it.score >= 80
        end,
        inline = function()
            local n = 0
            for i = 1, #rows do
                local it = rows[i].intent
                if it and it.score and it.score >= 80 then n = n + 1 end
            end
            return n
        end,
    },
    {
        name = "min_score = 80, seniority = {director, vp}",
        spec = { min_score = 80, seniority = { "director", "vp" } },
        hand = function(r)
            local s, it = r.seniority, r.intent
            return (s == "director" or s == "vp") and it ~= nil and it.score ~= nil and it.score >= 80
        end,
        inline = function()
            local n = 0
            for i = 1, #rows do
                local r = rows[i]
                local s, it = r.seniority, r.intent
                if (s == "director" or s == "vp") and it and it.score and it.score >= 80 then n = n + 1 end
            end
            return n
        end,
    },
    {
        name = "country = US, has = businessEmail",
        spec = { country = "US", has = "businessEmail" },
        hand = function(r)
            local g, e = r.geo, r.businessEmail
            return g ~= nil and (g.countryCode == "US" or (g.country and lower(g.country) == "us"))
                and e ~= nil and e ~= ""
        end,
        inline = function()
            local n = 0
            for i = 1, #rows do
                local r = rows[i]
                local g, e = r.geo, r.businessEmail
                if g and (g.countryCode == "US" or (g.country and lower(g.country) == "us"))
                    and e and e ~= "" then
                    n = n + 1
                end
            end
            return n
        end,
    },
    {
        name = "seniority_at_least = director, department = marketing",
        spec = { seniority_at_least = "director", department = "marketing" },
        hand = function(r)
            local rank = filter.ranks[r.seniority or ""]
            return r.department == "marketing" and rank ~= nil and rank >= 4
        end,
        inline = function()
            local n, ranks = 0, filter.ranks
            for i = 1, #rows do
                local r = rows[i]
                if r.department == "marketing" then
                    local rank = ranks[r.seniority or ""]
                    if rank and rank >= 4 then n = n + 1 end
                end
            end
            return n
        end,
    },
}

print(("filter.where over %d in-memory rows, %s, best of %d passes"):format(#rows, _VERSION, RUNS))
for _, c in ipairs(CASES) do
    local p = filter.where(c.spec)
    local n1, n2, n3 = count_with(p)(), count_with(c.hand)(), c.inline()
    assert(n1 == n2 and n2 == n3, ("%s: counts differ %d %d %d"):format(c.name, n1, n2, n3))
    local t_where = best(count_with(p))
    local t_closure = best(count_with(filter.where_closures(c.spec)))
    local t_hand = best(count_with(c.hand))
    local t_inline = best(c.inline)
    print(("  %s (%d rows kept)"):format(c.name, n1))
    print(("    filter.where %7.2f ms   closures %7.2f ms   hand-written function %7.2f ms   "
        .. "inline if %7.2f ms"):format(t_where, t_closure, t_hand, t_inline))
    print(("    filter.where / hand-written function: %.2fx   / inline if: %.2fx   (target <= 1.3x)")
        :format(t_where / t_hand, t_where / t_inline))
end

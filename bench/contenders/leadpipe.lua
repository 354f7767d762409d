-- bench/contenders/leadpipe.lua: the benchmark job done with leadpipe, default options.
--
--   LUA_PATH=... LUA_CPATH=... lua5.4 bench/contenders/leadpipe.lua URL KEY AUDIENCE IDEM [MODE]
--
-- Creates a run (Idempotency-Key IDEM, so every contender reads the same run), reads every
-- page (limit 500) through client:people() and prints
-- "rows=N kept=M rss_kb=K": N counted per page in on_page (page.rows when the decoder
-- reports it, else #page.results), M the rows the loop saw, K the peak RSS (VmHWM).
-- "filtered" keeps intent.score >= 80 and seniority director/vp/c_suite with `where`;
-- "all" has no where, so every row is built as a table and reaches the loop.
local leadpipe = require "leadpipe"

local url, key, aud, idem, mode = arg[1], arg[2], arg[3], arg[4], arg[5] or "filtered"
if not (url and key and aud and idem) or (mode ~= "filtered" and mode ~= "all") then
    io.stderr:write("usage: leadpipe.lua URL KEY AUDIENCE IDEMPOTENCY_KEY [filtered|all]\n")
    os.exit(2)
end

local function peak_rss_kb()
    local f = io.open("/proc/self/status", "r")
    if not f then return -1 end
    local s = f:read("*a")
    f:close()
    return tonumber(s:match("VmHWM:%s*(%d+)")) or -1
end

local client = leadpipe.new{ api_key = key, base_url = url }
local run = assert(client:create_run(aud, { idempotency_key = idem }))
local rows, kept = 0, 0
local opts = {
    limit = 500,
    on_page = function(page) rows = rows + (page.rows or #page.results) end,
}
if mode == "filtered" then
    opts.where = { min_score = 80, seniority = { "director", "vp", "c_suite" } }
end
for _ in client:people(aud, run.id, opts) do
    kept = kept + 1
end
client:close()
io.stdout:write(("rows=%d kept=%d rss_kb=%d\n"):format(rows, kept, peak_rss_kb()))

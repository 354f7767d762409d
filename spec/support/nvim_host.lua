-- Runs inside a real Neovim, for spec/neovim_spec.lua:
--   LEADPIPE_ROOT=. LEADPIPE_BUILD=build/jit LEADPIPE_OUT=<file> \
--       nvim --headless -u NONE -c "luafile spec/support/nvim_host.lua"
-- Steps run one after the other from the editor's own loop; the results go to LEADPIPE_OUT
-- as a Lua chunk (`return { ... }`) and the editor quits. A 60 s guard quits in any case.

local uv = vim.loop
local root = os.getenv("LEADPIPE_ROOT") or "."
local build = os.getenv("LEADPIPE_BUILD") or "build/jit"
local out_path = assert(os.getenv("LEADPIPE_OUT"), "LEADPIPE_OUT is not set")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/" .. build .. "/?.so;" .. package.cpath

local R = { steps = {} }

-- ===== writing the results =====

local function serialize(v, indent)
    indent = indent or ""
    local t = type(v)
    if t == "string" then return ("%q"):format(v) end
    if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
    if t == "table" then
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = k end
        table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
        local parts = {}
        for _, k in ipairs(keys) do
            local key = type(k) == "string" and ("[%q]"):format(k) or ("[" .. tostring(k) .. "]")
            parts[#parts + 1] = indent .. "  " .. key .. " = " .. serialize(v[k], indent .. "  ")
        end
        return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
    end
    return ("%q"):format(tostring(v))
end

local finished = false
local function finish()
    if finished then return end
    finished = true
    local f = assert(io.open(out_path, "w"))
    f:write("return ", serialize(R), "\n")
    f:close()
    vim.cmd("qa!")
end

local guard = uv.new_timer()
guard:start(60000, 0, vim.schedule_wrap(function()
    R.timed_out = true
    finish()
end))

local steps, next_step = {}, nil
next_step = function()
    local s = table.remove(steps, 1)
    if not s then
        guard:close()
        return finish()
    end
    R.steps[#R.steps + 1] = s.name
    local ok, err = pcall(s.fn)
    if not ok then
        R[s.name .. "_error"] = tostring(err)
        vim.schedule(next_step)
    end
end
local function step(name, fn) steps[#steps + 1] = { name = name, fn = fn } end

-- Calls check() every 20 ms until it returns true or `ms` pass, then done(ok).
local function wait_for(ms, check, done)
    local t, waited = uv.new_timer(), 0
    t:start(20, 20, vim.schedule_wrap(function()
        waited = waited + 20
        if t:is_closing() then return end
        local ok = check()
        if ok or waited >= ms then
            t:close()
            done(ok and true or false)
        end
    end))
end

-- ===== the steps =====

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local AUD = "11111111-2222-4333-8444-555555555555"
local srv = assert(mock.start{ latency_ms = 30, queued_ms = 300, running_ms = 300,
                               audiences = { { id = AUD, rows = 5000 } } })
R.core = require("leadpipe.core")._VERSION

local function total_requests()
    local n = 0
    for _, by_status in pairs(srv:stats().requests) do
        for _, c in pairs(by_status) do n = n + c end
    end
    return n
end

local function new_client()
    return leadpipe.new{ api_key = srv.api_key, base_url = srv.url, host = "neovim" }
end

step("outside", function()
    srv:reset_stats()
    local client = new_client()
    local run, err = client:create_run(AUD) R.outside_line = debug.getinfo(1, "l").currentline
    R.outside_run = run ~= nil
    R.outside_code = err and err.code
    R.outside_message = err and err.message
    R.outside_requests = total_requests()
    R.outside_runs_created = srv:stats().runs_created
    client:close()
    vim.schedule(next_step)
end)

step("fetch", function()
    srv:reset_stats()
    local client = new_client()
    -- A 10 ms repeating timer: its largest gap says how long the editor was held.
    local last, max_gap, ticks = uv.hrtime(), 0, 0
    local ticker = uv.new_timer()
    ticker:start(10, 10, function()
        local now = uv.hrtime()
        local gap = (now - last) / 1e6
        if gap > max_gap then max_gap = gap end
        last, ticks = now, ticks + 1
    end)
    -- vim.schedule callbacks must keep running during the fetch.
    local scheduled, pumping = 0, true
    local function pump()
        scheduled = scheduled + 1
        if pumping then vim.defer_fn(pump, 5) end
    end
    vim.schedule(pump)
    local t0 = uv.hrtime()
    leadpipe.hosts.run(function()
        local run = assert(client:create_run(AUD))
        assert(client:wait_run(AUD, run.id, { interval = 0.1 }))
        -- vim.api right after a leadpipe call: legal, the coroutine runs from vim.schedule
        local ok, buf = pcall(vim.api.nvim_create_buf, false, true)
        R.api_after_wait = ok and type(buf) == "number"
        R.api_error = not ok and tostring(buf) or nil
        local count, unique, seen = 0, 0, {}
        local sched_before = scheduled
        for p in client:people(AUD, run.id, { limit = 100, prefetch = 2 }) do
            count = count + 1
            if p.hashedEmail and not seen[p.hashedEmail] then unique = unique + 1 end
            if p.hashedEmail then seen[p.hashedEmail] = true end
        end
        R.scheduled_during_rows = scheduled - sched_before
        ok = pcall(vim.api.nvim_buf_set_lines, buf, 0, -1, false, { "rows: " .. count })
        R.api_after_rows = ok
        R.rows, R.unique = count, unique
        R.fetch_ms = (uv.hrtime() - t0) / 1e6
        R.wakeups = client.host.stats.wakeups
        R.resumes = client.host.stats.resumes
        client:close()
    end, function(err)
        R.fetch_failure = tostring(err)
        client:close()
    end)
    wait_for(30000, function() return R.rows ~= nil or R.fetch_failure ~= nil end, function()
        ticker:close()
        pumping = false
        R.max_gap_ms = max_gap
        R.ticks = ticks
        R.scheduled = scheduled
        R.requests = total_requests()
        vim.schedule(next_step)
    end)
end)

step("idle", function()
    srv:reset_stats()
    srv:configure{ latency_ms = 1000 }
    local client = new_client()
    local st, marks = client.host.stats, {}
    local m = uv.new_timer()
    m:start(500, 450, function()
        marks[#marks + 1] = st.wakeups
        if #marks == 2 then m:close() end
    end)
    leadpipe.hosts.run(function()
        R.idle_ok = client:list_runs(AUD) ~= nil
        client:close()
    end, function(err) R.idle_failure = tostring(err) end)
    wait_for(5000, function() return R.idle_ok ~= nil or R.idle_failure ~= nil end, function()
        srv:configure{ latency_ms = 30 }
        R.idle_wakeups_total = st.wakeups
        R.idle_wakeups_window = marks[2] and marks[1] and marks[2] - marks[1]
        vim.schedule(next_step)
    end)
end)

step("error", function()
    local client = new_client()
    local real, got = vim.notify, nil
    vim.notify = function(msg, level) got = { msg = msg, level = level } end
    leadpipe.hosts.run(function()
        local run = assert(client:create_run(AUD))
        error(leadpipe.errors.new("http", "raised after a wait, run " .. run.id))
    end)
    wait_for(5000, function() return got ~= nil end, function()
        vim.notify = real
        client:close()
        R.notify_msg = got and got.msg
        R.notify_level = got and got.level
        R.error_level = vim.log.levels.ERROR
        vim.schedule(next_step)
    end)
end)

step("plugin", function()
    local done_lines
    vim.cmd("luafile " .. root .. "/examples/neovim/plugin/leadpipe_demo.lua")
    local real = vim.notify
    local notes = {}
    vim.notify = function(msg) notes[#notes + 1] = msg end
    vim.cmd("LeadpipeTop 80")
    wait_for(20000, function()
        local name = vim.api.nvim_buf_get_name(0)
        if name:find("^leadpipe://top/") then
            done_lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
            return true
        end
    end, function()
        vim.notify = real
        R.plugin_lines = done_lines
        R.plugin_notes = notes
        R.plugin_modifiable = vim.api.nvim_buf_get_option(0, "modifiable")
        vim.schedule(next_step)
    end)
end)

step("health", function()
    vim.cmd("checkhealth leadpipe_demo")
    R.health_lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
    vim.schedule(next_step)
end)

vim.schedule(next_step)

-- Neovim example: :LeadpipeTop [MIN_SCORE] shows the best people of a fresh run in a scratch
-- buffer, without freezing the editor while the run is queued, running and read (leadpipe's
-- "neovim" host waits on vim.loop timers inside a coroutine).
--
-- From the repository root, after `make build LUA_VERSION=5.1` (Neovim runs LuaJIT, which
-- loads modules built for Lua 5.1):
--
--   LEADPIPE_API_KEY=sk_... LEADPIPE_AUDIENCE_ID=<uuid> nvim
--   :luafile examples/neovim/leadpipe_demo.lua
--   :LeadpipeTop 80
--
-- Without LEADPIPE_API_KEY it starts the fake API inside Neovim and uses it. In a plugin,
-- put the command in plugin/ and leadpipe on 'runtimepath' or package.path instead.

local function source_root()
    local src = debug.getinfo(1, "S").source
    local dir = src:sub(1, 1) == "@" and src:sub(2):match("^(.*)/examples/neovim/[^/]*$")
    return dir
end

-- Load leadpipe from this source tree when it is not installed.
local root = source_root()
if root and not pcall(require, "leadpipe") then
    package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
    package.cpath = root .. "/build/5.1/?.so;" .. package.cpath
end

local leadpipe = require "leadpipe"
local format = require "leadpipe.format"

local f = leadpipe.filter

-- UI calls are not allowed in the timer callbacks the coroutine resumes from: schedule them.
local function notify(msg, level)
    vim.schedule(function() vim.notify("leadpipe: " .. msg, level or vim.log.levels.INFO) end)
end

local function show(lines)
    vim.schedule(function()
        local buf = vim.api.nvim_create_buf(false, true)
        vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
        vim.api.nvim_set_option_value("modifiable", false, { buf = buf })
        vim.cmd("botright split")
        vim.api.nvim_win_set_buf(0, buf)
    end)
end

local server -- the fake API, started once when there is no key

local function connection()
    local key = os.getenv("LEADPIPE_API_KEY")
    if key and key ~= "" then
        return { host = "neovim" }, os.getenv("LEADPIPE_AUDIENCE_ID")
    end
    if not server then
        server = assert(require("leadpipe.mock").start{ queued_ms = 500, running_ms = 500 })
        notify("LEADPIPE_API_KEY is not set: using the fake API at " .. server.url)
    end
    return { host = "neovim", api_key = server.api_key, base_url = server.url }, server.audience
end

local function top_people(min_score)
    local opts, audience = connection()
    local client = leadpipe.new(opts)
    local run = assert(client:create_run(audience))
    notify("queued run " .. run.id)
    assert(client:wait_run(audience, run.id, { interval = 0.5 }))
    local best = f.top(client:people(audience, run.id, {
        limit = 500,
        where = { min_score = min_score, seniority_at_least = "director" },
    }), 10)
    client:close()
    local lines = format.table_lines(best,
        { "fullName", "jobTitle", "company.name", "geo.countryCode", "intent.score" })
    table.insert(lines, 1, ("Top %d of run %s (intent >= %d, director or above)"):format(#best, run.id,
        min_score))
    table.insert(lines, 2, "")
    show(lines)
end

vim.api.nvim_create_user_command("LeadpipeTop", function(cmd)
    local min_score = tonumber(cmd.args ~= "" and cmd.args or "80")
    if not min_score then
        return vim.notify("leadpipe: MIN_SCORE must be a number", vim.log.levels.ERROR)
    end
    -- The neovim host needs a coroutine; hosts.run starts one and reports its errors here.
    leadpipe.hosts.run(top_people, function(err)
        notify(tostring(err), vim.log.levels.ERROR)
    end, min_score)
end, { nargs = "?", desc = "Show the best people of a fresh Leadpipe run" })

vim.api.nvim_create_autocmd("VimLeavePre", {
    callback = function()
        if server then server:stop() end
    end,
})

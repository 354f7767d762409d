-- leadpipe_demo: the logic of :LeadpipeTop [MIN_SCORE] (the command is defined in
-- plugin/leadpipe_demo.lua). It queues a run, waits for it and shows its best people in a
-- scratch buffer, without freezing the editor: leadpipe's "neovim" host watches libcurl's
-- sockets on vim.loop and resumes the work through vim.schedule, so vim.api calls are
-- legal right after every leadpipe call.
--
-- Without LEADPIPE_API_KEY it starts the fake API (leadpipe.mock) inside Neovim and uses it.
-- leadpipe.core must be built for LuaJIT (`make build LUA_VERSION=jit` in the leadpipe
-- repository); when leadpipe is not on package.path this module finds it from its own place
-- in the repository (examples/neovim/lua/leadpipe_demo/), or from vim.g.leadpipe_root.

local M = {}

-- The leadpipe repository this file lives in (or vim.g.leadpipe_root), or nil.
local function leadpipe_root()
    if type(vim.g.leadpipe_root) == "string" and vim.g.leadpipe_root ~= "" then
        return vim.g.leadpipe_root
    end
    local src = debug.getinfo(1, "S").source
    if src:sub(1, 1) ~= "@" then return nil end
    local path = vim.fn.fnamemodify(src:sub(2), ":p")
    return path:match("^(.*)/examples/neovim/lua/leadpipe_demo/init%.lua$")
end

--- Makes `require "leadpipe"` work: adds the repository's lua/ and build/jit/ to the
-- package paths when leadpipe is not installed. Returns true when leadpipe.core loads,
-- else false, message.
function M.setup_paths()
    if package.loaded["leadpipe.core"] then return true end
    local root = leadpipe_root()
    if root and not pcall(require, "leadpipe.core") then
        package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
        package.cpath = root .. "/build/jit/?.so;" .. package.cpath
    end
    local ok, err = pcall(require, "leadpipe.core")
    if not ok then return false, tostring(err) end
    return true
end

local FIELDS = { "fullName", "jobTitle", "company.name", "geo.countryCode", "intent.score" }

M.server = nil -- the fake API, started once when there is no key

local function connection()
    local key = os.getenv("LEADPIPE_API_KEY")
    if key and key ~= "" then
        return { host = "neovim" }, os.getenv("LEADPIPE_AUDIENCE_ID")
    end
    if not M.server then
        M.server = assert(require("leadpipe.mock").start{ queued_ms = 500, running_ms = 500 })
        vim.api.nvim_create_autocmd("VimLeavePre", {
            callback = function()
                if M.server then M.server:stop() end
            end,
        })
        vim.notify("leadpipe: LEADPIPE_API_KEY is not set: using the fake API at " .. M.server.url,
            vim.log.levels.INFO)
    end
    return { host = "neovim", api_key = M.server.api_key, base_url = M.server.url }, M.server.audience
end

-- Shows lines in a new scratch buffer below; returns the buffer.
local function show(name, lines)
    local buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
    vim.api.nvim_buf_set_option(buf, "modifiable", false) -- (nvim_set_option_value is 0.8+)
    vim.cmd("botright split")
    vim.api.nvim_win_set_buf(0, buf)
    return buf
end

--- Queues a run and shows its best people (intent >= min_score, director or above).
-- on_done(buf, lines) is called after the buffer is shown (for tests and scripts).
-- Returns the coroutine doing the work (leadpipe.hosts.run).
function M.top(min_score, on_done)
    local ok, err = M.setup_paths()
    if not ok then
        vim.notify("leadpipe: leadpipe.core does not load (build it with `make build "
            .. "LUA_VERSION=jit`): " .. err, vim.log.levels.ERROR)
        return nil
    end
    local leadpipe = require "leadpipe"
    local format = require "leadpipe.format"
    local client
    return leadpipe.hosts.run(function()
        local opts, audience = connection()
        client = leadpipe.new(opts)
        local run = leadpipe.assert(client:create_run(audience))
        vim.notify("leadpipe: queued run " .. run.id, vim.log.levels.INFO)
        leadpipe.assert(client:wait_run(audience, run.id, { interval = 0.25 }))
        local best = leadpipe.iter.top(client:people(audience, run.id, {
            limit = 500,
            where = { min_score = min_score, seniority_at_least = "director" },
        }), 10)
        client:close()
        local lines = format.table_lines(best, FIELDS)
        table.insert(lines, 1, ("Top %d of run %s (intent >= %d, director or above)"):format(#best,
            run.id, min_score))
        table.insert(lines, 2, "")
        local buf = show("leadpipe://top/" .. run.id, lines)
        if on_done then on_done(buf, lines) end
    end, function(e)
        if client then client:close() end
        vim.notify("leadpipe: " .. tostring(e):gsub("^leadpipe: ", ""), vim.log.levels.ERROR)
    end)
end

return M

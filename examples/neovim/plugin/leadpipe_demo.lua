-- :LeadpipeTop [MIN_SCORE]: the best people of a fresh Leadpipe run in a scratch buffer.
-- The logic is in lua/leadpipe_demo/init.lua; :checkhealth leadpipe_demo checks the setup.
-- Works on Neovim 0.7 and later.

if vim.g.loaded_leadpipe_demo then return end
vim.g.loaded_leadpipe_demo = true

-- Sourced by hand (`:luafile examples/neovim/plugin/leadpipe_demo.lua` from the leadpipe
-- repository) rather than from 'runtimepath': put this plugin's lua/ on package.path.
if not pcall(require, "leadpipe_demo") then
    local src = debug.getinfo(1, "S").source
    local dir = src:sub(1, 1) == "@" and vim.fn.fnamemodify(src:sub(2), ":p:h:h")
    if dir then
        package.path = dir .. "/lua/?.lua;" .. dir .. "/lua/?/init.lua;" .. package.path
        vim.opt.runtimepath:append(dir) -- so :checkhealth finds lua/leadpipe_demo/health.lua
    end
end

vim.api.nvim_create_user_command("LeadpipeTop", function(cmd)
    local min_score = tonumber(cmd.args ~= "" and cmd.args or "80")
    if not min_score then
        return vim.notify("leadpipe: MIN_SCORE must be a number", vim.log.levels.ERROR)
    end
    require("leadpipe_demo").top(min_score)
end, { nargs = "?", desc = "Show the best people of a fresh Leadpipe run" })

-- Neovim example, the quick way: from the leadpipe repository root, after
-- `make build LUA_VERSION=jit` (Neovim runs LuaJIT):
--
--   nvim
--   :luafile examples/neovim/leadpipe_demo.lua
--   :LeadpipeTop 80
--
-- It loads the plugin in examples/neovim/ (plugin/leadpipe_demo.lua, lua/leadpipe_demo/);
-- see examples/neovim/README.md to install that with a plugin manager instead.

local src = debug.getinfo(1, "S").source
local dir = src:sub(1, 1) == "@" and vim.fn.fnamemodify(src:sub(2), ":p:h")
if not dir then error("leadpipe_demo: source this file with :luafile") end
vim.cmd("luafile " .. vim.fn.fnameescape(dir .. "/plugin/leadpipe_demo.lua"))

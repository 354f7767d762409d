-- luacheck settings for leadpipe.
std = "max"
max_line_length = 110
exclude_files = { "build/**" }
files["spec/**"] = { std = "+busted" }
files["examples/openresty/**"] = { read_globals = { "ngx" } }
-- Neovim: vim is read-only except vim.g (plugin flags) and what specs override (vim.notify).
local vim_rw = { other_fields = true, fields = {
    g = { read_only = false, other_fields = true },
    notify = { read_only = false },
} }
files["examples/neovim/**"] = { read_globals = { vim = vim_rw } }
files["spec/support/nvim_*.lua"] = { std = "max", read_globals = { vim = vim_rw } }
files["lua/leadpipe/hosts.lua"] = { read_globals = { "ngx", "vim" } }
files["lua/leadpipe/wire/cosocket.lua"] = { read_globals = { "ngx" } }
files["lua/leadpipe/gate.lua"] = { read_globals = { "ngx" } }
files["lua/leadpipe/cache.lua"] = { read_globals = { "ngx" } }
files["spec/support/openresty_app.lua"] = { globals = { "ngx" } }
files["spec/support/openresty_serve.lua"] = { globals = { "ngx" } }

-- luacheck settings for leadpipe.
std = "max"
max_line_length = 110
exclude_files = { "build/**" }
files["spec/**"] = { std = "+busted" }
files["examples/openresty/**"] = { read_globals = { "ngx" } }
files["examples/neovim/**"] = { read_globals = { "vim" } }
files["lua/leadpipe/hosts.lua"] = { read_globals = { "ngx", "vim" } }
files["lua/leadpipe/transport/cosocket.lua"] = { read_globals = { "ngx" } }
files["spec/support/openresty_app.lua"] = { globals = { "ngx" } }

-- Helpers for the CLI, format and example specs: an RFC 4180 CSV parser, in-memory
-- stdout/stderr, and running bin/leadpipe as a subprocess with its output and exit status.
-- The shell and file helpers they use are spec/support/shell.lua's.

local shell = require "spec.support.shell"

local _M = {}

--- parse_csv(text) -> array of records (arrays of strings); see spec/support/csv.lua.
_M.parse_csv = require("spec.support.csv").parse

--- buffer() -> an object with :write(...) collecting text; .text() returns it.
function _M.buffer()
    local parts = {}
    local b = {}
    function b.write(self, ...)
        for k = 1, select("#", ...) do parts[#parts + 1] = tostring((select(k, ...))) end
        return self
    end
    function b.flush() return true end
    function b.text() return table.concat(parts) end
    return b
end

--- getenv(table) -> a getenv function reading only that table.
function _M.getenv(t)
    return function(name) return t[name] end
end

-- The shell and file helpers (spec/support/shell.lua), under the names these specs use.
local shell_quote = shell.quote
_M.shell_quote = shell_quote
_M.read_file = shell.read_file
_M.sh = shell.sh

--- The Lua interpreter the specs run with: LEADPIPE_LUA (set by the Makefile), else the
--- interpreter running this process.
_M.lua = (function()
    local env = os.getenv("LEADPIPE_LUA")
    if env and env ~= "" then return env end
    local i = 0
    while arg and arg[i - 1] do i = i - 1 end
    return arg and arg[i] or "lua5.4"
end)()

--- run(args, env) -> stdout, stderr, status of `$LUA bin/leadpipe args...` with the
-- variables in `env` set (and LEADPIPE_API_KEY / LEADPIPE_BASE_URL unset unless given).
function _M.run(args, env)
    local words = { "env -u LEADPIPE_API_KEY -u LEADPIPE_BASE_URL -u LEADPIPE_PROGRESS" }
    for k, v in pairs(env or {}) do words[#words + 1] = k .. "=" .. shell_quote(v) end
    words[#words + 1] = _M.lua
    words[#words + 1] = "bin/leadpipe"
    for _, a in ipairs(args) do words[#words + 1] = shell_quote(a) end
    return _M.sh(table.concat(words, " "))
end

--- run_lua(code, env) -> stdout, stderr, status of `$LUA -e code` with this checkout's
-- lua/ and build (LEADPIPE_BUILD, else build/5.4) on its paths and the variables in `env`
-- set (LEADPIPE_API_KEY / LEADPIPE_BASE_URL unset unless given).
function _M.run_lua(code, env)
    local build = os.getenv("LEADPIPE_BUILD") or "build/5.4"
    local words = { "env -u LEADPIPE_API_KEY -u LEADPIPE_BASE_URL",
        "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;'", "LUA_CPATH=" .. shell_quote("./" .. build .. "/?.so;;") }
    for k, v in pairs(env or {}) do words[#words + 1] = k .. "=" .. shell_quote(v) end
    words[#words + 1] = _M.lua
    words[#words + 1] = "-e"
    words[#words + 1] = shell_quote(code)
    return _M.sh(table.concat(words, " "))
end

--- in_terminal(command_line) -> transcript, status: runs the command with a pseudo-terminal
-- as its stdin/stdout/stderr (script(1)), or returns nil when script(1) is not installed.
function _M.in_terminal(command_line)
    local _, _, has_script = _M.sh("command -v script")
    if has_script ~= 0 then return nil end
    local transcript, _, status = _M.sh("script -qec " .. shell_quote(command_line) .. " /dev/null")
    return transcript, status
end

--- lines(text) -> array of lines (without line ends).
function _M.lines(text)
    local out = {}
    for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = line end
    return out
end

return _M

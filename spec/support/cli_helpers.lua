-- Helpers for the CLI, format and example specs: an RFC 4180 CSV parser, in-memory
-- stdout/stderr, and running a command as a subprocess with its output and exit status.

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

local function shell_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
_M.shell_quote = shell_quote

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return "" end
    local s = f:read("*a")
    f:close()
    return s
end
_M.read_file = read_file

--- The Lua interpreter the specs run with (LEADPIPE_LUA from the Makefile).
_M.lua = os.getenv("LEADPIPE_LUA") or "lua5.4"

--- sh(command_line) -> stdout, stderr, status. Runs `command_line` with sh; the status is
-- the command's exit status as a number (portable: read from a file, not from popen).
function _M.sh(command_line)
    local out, err, st = os.tmpname(), os.tmpname(), os.tmpname()
    os.execute("( " .. command_line .. " ) >" .. out .. " 2>" .. err .. " </dev/null; echo $? >" .. st)
    local stdout, stderr = read_file(out), read_file(err)
    local status = tonumber(read_file(st):match("%d+"))
    os.remove(out); os.remove(err); os.remove(st)
    return stdout, stderr, status
end

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

-- bench/lib/shell.lua: processes and files for bench/harness.lua: the helpers of
-- spec/support/shell.lua, plus timed runs with a timeout. Portable to Lua 5.1 (exit
-- statuses come from the shell, not from popen's close).
local core = require "leadpipe.core"
local shell = require "spec.support.shell"

local format = string.format

local _M = {}

--- quote(s) -> s as one single-quoted shell word; read_file(path) -> its contents, or ""
--- when it cannot be read; have(cmd) -> whether the command is on PATH (spec/support/shell.lua)
_M.quote, _M.read_file, _M.have = shell.quote, shell.read_file, shell.have
local quote, read_file = _M.quote, _M.read_file

--- file_exists(path) -> boolean
function _M.file_exists(path)
    local f = io.open(path, "r")
    if f then f:close() end
    return f ~= nil
end

--- run(cmd, timeout) -> stdout, exit status, seconds, stderr. The time covers the whole
-- command (process start to exit); `timeout` seconds bound it (then the status is 124).
function _M.run(cmd, timeout)
    local errf = os.tmpname()
    local t0 = core.now()
    -- --foreground: the job stays in our process group, so Ctrl-C reaches it too
    local p = assert(io.popen(format("timeout --foreground -k 5 %d %s 2>%s; echo \"@exit=$?\"",
        timeout, cmd, quote(errf))))
    local out = p:read("*a")
    p:close()
    local dt = core.now() - t0
    local stderr = read_file(errf)
    os.remove(errf)
    local body, status = out:match("^(.-)@exit=(%d+)%s*$")
    return body or out, tonumber(status) or -1, dt, stderr
end

--- sh(cmd) -> its stdout, trailing space removed (quick probes: no timeout, no timing)
function _M.sh(cmd)
    return (shell.output(cmd):gsub("%s+$", ""))
end
local sh = _M.sh

--- version(cmd) -> the first two words of its first line ("Lua 5.4.4", "curl 7.88.1")
function _M.version(cmd)
    local out = sh(cmd .. " 2>&1")
    return out:match("^(%S+%s+%S+)") or out:match("^[^\n]*") or "?"
end

--- loadavg() -> "1m 5m 15m" from /proc/loadavg, or "?"
function _M.loadavg()
    return read_file("/proc/loadavg"):match("^(%S+ %S+ %S+)") or "?"
end

return _M

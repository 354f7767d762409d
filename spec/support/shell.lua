-- spec/support/shell.lua: the one home of the file and shell helpers of the specs and the
-- benchmarks (bench/ requires it too, from the repository root): quoting a shell word,
-- reading a file, running a command line. Portable to Lua 5.1 and LuaJIT (sh reads exit
-- statuses from the shell, not from popen's close).

local _M = {}

--- quote(s) -> s as one single-quoted shell word.
function _M.quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
local quote = _M.quote

--- read_file(path) -> its contents, or "" when it cannot be read.
function _M.read_file(path)
    local f = io.open(path, "rb")
    if not f then return "" end
    local s = f:read("*a")
    f:close()
    return s
end
local read_file = _M.read_file

--- sh(command_line) -> stdout, stderr, status: runs `command_line` with sh, stdin from
--- /dev/null; the status is the command's exit status (a number).
function _M.sh(command_line)
    local out, err, st = os.tmpname(), os.tmpname(), os.tmpname()
    os.execute("( " .. command_line .. " ) >" .. quote(out) .. " 2>" .. quote(err)
        .. " </dev/null; echo $? >" .. quote(st))
    local stdout, stderr = read_file(out), read_file(err)
    local status = tonumber(read_file(st):match("%d+"))
    os.remove(out); os.remove(err); os.remove(st)
    return stdout, stderr, status
end

--- ok(command_line) -> whether it exits with status 0 (its output goes where it goes).
function _M.ok(command_line)
    local a, how, code = os.execute(command_line)
    if type(a) == "number" then return a == 0 end -- Lua 5.1, LuaJIT
    return a == true and how == "exit" and code == 0
end

--- output(command_line) -> its stdout (a quick probe: no status, no timing).
function _M.output(command_line)
    local p = assert(io.popen(command_line))
    local out = p:read("*a")
    p:close()
    return out
end

--- have(command) -> whether the command is on PATH.
function _M.have(command)
    return _M.output("command -v " .. quote(command) .. " >/dev/null 2>&1 && echo yes"):find("yes", 1, true)
        ~= nil
end

return _M

-- leadpipe.cli: the `leadpipe` command line tool (bin/leadpipe is its launcher). This file is
-- the entry point: it parses the line (cli/parser.lua, lua-argparse), runs the command
-- (cli/commands.lua, progress in cli/progress.lua) and turns every failure into one line on
-- stderr and an exit status.
--
--   local cli = require "leadpipe.cli"
--   local status = cli.main(args, env)
--
-- `args` is the array of command line words (without the program name). `env` is optional
-- and replaces the process's surroundings, so that specs can run the tool in-process:
--   env.stdout, env.stderr   objects with :write(s) (default io.stdout, io.stderr)
--   env.getenv               function(name) -> value (default os.getenv)
--   env.isatty               boolean: whether to show progress on stderr (default: when
--                            `test -t 2` says stderr is a terminal and the rows do not go
--                            to a terminal too; LEADPIPE_PROGRESS=1 or 0 decides instead)
--   env.now                  monotonic clock in seconds for the progress display (default
--                            the clock of the client's host)
-- main() returns the exit status and never raises: 0 ok, 1 API or network error, 2 usage
-- error, 130 interrupted (Ctrl-C). `leadpipe` alone prints the help on stdout and exits 2
-- (nothing was done). Every failure is one line on stderr; progress goes to stderr only
-- when it is a terminal; stdout carries only the data.
--
-- Licensed under the MIT license, like the rest of leadpipe.

local parser = require "leadpipe.cli.parser"
local cmds = require "leadpipe.cli.commands"
local progress = require "leadpipe.cli.progress"

local type, tostring, pcall, xpcall, ipairs = type, tostring, pcall, xpcall, ipairs
local concat = table.concat
local format, find, sub, gsub = string.format, string.find, string.sub, string.gsub

local _M = { _VERSION = require "leadpipe.version" }

local PROG = "leadpipe"

local function one_line(s)
    return (gsub(gsub(tostring(s), "[\r\n]+", " "), "%s+$", ""))
end

-- "Couldn't connect to server: Failed to connect ... : Couldn't connect to server": a
-- prefix that the rest repeats is said once.
local function say_once(msg)
    local parts = {}
    for part in (msg .. ": "):gmatch("(.-): ") do parts[#parts + 1] = part end
    local keep = {}
    for i, part in ipairs(parts) do
        local later = false
        for j = i + 1, #parts do
            if parts[j] == part then later = true end
        end
        if i == 1 or not later then keep[#keep + 1] = part end
    end
    return concat(keep, ": ")
end
_M.say_once = say_once

local function is_tty(fd)
    local r = os.execute("test -t " .. fd)
    return r == true or r == 0
end

-- Whether to show progress: stderr is a terminal, and the rows do not go to that same
-- terminal as they come (a table is written at the end, so it does not count).
-- LEADPIPE_PROGRESS=1 or 0 decides instead; TERM=dumb turns it off.
local function default_progress(getenv, cmd, opts)
    local forced = getenv("LEADPIPE_PROGRESS")
    if forced == "1" then return true end
    if forced == "0" then return false end
    if getenv("TERM") == "dumb" then return false end
    if not is_tty(2) then return false end
    return cmd == "run" or opts.format == "table" or not is_tty(1)
end

local WAITS = { run = true, results = true, changes = true, stats = true, export = true }

--- main(args, env) -> exit status. Never raises.
function _M.main(args, env)
    env = env or {}
    local stdout = env.stdout or io.stdout
    local stderr = env.stderr or io.stderr
    local getenv = env.getenv or os.getenv
    local argv = {}
    for i = 1, #(args or {}) do argv[i] = tostring(args[i]) end

    local ctx = { stdout = stdout, stderr = stderr, getenv = getenv }
    local function say(msg)
        stderr:write(PROG, ": ", one_line(msg), "\n")
    end
    local function flush()
        local out = ctx.stdout -- (the command may have put a scrubbing writer in front)
        if out.flush then cmds.check_write(out:flush()) end
    end

    local function body()
        local opts, perr = parser.parse(argv)
        if not opts then
            if perr.help then
                cmds.check_write(stdout:write(perr.help))
                flush()
                return 0
            end
            if perr.version then
                cmds.check_write(stdout:write(PROG, " ", _M._VERSION, "\n"))
                flush()
                return 0
            end
            error({ usage = true, message = perr.message, cmd = perr.cmd }, 0)
        end
        local cmd = opts.command
        if not cmd then
            cmds.check_write(stdout:write(parser.help()))
            flush()
            return 2
        end
        ctx.cmd, ctx.opts = cmd, opts
        if opts.no_progress then
            ctx.tty = false
        elseif opts.progress then
            ctx.tty = true
        elseif env.isatty ~= nil then
            ctx.tty = env.isatty and true or false
        else
            ctx.tty = WAITS[cmd] and default_progress(getenv, cmd, opts) or false
        end
        ctx.now = env.now
        local status = cmds.commands[cmd](ctx)
        flush() -- buffered output may only fail now (a full disk)
        return status
    end

    local trace
    local ok, res = xpcall(body, function(e)
        if type(e) == "string" and not find(e, "interrupted!", 1, true) then
            trace = debug.traceback(e, 2)
        end
        return e
    end)
    if ctx.client then pcall(ctx.client.close, ctx.client) end
    if not ok and ctx.stdout ~= stdout then
        pcall(ctx.stdout.flush, ctx.stdout) -- what a failed command printed before it failed
    end
    if ok then return res or 0 end
    local e = res
    if type(e) == "table" and e.usage then
        local c = e.cmd or ctx.cmd
        if c == "help" then c = nil end
        local hint = c and format(" (see 'leadpipe %s --help')", c) or " (see 'leadpipe --help')"
        say(e.message .. hint)
        return 2
    end
    if type(e) == "table" and e.write_failed then
        -- a reader that went away (`| head`) needs no message; a full disk does
        if not find(tostring(e.message), "Broken pipe", 1, true) then
            say("cannot write the output: " .. tostring(e.message))
        end
        return 1
    end
    if type(e) == "string" and find(e, "interrupted!", 1, true) then
        if ctx.tty then stderr:write("\n") end
        say("interrupted")
        return 130
    end
    if type(e) == "table" and type(e.kind) == "string" and e.message ~= nil then
        local msg = tostring(e)
        if sub(msg, 1, #PROG + 2) == PROG .. ": " then msg = sub(msg, #PROG + 3) end
        if find(msg, "interrupted!", 1, true) then
            say("interrupted")
            return 130
        end
        local run = type(e.run) == "table" and e.run or nil
        if run and type(run.errorCode) == "string" and not find(msg, run.errorCode, 1, true) then
            msg = msg .. " (run errorCode " .. run.errorCode .. ")"
        end
        say(say_once(cmds.cli_words(msg)))
        return e.kind == "invalid_argument" and 2 or 1
    end
    if type(e) == "table" and e.message then
        say(e.message)
        return 1
    end
    say("internal error: " .. tostring(e))
    if trace and getenv("LEADPIPE_DEBUG") then stderr:write(trace, "\n") end
    return 1
end

-- Exposed for the specs.
function _M.parse_for_tests(args)
    local opts, err = parser.parse(args)
    if not opts then error(err.message or err, 2) end
    return opts
end
_M.where_from = cmds.where_from
_M.new_progress = progress.new

return _M

-- leadpipe.hosts: how the library waits.
--
-- A host is a table; every wait in leadpipe goes through one. Every host has:
--   host.name                    "blocking", "openresty", "neovim", "luv" or your own
--   host.now()                   monotonic seconds (float)
--   host.sleep(seconds)          wait that long without doing anything else
--   host.check(fname, level)     optional: nil when leadpipe may wait here, else an error
--                                object (kind "invalid_argument", code "NOT_IN_COROUTINE")
--                                naming the caller `level` frames up (as error()'s level);
--                                the client calls it before it sends anything
--   host.wire                    optional: the wire that moves the bytes (lua/leadpipe/wire/),
--                                default "curl"
-- and, when its wire is libcurl's (wire/curl.lua, which picks the session mode from it), one
-- of two ways to wait for libcurl:
--   host.wait_io(session, secs)  poll mode: wait until the session's transfers may progress,
--                                at most secs (the blocking host: curl_multi_poll)
--   host.io                      socket mode (event loops): the wire runs libcurl's
--                                socket-action API and watches exactly curl's sockets:
--       io.poll(fd, on_ready) -> watcher    watcher:start(events) ("r", "w", "rw"; "": watch
--                                           nothing for now), watcher:close() (idempotent);
--                                           on_ready(events) runs from the loop ("e" on error)
--       io.timer(on_fire, weak) -> timer    timer:start(ms) (one shot, restarts),
--                                           timer:stop(), timer:close() (idempotent)
--     plus the suspension of the running coroutine:
--       host.waker(fname) -> w       for the running coroutine; raises the check's error
--                                    outside a coroutine
--       host.await(w)                yields until host.wake(w) (other resumes are ignored)
--       host.wake(w)                 idempotent; the coroutine resumes later from the loop,
--                                    never inside the caller of wake
--       host.relax()                 optional: gives the loop a turn when the coroutine has
--                                    run for host.slice seconds (0.01) without waiting; the
--                                    wire calls it when a request was done before it waited
--   Callbacks from the loop count in host.stats (wakeups = polls + timers) and never let
--   an error out into the loop.
-- "blocking" (the default) blocks the process in curl_multi_poll / nanosleep.
-- "openresty" moves bytes over cosockets (its `wire` field names that wire) and sleeps
-- with ngx.sleep, so an nginx worker keeps serving while leadpipe waits.
-- "neovim" (vim.loop) and "luv" (plain lua-luv) are event-loop hosts: leadpipe calls must
-- run inside a coroutine (see hosts.run); on Neovim the coroutine is resumed through
-- vim.schedule, so vim.api calls are legal right after any leadpipe call. Nothing polls:
-- while a transfer is idle no callback of leadpipe runs.
-- PUC Lua 5.1 cannot yield inside a generic-for iterator, pcall or a metamethod: there,
-- call an iterator in a while loop (`local row = it()`); LuaJIT and 5.2+ have no such limit.
-- Any table with now/sleep and wait_io or io (or a `wire` other than "curl") may be passed
-- as a custom host.

local core = require "leadpipe.core"
local errors = require "leadpipe.errors"
local args = require "leadpipe.args"

local type, error, pairs = type, error, pairs
local coroutine = coroutine

--- How leadpipe waits (see the top of leadpipe/hosts.lua). A custom host needs now, sleep,
--- and wait_io or io (with waker, await and wake).
---@class leadpipe.Host
---@field name? string "blocking", "openresty", "neovim", "luv" or your own
---@field wire? string the wire that moves the bytes (default "curl"; "cosocket")
---@field now fun(): number monotonic seconds
---@field sleep fun(seconds: number) waits that long
---@field check? fun(fname?: string, level?: integer): leadpipe.Error|nil nil when leadpipe may wait here
---@field wait_io? fun(session: userdata, seconds: number) poll mode: waits for curl's transfers
---@field io? leadpipe.HostIO socket mode (event loops)
---@field waker? fun(fname?: string): leadpipe.Waker a waker for the running coroutine
---@field await? fun(w: leadpipe.Waker) yields until wake(w)
---@field wake? fun(w: leadpipe.Waker) idempotent; resumes the coroutine later, from the loop
---@field relax? fun() gives the loop a turn after host.slice seconds of work
---@field slice? number seconds of work before relax() yields (0.01)
---@field stats? { wakeups: integer, polls: integer, timers: integer, resumes: integer }

--- The socket mode of an event-loop host.
---@class leadpipe.HostIO
---@field poll fun(fd: integer, on_ready: fun(events: string)): leadpipe.Watcher
---@field timer fun(on_fire: fun(), weak?: boolean): leadpipe.Timer

--- What host.waker returns: the coroutine to resume.
---@class leadpipe.Waker
---@field co thread
---@field fired? boolean
---@field waiting? boolean

---@class leadpipe.hosts
---@field blocking leadpipe.Host the default host: blocks in curl_multi_poll / nanosleep
local _M = { _VERSION = require "leadpipe.version" }

-- ===== blocking =====

_M.blocking = {
    name = "blocking",
    now = core.now,
    sleep = function(seconds)
        -- core.sleep returns early on a signal; going round in Lua lets Ctrl-C through.
        while seconds > 0 do seconds = core.sleep(seconds) end
    end,
    wait_io = function(session, seconds)
        local t = session:timeout()
        if t and t < seconds then seconds = t end
        if seconds > 0 then session:poll(seconds) end
    end,
}

-- ===== openresty =====

-- Bytes move over cosockets (wire/cosocket.lua): a request waits on its own socket in
-- a light thread, so nothing here polls and the host needs neither wait_io nor io. sleep
-- (backoff, wait_run) is ngx.sleep, which yields the request's coroutine to nginx's event
-- loop. nginx times a sleep from its cached clock, which lags while the worker is busy: a
-- sleep could end that much early on the monotonic clock (now), and a rate gate open
-- early. So sleep refreshes the cache first and sleeps again for what is left.
local function openresty()
    local ngx = ngx -- luacheck: ignore (read global only here)
    if type(ngx) ~= "table" or type(ngx.sleep) ~= "function" or type(ngx.socket) ~= "table" then
        return nil, "the openresty host needs ngx.sleep and ngx.socket (run inside OpenResty)"
    end
    local sleep, update_time, now = ngx.sleep, ngx.update_time, core.now
    return {
        name = "openresty",
        wire = "cosocket",
        now = now,
        sleep = function(seconds)
            if seconds <= 0 then return end
            local t_end = now() + seconds
            for _ = 1, 10 do
                if update_time then update_time() end
                sleep(seconds)
                seconds = t_end - now()
                if seconds <= 0 then return end
            end
        end,
    }
end

-- ===== neovim / luv =====

local running, resume, yield, status = coroutine.running, coroutine.resume, coroutine.yield,
    coroutine.status
local isyieldable = coroutine.isyieldable
local tostring, pcall, select, unpack = tostring, pcall, select, table.unpack or unpack
local getinfo = debug.getinfo

local PUC51 = _VERSION == "Lua 5.1" and rawget(_G, "jit") == nil

local function nvim()
    local vim = rawget(_G, "vim")
    return type(vim) == "table" and type(vim.schedule) == "function" and vim or nil
end

-- co -> on_error (set by run); weak, so a finished coroutine goes away.
local handlers = setmetatable({}, { __mode = "k" })

-- The one way an unhandled error leaves leadpipe's coroutines: never as a raise into an
-- event loop's callback. On Neovim through vim.notify, elsewhere on stderr.
local function report(err)
    local vim = nvim()
    if vim and type(vim.notify) == "function" then
        local level = type(vim.log) == "table" and vim.log.levels and vim.log.levels.ERROR or 4
        local function notify() pcall(vim.notify, tostring(err), level) end
        if type(vim.in_fast_event) == "function" and vim.in_fast_event() then
            vim.schedule(notify)
        else
            notify()
        end
    else
        io.stderr:write(tostring(err), "\n")
    end
end

-- Turns PUC Lua 5.1's refusal to yield into an error object that says what to do.
local function explain(err)
    if PUC51 and type(err) == "string" and err:find("attempt to yield across", 1, true) then
        return errors.new("invalid_argument", "Lua 5.1 cannot yield from inside a generic for "
            .. "iterator, pcall or a metamethod, which the neovim and luv hosts need: call the "
            .. "iterator in a while loop (local it = client:people(...); local row = it()), or "
            .. "use LuaJIT or Lua 5.2+ (" .. err .. ")", { code = "NOT_YIELDABLE" })
    end
    return err
end

-- When leadpipe last resumed a coroutine (host.relax measures the slice from it).
local resumed_at = core.now()

-- Resumes co; an error that ends it goes to its on_error, else to report().
local function step(co, ...)
    resumed_at = core.now()
    local ok, err = resume(co, ...)
    if not ok then
        err = explain(err)
        local on_error = handlers[co]
        if on_error then
            local ok2, err2 = pcall(on_error, err)
            if not ok2 then report(err2) end
        else
            report(err)
        end
    end
end

-- Wakers woken while something else ran; resumed by drain() from the top of the stack
-- (a loop callback or run), so a coroutine never resumes inside the code that woke it.
local ready = {}
local draining = false
local active = 0 -- > 0 while a loop callback of leadpipe or run() is on the stack

local function resume_waiter(w)
    if w.waiting and status(w.co) == "suspended" then step(w.co) end
end

local function drain()
    if draining then return end
    draining = true
    local i = 1
    while ready[i] do
        local w = ready[i]
        ready[i] = false
        i = i + 1
        resume_waiter(w)
    end
    for j = i - 1, 1, -1 do ready[j] = nil end
    draining = false
end

local function check_error(name, fname, level)
    local info = getinfo(level + 1, "Sl")
    local where = info and info.currentline and info.currentline > 0
        and (info.short_src .. ":" .. info.currentline) or "?"
    return errors.new("invalid_argument", (fname or "leadpipe") .. " called at " .. where
        .. " outside a coroutine: the " .. name .. " host waits by yielding; wrap the work in "
        .. "leadpipe.hosts.run(fn)" .. (PUC51 and " (Lua 5.1: and iterate with a while loop, "
        .. "not a generic for)" or ""), { code = "NOT_IN_COROUTINE", argument = "host", where = where })
end

local function luv_host(name, uv, vim)
    local stats = { wakeups = 0, polls = 0, timers = 0, resumes = 0 }
    ---@type leadpipe.Host
    local host = { name = name, now = core.now, stats = stats, slice = 0.01 }

    --- nil when leadpipe may wait here (a yieldable coroutine), else the error naming the
    --- caller `level` frames up.
    ---@param fname? string the leadpipe call
    ---@param level? integer as error()'s level
    ---@return leadpipe.Error|nil err
    function host.check(fname, level)
        local co, main = running()
        if co and not main and (not isyieldable or isyieldable()) then return nil end
        local err = check_error(name, fname, (level or 1) + 1)
        return err -- (not a tail call: it would drop this frame from the count)
    end

    -- A callback of the loop: counted, protected, and followed by the resumes it caused.
    local function guard(counter, fn)
        return function(...)
            stats.wakeups = stats.wakeups + 1
            stats[counter] = stats[counter] + 1
            active = active + 1
            local ok, err = pcall(fn, ...)
            if not ok then report(err) end
            drain()
            active = active - 1
        end
    end

    --- A socket watcher of host.io.poll.
    ---@class leadpipe.Watcher
    ---@field closed? boolean
    local Watcher = {}
    Watcher.__index = Watcher
    --- Watches for `events`: "r", "w", "rw", or "" (nothing for now).
    ---@param events ""|"r"|"w"|"rw"
    ---@return nil
    function Watcher:start(events)
        if self.closed then return end
        if events == "" then
            self.handle:stop()
        else
            self.handle:start(events, self.cb)
        end
    end
    --- Stops and closes the watcher. Idempotent.
    ---@return nil
    function Watcher:close()
        if self.closed then return end
        self.closed = true
        self.handle:stop()
        self.handle:close()
    end

    --- A one-shot timer of host.io.timer.
    ---@class leadpipe.Timer
    ---@field closed? boolean
    local Timer = {}
    Timer.__index = Timer
    --- Fires once after `ms` milliseconds; a started timer restarts.
    ---@param ms number
    ---@return nil
    function Timer:start(ms)
        if self.closed then return end
        -- The loop's clock is cached per turn and may be old here (a start from outside a
        -- callback, or after long work): without this the timer could fire early.
        uv.update_time()
        self.handle:stop()
        self.handle:start(ms > 0 and ms - ms % 1 or 0, 0, self.cb)
    end
    --- Stops the timer (it may be started again).
    ---@return nil
    function Timer:stop()
        if not self.closed then self.handle:stop() end
    end
    --- Stops and closes the timer. Idempotent.
    Timer.close = Watcher.close

    host.io = {
        poll = function(fd, on_ready)
            local handle, err = uv.new_poll(fd)
            if not handle then
                error(errors.new("network", "uv.new_poll(" .. tostring(fd) .. "): " .. tostring(err),
                    { code = "event_loop" }), 0)
            end
            return setmetatable({ handle = handle, cb = guard("polls", function(perr, events)
                on_ready(perr and "e" or events)
            end) }, Watcher)
        end,
        timer = function(on_fire, weak)
            local handle = uv.new_timer()
            -- a weak timer does not keep the loop running by itself
            if weak then uv.unref(handle) end
            return setmetatable({ handle = handle, cb = guard("timers", on_fire) }, Timer)
        end,
    }

    --- A waker for the running coroutine; raises the check's error outside a coroutine.
    ---@param fname? string the leadpipe call, for the error
    ---@return leadpipe.Waker
    function host.waker(fname)
        local co, main = running()
        if not co or main then error(check_error(name, fname or "leadpipe", 2), 2) end
        return { co = co }
    end

    local later
    if vim then
        later = function(w)
            vim.schedule(function()
                stats.resumes = stats.resumes + 1
                resume_waiter(w)
            end)
        end
    else
        later = function(w)
            stats.resumes = stats.resumes + 1
            ready[#ready + 1] = w
            if active == 0 then
                -- woken from code that is not ours (a callback of the application): resume
                -- from a timer of our own, on the next turn of the loop
                local t = uv.new_timer()
                t:start(0, 0, guard("timers", function() t:close() end))
            end
        end
    end

    --- Idempotent; the coroutine resumes later from the loop, never inside the caller.
    ---@param w leadpipe.Waker
    ---@return nil
    function host.wake(w)
        if w.fired then return end
        w.fired = true
        if w.waiting then later(w) end
    end

    --- Yields until host.wake(w); other resumes are ignored.
    ---@param w leadpipe.Waker
    ---@return nil
    function host.await(w)
        while not w.fired do -- a resume that is not ours (the user's scheduler) changes nothing
            w.waiting = true
            yield()
            w.waiting = false
        end
    end

    --- Long runs of work without a wait (prefetched pages that are already there) give the
    --- loop a turn every SLICE seconds, so the editor never stalls for more than about that.
    ---@return nil
    function host.relax()
        if core.now() - resumed_at < host.slice then return end
        local w = host.waker("relax")
        local t
        t = host.io.timer(function()
            t:close()
            host.wake(w)
        end)
        t:start(0)
        host.await(w)
    end

    --- Waits `seconds` on a timer of the loop (the coroutine yields).
    ---@param seconds number
    ---@return nil
    function host.sleep(seconds)
        local w = host.waker("sleep")
        local t
        t = host.io.timer(function()
            t:close()
            host.wake(w)
        end)
        local ms = seconds > 0 and seconds * 1000 or 0
        t:start(ms)
        host.await(w)
    end

    return host
end

local function neovim()
    local vim = nvim()
    local uv = vim and (vim.uv or vim.loop)
    if not uv then return nil, "the neovim host needs vim.loop (run inside Neovim)" end
    return luv_host("neovim", uv, vim)
end

local function luv()
    local ok, uv = pcall(require, "luv")
    if not ok then return nil, "the luv host needs the luv module" end
    return luv_host("luv", uv, nil)
end

local factories = { openresty = openresty, neovim = neovim, luv = luv }

--- Returns the host for a name or checks a custom host table; nil, message when unusable.
---@param host? leadpipe.HostName|leadpipe.Host nil: "blocking"
---@return leadpipe.Host|nil host
---@return string|nil message why it cannot be used
function _M.resolve(host)
    if host == nil or host == "blocking" then return _M.blocking end
    if type(host) == "string" then
        local f = factories[host]
        if not f then
            return nil, "must be one of blocking, openresty, neovim, luv, or a host table"
        end
        return f()
    end
    if type(host) == "table" then
        for _, fn in pairs({ "now", "sleep" }) do
            if type(host[fn]) ~= "function" then
                return nil, "host table lacks the function '" .. fn .. "'"
            end
        end
        if type(host.io) == "table" then
            for _, fn in pairs({ "waker", "await", "wake" }) do
                if type(host[fn]) ~= "function" then
                    return nil, "host table with io lacks the function '" .. fn .. "'"
                end
            end
        elseif (host.wire == nil or host.wire == "curl") and type(host.wait_io) ~= "function" then
            return nil, "host table lacks the function 'wait_io' (or the table 'io')"
        end
        return host
    end
    return nil, "must be a host name or a host table"
end

--- hosts.run(fn, on_error, ...) -> coroutine: runs fn(...) in a new coroutine, at once
--- (on Neovim, from a fast event such as a vim.loop callback: through vim.schedule).
--- An error that ends fn goes to on_error(err); without on_error it is reported, never
--- raised: through vim.notify(tostring(err), ERROR) in Neovim, on stderr elsewhere.
--- (No pcall inside the coroutine: PUC Lua 5.1 cannot yield across one.)
---@param fn function
---@param on_error? fun(err: any)
---@param ... any the arguments of fn
---@return thread co
function _M.run(fn, on_error, ...)
    if type(fn) ~= "function" then args.fail("hosts.run", "fn", "must be a function, got " .. type(fn)) end
    if on_error ~= nil and not args.is_callable(on_error) then
        args.fail("hosts.run", "on_error", "must be a function or nil, got " .. type(on_error))
    end
    local co = coroutine.create(fn)
    handlers[co] = on_error
    local vim = nvim()
    if vim and type(vim.in_fast_event) == "function" and vim.in_fast_event() then
        local packed = { n = select("#", ...), ... }
        vim.schedule(function() step(co, unpack(packed, 1, packed.n)) end)
    else
        active = active + 1
        step(co, ...)
        drain()
        active = active - 1
    end
    return co
end

return _M

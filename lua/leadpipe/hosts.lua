-- leadpipe.hosts: how the library waits.
--
-- A host is a table with three functions; every wait in leadpipe goes through one:
--   host.now()                   monotonic seconds (float)
--   host.sleep(seconds)          wait that long without doing anything else
--   host.wait_io(session, secs)  wait until the session's transfers may progress, at most secs
-- "blocking" (the default) blocks the process in curl_multi_poll / nanosleep.
-- "openresty" moves bytes over cosockets (its `transport` field names that wire) and sleeps
-- with ngx.sleep, so an nginx worker keeps serving while leadpipe waits.
-- "neovim" (and "luv" for plain luv) yields the running coroutine and resumes it from a
-- vim.loop/luv timer, so the editor never freezes; leadpipe calls must then run inside a
-- coroutine (see hosts.run).
-- Any table with now/sleep/wait_io may be passed as a custom host.

local core = require "leadpipe.core"

local type, error, pairs = type, error, pairs
local min = math.min
local coroutine = coroutine

local _M = { _VERSION = "0.1.0" }

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

-- Bytes move over cosockets (transport/cosocket.lua): a request waits on its own socket in
-- a light thread, so nothing here polls. sleep (backoff, wait_run) is ngx.sleep, which
-- yields the request's coroutine to nginx's event loop. wait_io is never called by the
-- cosocket wire; it is here for the host table's shape.
local function openresty()
    local ngx = ngx -- luacheck: ignore (read global only here)
    if type(ngx) ~= "table" or type(ngx.sleep) ~= "function" or type(ngx.socket) ~= "table" then
        return nil, "the openresty host needs ngx.sleep and ngx.socket (run inside OpenResty)"
    end
    local sleep = ngx.sleep
    return {
        name = "openresty",
        transport = "cosocket",
        now = core.now,
        sleep = function(seconds)
            if seconds > 0 then sleep(seconds) end
        end,
        wait_io = function(_, seconds)
            if seconds > 0 then sleep(min(seconds, 0.01)) end
        end,
    }
end

-- ===== neovim / luv =====

local function luv_host(name, uv)
    local function sleep(seconds)
        local co, main = coroutine.running()
        if not co or main then
            error("leadpipe: the " .. name .. " host must be used inside a coroutine "
                .. "(wrap the work in leadpipe.hosts.run(fn))", 3)
        end
        local timer = uv.new_timer()
        local ms = seconds > 0 and seconds * 1000 or 0
        timer:start(ms - ms % 1, 0, function()
            timer:stop()
            timer:close()
            local ok, err = coroutine.resume(co)
            if not ok then error(err, 0) end
        end)
        coroutine.yield()
    end
    return {
        name = name,
        now = core.now,
        sleep = sleep,
        wait_io = function(session, seconds)
            local t = session:timeout() or 0.01
            sleep(min(seconds, 0.01, t > 0.001 and t or 0.001))
        end,
    }
end

local function neovim()
    local vim = vim -- luacheck: ignore (read global only here)
    local uv = type(vim) == "table" and (vim.uv or vim.loop)
    if not uv then return nil, "the neovim host needs vim.loop (run inside Neovim)" end
    return luv_host("neovim", uv)
end

local function luv()
    local ok, uv = pcall(require, "luv")
    if not ok then return nil, "the luv host needs the luv module" end
    return luv_host("luv", uv)
end

local factories = { openresty = openresty, neovim = neovim, luv = luv }

--- Returns the host for a name or checks a custom host table; nil, message when unusable.
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
        for _, fn in pairs({ "now", "sleep", "wait_io" }) do
            if type(host[fn]) ~= "function" then
                return nil, "host table lacks the function '" .. fn .. "'"
            end
        end
        return host
    end
    return nil, "must be a host name or a host table"
end

--- Runs fn(...) in a new coroutine (for the neovim and luv hosts); returns the coroutine.
-- An error inside fn is re-raised from the resume that met it, or passed to on_error.
function _M.run(fn, on_error, ...)
    local co = coroutine.create(function(...)
        local ok, err = pcall(fn, ...)
        if not ok then
            if on_error then on_error(err) else error(err, 0) end
        end
    end)
    local ok, err = coroutine.resume(co, ...)
    if not ok then error(err, 0) end
    return co
end

return _M

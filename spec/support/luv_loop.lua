-- spec/support/luv_loop.lua: lua-luv for the specs of the "luv" host: whether it is
-- installed, and its default loop run for a bounded time.
local ok_uv, uv = pcall(require, "luv")

local _M = {}

--- uv: the luv module, or nil when lua-luv is not installed for this Lua.
_M.uv = ok_uv and uv or nil

--- pending_without_luv(name) -> whether luv is missing; when it is, registers a pending
--- describe block `name` that says so (the spec file then returns).
function _M.pending_without_luv(name)
    if ok_uv then return false end
    require("busted").describe(name, function()
        require("busted").pending("lua-luv is not installed for " .. _VERSION .. " (apt-get install lua-luv)")
    end)
    return true
end

--- run_loop(seconds) -> true when the default loop ended on its own, false when it was
--- stopped after `seconds`.
function _M.run_loop(seconds)
    local guard, timed_out = uv.new_timer(), false
    guard:start(math.floor(seconds * 1000), 0, function()
        timed_out = true
        uv.stop()
    end)
    uv.unref(guard)
    uv.run("default")
    if not guard:is_closing() then guard:close() end
    uv.run("nowait") -- let the close go through
    return not timed_out
end

return _M

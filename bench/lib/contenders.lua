-- bench/lib/contenders.lua: the contenders of bench/harness.lua, and whether each can run
-- on this machine. The scripts are in bench/contenders/ (see bench/README.md).
local shell = require "bench.lib.shell"

local format, quote, have = string.format, shell.quote, shell.have

local _M = {}

--- The ids in table order.
_M.ALL = { "lp", "jit", "jq", "py", "luacurl", "floor" }

local LP_PATH = "./lua/?.lua;./lua/?/init.lua;;"

local function lua_has_cjson(lua)
    return have(lua) and shell.sh(lua .. " -e 'require \"cjson\"' >/dev/null 2>&1 && echo yes") == "yes"
end

--- list{ lua =, build =, jit_build =, dir =, reps =, slow_reps = } -> array (also keyed by id)
-- of { id, name, cmd, reps, why }: `cmd` takes the job's arguments (URL KEY AUDIENCE
-- IDEMPOTENCY_KEY MODE); `why` says why the contender cannot run here (nil when it can).
function _M.list(o)
    local dir = quote(o.dir)
    local list = {}
    local function add(c)
        c.reps = c.reps or o.reps
        list[#list + 1] = c
        list[c.id] = c
    end
    add{ id = "lp", name = "leadpipe " .. o.lua, leadpipe = true,
         cmd = format("env LUA_PATH=%s LUA_CPATH=%s %s %s/leadpipe.lua", quote(LP_PATH),
             quote("./" .. o.build .. "/?.so;;"), o.lua, dir) }
    local jit_why
    if o.lua == "luajit" then
        jit_why = "the harness Lua is already LuaJIT"
    elseif not have("luajit") then
        jit_why = "luajit not installed"
    elseif not shell.file_exists(o.jit_build .. "/leadpipe/core.so") then
        jit_why = o.jit_build .. "/leadpipe/core.so not built (make build LUA_VERSION=jit)"
    end
    add{ id = "jit", name = "leadpipe luajit", leadpipe = true, why = jit_why,
         cmd = format("env LUA_PATH=%s LUA_CPATH=%s luajit %s/leadpipe.lua", quote(LP_PATH),
             quote("./" .. o.jit_build .. "/?.so;;"), dir) }
    add{ id = "jq", name = "curl + jq (bash)", reps = o.slow_reps,
         why = not (have("bash") and have("curl") and have("jq")) and "needs bash, curl and jq" or nil,
         cmd = "bash " .. dir .. "/curl_jq.sh" }
    add{ id = "py", name = "python3 stdlib", why = not have("python3") and "python3 not installed" or nil,
         cmd = "python3 " .. dir .. "/python_stdlib.py" }
    local cjson_why = not have("curl") and "curl not installed"
        or not lua_has_cjson("lua5.4") and "lua5.4 with lua-cjson not installed" or nil
    add{ id = "luacurl", name = "lua5.4 + cjson + curl", why = cjson_why,
         cmd = "lua5.4 " .. dir .. "/lua_cjson_curl.lua" }
    add{ id = "floor", name = "floor: curl --parallel + cjson, no filter", floor = true, why = cjson_why,
         cmd = "lua5.4 " .. dir .. "/floor_parallel.lua" }
    return list
end

return _M

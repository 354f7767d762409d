-- leadpipe.shape: the documented shapes of the objects the API answers with (other than
-- results pages, whose rules are leadpipe.page's), checked before a call hands one out.
--
-- A 200 whose `data` lacks what the docs promise is a contradiction, never a value: the
-- call fails with kind "decode" (code "BAD_RESPONSE") naming what is missing, so that no
-- caller (nor the command line) ever prints `nil` for a run id or takes a results page for
-- a cancelled run. Only what the API reference documents as always there is required;
-- every other field may be absent (nullable).
--
--   shape.check(what, data) -> nil | reason     what: the call's name (create_run, ...)
--
--   run (create_run, cancel_run, latest_run, each of list_runs)
--                    id a non-empty string; status one of queued, running, completed,
--                    failed, cancelled
--   stats            stats an object whose total (when there) is a count; run (when
--                    there) a run
--   audience (audience, each of audiences)   id a non-empty string
--   stored export (create_export, export)    export an object with a string id

local type, getmetatable, ipairs = type, getmetatable, ipairs
local floor = math.floor
local format = string.format

local array_mt = require("leadpipe.core").array_mt

local _M = { _VERSION = require "leadpipe.version" }

local STATUS = { queued = true, running = true, completed = true, failed = true, cancelled = true }

local function is_object(v)
    return type(v) == "table" and getmetatable(v) ~= array_mt
end

local function is_count(v)
    return type(v) == "number" and v >= 0 and v <= 2 ^ 53 and v == floor(v)
end

local function shown(v)
    if type(v) == "string" then return format("%q", v:sub(1, 40)) end
    return type(v)
end

-- nil, or why `run` is not a run.
local function run_reason(run)
    if not is_object(run) then return "is not an object" end
    if type(run.id) ~= "string" or run.id == "" then return "has no string id" end
    if not STATUS[run.status] then
        return "has no known status (got " .. shown(run.status) .. ")"
    end
end

local function id_reason(obj)
    if not is_object(obj) then return "is not an object" end
    if type(obj.id) ~= "string" or obj.id == "" then return "has no string id" end
end

local function each(list, reason_of, name)
    for i, item in ipairs(list) do
        local why = reason_of(item)
        if why then return format("%s %d %s", name, i, why) end
    end
end

local CHECKS = {
    create_run = function(d) local w = run_reason(d) return w and "the run " .. w end,
    cancel_run = function(d) local w = run_reason(d) return w and "the run " .. w end,
    latest_run = function(d) local w = run_reason(d) return w and "the run " .. w end,
    list_runs = function(d) return each(d, run_reason, "run") end,
    audiences = function(d) return each(d, id_reason, "audience") end,
    audience = function(d) local w = id_reason(d) return w and "the audience " .. w end,
    stats = function(d)
        local stats = d.stats
        if not is_object(stats) then return "stats is not an object" end
        if stats.total ~= nil and not is_count(stats.total) then
            return "stats.total is not a non-negative integer"
        end
        if d.run ~= nil then
            local w = run_reason(d.run)
            if w then return "the run " .. w end
        end
    end,
    create_export = function(d)
        local w = id_reason(d.export)
        return w and "the export " .. w
    end,
}
CHECKS.export = CHECKS.create_export

--- shape.check(what, data) -> nil | reason (see above); calls without a rule pass.
function _M.check(what, data)
    local check = CHECKS[what]
    if not check then return nil end
    return check(data)
end

_M.STATUS = STATUS
_M.run_reason = run_reason

return _M

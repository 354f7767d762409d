-- leadpipe.audiences: the read-only audience calls, so that a script can find an audience
-- by name and the newest run of it. Adds client:audiences, client:audience and
-- client:latest_run to the Client (installed by client.lua).
--
-- Same conventions as client.lua: value or nil, err; bad arguments are an
-- invalid_argument error before any request; unknown options are an error.

local args = require "leadpipe.args"
local errors = require "leadpipe.errors"

local type, tostring, ipairs = type, tostring, ipairs

--- An audience (GET /v1/intent/audiences). Fields the API adds are kept.
---@class leadpipe.Audience
---@field id string UUID
---@field name string
---@field status "draft"|"active"|"paused"
---@field organizationId? string
---@field accessType? string
---@field dailyRefreshEnabled? boolean
---@field audienceSize? integer
---@field lastRefreshedAt? string date-time of the newest completed run
---@field createdAt? string
---@field updatedAt? string
---@field config? table
---@field [string] any

---@class leadpipe.AudiencesOpts
---@field status? "draft"|"active"|"paused"
---@field limit? integer 1..100

---@class leadpipe.LatestRunOpts
---@field status? leadpipe.RunStatus only runs with that status

---@class leadpipe.audiences
local _M = { _VERSION = require "leadpipe.version" }

local check_opts, set, first = args.check_opts, args.set, args.first
local check_id, check_int, check_enum = args.check_id, args.check_int, args.check_enum

local AUDIENCE_STATUSES = { "draft", "active", "paused" }
local RUN_STATUSES = { "queued", "running", "completed", "failed", "cancelled" }

--- Adds client:audiences, client:audience and client:latest_run to the Client class
--- (called once by client.lua).
---@param client_class table the Client class of client.lua
---@param h table what client.lua shares (client.internal)
---@return nil
function _M.install(client_class, h)
    ---@class leadpipe.Client
    local Client = client_class
    local audience_path, data_of = h.audience_path, h.data_of

    --- client:audiences{ status = "draft"|"active"|"paused", limit = 1..100 }
    --- -> array of Audience objects (id, name, status, audienceSize, ...) | nil, err
    ---@param opts? leadpipe.AudiencesOpts
    ---@return leadpipe.Audience[]|nil audiences
    ---@return leadpipe.Error|nil err
    function Client:audiences(opts)
        local fname = "audiences"
        if self.closed then return nil, h.closed(fname) end
        local herr = h.host_check(self, fname)
        if herr then return nil, herr end
        local o, err = check_opts(fname, opts, set{ "status", "limit" })
        if not o then return nil, err end
        err = first(check_enum(fname, "status", o.status, AUDIENCE_STATUSES),
            check_int(fname, "limit", o.limit, 1, 100))
        if err then return nil, err end
        local query
        if o.status or o.limit then query = { status = o.status, limit = o.limit } end
        return data_of(fname, self.transport:request{ path = "/v1/intent/audiences", query = query })
    end

    --- client:audience(id) -> Audience | nil, err (kind "not_found" for an unknown id)
    ---@param aud string audience id (UUID)
    ---@param opts? table no option is defined; any key is an invalid_argument error
    ---@return leadpipe.Audience|nil audience
    ---@return leadpipe.Error|nil err
    function Client:audience(aud, opts)
        local fname = "audience"
        if self.closed then return nil, h.closed(fname) end
        local herr = h.host_check(self, fname)
        if herr then return nil, herr end
        local o, err = check_opts(fname, opts, {})
        if not o then return nil, err end
        err = check_id(fname, "audience_id", aud)
        if err then return nil, err end
        return data_of(fname, self.transport:request{ path = audience_path(aud) })
    end

    --- client:latest_run(audience_id, { status = "completed" }) -> run | nil, err
    --- The newest of the audience's last 100 runs (with that status, when given). None:
    --- nil and an error of kind "not_found", code "NO_RUN".
    ---@param aud string audience id (UUID)
    ---@param opts? leadpipe.LatestRunOpts
    ---@return leadpipe.Run|nil run
    ---@return leadpipe.Error|nil err
    function Client:latest_run(aud, opts)
        local fname = "latest_run"
        if self.closed then return nil, h.closed(fname) end
        local herr = h.host_check(self, fname)
        if herr then return nil, herr end
        local o, err = check_opts(fname, opts, set{ "status" })
        if not o then return nil, err end
        err = check_id(fname, "audience_id", aud) or check_enum(fname, "status", o.status, RUN_STATUSES)
        if err then return nil, err end
        local cache = self.cache -- (keeps the answer latest_run_ttl seconds, when set)
        local kept = cache and cache:latest_run(aud, o.status)
        if kept then return kept end
        local runs
        runs, err = self:list_runs(aud, { limit = 100 })
        if not runs then return nil, err end
        for _, run in ipairs(runs) do
            if type(run) == "table" and (o.status == nil or run.status == o.status) then
                if cache then cache:put_latest_run(aud, o.status, run) end
                return run
            end
        end
        return nil, errors.new("not_found", "audience " .. aud .. " has no "
            .. (o.status and (tostring(o.status) .. " ") or "") .. "run", { code = "NO_RUN" })
    end
end

return _M

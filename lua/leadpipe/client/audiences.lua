-- leadpipe.client.audiences: the read-only audience calls, so that a script can find an
-- audience by name and the newest run of it: client:audiences, client:audience and
-- client:latest_run (conventions: client/base.lua).

local args = require "leadpipe.args"
local errors = require "leadpipe.errors"
local base = require "leadpipe.client.base"

local type, tostring, ipairs = type, tostring, ipairs

local _M = { _VERSION = require "leadpipe.version" }

local set, first = args.set, args.first
local check_id, check_int, check_enum = args.check_id, args.check_int, args.check_enum
local enter, data_of, audience_path = base.enter, base.data_of, base.audience_path

local AUDIENCE_STATUSES = { "draft", "active", "paused" }
local RUN_STATUSES = { "queued", "running", "completed", "failed", "cancelled" }

---@class leadpipe.Client
local Client = base.Client

local AUDIENCES_OPTS = set{ "status", "limit" }
local LATEST_OPTS = set{ "status" }

--- client:audiences{ status = "draft"|"active"|"paused", limit = 1..100 }
--- -> array of Audience objects (id, name, status, audienceSize, ...) | nil, err
---@param opts? leadpipe.AudiencesOpts
---@return leadpipe.Audience[]|nil audiences
---@return leadpipe.Error|nil err
function Client:audiences(opts)
    local fname = "audiences"
    local o, err = enter(self, fname, opts, AUDIENCES_OPTS)
    if not o then return nil, err end
    err = first(check_enum(fname, "status", o.status, AUDIENCE_STATUSES),
        check_int(fname, "limit", o.limit, 1, 100))
    if err then return nil, err end
    local query
    if o.status or o.limit then query = { status = o.status, limit = o.limit } end
    return data_of(fname, self.requester:request{ path = "/v1/intent/audiences", query = query })
end

--- client:audience(id) -> Audience | nil, err (kind "not_found" for an unknown id)
---@param aud string audience id (UUID)
---@param opts? table no option is defined; any key is an invalid_argument error
---@return leadpipe.Audience|nil audience
---@return leadpipe.Error|nil err
function Client:audience(aud, opts)
    local fname = "audience"
    local o, err = enter(self, fname, opts)
    if not o then return nil, err end
    err = check_id(fname, "audience_id", aud)
    if err then return nil, err end
    return data_of(fname, self.requester:request{ path = audience_path(aud) })
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
    local o, err = enter(self, fname, opts, LATEST_OPTS)
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

return _M

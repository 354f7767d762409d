-- leadpipe.client.runs: the run calls: client:create_run, client:list_runs and
-- client:cancel_run (waiting for a run: client/waiting.lua; its rows: client/results.lua).

local core = require "leadpipe.core"
local args = require "leadpipe.args"
local base = require "leadpipe.client.base"

local _M = { _VERSION = require "leadpipe.version" }

local check_id, check_int, set = args.check_id, args.check_int, args.set
local enter, data_of, audience_path, run_path, check_run_ids =
    base.enter, base.data_of, base.audience_path, base.run_path, base.check_run_ids

---@class leadpipe.Client
local Client = base.Client

local CREATE_OPTS = set{ "idempotency_key" }

--- client:create_run(audience_id, { idempotency_key = }) -> run | nil, err
--- The key (generated when not given) is sent on every retry, so a retry never makes a
--- second run; the run echoes it in run.idempotencyKey.
---@param aud string audience id (UUID)
---@param opts? leadpipe.CreateRunOpts
---@return leadpipe.Run|nil run the new run (queued)
---@return leadpipe.Error|nil err
function Client:create_run(aud, opts)
    local fname = "create_run"
    local o, err = enter(self, fname, opts, CREATE_OPTS)
    if not o then return nil, err end
    err = check_id(fname, "audience_id", aud)
    if err then return nil, err end
    local key = o.idempotency_key
    if key ~= nil then
        err = args.check_idempotency_key(fname, "idempotency_key", key)
        if err then return nil, err end
    else
        key = core.uuid()
    end
    return data_of(fname, self.requester:request{
        method = "POST",
        path = audience_path(aud) .. "/runs",
        body = '{"runType":"manual"}',
        idempotency_key = key,
    })
end

local LIST_OPTS = set{ "limit" }

--- client:list_runs(audience_id, { limit = 25 }) -> array of runs, newest first | nil, err
---@param aud string audience id (UUID)
---@param opts? leadpipe.ListRunsOpts
---@return leadpipe.Run[]|nil runs newest first
---@return leadpipe.Error|nil err
function Client:list_runs(aud, opts)
    local fname = "list_runs"
    local o, err = enter(self, fname, opts, LIST_OPTS)
    if not o then return nil, err end
    err = check_id(fname, "audience_id", aud) or check_int(fname, "limit", o.limit, 1, 100)
    if err then return nil, err end
    return data_of(fname, self.requester:request{
        path = audience_path(aud) .. "/runs",
        query = o.limit and { limit = o.limit } or nil,
    })
end

--- client:cancel_run(audience_id, run_id) -> run | nil, err  (only a queued run can be cancelled)
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@return leadpipe.Run|nil run
---@return leadpipe.Error|nil err
function Client:cancel_run(aud, run_id)
    local fname = "cancel_run"
    local _, err = enter(self, fname)
    if err then return nil, err end
    err = check_run_ids(fname, aud, run_id)
    if err then return nil, err end
    return data_of(fname, self.requester:request{ method = "DELETE", path = run_path(aud, run_id) })
end

return _M

-- leadpipe.client.exports: what a completed run offers besides its pages: stats, the CSV
-- export streamed to a file or a function, and stored exports (signed download URLs):
-- client:stats, client:export_csv, client:create_export and client:export (conventions:
-- client/base.lua).
--
-- export_csv never holds the CSV in memory: the body goes from libcurl to the sink piece
-- by piece (the request's `sink`, see http.lua and wire/curl.lua), across the API's
-- redirect to the storage host (which never receives the API key). A file is written
-- under a temporary name in the same directory and renamed at the end, so a failed
-- export leaves no file behind.

local core = require "leadpipe.core"
local args = require "leadpipe.args"
local errors = require "leadpipe.errors"
local base = require "leadpipe.client.base"
local waiting = require "leadpipe.client.waiting"
local deadline_mod = require "leadpipe.deadline"

local type, tostring, tonumber, pcall = type, tostring, tonumber, pcall
local io_open, os_remove, os_rename = io.open, os.remove, os.rename

local _M = { _VERSION = require "leadpipe.version" }

local invalid, first = args.invalid, args.first
local check_function, check_boolean, check_path = args.check_function, args.check_boolean,
    args.check_path
local enter, data_of, run_path, check_run_ids = base.enter, base.data_of, base.run_path,
    base.check_run_ids
local poll, check_wait_opts, with_wait_opts = waiting.poll_until_complete, waiting.check_wait_opts,
    waiting.with_wait_opts

-- Seconds a streamed export may take as a whole (the client's timeout is for API calls).
local EXPORT_TRANSFER_TIMEOUT = 3600

local function io_error(fname, path, why)
    return errors.new("io", fname .. ": cannot write " .. tostring(path) .. ": " .. tostring(why),
        { code = "IO" })
end

local function not_ready(run_id, state, what)
    return errors.new("not_ready", "run " .. run_id .. " is " .. tostring(state)
        .. " (pass wait = true to wait for " .. what .. ")", { status = 202, retryable = true })
end

-- The state of a 202 body ({ data = { state =, run = } }).
local function pending_state(body)
    local data = type(body) == "table" and type(body.data) == "table" and body.data or {}
    local run = type(data.run) == "table" and data.run or {}
    return data.state or run.status or "running", run
end

---@class leadpipe.Client
local Client = base.Client

-- Fetches with fetch(deadline, at) -> { state =, ... } | nil, err until it is completed
-- (wait) or once (not_ready while pending), within o.deadline seconds when given.
-- deadline: the wait's (its timeout, or at); at: the call's own (o.deadline), or nil.
local function fetch_completed(self, fname, run_id, o, fetch, what)
    local at = deadline_mod.at(self.host, o.deadline)
    local r, err
    if o.wait then
        r, err = poll(self, function(deadline) return fetch(deadline, at) end, run_id, o, at)
    else
        r, err = fetch(at, at)
        if r and r.state ~= "completed" then r, err = nil, not_ready(run_id, r.state, what) end
    end
    if not r and deadline_mod.passed(err, at, self.host.now()) then
        err = deadline_mod.error(fname, o.deadline, nil, nil, err)
    end
    return r, err
end

local function check_common(fname, aud, run_id, o)
    return first(check_run_ids(fname, aud, run_id), check_wait_opts(fname, o),
        check_boolean(fname, "wait", o.wait))
end

local STATS_OPTS = with_wait_opts{ "wait" }

--- client:stats(audience_id, run_id, { wait = false, timeout =, interval =,
---  max_interval =, on_poll = }) -> stats data | nil, err
--- A pending run is an error of kind "not_ready", or with wait = true is waited for
--- (like wait_run; kind "timeout" after `timeout` seconds).
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? leadpipe.StatsOpts
---@return leadpipe.Stats|nil stats
---@return leadpipe.Error|nil err
function Client:stats(aud, run_id, opts)
    local fname = "stats"
    local o, err = enter(self, fname, opts, STATS_OPTS)
    if not o then return nil, err end
    err = check_common(fname, aud, run_id, o)
    if err then return nil, err end
    local r
    r, err = fetch_completed(self, fname, run_id, o, function(deadline)
        local status, headers, body = self.requester:request{ path = run_path(aud, run_id) .. "/stats",
                                                              deadline = deadline }
        if status == 202 then
            local state, run = pending_state(body)
            return { state = state, run = run }
        end
        local data, derr = data_of(fname, status, headers, body)
        if not data then return nil, derr end
        return { state = "completed", data = data }
    end, "it")
    if not r then return nil, err end
    return r.data
end

local EXPORT_OPTS = with_wait_opts{ "path", "sink", "wait" }

-- The destination of an export: a sink function, plus finish(ok) -> true | nil, err.
local function destination(fname, o)
    if o.sink then
        local sink = o.sink
        return { write = sink, finish = function() return true end }
    end
    local path = o.path
    local tmp = path .. ".part-" .. core.uuid():sub(1, 8)
    local f, ferr = io_open(tmp, "wb")
    if not f then
        return nil, io_error(fname, path, ferr)
    end
    local d = {}
    --- Writes one piece to the temporary file; nil (and d.err) when it cannot.
    ---@param chunk string
    ---@return boolean|nil ok
    function d.write(chunk)
        local ok, werr = f:write(chunk)
        if not ok then d.err = werr end
        return ok
    end
    --- Closes the file and renames it into place when ok, else removes it.
    ---@param ok boolean whether the export succeeded
    ---@return true|nil ok
    ---@return leadpipe.Error|nil err
    function d.finish(ok)
        local cok, cerr = f:close()
        if ok and cok then
            local rok, rerr = os_rename(tmp, path)
            if rok then return true end
            cerr = rerr
        end
        os_remove(tmp)
        if not ok then return nil end
        return nil, io_error(fname, path, cerr)
    end
    return d
end

--- client:export_csv(audience_id, run_id, { path = FILE | sink = function(chunk) ... end,
---  wait = true, timeout =, interval =, max_interval =, on_poll = })
--- -> { path =, bytes =, row_cap =, request_id = } | nil, err
--- Streams the run's CSV (export.csv, capped by the API at row_cap rows) to the file or
--- the function without holding it in memory. sink(chunk) returns true to go on;
--- false, or a raised error, stops the export (kind "aborted" / the error raised).
--- A pending run is waited for, or with wait = false is an error of kind "not_ready".
--- On any failure no file is left at `path` (nor a temporary one).
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts leadpipe.ExportCsvOpts needs path or sink
---@return leadpipe.CsvExport|nil export
---@return leadpipe.Error|nil err
function Client:export_csv(aud, run_id, opts)
    local fname = "export_csv"
    local o, err = enter(self, fname, opts, EXPORT_OPTS)
    if not o then return nil, err end
    err = first(check_common(fname, aud, run_id, o), check_path(fname, "path", o.path),
        check_function(fname, "sink", o.sink))
    if err then return nil, err end
    if o.path ~= nil and o.sink ~= nil then
        return nil, invalid(fname, "opts", "has both path and sink; give one: path = FILE to write "
            .. "the CSV to a file, or sink = function(chunk) to receive it")
    elseif o.path == nil and o.sink == nil then
        return nil, invalid(fname, "opts", "needs path = FILE (to write the CSV to a file) or "
            .. "sink = function(chunk) (to receive it)")
    end
    if o.wait == nil then o.wait = true end
    local dest
    dest, err = destination(fname, o)
    if not dest then return nil, err end
    local bytes, sink_err = 0, nil
    local function sink(chunk)
        local ok, res = pcall(dest.write, chunk)
        if ok and res then
            bytes = bytes + #chunk
            return true
        end
        sink_err = not ok and res or dest.err and io_error(fname, o.path, dest.err)
            or errors.new("aborted", fname .. ": the sink stopped the export", { code = "ABORTED" })
        return false
    end
    local r
    -- (a long export is not cut by the wait's timeout: only by its own deadline)
    r, err = fetch_completed(self, fname, run_id, o, function(_, at)
        local status, headers, body = self.requester:request{
            path = run_path(aud, run_id) .. "/export.csv", sink = sink,
            timeout = EXPORT_TRANSFER_TIMEOUT, deadline = at,
        }
        if not status then return nil, sink_err or headers end
        if status == 202 then return { state = pending_state(body) } end
        if status ~= 200 then
            return nil, errors.new("http", fname .. ": unexpected HTTP " .. status, { status = status })
        end
        return { state = "completed", headers = headers }
    end, "it")
    local ok, ferr = dest.finish(r ~= nil)
    if not r then return nil, err end
    if not ok then return nil, ferr end
    local headers = r.headers
    return {
        path = o.path,
        bytes = bytes,
        row_cap = tonumber(headers["x-export-row-cap"]),
        request_id = headers["x-clickhouse-query-id"] or headers["x-request-id"],
    }
end

-- A stored export response: data plus `created` (true for a 201).
local function stored(fname, run_id, status, headers, body)
    if status == 202 then return nil, not_ready(run_id, pending_state(body), "it first") end
    local data, err = data_of(fname, status, headers, body)
    if not data then return nil, err end
    data.created = status == 201
    return data
end

--- client:create_export(audience_id, run_id) -> { export =, downloadUrl =,
---  downloadUrlExpiresAt =, downloadUrlTtlSeconds =, created = } | nil, err
--- Create-or-reuse: the API answers 201 (created = true) for a new stored export and
--- 200 (created = false) with the one already stored, each time with a fresh signed URL.
--- A pending run: kind "not_ready".
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? table no option is defined; any key is an invalid_argument error
---@return leadpipe.StoredExport|nil export
---@return leadpipe.Error|nil err
function Client:create_export(aud, run_id, opts)
    local fname = "create_export"
    local _, err = enter(self, fname, opts)
    if err then return nil, err end
    err = check_run_ids(fname, aud, run_id)
    if err then return nil, err end
    return stored(fname, run_id, self.requester:request{
        method = "POST", path = run_path(aud, run_id) .. "/exports",
    })
end

--- client:export(audience_id, run_id, export_id) -> same shape as create_export | nil, err
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param export_id string export id (UUID)
---@param opts? table no option is defined; any key is an invalid_argument error
---@return leadpipe.StoredExport|nil export
---@return leadpipe.Error|nil err
function Client:export(aud, run_id, export_id, opts)
    local fname = "export"
    local _, err = enter(self, fname, opts)
    if err then return nil, err end
    err = check_run_ids(fname, aud, run_id) or args.check_id(fname, "export_id", export_id)
    if err then return nil, err end
    return stored(fname, run_id, self.requester:request{
        path = run_path(aud, run_id) .. "/exports/" .. export_id,
    })
end

return _M

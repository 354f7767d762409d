--- leadpipe.mock: a fake Leadpipe Intent Audiences API, for tests, examples, benchmarks
-- and for trying your own scripts offline.
--
--   local mock = require "leadpipe.mock"
--   local srv = assert(mock.start{ queued_ms = 200, running_ms = 200 })
--   -- point a client at srv.url with srv.api_key; read srv.audience
--   srv:stop()
--
-- It is a real HTTP server (libmicrohttpd, in leadpipe.mockserver) on 127.0.0.1, run by its
-- own threads inside this process: runs go queued -> running -> completed (or failed),
-- people rows are generated deterministically from the seed (successive runs of an
-- audience are successive days: they share most people, with some added, some dropped and
-- some scores and titles moved), and faults (429 with
-- Retry-After, 5xx, dropped connections, truncated bodies, latency) can be injected. A
-- request that failed by injection is never failed again when it is retried, so a correct
-- client gets every row exactly once. The contract is in docs/internals.md.
local mockserver = require "leadpipe.mockserver"

--- An audience of the mock server.
---@class leadpipe.mock.Audience
---@field id string UUID
---@field rows? integer people rows of its runs (default 1000)
---@field name? string
---@field status? "draft"|"active"|"paused" default "active"
---@field fail? true|{ code?: string, message?: string } every run fails (true: code RUN_FAILED)
---@field daily_runs? integer runs of runType "daily" made at start, a day apart (0..1000, default 0)

--- Fault injection of the mock server (see docs/internals.md).
---@class leadpipe.mock.Faults
---@field rate? number probability of a fault per request
---@field every? integer fault every Nth request (kinds in turn)
---@field seed? integer default the server's seed
---@field kinds? string[] of mock.FAULT_KINDS ("429", "429_date", "500", "502", "503", "drop", "truncate")
---@field retry_after? integer seconds, for the 429s (default 1)
---@field count? integer at most this many faults, then none (default: no limit)
---@field short? number fraction (0..1) of completed results pages answered with fewer rows
---than asked, never none (a legal answer: "a page may be shorter than limit"); the same
---page is as short each time it is asked for. Independent of rate/every and the kinds.

--- Options of mock.start and mock.serve (see docs/internals.md).
---@class leadpipe.mock.Options
---@field port? integer 0: a free port (serve: default 8080); always bound to 127.0.0.1
---@field api_key? string the key it accepts (default mock.DEFAULT_KEY)
---@field seed? integer rows and faults are deterministic from it (default 1)
---@field audiences? leadpipe.mock.Audience[] default mock.AUDIENCES
---@field queued_ms? integer a new run is queued that long
---@field running_ms? integer then running that long
---@field latency_ms? integer added to every response
---@field gzip? boolean gzip bodies when the client accepts it (default true)
---@field faults? leadpipe.mock.Faults|false
---@field threads? integer 0..64 handler threads (4); 0: one per connection, latency never blocks another
---@field export_cap? integer rows per export.csv (default 300000)
---@field duration? number serve only: return after that many seconds
---@field output? file* serve only: where to print (default io.stdout)

--- What configure() may change while the server runs.
---@class leadpipe.mock.Config
---@field faults? leadpipe.mock.Faults|false false turns injection off
---@field latency_ms? integer
---@field queued_ms? integer
---@field running_ms? integer
---@field gzip? boolean

---@class leadpipe.mock
---@field DEFAULT_KEY string the key a server accepts unless api_key says otherwise
---@field FAULT_KINDS string[] the fault kinds that can be injected
local _M = {
    _VERSION = "leadpipe.mock " .. require "leadpipe.version",
    DEFAULT_KEY = mockserver.DEFAULT_KEY,
    FAULT_KINDS = mockserver.FAULT_KINDS,
}

--- Ids of the default audiences, by what they are good for.
_M.AUDIENCE = {
    small = "6f1c2a4e-8b3d-4c5f-9a7e-1d2b3c4d5e6f",    -- 1,000 rows
    medium = "7a2d3b5f-9c4e-4d6a-8b8f-2e3c4d5e6f70",   -- 20,000 rows
    empty = "8b3e4c6a-ad5f-4e7b-9c9a-3f4d5e6f7081",    -- 0 rows
    failing = "9c4f5d7b-be6a-4f8c-8dab-4a5e6f708192",  -- every run fails
    large = "ad5a6e8c-cf7b-4a9d-9ebc-5b6f708192a3",    -- 1,000,000 rows
    daily = "be6b7f9d-d08c-4bae-8fcd-6c708192a3b4",    -- 2,000 rows, 3 completed daily runs
}

--- The default audiences (`srv.audience` is the first).
_M.AUDIENCES = {
    { id = _M.AUDIENCE.small, rows = 1000, name = "small" },
    { id = _M.AUDIENCE.medium, rows = 20000, name = "medium" },
    { id = _M.AUDIENCE.empty, rows = 0, name = "empty" },
    { id = _M.AUDIENCE.failing, rows = 50, name = "failing",
      fail = { code = "HYDRATION_FAILED", message = "people hydration failed; queue a new run" } },
    { id = _M.AUDIENCE.large, rows = 1000000, name = "large", status = "paused" },
    { id = _M.AUDIENCE.daily, rows = 2000, name = "daily", daily_runs = 3 },
}

-- Options that only the Lua face knows (serve); never passed to C.
local LUA_ONLY = { duration = true, output = true }

--- A running mock server (mock.start).
---@class leadpipe.mock.Server
---@field url string "http://127.0.0.1:<port>": the base_url for a client
---@field port integer
---@field api_key string
---@field audiences leadpipe.mock.Audience[] as given, defaults filled in (rows, name, status, ...)
---@field audience? string id of the first audience
---@field redirect_url string base URL of the export listener (export.csv redirects there)
local Server = {}
Server.__index = Server

local function copy_options(opts, fname)
    if opts == nil then
        opts = {}
    end
    if type(opts) ~= "table" then
        error("leadpipe.mock." .. fname .. ": options must be a table", 3)
    end
    local c = {}
    for k, v in pairs(opts) do
        c[k] = v
    end
    return c
end

local function start(opts, fname)
    local c_opts = {}
    for k, v in pairs(opts) do
        if not LUA_ONLY[k] then
            c_opts[k] = v
        end
    end
    local auds = opts.audiences or _M.AUDIENCES
    if type(auds) ~= "table" then
        error("leadpipe.mock." .. fname .. ": audiences must be an array", 3)
    end
    local c_auds, public = {}, {}
    for i, a in ipairs(auds) do
        if type(a) ~= "table" or type(a.id) ~= "string" then
            error("leadpipe.mock." .. fname .. ": audiences[" .. i .. "] needs a string id", 3)
        end
        c_auds[i] = { id = a.id, rows = a.rows, fail = a.fail, name = a.name, status = a.status,
                      daily_runs = a.daily_runs }
        local fail = a.fail
        if fail == true then
            fail = { code = "RUN_FAILED", message = "the run failed" }
        end
        public[i] = { id = a.id:lower(), rows = a.rows or 1000, fail = fail or nil,
                      name = a.name or ("Audience " .. i), status = a.status or "active",
                      daily_runs = a.daily_runs or 0 }
    end
    c_opts.audiences = c_auds
    c_opts.api_key = opts.api_key or _M.DEFAULT_KEY
    local ud, err = mockserver.start(c_opts)
    if not ud then
        return nil, err
    end
    local srv = setmetatable({
        _ud = ud,
        port = ud:port(),
        api_key = c_opts.api_key,
        audiences = public,
        audience = public[1] and public[1].id,
    }, Server)
    srv.url = "http://127.0.0.1:" .. srv.port
    srv.redirect_url = "http://127.0.0.1:" .. ud:redirect_port()
    return srv
end

--- Starts a server. Returns the server, or nil and a message when it cannot listen.
--- Raises on bad options. See docs/internals.md for every option.
---@param opts? leadpipe.mock.Options
---@return leadpipe.mock.Server|nil srv
---@return string|nil message
function _M.start(opts)
    return start(copy_options(opts, "start"), "start")
end

--- Counts of requests by endpoint and status, connections, runs, faults and the export
--- listener: { requests = { [endpoint] = { [status] = n } }, connections =, runs_created =,
--- idempotency_keys =, faults =, faults_by_kind = { [kind] = n }, redirect_requests =,
--- redirect_key_seen =, rate_limited =, during_retry_after =, during_retry_after_any = }.
--- rate_limited: 429s sent with a Retry-After; during_retry_after: API requests that arrived
--- more than 50 ms after one of them went out and before its Retry-After seconds had passed
--- (_any: from the moment it went out). Still readable after stop().
---@return table stats
function Server:stats()
    return self._ud:stats()
end

--- The API requests the server has seen (of one endpoint of stats().requests, or all).
---@param endpoint? string e.g. "results"
---@return integer n
function Server:requests_seen(endpoint)
    local n = 0
    for ep, by_status in pairs(self._ud:stats().requests) do
        if endpoint == nil or ep == endpoint then
            for _, c in pairs(by_status) do n = n + c end
        end
    end
    return n
end

--- Changes faults, latency_ms, queued_ms, running_ms or gzip while running.
--- `faults = false` turns injection off. Raises on bad options.
---@param opts leadpipe.mock.Config
---@return leadpipe.mock.Server self
function Server:configure(opts)
    if type(opts) ~= "table" then
        error("leadpipe.mock: configure needs a table", 2)
    end
    self._ud:configure(opts)
    return self
end

--- Sets every counter of stats() back to zero.
---@return nil
function Server:reset_stats()
    self._ud:reset_stats()
end

--- Whether the server is running (false after stop()).
---@return boolean
function Server:running()
    return self._ud:running()
end

--- Stops listening and closes every connection. Idempotent; also happens on collection
--- (and on __close in Lua 5.4).
---@return nil
function Server:stop()
    self._ud:stop()
end

Server.__close = Server.stop

function Server.__tostring(self)
    return "leadpipe.mock " .. self.url .. (self._ud:running() and " (running)" or " (stopped)")
end

--- Runs a server in the foreground: prints its URL, key and audience ids, and the `export`
--- lines of LEADPIPE_BASE_URL, LEADPIPE_API_KEY and AUDIENCE (the first audience), then waits for
--- SIGINT or SIGTERM (or `duration` seconds) and stops. Returns true and the signal name
--- (nil after `duration`), or nil and a message when it cannot listen.
---   lua5.4 -e 'require("leadpipe.mock").serve{ port = 8080 }'
---@param opts? leadpipe.mock.Options
---@return true|nil ok
---@return string|nil signal "SIGINT" or "SIGTERM" (nil after duration); with nil: the message
function _M.serve(opts)
    opts = copy_options(opts, "serve")
    if opts.port == nil then
        opts.port = 8080
    end
    local out = opts.output or io.stdout
    local srv, err = start(opts, "serve")
    if not srv then
        return nil, err
    end
    out:write("leadpipe mock API listening on ", srv.url, "\n")
    out:write("  api key   ", srv.api_key, "\n")
    for _, a in ipairs(srv.audiences) do
        local note = a.rows .. " rows"
        if a.daily_runs > 0 then
            note = note .. ", " .. a.daily_runs .. " completed daily runs (try: leadpipe changes)"
        end
        if a.fail then
            note = note .. ", runs fail with " .. tostring(a.fail.code or "RUN_FAILED")
        end
        if a.name then
            note = a.name .. ", " .. note
        end
        out:write("  audience  ", a.id, "  (", note, ")\n")
    end
    out:write("  exports   ", srv.redirect_url, "\n")
    out:write("try: curl -X POST -H 'x-api-key: ", srv.api_key, "' ", srv.url,
        "/v1/intent/audiences/", srv.audience or "<id>", "/runs\n")
    out:write("for the leadpipe command and your scripts, paste into your shell:\n")
    local function word(v) -- a shell word
        return v:find("^[%w_.:/%-]+$") and v or "'" .. v:gsub("'", "'\\''") .. "'"
    end
    out:write("export LEADPIPE_BASE_URL=", srv.url, " LEADPIPE_API_KEY=", word(srv.api_key), "\n")
    if srv.audience then out:write("export AUDIENCE=", word(srv.audience), "\n") end
    out:write("stop with Ctrl-C\n")
    if out.flush then out:flush() end
    local sig = mockserver.wait_signal(opts.duration)
    srv:stop()
    out:write("leadpipe mock API stopped", sig and (" (" .. sig .. ")") or "", "\n")
    if out.flush then out:flush() end
    return true, sig
end

return _M

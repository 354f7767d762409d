-- leadpipe.client: the API client. Runs, results, waiting, lazy page and row iterators.
-- Audiences (audiences.lua), stats and CSV exports (exports.lua) add their methods to the
-- same Client at the end of this file.
--
-- Conventions: calls that do one thing return `value` or `nil, err`; iterators raise `err`
-- (a `for` loop that stopped silently would lose rows). Bad arguments are caught before any
-- request: calls return an error of kind "invalid_argument", iterator constructors and
-- leadpipe.new raise it. Every wait goes through the client's host (leadpipe.hosts).

local core = require "leadpipe.core"
local errors = require "leadpipe.errors"
local http = require "leadpipe.http"
local hosts = require "leadpipe.hosts"
local args = require "leadpipe.args"
local page_mod = require "leadpipe.page"
local window = require "leadpipe.window"
local cache_mod = require "leadpipe.cache"
local gate = require "leadpipe.gate"
local deadline_mod = require "leadpipe.deadline"

local setmetatable, getmetatable, type, tostring, pairs, error =
    setmetatable, getmetatable, type, tostring, pairs, error
local min, ceil = math.min, math.ceil
local remove = table.remove
local getenv = os.getenv

local VERSION = require "leadpipe.version"

local _M = { _VERSION = VERSION }

---@alias leadpipe.HostName "blocking"|"openresty"|"neovim"|"luv"
---@alias leadpipe.RunStatus "queued"|"running"|"completed"|"failed"|"cancelled"
---@alias leadpipe.PageState "queued"|"running"|"completed"

--- Options of leadpipe.new. Every key is optional except api_key (or $LEADPIPE_API_KEY).
---@class leadpipe.Options
---@field api_key? string required unless $LEADPIPE_API_KEY is set; sent only to base_url's origin
---@field base_url? string default $LEADPIPE_BASE_URL or "https://api.aws53.cloud"
---@field allow_insecure_http? boolean accept http:// to a host that is not loopback (default false)
---@field timeout? number seconds for one request, all of it (default 60; 0.001..86400)
---@field connect_timeout? number seconds to connect (default 10; 0.001..3600)
---@field max_retries? integer retries of a failed request (default 3; 0..10)
---@field backoff_base? number exponential backoff: about backoff_base * 2^n s (default 0.5)
---@field backoff_max? number cap of one backoff, seconds (default 20)
---@field max_retry_after? number longest Retry-After to honour (default 60); longer: rate_limited
---@field max_response? integer bytes; larger responses fail with code "too_large" (default 256 MiB)
---@field user_agent? string appended to the User-Agent (1..200 bytes, no control characters)
---@field host? leadpipe.HostName|leadpipe.Host how to wait (default "blocking")
---@field verify? boolean TLS certificate and host name verification (default true)
---@field logger? fun(event: leadpipe.LogEvent) called for each send, response, retry, redirect, error, gate
---@field wait_timeout? number default timeout of wait_run and of waiting iterators (default 600)
---@field poll_interval? number first wait between polls of a pending run, seconds (default 1)
---@field max_poll_interval? number longest wait between polls, seconds (default 10)
---@field cache? table leadpipe.cache.memory{...} or leadpipe.cache.shared(...): completed runs' pages
---@field gate? table leadpipe.gate.shared(dict_name): the rate gate of every worker of the node

--- What the logger option receives; never holds the API key.
---@class leadpipe.LogEvent
---@field type "send"|"response"|"retry"|"redirect"|"error"|"gate"
---@field at number the host's clock
---@field method? string
---@field path? string
---@field status? integer
---@field attempt? integer
---@field delay? number
---@field message? string
---@field code? string
---@field request_id? string
---@field retry_after? number

--- A run of an audience (the API's IntentAudienceRun). Every field but id, status and
--- runType may be missing.
---@class leadpipe.Run
---@field id string UUID, for results, stats and exports
---@field status leadpipe.RunStatus
---@field runType "manual"|"daily"|"preview"
---@field audienceId? string
---@field organizationId? string
---@field configHash? string
---@field dataDate? string YYYY-MM-DD
---@field resultKey? string
---@field candidateCount? integer matched before hydration and limits
---@field resultCount? integer rows available in results
---@field attempts? integer
---@field nextAttemptAt? string
---@field idempotencyKey? string echo of the Idempotency-Key
---@field errorCode? string when failed
---@field errorMessage? string when failed
---@field startedAt? string
---@field completedAt? string
---@field cancelledAt? string
---@field createdAt? string
---@field updatedAt? string
---@field [string] any

--- A company of a person row.
---@class leadpipe.Company
---@field name? string
---@field domain? string
---@field industry? string
---@field industryGroup? string
---@field revenueRange? string
---@field [string] any

--- Where a person is.
---@class leadpipe.Geo
---@field city? string
---@field state? string
---@field stateCode? string
---@field country? string
---@field countryCode? string
---@field [string] any

--- A topic a person showed intent for.
---@class leadpipe.Topic
---@field topicId integer
---@field topicName? string
---@field type? string "b2b" or "b2c"
---@field industry? string
---@field category? string

--- A person's intent signals.
---@class leadpipe.Intent
---@field score? number 1..100
---@field topicOverlap? integer
---@field matchedTopics? leadpipe.Topic[]

--- A person row of a run's results. JSON nulls are absent keys: any field, and any nested
--- object, may be missing; keys the API adds are kept.
---@class leadpipe.Person
---@field hashedEmail? string SHA-256 of the email, 64 hex digits
---@field firstName? string
---@field lastName? string
---@field fullName? string
---@field businessEmail? string
---@field personalEmail? string
---@field email? string
---@field primaryContactEmail? string
---@field phone? string
---@field linkedinUrl? string
---@field headline? string
---@field jobTitle? string
---@field seniority? string "director", "vp", "c_suite", ...
---@field department? string
---@field company? leadpipe.Company
---@field geo? leadpipe.Geo
---@field intent? leadpipe.Intent
---@field [string] any

--- One results page.
---@class leadpipe.Page
---@field state leadpipe.PageState
---@field run leadpipe.Run
---@field results leadpipe.Person[] rows (with people{ where = } only the kept ones; raw: JSON text)
---@field total integer rows of the run
---@field limit integer
---@field offset integer
---@field rows? integer rows the page had (set by results/pages/people)
---@field kept? integer rows that passed a pushed-down where (nil when nothing was filtered)
---@field request_id? string

---@class leadpipe.CreateRunOpts
---@field idempotency_key? string sent on every retry (generated when not given)

---@class leadpipe.ListRunsOpts
---@field limit? integer 1..100 (API default 25)

---@class leadpipe.ResultsOpts
---@field limit? integer 1..500 (default 100)
---@field offset? integer default 0
---@field deadline? number seconds for the whole call, retries included (kind "timeout", code "DEADLINE")

---@class leadpipe.WaitOpts
---@field timeout? number seconds to wait (default the client's wait_timeout)
---@field interval? number first wait between polls (default the client's poll_interval)
---@field max_interval? number longest wait between polls (default the client's max_poll_interval)
---@field on_poll? fun(page: leadpipe.Page) called with each pending page
---@field deadline? number seconds for the whole call: waits, pages, retries (kind "timeout", code "DEADLINE")

---@class leadpipe.PagesOpts: leadpipe.WaitOpts
---@field limit? integer rows per page, 1..500 (default 100)
---@field offset? integer first row (default 0)
---@field wait? boolean wait for a pending run (default true); false: kind "not_ready"
---@field prefetch? integer most pages in flight ahead of the reader, 0..64 (default 64)

---@class leadpipe.PeopleOpts: leadpipe.PagesOpts
---@field where? leadpipe.Where|leadpipe.Predicate pushed down into the decoder when it can take it
---@field filter? leadpipe.Predicate any function, applied after where
---@field on_page? fun(page: leadpipe.Page) sees each page (rows, kept, results)
---@field raw? boolean each row is its JSON text (a string); filter is then not allowed

--- The API client (leadpipe.new). Calls return value or nil, err; iterators raise err.
---@class leadpipe.Client
---@field base_url string
---@field host leadpipe.Host
---@field user_agent string
---@field wait_timeout number
---@field poll_interval number
---@field max_poll_interval number
---@field closed? boolean true after close()
---@field transport table the http transport (internal)
local Client = {}
Client.__index = Client
Client.__name = "leadpipe.client"

local DEFAULT_BASE_URL = "https://api.aws53.cloud"

local invalid = args.invalid
local check_id, check_int, check_number, check_function = args.check_id, args.check_int,
    args.check_number, args.check_function
local check_opts, set, first = args.check_opts, args.set, args.first
local check_boolean, check_text, closed = args.check_boolean, args.check_text, args.closed

-- The host's check that leadpipe may wait here (event-loop hosts need a coroutine), made
-- before anything is sent; the error names the caller's line.
local function host_check(self, fname)
    local check = self.host.check
    return check and check(fname, 3)
end

-- ===== construction =====

local NEW_OPTS = set{
    "api_key", "base_url", "timeout", "connect_timeout", "max_retries", "user_agent", "host",
    "backoff_base", "backoff_max", "max_retry_after", "max_response", "verify", "logger",
    "wait_timeout", "poll_interval", "max_poll_interval", "allow_insecure_http", "cache", "gate",
}

local function raise(err, level)
    error(err, level and level + 1 or 2)
end

--- leadpipe.new(opts) -> client. Raises an invalid_argument error on bad options.
---@param opts? leadpipe.Options
---@return leadpipe.Client
function _M.new(opts)
    local o, err = check_opts("leadpipe.new", opts, NEW_OPTS)
    if not o then raise(err, 2) end
    local fname = "leadpipe.new"
    local api_key = o.api_key
    if api_key == nil then api_key = getenv("LEADPIPE_API_KEY") end
    if type(api_key) ~= "string" or api_key == "" then
        raise(invalid(fname, "api_key", "is required: pass api_key or set LEADPIPE_API_KEY"), 2)
    end
    if api_key:find("[%c%s]") then
        raise(invalid(fname, "api_key", "must not contain spaces or control characters"), 2)
    end
    err = check_boolean(fname, "allow_insecure_http", o.allow_insecure_http)
    if err then raise(err, 2) end
    local base_url
    base_url, err = args.check_base_url(fname, "base_url",
        o.base_url or getenv("LEADPIPE_BASE_URL") or DEFAULT_BASE_URL, o.allow_insecure_http)
    if not base_url then raise(err, 2) end
    err = first(
        check_number(fname, "timeout", o.timeout, 0.001, 86400),
        check_number(fname, "connect_timeout", o.connect_timeout, 0.001, 3600),
        check_int(fname, "max_retries", o.max_retries, 0, 10),
        check_number(fname, "backoff_base", o.backoff_base, 0, 3600),
        check_number(fname, "backoff_max", o.backoff_max, 0, 86400),
        check_number(fname, "max_retry_after", o.max_retry_after, 0, 86400),
        check_int(fname, "max_response", o.max_response, 1024, 2 ^ 40),
        check_number(fname, "wait_timeout", o.wait_timeout, 0),
        check_number(fname, "poll_interval", o.poll_interval, 0.001, 3600),
        check_number(fname, "max_poll_interval", o.max_poll_interval, 0.001, 3600),
        check_function(fname, "logger", o.logger),
        check_text(fname, "user_agent", o.user_agent, 200),
        check_boolean(fname, "verify", o.verify),
        cache_mod.check(fname, "cache", o.cache), gate.check(fname, "gate", o.gate))
    if err then raise(err, 2) end
    local host, herr = hosts.resolve(o.host)
    if not host then raise(invalid(fname, "host", herr), 2) end

    -- What carries the bytes: libcurl, or nginx's cosockets under the openresty host.
    local wire = host.transport == "cosocket" and "ngx_lua" or core.curl_version:match("^(%S+)")
    local ua = "leadpipe-lua/" .. VERSION .. " " .. wire .. " " .. _VERSION:gsub(" ", "/")
    if o.user_agent then ua = ua .. " " .. o.user_agent end

    if host.transport ~= nil and (type(host.transport) ~= "string" or not host.transport:find("^%a%w*$")) then
        raise(invalid(fname, "host", "has a transport that is not a wire name like \"curl\""), 2)
    end
    local ok, transport = pcall(http.new, {
        base_url = base_url,
        api_key = api_key,
        host = host,
        timeout = o.timeout or 60,
        connect_timeout = o.connect_timeout or 10,
        max_retries = o.max_retries or 3,
        backoff_base = o.backoff_base or 0.5,
        backoff_max = o.backoff_max or 20,
        max_retry_after = o.max_retry_after or 60,
        max_response = o.max_response or 256 * 1024 * 1024,
        user_agent = ua,
        verify = o.verify ~= false,
        logger = o.logger,
        -- a shared cache's dict holds the node's gate too, unless one is named
        gate = o.gate or (o.cache and o.cache.gate),
    })
    if not ok then
        -- a wire that cannot load or start (an unknown transport, no memory): never a raw raise
        raise(errors.new("invalid_argument", fname .. ": host transport "
            .. tostring(host.transport or "curl") .. " cannot start: "
            .. tostring(transport):gsub("^[^:\n]*:%d+: ", ""):gsub("\n.*", ""),
            { code = "INVALID_ARGUMENT", argument = "host" }), 2)
    end
    return setmetatable({
        base_url = base_url,
        host = host,
        user_agent = ua,
        wait_timeout = o.wait_timeout or 600,
        poll_interval = o.poll_interval or 1,
        max_poll_interval = o.max_poll_interval or 10,
        transport = transport,
        cache = cache_mod.bind(o.cache, http.origin_of(base_url), api_key),
        -- the page lists in flight of this client's live pipelines (see page_iterator)
        pipelines = setmetatable({}, { __mode = "k" }),
    }, Client)
end

Client.__tostring = function(c)
    return "leadpipe.client(" .. c.base_url .. ", host=" .. (c.host.name or "custom") .. ")"
end

--- Closes the client's connections; in-flight requests are abandoned. Idempotent.
--- Later calls return (iterators raise) an error of kind "closed". Also the client's
--- __close (Lua 5.4 `local c <close> = leadpipe.new{...}`).
---@return nil
function Client:close()
    self.closed = true
    self.transport:close()
end
Client.__close = Client.close

-- ===== paths and pages =====

local function audience_path(aud)
    return "/v1/intent/audiences/" .. aud
end

local function run_path(aud, run_id)
    return "/v1/intent/audiences/" .. aud .. "/runs/" .. run_id
end

-- The `data` of a response envelope: returns data, or nil, err for the transport's error
-- (status nil) or a body without a data object (an array for list_runs).
-- The calls whose `data` is an array; every other call's is an object.
local ARRAY_DATA = { list_runs = true, audiences = true }

local function data_of(what, status, headers_or_err, body)
    if not status then return nil, headers_or_err end
    local data = type(body) == "table" and body.data
    local want_array = ARRAY_DATA[what] == true
    if type(data) ~= "table" or (getmetatable(data) == core.array_mt) ~= want_array then
        return nil, errors.new("decode", what .. " response has no data " .. (want_array and "array"
            or "object"), { status = status, code = "BAD_RESPONSE" })
    end
    return data
end

local function check_run_ids(fname, aud, run_id)
    return check_id(fname, "audience_id", aud) or check_id(fname, "run_id", run_id)
end

-- Finishes a results call and checks the page invariants (leadpipe.page); `seen` is what
-- the same read learnt from its pages so far ({ total =, ids = }), or nil. page.rows is how
-- many rows the page had; page.kept, when a decoder with a pushed-down `where` built only
-- some of them (then page.results holds just those), how many it kept.
local function finish_page(self, call, limit, offset, seen)
    local status, headers, body, nrows, nkept
    if call.cached then
        status, headers, body, nrows, nkept = cache_mod.response(call)
    else
        status, headers, body, nrows, nkept = self.transport:finish(call)
    end
    if not status then return nil, headers end
    local page, err = page_mod.from_response(status, headers, body, {
        limit = limit, offset = offset, prev_total = seen and seen.total,
        prev_ids = seen and seen.ids, scrub = self.transport:scrubber(),
        rows = nkept and nrows, kept = nkept,
    })
    if page then
        page.rows = nrows and nkept and nrows or #page.results
        page.kept = nkept
        if call.body and status == 200 and page.state == "completed" then
            self.cache:put_page(call.aud, call.run_id, limit, offset, call.body)
        end
    end
    return page, err
end

-- A page off the cache when it holds it (no request), else on the wire.
local function start_page(self, aud, run_id, limit, offset, decode, deadline)
    local cache = self.cache
    if cache then
        local body = cache:page(aud, run_id, limit, offset)
        if body then return { cached = body, decode = decode } end
    end
    local call = self.transport:start{
        path = run_path(aud, run_id) .. "/results",
        query = { limit = limit, offset = offset },
        decode = decode,
        deadline = deadline,
        keep_body = cache and true or nil,
    }
    if cache then call.aud, call.run_id = aud, run_id end
    return call
end

-- ===== runs =====

--- client:create_run(audience_id, { idempotency_key = }) -> run | nil, err
--- The key (generated when not given) is sent on every retry, so a retry never makes a
--- second run; the run echoes it in run.idempotencyKey.
---@param aud string audience id (UUID)
---@param opts? leadpipe.CreateRunOpts
---@return leadpipe.Run|nil run the new run (queued)
---@return leadpipe.Error|nil err
function Client:create_run(aud, opts)
    local fname = "create_run"
    if self.closed then return nil, closed(fname) end
    local herr = host_check(self, fname)
    if herr then return nil, herr end
    local o, err = check_opts(fname, opts, set{ "idempotency_key" })
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
    return data_of(fname, self.transport:request{
        method = "POST",
        path = audience_path(aud) .. "/runs",
        body = '{"runType":"manual"}',
        idempotency_key = key,
    })
end

--- client:list_runs(audience_id, { limit = 25 }) -> array of runs, newest first | nil, err
---@param aud string audience id (UUID)
---@param opts? leadpipe.ListRunsOpts
---@return leadpipe.Run[]|nil runs newest first
---@return leadpipe.Error|nil err
function Client:list_runs(aud, opts)
    local fname = "list_runs"
    if self.closed then return nil, closed(fname) end
    local herr = host_check(self, fname)
    if herr then return nil, herr end
    local o, err = check_opts(fname, opts, set{ "limit" })
    if not o then return nil, err end
    err = check_id(fname, "audience_id", aud) or check_int(fname, "limit", o.limit, 1, 100)
    if err then return nil, err end
    return data_of(fname, self.transport:request{
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
    if self.closed then return nil, closed(fname) end
    local herr = host_check(self, fname)
    if herr then return nil, herr end
    local err = check_run_ids(fname, aud, run_id)
    if err then return nil, err end
    return data_of(fname, self.transport:request{ method = "DELETE", path = run_path(aud, run_id) })
end

-- ===== results =====

local RESULTS_OPTS = set{ "limit", "offset", "deadline" }

local function check_page_args(fname, aud, run_id, o)
    return first(check_run_ids(fname, aud, run_id),
        check_int(fname, "limit", o.limit, 1, 500), check_int(fname, "offset", o.offset, 0, 2 ^ 53))
end

--- client:results(audience_id, run_id, { limit = 100, offset = 0 }) -> page | nil, err
--- page = { state = "queued"|"running"|"completed", run, results, total, limit, offset }.
--- A failed or cancelled run is an error of kind run_failed / run_cancelled with err.run.
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? leadpipe.ResultsOpts
---@return leadpipe.Page|nil page
---@return leadpipe.Error|nil err
function Client:results(aud, run_id, opts)
    local fname = "results"
    if self.closed then return nil, closed(fname) end
    local herr = host_check(self, fname)
    if herr then return nil, herr end
    local o, err = check_opts(fname, opts, RESULTS_OPTS)
    if not o then return nil, err end
    err = check_page_args(fname, aud, run_id, o) or check_number(fname, "deadline", o.deadline, 0.001)
    if err then return nil, err end
    local limit, offset = o.limit or 100, o.offset or 0
    local at = deadline_mod.at(self.host, o.deadline)
    local page
    page, err = finish_page(self, start_page(self, aud, run_id, limit, offset, nil, at), limit, offset)
    if not page and deadline_mod.passed(err, at, self.host.now()) then
        err = deadline_mod.error(fname, o.deadline, nil, offset, err)
    end
    return page, err
end

-- One results page for a waiting loop: the request in flight is cut at the deadline.
local function fetch_page(self, aud, run_id, limit, offset, deadline)
    return finish_page(self, start_page(self, aud, run_id, limit, offset, nil, deadline), limit, offset)
end

-- Polls with a growing interval until `fetch(deadline)` returns a completed page, the
-- deadline passes (kind "timeout", also when it cuts a request in flight) or an error.
-- fetch(deadline) -> page | nil, err. `at`: the call's own deadline (leadpipe.deadline),
-- when it comes before the wait's timeout.
local function poll_until_complete(self, fetch, run_id, o, at)
    local host = self.host
    local timeout = o.timeout or self.wait_timeout
    local interval = o.interval or self.poll_interval
    local max_interval = o.max_interval or self.max_poll_interval
    local deadline = deadline_mod.earlier(host.now() + timeout, at)
    local state = "pending"
    while true do
        local p, err = fetch(deadline)
        if not p and err.kind == "timeout" and host.now() >= deadline then p = { state = state } end
        if not p then return nil, err end
        if p.state == "completed" then return p end
        state = p.state
        if o.on_poll and p.run then o.on_poll(p) end
        local left = deadline - host.now()
        if left <= 0 then
            return nil, errors.new("timeout", "run " .. run_id .. " still " .. tostring(p.state)
                .. " after " .. timeout .. " s", { code = "WAIT_TIMEOUT", retryable = true })
        end
        host.sleep(min(interval, left))
        interval = min(interval * 1.5, max_interval)
    end
end

local WAIT_OPTS = set{ "timeout", "interval", "max_interval", "on_poll", "deadline" }

local function check_wait_opts(fname, o)
    return first(check_number(fname, "timeout", o.timeout, 0),
        check_number(fname, "deadline", o.deadline, 0.001),
        check_number(fname, "interval", o.interval, 0.001),
        check_number(fname, "max_interval", o.max_interval, 0.001),
        check_function(fname, "on_poll", o.on_poll))
end

--- client:wait_run(audience_id, run_id, { timeout = 600, interval = 1, max_interval = 10,
---  on_poll = function(page) end }) -> completed run | nil, err
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? leadpipe.WaitOpts
---@return leadpipe.Run|nil run the completed run
---@return leadpipe.Error|nil err kind "timeout" after opts.timeout seconds
function Client:wait_run(aud, run_id, opts)
    local fname = "wait_run"
    if self.closed then return nil, closed(fname) end
    local herr = host_check(self, fname)
    if herr then return nil, herr end
    local o, err = check_opts(fname, opts, WAIT_OPTS)
    if not o then return nil, err end
    err = check_run_ids(fname, aud, run_id) or check_wait_opts(fname, o)
    if err then return nil, err end
    local p
    local at = deadline_mod.at(self.host, o.deadline)
    p, err = poll_until_complete(self, function(deadline)
        if self.closed then return nil, closed(fname) end
        return fetch_page(self, aud, run_id, 1, 0, deadline)
    end, run_id, o, at)
    if not p then
        if deadline_mod.passed(err, at, self.host.now()) then err = deadline_mod.error(fname, o.deadline) end
        return nil, err
    end
    return p.run
end

local PAGES_OPTS = set{ "limit", "offset", "wait", "prefetch", "timeout", "interval", "max_interval",
                        "on_poll", "deadline" }

-- Most pages in flight ahead of the one being read, unless `prefetch` says otherwise.
local DEFAULT_PREFETCH = 64
local MAX_PREFETCH = 64
-- Most pages in flight ahead of their readers across all the iterators of one client (one
-- client shared by many requests in an nginx worker must not open 64 connections for each).
local CLIENT_AHEAD = 64

-- Iterator of pages. Raises errors. The fourth value closes it (Lua 5.4 to-be-closed).
--
-- The pipeline: once the first page has told the total, up to `win.size` further pages
-- are on the wire at once, and pages are handed out in offset order. The size follows
-- Little's law from the round trips the reader waited for and the reader's own time per
-- page, up to `prefetch`, halved by a 429 or 503 (leadpipe/window.lua). When a page has
-- arrived, the requests that refill the window are sent before the page is decoded
-- (http.lua's on_arrival), so the wire never idles while we decode.
-- o.decode (from people()) replaces core.decode for result bodies.
local function page_iterator(self, aud, run_id, o, fname)
    local limit = o.limit or 100
    local win = window.new(o.prefetch or DEFAULT_PREFETCH)
    local transport, host, decode = self.transport, self.host, o.decode
    local now = host.now
    local left_at                     -- when the last page was handed out
    local next_offset = o.offset or 0 -- offset of the next page handed out
    local ahead                       -- offset of the next page to request
    local total
    local seen = {} -- what the pages so far said: total, the edge row ids of the last one
    local done = false
    local inflight = {} -- { offset =, call =, sent = }, in offset order
    -- the deadline of the whole read; rows handed out (people() counts its own)
    local at, progress = deadline_mod.at(host, o.deadline), o.progress or { rows = 0 }

    local function drop_inflight()
        for i = #inflight, 1, -1 do
            transport:cancel(inflight[i].call)
            inflight[i] = nil
        end
    end

    -- Pages the client's other pipelines have ahead (a pipeline dropped without closing
    -- counts until it is collected: its requests are on the wire until then too).
    local pipelines = self.pipelines
    pipelines[inflight] = true
    local function others()
        local n = 0
        for list in pairs(pipelines) do
            if list ~= inflight then n = n + #list end
        end
        return n
    end

    local function refill()
        local room = min(win:room(#inflight + ceil((total - ahead) / limit)), CLIENT_AHEAD - others())
        while #inflight < room and ahead < total do
            inflight[#inflight + 1] = {
                offset = ahead, sent = now(), call = start_page(self, aud, run_id, limit, ahead, decode, at),
            }
            ahead = ahead + limit
        end
    end

    -- Waits for a call sent at `sent`; tells the window what the wait showed. `waited`:
    -- the call was sent just now, so the reader surely waits for it.
    local function finish_slot(call, offset, sent, waited)
        local asked, arrived = now(), nil
        call.on_arrival = function()
            arrived = now()
            if total then refill() end
        end
        local page, err = finish_page(self, call, limit, offset, seen)
        if arrived then
            local wait, t = arrived - asked, now()
            -- a wait of under 0.5 ms: the page was there already, and arrived says nothing
            if waited or wait > 0.0005 then win:round_trip(arrived - sent) end
            -- the reader's own time for this page: since it had the last one, minus the wait
            win:reader(left_at and t - left_at - wait or t - arrived)
        end
        if call.rate_limited then win:rate_limited() else win:clean() end
        return page, err
    end

    local function fetch_at(offset, deadline)
        local sent = now()
        local call = start_page(self, aud, run_id, limit, offset, decode, deadline_mod.earlier(deadline, at))
        return finish_slot(call, offset, sent, true)
    end

    local function first_page()
        if o.wait == false then
            local page, err = fetch_at(next_offset)
            if page and page.state ~= "completed" then
                err = errors.new("not_ready", "run " .. run_id .. " is " .. tostring(page.state)
                    .. " (pass wait = true to wait for it)", { status = 202, retryable = true })
                page = nil
            end
            return page, err
        end
        return poll_until_complete(self, function(deadline)
            if self.closed then return nil, closed(fname) end
            return fetch_at(next_offset, deadline)
        end, run_id, o, at)
    end

    local function next_page()
        local slot = remove(inflight, 1)
        if slot and slot.offset ~= next_offset then
            -- a short page moved the offsets: what was requested ahead is of no use
            transport:cancel(slot.call)
            drop_inflight()
            ahead = next_offset
            slot = nil
        end
        if not slot then
            ahead = next_offset + limit
            return fetch_at(next_offset)
        end
        return finish_slot(slot.call, slot.offset, slot.sent)
    end

    local function iter()
        if done then return nil end
        local page, err
        if self.closed then
            err = closed(fname)
        elseif at and now() >= at then
            err = deadline_mod.error(fname, o.deadline, progress.rows, next_offset)
        elseif total == nil then
            page, err = first_page()
        else
            page, err = next_page()
        end
        if page and page.state ~= "completed" then
            err = errors.new("http", "run " .. run_id .. " went back to " .. tostring(page.state),
                { status = 202 })
            page = nil
        end
        if not page then
            done = true
            drop_inflight()
            if deadline_mod.passed(err, at, now()) then
                err = deadline_mod.error(fname, o.deadline, progress.rows, next_offset, err)
            end
            error(err, 0)
        end
        local is_first = total == nil
        total = page.total
        seen.total, seen.ids = total, page_mod.edge_ids(page)
        local n = page.rows
        page.offset = next_offset
        next_offset = next_offset + n
        if next_offset >= total then
            done = true
            drop_inflight()
        elseif is_first then
            ahead = next_offset
            refill()
        end
        if not o.progress then progress.rows = progress.rows + #page.results end
        left_at = now()
        -- requests sent while this page was decoded go out (and answers come in) before
        -- the caller's own work holds the wire
        transport:pump()
        return page
    end

    local closer = setmetatable({}, { __close = function()
        done = true
        drop_inflight()
    end })
    return iter, nil, nil, closer
end

-- Checks the arguments shared by pages() and people().
local function check_iter_args(fname, aud, run_id, o)
    local err = check_page_args(fname, aud, run_id, o)
        or check_int(fname, "prefetch", o.prefetch, 0, MAX_PREFETCH) or check_wait_opts(fname, o)
    if err then return err end
    if o.wait ~= nil and type(o.wait) ~= "boolean" then
        return invalid(fname, "wait", "must be a boolean (got " .. type(o.wait) .. ")")
    end
end

--- client:pages(audience_id, run_id, { limit = 100, offset = 0, wait = true, prefetch = 64,
---  timeout =, interval =, max_interval =, on_poll = }) -> iterator of pages
--- Follows the documented stop rule (offset + #results >= total). Waits for a pending run
--- unless wait = false. Up to `prefetch` pages (0..64, default 64; 0: one at a time) are on
--- the wire ahead of the one being read: as many as the reader gets through in one round
--- trip, plus two (leadpipe/window.lua), halved on a 429 or 503. Pages come out in offset
--- order.
--- Raises on bad arguments; the iterator raises a leadpipe.Error. The fourth value closes
--- the iterator (Lua 5.4 to-be-closed), dropping prefetched pages.
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? leadpipe.PagesOpts
---@return fun(): leadpipe.Page|nil iter
---@return nil
---@return nil
---@return table closer
function Client:pages(aud, run_id, opts)
    local fname = "pages"
    if self.closed then error(closed(fname), 2) end
    local herr = host_check(self, fname)
    if herr then error(herr, 2) end
    local o, err = check_opts(fname, opts, PAGES_OPTS)
    if not o then error(err, 2) end
    err = check_iter_args(fname, aud, run_id, o)
    if err then error(err, 2) end
    return page_iterator(self, aud, run_id, o, fname)
end

local PEOPLE_OPTS = set{ "limit", "offset", "wait", "prefetch", "timeout", "interval", "max_interval",
                         "on_poll", "where", "filter", "on_page", "raw", "deadline" }

-- The where{} of people() as (decode, lua_predicate): with a decoder that takes a compiled
-- predicate (core.decode_page), rows that fail it are never built and the Lua predicate is
-- nil; otherwise the Lua predicate runs on every decoded row. `raw` asks the decoder for
-- each kept row's JSON text instead of a table. Raises an invalid_argument error.
local function compile_where(fname, where, raw)
    local filter = require "leadpipe.filter"
    local compiled
    if where ~= nil then
        local ok, c = pcall(filter.compile, where)
        if not ok then
            error(invalid(fname, "where", (tostring(errors.is_error(c) and c.message or c)
                :gsub("^where: ", ""))), 0)
        end
        compiled = c
    end
    local decode_page = core.decode_page
    if decode_page and (raw or (compiled and compiled.native)) then
        local native = compiled and compiled.native
        return function(body) return decode_page(body, native, raw) end, nil
    end
    return nil, compiled and compiled.fn
end

--- client:people(audience_id, run_id, { where = {...}, filter = fn, on_page = fn, raw = false,
---  ...pages opts }) -> iterator of person rows across pages, each exactly once.
--- `where` is data and is pushed down into the decoder when it can take it; `filter` is any
--- function, applied after. on_page(page) sees page.rows (rows on the page), page.kept (rows
--- that passed `where`) and page.results (only those rows). With raw = true each row is its
--- JSON text (for writing JSON lines without building tables); `filter` is then not allowed.
--- Raises on bad arguments; the iterator raises a leadpipe.Error. The fourth value closes
--- the iterator (Lua 5.4 to-be-closed).
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? leadpipe.PeopleOpts
---@return fun(): leadpipe.Person|nil iter rows (strings of JSON with raw = true)
---@return nil
---@return nil
---@return table closer
function Client:people(aud, run_id, opts)
    local fname = "people"
    if self.closed then error(closed(fname), 2) end
    local herr = host_check(self, fname)
    if herr then error(herr, 2) end
    local o, err = check_opts(fname, opts, PEOPLE_OPTS)
    if not o then error(err, 2) end
    err = check_iter_args(fname, aud, run_id, o) or check_function(fname, "filter", o.filter)
        or check_function(fname, "on_page", o.on_page)
    if not err and o.raw ~= nil and type(o.raw) ~= "boolean" then
        err = invalid(fname, "raw", "must be a boolean (got " .. type(o.raw) .. ")")
    end
    if not err and o.raw and o.filter then
        err = invalid(fname, "filter", "cannot be used with raw = true (rows are JSON text); use where")
    end
    if err then error(err, 2) end
    local ok, decode, where_fn = pcall(compile_where, fname, o.where, o.raw)
    if not ok then error(decode, 2) end
    local progress = { rows = 0 } -- rows handed out, for a deadline error
    local page_opts = { decode = decode, progress = progress }
    for k in pairs(PAGES_OPTS) do page_opts[k] = o[k] end
    local pages, _, _, closer = page_iterator(self, aud, run_id, page_opts, fname)
    local on_page, pred = o.on_page, o.filter
    local encode = o.raw and not decode and require("leadpipe.json").encode
    local transport = self.transport
    local results, i = nil, 0
    local iter = function()
        if self.closed then error(closed(fname), 0) end
        while true do
            if results then
                i = i + 1
                local row = results[i]
                if row == nil then
                    results = nil
                else
                    -- let prefetched pages arrive while the caller works on rows
                    if i % 128 == 0 then transport:pump() end
                    if not pred or pred(row) then
                        progress.rows = progress.rows + 1
                        return row
                    end
                end
            else
                local page = pages()
                if not page then return nil end
                if where_fn or encode then
                    local kept, n = setmetatable({}, core.array_mt), 0
                    local all = page.results
                    for j = 1, #all do
                        local row = all[j]
                        if not where_fn or where_fn(row) then
                            n = n + 1
                            kept[n] = encode and encode(row) or row
                        end
                    end
                    page.results = kept
                    if where_fn then page.kept = n end
                end
                if on_page then on_page(page) end
                results, i = page.results, 0
            end
        end
    end
    return iter, nil, nil, closer
end

-- ===== audiences, stats and exports (their code: audiences.lua, exports.lua) =====

--- What those modules share with this one (internal: not part of the API).
_M.internal = {
    audience_path = audience_path, run_path = run_path, data_of = data_of,
    check_run_ids = check_run_ids, check_wait_opts = check_wait_opts,
    poll_until_complete = poll_until_complete, WAIT_OPTS = WAIT_OPTS, host_check = host_check,
    closed = closed,
}
require("leadpipe.audiences").install(Client, _M.internal)
require("leadpipe.exports").install(Client, _M.internal)

--- The Client class (its methods), for code that extends or inspects it.
_M.Client = Client

return _M

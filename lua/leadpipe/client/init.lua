-- leadpipe.client: leadpipe.new and the client's life: its options, the request layer it
-- sends through (leadpipe.http) and close. The methods live by family in this folder, on
-- the Client class of client/base.lua (which also holds their conventions and their one
-- preamble, enter): runs.lua (create_run, list_runs, cancel_run), waiting.lua (wait_run),
-- results.lua (results, pages, people; the page pipeline is leadpipe.pipeline),
-- audiences.lua (audiences, audience, latest_run), exports.lua (stats, export_csv,
-- create_export, export). The LuaLS classes of the data they take and return:
-- leadpipe/types.lua.

local core = require "leadpipe.core"
local errors = require "leadpipe.errors"
local http = require "leadpipe.http"
local hosts = require "leadpipe.hosts"
local args = require "leadpipe.args"
local base = require "leadpipe.client.base"
local cache_mod = require "leadpipe.cache"
local gate = require "leadpipe.gate"
require "leadpipe.client.runs"
require "leadpipe.client.waiting"
require "leadpipe.client.results"
require "leadpipe.client.audiences"
require "leadpipe.client.exports"
require("leadpipe.changes").install(base.Client)

local setmetatable, getmetatable, type, tostring, pcall = setmetatable, getmetatable, type, tostring, pcall
-- Every raise here is of an error object: errors.raise makes it printable on PUC Lua 5.1 too.
local error = errors.raise
local getenv = os.getenv

local VERSION = require "leadpipe.version"

local _M = { _VERSION = VERSION }

local DEFAULT_BASE_URL = "https://api.aws53.cloud"

local invalid = args.invalid
local check_int, check_number, check_function = args.check_int, args.check_number, args.check_function
local check_opts, set, first = args.check_opts, args.set, args.first
local check_boolean, check_text = args.check_boolean, args.check_text

---@class leadpipe.Client
local Client = base.Client

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
    if api_key ~= nil and type(api_key) ~= "string" then
        raise(invalid(fname, "api_key", "must be the key as a string, api_key = \"sk_...\" (got "
            .. type(api_key) .. ")"), 2)
    end
    if api_key == "" then
        raise(invalid(fname, "api_key", "is empty: pass the key, api_key = \"sk_...\", or leave "
            .. "api_key out to use LEADPIPE_API_KEY"), 2)
    end
    if api_key == nil then api_key = getenv("LEADPIPE_API_KEY") end
    if api_key == nil or api_key == "" then
        raise(invalid(fname, "api_key", "is required: pass api_key = \"sk_...\" or set LEADPIPE_API_KEY"),
            2)
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
    local carrier = host.wire == "cosocket" and "ngx_lua" or core.curl_version:match("^(%S+)")
    local ua = "leadpipe-lua/" .. VERSION .. " " .. carrier .. " " .. _VERSION:gsub(" ", "/")
    if o.user_agent then ua = ua .. " " .. o.user_agent end

    if host.wire ~= nil and (type(host.wire) ~= "string" or not host.wire:find("^%a%w*$")) then
        raise(invalid(fname, "host", "has a wire that is not a wire name like \"curl\""), 2)
    end
    local ok, requester = pcall(http.new, {
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
        -- a wire that cannot load or start (an unknown wire, no memory): never a raw raise
        raise(errors.new("invalid_argument", fname .. ": host wire "
            .. tostring(host.wire or "curl") .. " cannot start: "
            .. tostring(requester):gsub("^[^:\n]*:%d+: ", ""):gsub("\n.*", ""),
            { code = "INVALID_ARGUMENT", argument = "host" }), 2)
    end
    return setmetatable({
        base_url = base_url,
        host = host,
        user_agent = ua,
        wait_timeout = o.wait_timeout or 600,
        poll_interval = o.poll_interval or 1,
        max_poll_interval = o.max_poll_interval or 10,
        requester = requester,
        cache = cache_mod.bind(o.cache, http.origin_of(base_url), api_key),
        -- the page lists in flight of this client's live pipelines (leadpipe.pipeline)
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
    if getmetatable(self) ~= Client then
        error(args.invalid("close", "self", "is not a client: call it with a colon, client:close(), "
            .. "not client.close()"), 2)
    end
    self.closed = true
    self.requester:close()
end
Client.__close = Client.close

--- The Client class (its methods), for code that extends or inspects it.
_M.Client = Client

return _M

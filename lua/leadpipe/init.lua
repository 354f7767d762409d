-- leadpipe: Lua client for the Leadpipe Intent Audiences API.
--
--   local leadpipe = require "leadpipe"
--   local client = leadpipe.new{ api_key = os.getenv("LEADPIPE_API_KEY") }
--   local run = assert(client:create_run(audience_id))
--   assert(client:wait_run(audience_id, run.id))
--   for person in client:people(audience_id, run.id, { where = { min_score = 80 } }) do ... end
--
-- See README.md for the whole API.

local client = require "leadpipe.client"
local errors = require "leadpipe.errors"
local hosts = require "leadpipe.hosts"
local filter = require "leadpipe.filter"
local iter = require "leadpipe.iter"
local path = require "leadpipe.path"
local cache = require "leadpipe.cache"
local gate = require "leadpipe.gate"

--- The leadpipe module.
---@class leadpipe
---@field VERSION string the library's version (leadpipe.version)
---@field errors leadpipe.errors
---@field hosts leadpipe.hosts
---@field filter leadpipe.filter
---@field iter leadpipe.iter
---@field path leadpipe.path
local _M = {
    _VERSION = "leadpipe " .. client._VERSION,
    VERSION = client._VERSION,
}

--- leadpipe.new(opts) -> client. Raises an invalid_argument error on bad options.
--- See leadpipe.Options for every option.
_M.new = client.new
--- Whether x is a leadpipe error object (leadpipe.Error).
_M.is_error = errors.is_error
--- assert(client:call(...)) that prints the error on every Lua (errors.assert).
_M.assert = errors.assert
_M.errors = errors
_M.hosts = hosts
_M.filter = filter
_M.iter = iter
--- leadpipe.cache.memory{...}, leadpipe.cache.shared(dict_name): the cache of completed
--- runs' pages (leadpipe.new{ cache = }).
_M.cache = { memory = cache.memory, shared = cache.shared }
--- leadpipe.gate.shared(dict_name): a node-wide rate gate (leadpipe.new{ gate = }).
_M.gate = { shared = gate.shared }
_M.path = path
--- get(row, path) -> value | nil: nil-safe dotted path access (leadpipe.path.get).
_M.get = path.get

return _M

-- spec/support/fake_client.lua: the fake API (leadpipe.mock) with a leadpipe client on it,
-- started in a spec's setup and stopped in its teardown.
local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"

local _M = {}

--- start(mock_opts) -> srv, client: the fake API started with mock_opts (default {}) and a
--- client on it. Raises when the server does not start.
function _M.start(mock_opts)
    local srv = assert(mock.start(mock_opts or {}))
    return srv, leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
end

--- stop(srv, client): closes the client and stops the server, either of which may be nil
--- (a setup that failed half-way).
function _M.stop(srv, client)
    if client then client:close() end
    if srv then srv:stop() end
end

return _M

-- leadpipe.client.waiting: waiting for a pending run. The polling loop every waiting call
-- shares (wait_run, the first page of pages/people, stats and export_csv with wait = true),
-- its options, and client:wait_run.

local errors = require "leadpipe.errors"
local args = require "leadpipe.args"
local base = require "leadpipe.client.base"
local deadline_mod = require "leadpipe.deadline"

local tostring = tostring
local min = math.min

local _M = { _VERSION = require "leadpipe.version" }

local check_number, check_function, first, set, closed =
    args.check_number, args.check_function, args.first, args.set, args.closed
local enter, check_run_ids, fetch_page = base.enter, base.check_run_ids, base.fetch_page

--- Polls with a growing interval until `fetch(deadline)` returns a completed page, the
--- deadline passes (kind "timeout", also when it cuts a request in flight) or an error.
---@param self leadpipe.Client
---@param fetch fun(deadline: number): table|nil, leadpipe.Error|nil a page ({ state =, run = }) or nil, err
---@param run_id string for the timeout's message
---@param o leadpipe.WaitOpts checked options
---@param at? number the call's own deadline (leadpipe.deadline), when it comes before the timeout
---@return table|nil page the completed page
---@return leadpipe.Error|nil err
function _M.poll_until_complete(self, fetch, run_id, o, at)
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
local poll_until_complete = _M.poll_until_complete

local WAIT_NAMES = { "timeout", "interval", "max_interval", "on_poll", "deadline" }
--- The set of the wait options' names plus `extra` (for args.check_opts).
---@param extra string[] the other options of the call
---@return table<string, true> names
function _M.with_wait_opts(extra)
    local list = {}
    for i = 1, #WAIT_NAMES do list[i] = WAIT_NAMES[i] end
    for i = 1, #extra do list[#list + 1] = extra[i] end
    return set(list)
end
local WAIT_OPTS = _M.with_wait_opts({})

--- Checks the wait options: nil, or the invalid_argument error of the first bad one.
---@param fname string the call, for the message
---@param o leadpipe.WaitOpts
---@return leadpipe.Error|nil err
function _M.check_wait_opts(fname, o)
    return first(check_number(fname, "timeout", o.timeout, 0),
        check_number(fname, "deadline", o.deadline, 0.001),
        check_number(fname, "interval", o.interval, 0.001),
        check_number(fname, "max_interval", o.max_interval, 0.001),
        check_function(fname, "on_poll", o.on_poll))
end
local check_wait_opts = _M.check_wait_opts

---@class leadpipe.Client
local Client = base.Client

--- client:wait_run(audience_id, run_id, { timeout = 600, interval = 1, max_interval = 10,
---  on_poll = function(page) end, deadline = }) -> completed run | nil, err
--- deadline: seconds for the whole call (kind "timeout", code "DEADLINE").
---@param aud string audience id (UUID)
---@param run_id string run id (UUID)
---@param opts? leadpipe.WaitOpts
---@return leadpipe.Run|nil run the completed run
---@return leadpipe.Error|nil err kind "timeout" after opts.timeout seconds
function Client:wait_run(aud, run_id, opts)
    local fname = "wait_run"
    local o, err = enter(self, fname, opts, WAIT_OPTS)
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

return _M

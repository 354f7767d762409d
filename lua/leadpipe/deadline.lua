-- leadpipe.deadline: the `deadline` option of the calls that can wait (wait_run, results,
-- pages, people, stats, export_csv): one budget in seconds for the whole call, across its
-- waits for a pending run, its pages, its retries and rate-gate pauses.
--
-- The call turns it into a time on the host's clock (at) and hands that down: http.lua cuts
-- the request in flight there (libcurl's transfer timeout and the cosockets' timeouts are
-- capped by what is left; the wire's wait ends at it: a poll, a loop timer, a sleeping
-- light thread), never starts a backoff or gate pause that would cross it, and never sends
-- after it; the polls for a pending run sleep no later than it. Whatever ran out because of
-- it comes back as one error:
--   kind "timeout", code "DEADLINE", deadline = the seconds given, rows = rows handed out
--   so far, offset = the next row it would have read (iterators), the message saying so.

local errors = require "leadpipe.errors"

local tostring, type = tostring, type

local _M = { _VERSION = require "leadpipe.version" }

--- The host-clock time by which a call of `seconds` ends (nil without a deadline).
function _M.at(host, seconds)
    if seconds then return host.now() + seconds end
end

--- The earlier of two times, either of which may be nil.
function _M.earlier(a, b)
    if a and b then return a < b and a or b end
    return a or b
end

--- Whether err is the deadline's doing: a timeout once `at` has come, or a failure that
-- http.lua ended early because its retry or pause would have crossed it (err.deadline).
function _M.passed(err, at, now)
    if not at or type(err) ~= "table" or err.code == "DEADLINE" then return false end
    return err.deadline == true or (err.kind == "timeout" and now >= at)
end

--- The error of a call whose deadline ran out. rows/offset: how far it got (nil: say
-- nothing of it); last: the failure that ended it, when it was not the deadline's own.
function _M.error(fname, seconds, rows, offset, last)
    local msg = fname .. ": the deadline of " .. tostring(seconds) .. " s passed"
    if rows then msg = msg .. " after " .. tostring(rows) .. " rows" end
    if offset then msg = msg .. (rows and "," or "") .. " at offset " .. tostring(offset) end
    if last and last.deadline and last.kind ~= "timeout" then
        msg = msg .. " (the last request: " .. tostring(last.message) .. ")"
    end
    return errors.new("timeout", msg, {
        code = "DEADLINE", deadline = seconds, rows = rows, offset = offset, retryable = true,
        status = last and last.kind ~= "timeout" and last.status or nil,
    })
end

return _M

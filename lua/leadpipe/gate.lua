-- leadpipe.gate: the rate gate, the time before which a client sends no new request after a
-- 429 or 503 whose Retry-After it honours: where that time is kept, how a Retry-After is
-- read, and how the answers on the wire feed it before anything new is sent. http.lua asks
-- it before every send and holds what it must.
--
--   local g = gate.new(spec, origin, api_key)
--   g:until_at()   -> host-clock seconds until which the gate is shut (0: never shut)
--   g:shut(at)     -- shut until `at` (host clock); it only ever moves later
--   gate.parse_retry_after(value [, now]) -> seconds | nil
--   gate.delay(status, headers, max) -> the Retry-After the gate honours (429/503, <= max)
--   gate.attach(t), gate.sweep(t)   -- a requester of http.lua (t.wire, t.gate, t.live,
--                                   -- t.host, t.max_retry_after, t:log): see below
--
-- spec nil: the gate of one client (a field of it). spec = gate.shared(dict_name): inside
-- OpenResty, the gate lives in that lua_shared_dict, so a Retry-After seen by any worker of
-- the node holds every worker's clients of the same origin and key until it expires. Its
-- entry is keyed by the origin and a digest of the key (a rate limit is the key's; the key
-- itself is never stored), holds core.now() seconds (CLOCK_MONOTONIC: one clock for every
-- process of the machine, and the openresty host's clock), and expires a second after the
-- gate opens. Several workers may shut it at once: a shut reads back what it wrote and
-- writes again (a few times at most) when another worker's earlier time replaced it.

local core = require "leadpipe.core"
local args = require "leadpipe.args"

local setmetatable, getmetatable, type, tostring, tonumber, error, pairs, pcall, next =
    setmetatable, getmetatable, type, tostring, tonumber, error, pairs, pcall, next
local floor = math.floor
local os_time = os.time
local now = core.now

local _M = { _VERSION = require "leadpipe.version" }

-- ===== one client's gate =====

local Local = {}
Local.__index = Local

function Local:until_at()
    return self.at
end

function Local:shut(at)
    if at > self.at then self.at = at end
end

-- ===== a node's gate (lua_shared_dict) =====

local Shared = {}
Shared.__index = Shared

local SHARED_MT = { __name = "leadpipe.gate.shared" }
SHARED_MT.__index = SHARED_MT
SHARED_MT.__tostring = function(s) return "leadpipe.gate.shared(" .. s.dict_name .. ")" end

function Shared:until_at()
    return self.dict:get(self.key) or 0
end

function Shared:shut(at)
    local dict, key = self.dict, self.key
    for _ = 1, 3 do
        local current = dict:get(key) or 0
        if current >= at then return end
        local ttl = at - now() + 1
        if ttl <= 0 then return end
        dict:set(key, at, ttl)
    end
end

-- The lua_shared_dict of that name, or nil and why not.
local function find_dict(name)
    local ngx = ngx
    if type(ngx) ~= "table" or type(ngx.shared) ~= "table" then
        return nil, "needs OpenResty (ngx.shared): a lua_shared_dict is shared by the workers of nginx"
    end
    local dict = ngx.shared[name]
    if not dict then
        return nil, "names no lua_shared_dict (add `lua_shared_dict " .. name
            .. " 10m;` to nginx.conf's http block)"
    end
    return dict
end
_M.find_dict = find_dict

--- gate.shared(dict_name) -> a gate spec for leadpipe.new{ gate = } (OpenResty only).
-- Raises an invalid_argument error when there is no such lua_shared_dict.
function _M.shared(dict_name)
    local fname = "leadpipe.gate.shared"
    if type(dict_name) ~= "string" or dict_name == "" then
        error(args.invalid(fname, "dict_name", "must be a non-empty string (got " .. type(dict_name)
            .. ")"), 2)
    end
    local dict, why = find_dict(dict_name)
    if not dict then error(args.invalid(fname, "dict_name", ("%q "):format(dict_name) .. why), 2) end
    return setmetatable({ dict_name = dict_name, dict = dict }, SHARED_MT)
end

--- Whether x is what gate.shared returns.
function _M.is_shared(x)
    return type(x) == "table" and getmetatable(x) == SHARED_MT
end

--- nil when v is nil or what gate.shared returns, else an invalid_argument error.
function _M.check(fname, arg, v)
    if v ~= nil and not _M.is_shared(v) then
        return args.invalid(fname, arg, "must be leadpipe.gate.shared(dict_name) (got " .. type(v) .. ")")
    end
end

--- The gate of one client: spec nil (its own) or gate.shared(...) (the node's).
function _M.new(spec, origin, api_key)
    if spec == nil then return setmetatable({ at = 0 }, Local) end
    local digest = ngx.md5(api_key) -- (gate.shared made sure it is OpenResty)
    return setmetatable({
        dict = spec.dict,
        key = "leadpipe:gate:" .. tostring(origin) .. ":" .. digest,
    }, Shared)
end

-- ===== Retry-After =====

local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a proleptic Gregorian date (no time zones involved).
local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

--- Seconds to wait from a Retry-After value (delta-seconds or an IMF-fixdate), or nil.
-- `now` (epoch seconds) defaults to os.time().
function _M.parse_retry_after(value, epoch_now)
    if type(value) ~= "string" then return nil end
    local secs = value:match("^%s*(%d+)%s*$")
    if secs then return tonumber(secs) end
    local d, mon, y, hh, mm, ss = value:match("(%d%d?)[ -](%a%a%a)[ -](%d%d%d?%d?) (%d%d):(%d%d):(%d%d)")
    if not d or not months[mon] then return nil end
    y = tonumber(y)
    if y < 100 then y = y + (y < 70 and 2000 or 1900) end
    local at = days_from_civil(y, months[mon], tonumber(d)) * 86400
        + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
    local delta = at - (epoch_now or os_time())
    return delta > 0 and delta or 0
end

--- The Retry-After (seconds) of a 429 or 503 that the gate honours (at most max), or nil.
function _M.delay(status, headers, max)
    if status ~= 429 and status ~= 503 then return nil end
    local ra = _M.parse_retry_after(headers and headers["retry-after"])
    if ra and ra <= max then return ra end
end

-- ===== fed from the wire =====

--- Hooks requester t's wire: a wire that hears of answers on its own (the cosocket wire's
-- light threads) calls wire.on_answer, which shuts the gate at once, and asks wire.hold()
-- before a request leaves it (true while the gate is shut: a request still connecting
-- when it shut is held back, kind "held").
function _M.attach(t)
    local wire = t.wire
    wire.on_answer = function(status, headers, arrived)
        local ra = _M.delay(status, headers, t.max_retry_after)
        if ra then t.gate:shut(arrived + ra) end
    end
    wire.hold = function()
        return t.host.now() < t.gate:until_at()
    end
end

--- Advances t's wire, then looks at every call on it (t.live) whose answer has arrived and
-- was not looked at yet (wire:peek: status and headers, and the arrival time when the wire
-- knows it): notes when it arrived (call.arrived) and shuts the gate for a 429/503's
-- Retry-After from then. While the gate is shut, a call whose request has not gone out yet
-- (its connection is still being made) and that nobody waits for (call.waiting) is taken
-- back (wire:recall) and marked call.gated: http.lua sends it when the gate opens.
function _M.sweep(t)
    local live, wire = t.live, t.wire
    if not next(live) then return wire:pump() end
    wire:pump()
    if not wire.peek then return end
    local host, g = t.host, t.gate
    for call in pairs(live) do
        local req = call.req
        if req and not call.arrived then
            local ok, status, headers, at = pcall(wire.peek, wire, req)
            if ok and status then
                call.arrived = at or host.now()
                local ra = _M.delay(status, headers, t.max_retry_after)
                if ra then g:shut(call.arrived + ra) end
            end
        end
    end
    local gate_until = g:until_at()
    if not wire.recall or host.now() >= gate_until then return end
    for call in pairs(live) do
        local req = call.req
        if req and not call.arrived and not call.waiting then
            local ok, recalled = pcall(wire.recall, wire, req)
            if ok and recalled then
                call.req, live[call], call.gated = nil, nil, true
                t:log{ type = "gate", method = call.method, path = call.path, until_at = gate_until }
            end
        end
    end
end

return _M

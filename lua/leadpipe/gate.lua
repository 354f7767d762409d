-- leadpipe.gate: the rate gate, the time before which a client sends no new request after a
-- 429 or 503 whose Retry-After it honours. http.lua shuts it (from the moment the answer
-- reached the client) and asks it before every send; this module owns where the time is kept.
--
--   local g = gate.new(spec, origin, api_key)
--   g:until_at()   -> host-clock seconds until which the gate is shut (0: never shut)
--   g:shut(at)     -- shut until `at` (host clock); it only ever moves later
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

local setmetatable, getmetatable, type, tostring, error = setmetatable, getmetatable, type, tostring, error
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

return _M

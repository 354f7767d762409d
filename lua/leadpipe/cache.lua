-- leadpipe.cache: the cache of completed runs' pages (opt-in: leadpipe.new{ cache = ... }).
--
--   leadpipe.cache.memory{ max_bytes =, ttl =, latest_run_ttl = }   in this Lua state, any
--       host: least recently used pages go first past max_bytes (leadpipe/lru.lua)
--   leadpipe.cache.shared(dict_name, { ttl =, latest_run_ttl =, worker_bytes = })   inside
--       OpenResty: a lua_shared_dict shared by every worker of the node; nginx evicts (least
--       recently used first) when it is full. The client's rate gate then lives there too
--       (gate.lua) unless leadpipe.new{ gate = } names another. worker_bytes > 0: each
--       worker also keeps a copy of up to that many bytes of the pages it read (no shared
--       memory read and no string copy on a hit there; see Dict below).
--   cache:stats() -> { hits =, misses =, stores =, bytes =, count =, worker_bytes =,
--       worker_count = }   (bytes and count: memory caches; worker_*: a shared cache's
--       copies in this worker; the counts are this Lua state's)
--   cache:clear()   drops every entry (a shared cache: every key of its dict)
--
-- What goes in: the body of a results page exactly as it came (the JSON text), only from a
-- 200 whose page says the run is completed (a completed run never changes), keyed by the
-- origin and API key (a digest: never the key), audience, run, limit and offset. A read
-- decodes it again, through the same decoder and `where` pushdown as a page off the wire, and
-- the same page checks (leadpipe.page). Pending (202) answers, errors and pages of runs not
-- completed are never stored. An entry lives for `ttl` seconds at most (default 3600).
-- latest_run's answer may be kept latest_run_ttl seconds (default 0: never), as JSON.
-- The cache holds personal data (the people rows) in memory: see README "The cache".

local core = require "leadpipe.core"
local args = require "leadpipe.args"
local lru = require "leadpipe.lru"
local errors = require "leadpipe.errors"
local gate = require "leadpipe.gate"

local setmetatable, getmetatable, type, tostring, error, pcall = setmetatable, getmetatable, type,
    tostring, error, pcall

local _M = { _VERSION = require "leadpipe.version" }

local DEFAULT_TTL = 3600
local MAX_TTL = 30 * 86400

local Cache = {}
Cache.__index = Cache
Cache.__name = "leadpipe.cache"
Cache.__tostring = function(c)
    if c.kind == "shared" then return "leadpipe.cache.shared(" .. c.dict_name .. ")" end
    return "leadpipe.cache.memory(" .. c.max_bytes .. " bytes)"
end

-- ===== the two stores: get(key), set(key, value, ttl) =====
-- A page kept in Lua memory (by a memory cache, or as a worker copy) is a leadpipe.body
-- (core.body: the same bytes, padded for the decoder, which parses them in place instead of
-- copying them first on each read); so is a worker copy of latest_run's JSON, which
-- core.decode reads alike.

local Dict = {}
Dict.__index = Dict

-- A cache.shared with worker_bytes keeps a copy of the pages this worker read in a worker
-- LRU (lru.lua) in front of the dict: a hit there reads no shared memory and copies no
-- string. A copy lives no longer than the dict's entry had left when it was copied, and
-- every copy of every worker goes once cache:clear() has run in any of them (a generation
-- in the dict, looked at on each get).
local GEN_KEY = "leadpipe:cache:generation"
local generations = 0

local function copies_fresh(self)
    local gen = self.dict:get(GEN_KEY)
    if gen ~= self.gen or not self.lru then
        self.lru, self.gen = lru.new(self.worker_bytes, core.now), gen
    end
    return self.lru
end

function Dict:get(key)
    local copies = self.worker_bytes and copies_fresh(self)
    local v = copies and copies:get(key)
    if v then return v end
    v = self.dict:get(key)
    if v and copies then
        local left = self.dict:ttl(key) -- seconds the dict's entry has left (0: no limit)
        if left and left > 0 then
            v = core.body(v)
            copies:set(key, v, left)
        end
    end
    return v
end

function Dict:set(key, value, ttl)
    return (self.dict:set(key, value, ttl)) == true -- (copied on its first get)
end

function Dict:clear()
    self.dict:flush_all()
    generations = generations + 1
    self.dict:set(GEN_KEY, ("%d:%.6f:%d"):format(ngx.worker.pid(), core.now(), generations))
    if self.worker_bytes then copies_fresh(self) end
end

-- ===== construction =====

local function check_ttls(fname, o)
    return args.first(args.check_number(fname, "ttl", o.ttl, 0.001, MAX_TTL),
        args.check_number(fname, "latest_run_ttl", o.latest_run_ttl, 0, 3600))
end

local function new_cache(kind, o, store)
    return setmetatable({
        kind = kind, store = store, ttl = o.ttl or DEFAULT_TTL, latest_run_ttl = o.latest_run_ttl or 0,
        hits = 0, misses = 0, stores = 0,
    }, Cache)
end

--- leadpipe.cache.memory{ max_bytes = N, ttl = 3600, latest_run_ttl = 0 } -> cache.
-- Raises an invalid_argument error on bad options.
function _M.memory(opts)
    local fname = "leadpipe.cache.memory"
    local o, err = args.check_opts(fname, opts, args.set{ "max_bytes", "ttl", "latest_run_ttl" })
    if not o then error(err, 2) end
    if o.max_bytes == nil then
        err = args.invalid(fname, "max_bytes", "is required (the most bytes of pages to hold)")
    end
    err = err or args.check_int(fname, "max_bytes", o.max_bytes, 1024, 2 ^ 40) or check_ttls(fname, o)
    if err then error(err, 2) end
    local c = new_cache("memory", o, lru.new(o.max_bytes, core.now))
    c.max_bytes = o.max_bytes
    return c
end

--- leadpipe.cache.shared(dict_name, { ttl = 3600, latest_run_ttl = 0, worker_bytes = 0 })
-- -> cache (OpenResty). worker_bytes: the most bytes of pages each worker keeps a copy of
-- (0: none). Raises an invalid_argument error on bad options or when there is no such
-- lua_shared_dict.
function _M.shared(dict_name, opts)
    local fname = "leadpipe.cache.shared"
    local o, err = args.check_opts(fname, opts, args.set{ "ttl", "latest_run_ttl", "worker_bytes" })
    if not o then error(err, 2) end
    err = check_ttls(fname, o) or (o.worker_bytes ~= nil and o.worker_bytes ~= 0
        and args.check_int(fname, "worker_bytes", o.worker_bytes, 1024, 2 ^ 40)) or nil
    if err then error(err, 2) end
    local ok, spec = pcall(gate.shared, dict_name)
    if not ok then
        spec.message = spec.message:gsub("^leadpipe%.gate%.shared", fname)
        error(spec, 2)
    end
    local worker_bytes = o.worker_bytes ~= 0 and o.worker_bytes or nil
    local c = new_cache("shared", o, setmetatable({ dict = spec.dict, worker_bytes = worker_bytes }, Dict))
    c.dict_name, c.gate = dict_name, spec
    return c
end

--- Whether x is a cache made by this module.
function _M.is_cache(x)
    return type(x) == "table" and getmetatable(x) == Cache
end

--- nil when v is nil or a cache, else an invalid_argument error.
function _M.check(fname, arg, v)
    if v ~= nil and not _M.is_cache(v) then
        return args.invalid(fname, arg, "must be made by leadpipe.cache.memory{ max_bytes = N } or "
            .. "leadpipe.cache.shared(dict_name) (got " .. type(v) .. ")")
    end
end

function Cache:stats()
    local s = { hits = self.hits, misses = self.misses, stores = self.stores }
    if self.kind == "memory" then s.bytes, s.count = self.store.bytes, self.store.count end
    local copies = self.store.lru
    if copies then s.worker_bytes, s.worker_count = copies.bytes, copies.count end
    return s
end

function Cache:clear()
    if self.kind == "memory" then
        self.store = lru.new(self.max_bytes, core.now)
    else
        self.store:clear()
    end
end

--- A page call answered from the cache ({ cached = body, decode = fn, on_arrival = fn })
-- as Transport:finish answers one off the wire: 200, headers, decoded body, nrows, nkept.
function _M.response(call)
    local on_arrival = call.on_arrival
    if on_arrival then
        call.on_arrival = nil
        on_arrival()
    end
    local data, a, b, c, d, e = (call.decode or core.decode)(call.cached)
    if not data then
        return nil, errors.new("decode", "a cached page: " .. tostring(a), { code = "BAD_CACHE_ENTRY" })
    end
    return 200, {}, data, a, b, c, d, e
end

-- ===== one client's view: keys scoped by origin and API key =====

local Bound = {}
Bound.__index = Bound

-- Memory caches: a number per origin and key, kept here (the key never leaves this table).
local scope_ids, next_scope = {}, 0

local function scope_of(c, origin, api_key)
    if c.kind == "shared" then
        -- the same in every worker of the node (OpenResty has ngx.md5)
        return "leadpipe:" .. ngx.md5(origin .. "\0" .. api_key) .. ":"
    end
    local k = origin .. "\0" .. api_key
    local id = scope_ids[k]
    if not id then
        next_scope = next_scope + 1
        id = next_scope
        scope_ids[k] = id
    end
    return id .. ":"
end

--- The client's view of cache c (nil when c is nil).
function _M.bind(c, origin, api_key)
    if c == nil then return nil end
    return setmetatable({ cache = c, prefix = scope_of(c, origin, api_key) }, Bound)
end

local function page_key(self, aud, run_id, limit, offset)
    return self.prefix .. ("p:%s:%s:%d:%d"):format(aud, run_id, limit, offset)
end

--- The stored body of that page, or nil.
function Bound:page(aud, run_id, limit, offset)
    local c = self.cache
    local body = c.store:get(page_key(self, aud, run_id, limit, offset))
    if body then c.hits = c.hits + 1 else c.misses = c.misses + 1 end
    return body
end

--- Stores a page's body; the caller has checked that it is a 200 of a completed run.
function Bound:put_page(aud, run_id, limit, offset, body)
    local c = self.cache
    if type(body) ~= "string" then return end
    if c.kind == "memory" then body = core.body(body) end
    if c.store:set(page_key(self, aud, run_id, limit, offset), body, c.ttl) then
        c.stores = c.stores + 1
    end
end

--- latest_run's kept answer (a fresh table each time), or nil.
function Bound:latest_run(aud, status)
    local c = self.cache
    if c.latest_run_ttl <= 0 then return nil end
    local text = c.store:get(self.prefix .. "r:" .. aud .. ":" .. tostring(status))
    local run = text and core.decode(text)
    if type(run) == "table" then
        c.hits = c.hits + 1
        return run
    end
    c.misses = c.misses + 1
end

function Bound:put_latest_run(aud, status, run)
    local c = self.cache
    if c.latest_run_ttl <= 0 then return end
    local text = require("leadpipe.json").encode(run)
    local key = self.prefix .. "r:" .. aud .. ":" .. tostring(status)
    if text and c.store:set(key, text, c.latest_run_ttl) then
        c.stores = c.stores + 1
    end
end

return _M

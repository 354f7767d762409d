-- leadpipe.lru: a least-recently-used store of strings bounded by bytes, with an age limit
-- per entry; the memory behind leadpipe.cache.memory. Plain Lua, any host.
--
--   local s = lru.new(max_bytes, now)  -- now: a clock in seconds (core.now)
--   s:get(key) -> value | nil          -- a hit becomes the most recently used
--   s:set(key, value, ttl) -> true | false   -- replaces; false when value alone is larger
--                                      -- than max_bytes (nothing kept); ttl: seconds, or nil
--   s:delete(key)
--   s.bytes, s.count                   -- what it holds now
-- An entry counts #key + #value + OVERHEAD bytes (its Lua tables); the least recently used
-- entries go first when a set would pass max_bytes. Expired entries go when met.

local setmetatable = setmetatable

local _M = { _VERSION = require "leadpipe.version" }

local OVERHEAD = 120
_M.OVERHEAD = OVERHEAD

local Lru = {}
Lru.__index = Lru

-- The list: self.head (most recent) ... self.tail (least recent), nodes { key, value,
-- size, expires, newer, older }.
local function unlink(self, node)
    local newer, older = node.newer, node.older
    if newer then newer.older = older else self.head = older end
    if older then older.newer = newer else self.tail = newer end
    node.newer, node.older = nil, nil
end

local function push_head(self, node)
    local head = self.head
    node.older = head
    if head then head.newer = node else self.tail = node end
    self.head = node
end

local function remove(self, node)
    unlink(self, node)
    self.map[node.key] = nil
    self.bytes = self.bytes - node.size
    self.count = self.count - 1
end

function Lru:get(key)
    local node = self.map[key]
    if not node then return nil end
    if node.expires and self.now() >= node.expires then
        remove(self, node)
        return nil
    end
    if node ~= self.head then
        unlink(self, node)
        push_head(self, node)
    end
    return node.value
end

function Lru:delete(key)
    local node = self.map[key]
    if node then remove(self, node) end
end

function Lru:set(key, value, ttl)
    self:delete(key)
    local size = #key + #value + OVERHEAD
    if size > self.max_bytes then return false end
    while self.bytes + size > self.max_bytes do remove(self, self.tail) end
    local node = { key = key, value = value, size = size, expires = ttl and self.now() + ttl or nil }
    self.map[key] = node
    push_head(self, node)
    self.bytes = self.bytes + size
    self.count = self.count + 1
    return true
end

function _M.new(max_bytes, now)
    return setmetatable({ max_bytes = max_bytes, now = now, map = {}, bytes = 0, count = 0 }, Lru)
end

return _M

-- spec/support/fake_socket.lua: an object with the read side of an OpenResty cosocket
-- (receive(n), receiveany(max), settimeout(ms)) that replays scripted bytes, so the
-- HTTP/1.1 parser of the cosocket wire (wire/http1_parser.lua) runs in plain busted.
--
--   local sock = fake_socket.new({ "HTTP/1.1 200 OK\r\n", "Content-Length: 2\r\n\r\nok" },
--                                { finish = "closed" })
-- Each string of the script is what one receiveany returns at most (it never merges two,
-- like a network that delivers them in separate segments); receive(n) reads across them.
-- At the end of the script every read fails with opts.finish ("closed" by default;
-- "timeout" or "connection reset by peer" to act like those).

local _M = {}

local Sock = {}
Sock.__index = Sock

function _M.new(script, opts)
    return setmetatable({ script = script, i = 1, pos = 1, finish = opts and opts.finish or "closed",
                          reads = 0, timeouts = {} }, Sock)
end

function Sock:settimeout(ms)
    self.timeouts[#self.timeouts + 1] = ms
end

-- The unread rest of the current script item, or nil at the end.
local function current(self)
    while self.i <= #self.script do
        local s = self.script[self.i]
        if self.pos <= #s then return s end
        self.i, self.pos = self.i + 1, 1
    end
end

function Sock:receiveany(max)
    self.reads = self.reads + 1
    local s = current(self)
    if not s then return nil, self.finish end
    local data = s:sub(self.pos, self.pos + max - 1)
    self.pos = self.pos + #data
    return data
end

function Sock:receive(n)
    self.reads = self.reads + 1
    local parts, got = {}, 0
    while got < n do
        local s = current(self)
        if not s then return nil, self.finish, table.concat(parts) end
        local data = s:sub(self.pos, self.pos + (n - got) - 1)
        self.pos = self.pos + #data
        parts[#parts + 1] = data
        got = got + #data
    end
    return table.concat(parts)
end

return _M

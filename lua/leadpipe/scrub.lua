-- leadpipe.scrub: the one scrubber for everything that came from the network.
--
-- A server (or a proxy, or a log line it quotes) may echo the API key back: in an error
-- message, an error code, a request id, a run field, a header. Everything of that kind
-- goes through a scrubber before it reaches an error object, a page, a log event or
-- tostring. Rows (people data) and export CSV are data and pass through untouched.
--
-- Token rule: the key is masked only where it stands as a whole token, that is when the
-- byte before and the byte after it are not word bytes ([A-Za-z0-9_]) or the text's ends.
-- So a short key never mangles unrelated words ("k" leaves "key" alone). A key of
-- STRONG_LEN bytes or more cannot turn up inside an unrelated word by chance, so it is
-- masked wherever it appears, glued to other text or not. The percent-encoded form of
-- the key (as in a Location header) is masked by the same rules.
--
--   local s = scrub.new(key)
--   s(text)          -> text with the key masked (non-strings are returned as they are)
--   s.deep(value)    -> value with every string (keys too) scrubbed; tables in place
--   scrub.writer(out, key) -> an object with write(...) and flush() that writes to `out`
--                       (anything with :write) what it is given, key masked; the command
--                       line prints every server text through it (rows, CSV, runs, stats)
--
-- A writer masks whole lines: it holds back the text after the last newline until the
-- next one (or flush), since the key never holds a newline. A line that grows past
-- LINE_MAX bytes is let out but for its last bytes, which may begin the key.

local type, pairs, setmetatable = type, pairs, setmetatable
local concat = table.concat

local _M = { _VERSION = require "leadpipe.version" }

_M.MASK = "[REDACTED]"
_M.STRONG_LEN = 8

local MASK, STRONG_LEN = _M.MASK, _M.STRONG_LEN

local function is_word(byte)
    return byte ~= nil and (byte == 95 or (byte >= 48 and byte <= 57) or (byte >= 65 and byte <= 90)
        or (byte >= 97 and byte <= 122))
end

local function urlencode(s)
    return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- Masks occurrences of needle in s; `anywhere` skips the token boundary test.
local function mask(s, needle, anywhere)
    local a = s:find(needle, 1, true)
    if not a then return s end
    local out, i, n = {}, 1, #needle
    while a do
        local b = a + n - 1
        if anywhere or (not is_word(s:byte(a - 1)) and not is_word(s:byte(b + 1))) then
            out[#out + 1] = s:sub(i, a - 1)
            out[#out + 1] = MASK
            i = b + 1
            a = s:find(needle, i, true)
        else
            a = s:find(needle, a + 1, true)
        end
    end
    out[#out + 1] = s:sub(i)
    return concat(out)
end

-- s with key (and enc, its percent-encoded form) masked.
local function scrub_with(s, key, enc)
    if type(s) ~= "string" then return s end
    local anywhere = #key >= STRONG_LEN
    s = mask(s, key, anywhere)
    if enc ~= key then s = mask(s, enc, anywhere) end
    return s
end

--- scrub.string(s, key) -> s with the key masked (see the token rule above).
function _M.string(s, key)
    if type(s) ~= "string" or type(key) ~= "string" or key == "" then return s end
    return scrub_with(s, key, urlencode(key))
end

-- Tables nested deeper than this are left as they are (an error's `run` from the server is
-- two levels deep; this only bounds the walk of a hostile one).
local MAX_DEPTH = 64

local LINE_MAX = 1024 * 1024

local Writer = {}
Writer.__index = Writer

local function emit(self, text)
    if text == "" then return true end
    return self.out:write(scrub_with(text, self.key, self.enc))
end

function Writer:write(...)
    local buf = self.pending .. concat({ ... })
    local after = buf:match(".*()\n")
    local out
    if after then
        self.pending, out = buf:sub(after), buf:sub(1, after - 1)
    elseif #buf > LINE_MAX then
        local cut = #buf - self.hold
        self.pending, out = buf:sub(cut + 1), buf:sub(1, cut)
    else
        self.pending = buf
        return self
    end
    local ok, err = emit(self, out)
    if not ok then return nil, err end
    return self
end

function Writer:flush()
    local p = self.pending
    self.pending = ""
    local ok, err = emit(self, p)
    if not ok then return nil, err end
    if self.out.flush then return self.out:flush() end
    return true
end

--- scrub.writer(out, key) -> writer (see above).
function _M.writer(out, key)
    if type(key) ~= "string" or key == "" then return out end
    local enc = urlencode(key)
    return setmetatable({ out = out, key = key, enc = enc, pending = "", hold = #enc + 1 }, Writer)
end

local function deep(v, key, enc, depth)
    if type(v) == "string" then return scrub_with(v, key, enc) end
    if type(v) ~= "table" or depth > MAX_DEPTH then return v end
    local renamed
    for k, x in pairs(v) do
        local nx = deep(x, key, enc, depth + 1)
        if nx ~= x then v[k] = nx end
        if type(k) == "string" then
            local nk = scrub_with(k, key, enc)
            if nk ~= k then
                renamed = renamed or {}
                renamed[k] = nk
            end
        end
    end
    if renamed then
        for k, nk in pairs(renamed) do
            v[nk], v[k] = v[k], nil
        end
    end
    return v
end

--- scrub.deep(value, key) -> value with every string in it scrubbed (tables changed in place).
function _M.deep(v, key)
    if type(key) ~= "string" or key == "" then return v end
    return deep(v, key, urlencode(key), 0)
end

--- scrub.new(key) -> scrubber: callable with a string, with .deep(value) for tables.
-- (The key's encoded form is made once here: a client scrubs every page it reads.)
function _M.new(key)
    if type(key) ~= "string" or key == "" then
        return setmetatable({ deep = function(v) return v end }, { __call = function(_, s) return s end })
    end
    local enc = urlencode(key)
    return setmetatable({
        deep = function(v) return deep(v, key, enc, 0) end,
    }, { __call = function(_, s) return scrub_with(s, key, enc) end })
end

return _M

-- leadpipe.wire.http1_parser: the HTTP/1.1 the cosocket wire speaks (a request builder and
-- a response parser, not a wire), apart from any socket API so that it is tested with a
-- fake socket in plain Lua (spec/http1_spec.lua).
--
--   parse_url(url)            -> scheme, host, port, target, authority | nil, message
--   build_request(spec, authority, target, user_agent)
--                             -> array of strings for sock:send | nil, message
--       request line, Host, Accept-Encoding: gzip, the caller's headers (control characters
--       refused; Host, Content-Length, Transfer-Encoding, Connection are this module's),
--       User-Agent, Content-Length (always on POST/PUT/PATCH), the body
--   read_response(sock, opts) -> status, headers, body, keepalive
--                              | nil, message, kind, bytes_received
--       sock: anything with receive(n), receiveany(max), settimeout(ms) like a cosocket's;
--       opts: method (HEAD has no body), max_response, deadline and now (the socket's
--       timeout is set to what is left before every read)
--       status line (1xx skipped); header names lower-cased, repeats joined with ", ",
--       obsolete folding unfolded, the head capped at 1 MiB (kind "too_large"); body by
--       chunked (extensions and trailers ignored), Content-Length (repeats must agree) or
--       until close, capped at max_response (and so is the decoded body); gzip/deflate
--       through core.inflate; keepalive false after Connection: close, HTTP/1.0 without
--       keep-alive, a body read until close or bytes past the body. Kinds: "timeout",
--       "reset" (closed or reset by the peer), "too_large", "network" (anything malformed).
--   _M.io_kind(err)              -> the kind of a cosocket error string

local core = require "leadpipe.core"

local tonumber, tostring, pairs = tonumber, tostring, pairs
local concat = table.concat
local find, sub, lower, match, gsub = string.find, string.sub, string.lower, string.match, string.gsub
local floor = math.floor

local _M = { _VERSION = require "leadpipe.version" }

local HEADER_LIMIT = 1024 * 1024 -- bytes of status line + headers (libcurl's wire has the same)
local LINE_READ = 16384          -- receiveany size while reading the head (often the whole answer)
local BODY_READ = 65536          -- receiveany size for a body read until close

-- ===== URL and request =====

--- Splits an http(s) URL: scheme, host (brackets of an IPv6 literal removed), port,
-- target (path and query, at least "/"), authority (for the Host header); nil, message.
function _M.parse_url(url)
    local scheme, authority, rest = match(url, "^(%a[%w+.-]*)://([^/?#]*)(.*)$")
    if not scheme then return nil, "not an absolute URL" end
    scheme = lower(scheme)
    if scheme ~= "http" and scheme ~= "https" then
        return nil, "unsupported URL scheme " .. scheme
    end
    authority = gsub(authority, "^.*@", "")
    local host, port = match(authority, "^%[([^%]]+)%]:?(%d*)$")
    if not host then host, port = match(authority, "^([^:]+):?(%d*)$") end
    if not host or host == "" then return nil, "no host in the URL" end
    port = tonumber(port) or (scheme == "https" and 443 or 80)
    if port < 1 or port > 65535 then return nil, "bad port in the URL" end
    local target = gsub(rest, "#.*$", "")
    if target == "" then target = "/"
    elseif sub(target, 1, 1) == "?" then target = "/" .. target end
    return scheme, lower(host), port, target, authority
end

local function has_ctl(s)
    return find(s, "[%c]") ~= nil
end

--- The request head and body as one array of strings (sock:send takes a table).
-- spec: method, headers (name -> value), body; nil, message when a header is unsafe.
function _M.build_request(spec, authority, target, user_agent)
    local method = spec.method or "GET"
    local out = { method, " ", target, " HTTP/1.1\r\nHost: ", authority,
                  "\r\nAccept-Encoding: gzip\r\n" }
    local n = #out
    local seen_ua = false
    if spec.headers then
        for name, value in pairs(spec.headers) do
            name, value = tostring(name), tostring(value)
            if has_ctl(name) or has_ctl(value) or find(name, "[%s:]") then
                return nil, "header " .. ("%q"):format(name) .. " has characters HTTP forbids"
            end
            local lname = lower(name)
            if lname ~= "host" and lname ~= "content-length" and lname ~= "accept-encoding"
                    and lname ~= "transfer-encoding" and lname ~= "connection" then
                if lname == "user-agent" then seen_ua = true end
                out[n + 1], out[n + 2], out[n + 3], out[n + 4] = name, ": ", value, "\r\n"
                n = n + 4
            end
        end
    end
    if user_agent and not seen_ua then
        out[n + 1], out[n + 2], out[n + 3] = "User-Agent: ", user_agent, "\r\n"
        n = n + 3
    end
    local body = spec.body
    if body or method == "POST" or method == "PUT" or method == "PATCH" then
        out[n + 1], out[n + 2], out[n + 3] = "Content-Length: ", tostring(body and #body or 0), "\r\n"
        n = n + 3
    end
    out[n + 1] = "\r\n"
    if body and body ~= "" then out[n + 2] = body end
    return out
end

-- ===== the response parser =====

-- A buffered reader over a cosocket-like object. `deadline` (seconds on `now`'s clock)
-- bounds every read: the socket's timeout is set to what is left before each one.
local function new_reader(sock, deadline, now)
    return { sock = sock, buf = "", pos = 1, received = 0, deadline = deadline, now = now }
end

-- Socket error text -> kind.
function _M.io_kind(err)
    if err == "timeout" then return "timeout" end
    if err == "closed" or find(err, "reset", 1, true) or find(err, "broken pipe", 1, true) then
        return "reset"
    end
    return "network"
end

local function io_fail(what, err)
    if err == "timeout" then return nil, "timeout while " .. what, "timeout" end
    if err == "closed" then return nil, "the server closed the connection while " .. what, "reset" end
    return nil, tostring(err) .. " while " .. what, _M.io_kind(err)
end

-- Sets the socket's timeout to what is left; false when nothing is.
local function arm(r)
    if not r.deadline then return true end
    local left = r.deadline - r.now()
    if left <= 0 then return false end
    r.sock:settimeout(floor(left * 1000) + 1)
    return true
end

local function refill(r, what)
    if not arm(r) then return io_fail(what, "timeout") end
    local data, err = r.sock:receiveany(LINE_READ)
    if not data then return io_fail(what, err) end
    r.received = r.received + #data
    if r.pos > #r.buf then
        r.buf, r.pos = data, 1
    else
        r.buf, r.pos = sub(r.buf, r.pos) .. data, 1
    end
    return true
end

-- Reads one line (LF-terminated, a CR before it dropped). `budget` is what the line may
-- take at most, line end included. -> line, bytes consumed | nil, message, kind
local function read_line(r, budget, what)
    while true do
        local i = find(r.buf, "\n", r.pos, true)
        if i then
            local used = i - r.pos + 1
            if used > budget then break end
            local line = sub(r.buf, r.pos, i - 1)
            r.pos = i + 1
            if sub(line, -1) == "\r" then line = sub(line, 1, -2) end
            return line, used
        end
        if #r.buf - r.pos + 1 > budget then break end
        local ok, err, kind = refill(r, what)
        if not ok then return nil, err, kind end
    end
    return nil, "response too large: the headers exceed " .. HEADER_LIMIT .. " bytes", "too_large"
end

-- Reads exactly n bytes. -> data | nil, message, kind
local function read_exact(r, n, what)
    local have = #r.buf - r.pos + 1
    if have >= n then
        local data = sub(r.buf, r.pos, r.pos + n - 1)
        r.pos = r.pos + n
        return data
    end
    local head = have > 0 and sub(r.buf, r.pos) or ""
    r.buf, r.pos = "", 1
    if not arm(r) then return io_fail(what, "timeout") end
    local data, err = r.sock:receive(n - have)
    if not data then return io_fail(what, err) end
    r.received = r.received + #data
    return head .. data
end

-- Reads until the server closes, at most max bytes. -> data | nil, message, kind
local function read_to_close(r, max)
    local parts, total = {}, #r.buf - r.pos + 1
    if total > 0 then parts[1] = sub(r.buf, r.pos) end
    r.buf, r.pos = "", 1
    while true do
        if total > max then
            return nil, "response too large: the body exceeds max_response (" .. max .. " bytes)",
                "too_large"
        end
        if not arm(r) then return io_fail("reading the body", "timeout") end
        local data, err = r.sock:receiveany(BODY_READ)
        if not data then
            if err == "closed" then return concat(parts) end
            return io_fail("reading the body", err)
        end
        r.received = r.received + #data
        parts[#parts + 1] = data
        total = total + #data
    end
end

local function too_large_body(max)
    return nil, "response too large: the body exceeds max_response (" .. max .. " bytes)", "too_large"
end

local function malformed(what)
    return nil, "malformed chunked body: " .. what, "network"
end

local function read_chunked(r, max)
    local parts, total = {}, 0
    for _ = 1, 1e9 do -- bounded by max: every round takes at least one byte
        local line, err, kind = read_line(r, 4096, "reading a chunk size")
        if not line then
            if kind == "too_large" then return malformed("chunk size line too long") end
            return nil, err, kind
        end
        local hex = match(line, "^%s*(%x+)%s*;?") or match(line, "^%s*(%x+)%s*$")
        if not hex or #hex > 12 then
            return malformed("bad chunk size " .. ("%q"):format(sub(line, 1, 40)))
        end
        local size = tonumber(hex, 16)
        if size == 0 then
            -- trailers, up to the empty line
            local budget = HEADER_LIMIT
            while true do
                local t, used
                t, used, kind = read_line(r, budget, "reading the trailers")
                if not t then return nil, used, kind end
                if t == "" then return concat(parts) end
                budget = budget - used
            end
        end
        total = total + size
        if total > max then return too_large_body(max) end
        local data
        data, err, kind = read_exact(r, size, "reading a chunk")
        if not data then return nil, err, kind end
        parts[#parts + 1] = data
        line, err, kind = read_line(r, 2, "reading a chunk end")
        if not line then
            if kind == "too_large" then return malformed("no CRLF after a chunk") end
            return nil, err, kind
        end
        if line ~= "" then return malformed("no CRLF after a chunk") end
    end
end

-- Reads the status line (skipping 1xx answers) and the headers.
-- -> status, headers, http minor version | nil, message, kind
local function read_head(r)
    local budget = HEADER_LIMIT
    local status, minor
    while true do
        local line, used, kind = read_line(r, budget, "waiting for the response")
        if not line then return nil, used, kind end
        budget = budget - used
        if line ~= "" or status then -- tolerate one empty line before the status line
            local maj, mnr, code, after = match(line, "^HTTP/(%d)%.(%d) (%d%d%d)(.?)")
            if not maj or (after ~= "" and after ~= " ") then
                return nil, "malformed status line " .. ("%q"):format(sub(line, 1, 60)), "network"
            end
            status, minor = tonumber(code), tonumber(mnr)
            if maj ~= "1" then minor = 1 end
            local headers, last = {}, nil
            while true do
                line, used, kind = read_line(r, budget, "reading the headers")
                if not line then return nil, used, kind end
                budget = budget - used
                if line == "" then break end
                local c = sub(line, 1, 1)
                if c == " " or c == "\t" then
                    -- obsolete line folding: the line continues the previous header
                    if not last then return nil, "malformed header: folded first line", "network" end
                    local v = match(line, "^%s*(.-)%s*$")
                    headers[last] = headers[last] .. " " .. v
                else
                    local name, value = match(line, "^([^:%s]+)%s*:%s*(.-)%s*$")
                    if not name then
                        return nil, "malformed header line " .. ("%q"):format(sub(line, 1, 60)), "network"
                    end
                    name = lower(name)
                    local prev = headers[name]
                    headers[name] = prev and (prev .. ", " .. value) or value
                    last = name
                end
            end
            if status >= 200 or status == 101 then return status, headers, minor end
            status = nil -- 1xx (100 Continue, 103 Early Hints): the real answer follows
        end
    end
end

local function token_list_has(value, token)
    if not value then return false end
    for item in value:gmatch("[^,]+") do
        if lower(match(item, "^%s*(.-)%s*$")) == token then return true end
    end
    return false
end

--- Reads one response from a cosocket-like object.
-- opts: method (HEAD has no body), max_response (bytes), deadline and now (optional), keep
-- (a gzip 2xx body is inflated into a leadpipe.body, C memory the decoders read in place,
-- instead of a Lua string: see wire/curl.lua's wait).
-- -> status, headers, body, keepalive | nil, message, kind, bytes_received
-- `keepalive` is true when the connection may carry another request.
function _M.read_response(sock, opts)
    local r = new_reader(sock, opts.deadline, opts.now)
    local status, headers, minor = read_head(r)
    if not status then return nil, headers, minor, r.received end
    local max = opts.max_response or 256 * 1024 * 1024
    local conn = headers.connection
    local keepalive
    if minor == 0 then keepalive = token_list_has(conn, "keep-alive")
    else keepalive = not token_list_has(conn, "close") end
    local body, err, kind
    local te = headers["transfer-encoding"]
    if opts.method == "HEAD" or status == 204 or status == 304 then
        body = ""
    elseif te and not token_list_has(te, "identity") then
        if lower(match(te, "([^,%s]+)%s*$") or "") ~= "chunked" then
            return nil, "unsupported transfer-encoding " .. te, "network", r.received
        end
        body, err, kind = read_chunked(r, max)
    elseif headers["content-length"] then
        local cl = headers["content-length"]
        local n = match(cl, "^(%d+)$")
        if not n then
            -- "10, 10" from repeated headers is fine when every value agrees
            for v in cl:gmatch("[^,]+") do
                local d = match(v, "^%s*(%d+)%s*$")
                if not d or (n and d ~= n) then
                    return nil, "bad content-length " .. ("%q"):format(sub(cl, 1, 40)), "network", r.received
                end
                n = d
            end
        end
        if #n > 15 or tonumber(n) > max then
            return nil, "response too large: the body exceeds max_response (" .. max .. " bytes)",
                "too_large", r.received
        end
        body, err, kind = read_exact(r, tonumber(n), "reading the body")
    else
        keepalive = false
        body, err, kind = read_to_close(r, max)
    end
    if not body then return nil, err, kind, r.received end
    if r.pos <= #r.buf then keepalive = false end -- bytes past the answer: do not reuse
    local enc = headers["content-encoding"]
    if enc and body ~= "" then
        enc = lower(match(enc, "^%s*(.-)%s*$"))
        if enc == "gzip" or enc == "x-gzip" or enc == "deflate" then
            local out, ierr, ikind = core.inflate(body, max, opts.keep and status >= 200 and status < 300)
            if not out then
                if ikind == "too_large" then
                    return nil, "response too large: the decoded body exceeds max_response ("
                        .. max .. " bytes)", "too_large", r.received
                end
                return nil, "bad gzip body: " .. ierr, "network", r.received
            end
            body = #out > 0 and out or ""
        elseif enc ~= "identity" then
            return nil, "unsupported content-encoding " .. enc, "network", r.received
        end
    end
    return status, headers, body, keepalive
end

return _M

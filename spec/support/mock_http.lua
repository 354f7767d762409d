-- spec/support/mock_http.lua: the fake API (leadpipe.mock) as any HTTP client sees it, for
-- the mock specs: requests through the curl command, bodies decoded with lua-cjson, and the
-- running server every mock spec shares the setup of.
local cjson = require "cjson"
local assert = require "luassert"
local busted = require "busted"
local mock = require "leadpipe.mock"
local shell = require "spec.support.shell"

local quote, read_file = shell.quote, shell.read_file

local _M = {}

--- The Lua interpreter of the child-process cases.
_M.LUA = require("spec.support.cli_helpers").lua

--- parse_csv(text) -> records (spec/support/csv.lua).
_M.parse_csv = require("spec.support.csv").parse

function _M.sleep(seconds)
    os.execute("sleep " .. seconds)
end

-- Headers of the last response in a curl -D file: lower-case name -> value.
local function parse_headers(text)
    local headers = {}
    for line in (text or ""):gmatch("[^\r\n]*\r?\n") do
        line = line:gsub("\r?\n$", "")
        if line:match("^HTTP/") then
            headers = {}
        else
            local name, value = line:match("^([^:]+):%s*(.-)%s*$")
            if name then headers[name:lower()] = value end
        end
    end
    return headers
end

-- Runs curl with the given arguments; returns { status, exit, headers, body }.
local function curl(args)
    local hdr, out = os.tmpname(), os.tmpname()
    local cmd = { "curl", "-s", "--max-time", "30", "-D", quote(hdr), "-o", quote(out),
                  "-w", "'%{http_code}'" }
    for _, a in ipairs(args) do cmd[#cmd + 1] = quote(a) end
    local p = io.popen(table.concat(cmd, " ") .. " 2>/dev/null; echo \" $?\"")
    local text = p:read("*a")
    p:close()
    local code, exit = text:match("(%d%d%d)%s+(%d+)%s*$")  -- the last transfer's code
    local res = {
        status = tonumber(code),
        exit = tonumber(exit),
        headers = parse_headers(read_file(hdr)),
        body = read_file(out) or "",
    }
    os.remove(hdr)
    os.remove(out)
    return res
end

local function decode(res)
    local ok, value = pcall(cjson.decode, res.body)
    assert(ok, "not JSON: " .. res.body:sub(1, 200))
    return value
end

-- One request to the fake: opts.key (false: none), headers, body, compressed, base.
local function request(srv, method, path, opts)
    opts = opts or {}
    local args = { "-X", method }
    if opts.key ~= false then
        args[#args + 1] = "-H"
        args[#args + 1] = "x-api-key: " .. (opts.key or srv.api_key)
    end
    for _, h in ipairs(opts.headers or {}) do
        args[#args + 1] = "-H"
        args[#args + 1] = h
    end
    if opts.body then
        args[#args + 1] = "-H"
        args[#args + 1] = "Content-Type: application/json"
        args[#args + 1] = "--data-binary"
        args[#args + 1] = opts.body
    end
    if opts.compressed then args[#args + 1] = "--compressed" end
    args[#args + 1] = (opts.base or srv.url) .. path
    return curl(args)
end

local function runs_path(aud)
    return "/v1/intent/audiences/" .. aud .. "/runs"
end

local function create_run(srv, aud, key)
    local res = request(srv, "POST", runs_path(aud or srv.audience), {
        headers = key and { "Idempotency-Key: " .. key } or nil,
        body = '{"runType":"manual"}',
    })
    assert(res.status == 201 or res.status == 200, res.body)
    return decode(res).data, res
end

local function results(srv, aud, run_id, query, opts)
    return request(srv, "GET", runs_path(aud) .. "/" .. run_id .. "/results" .. (query or ""), opts)
end

local function is_uuid(s)
    return type(s) == "string" and
        s:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") ~= nil
end

local function is_iso(s)
    return type(s) == "string" and s:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$") ~= nil
end

local function find_audience(srv, pred)
    for _, a in ipairs(srv.audiences) do
        if pred(a) then return a.id end
    end
end

local function assert_error(res, status, code)
    assert.are.equal(status, res.status, res.body)
    local body = decode(res)
    assert.is_table(body.error, res.body)
    assert.are.equal(code, body.error.code)
    assert.is_string(body.error.message)
    assert.is_string(body.meta.request_id)
    assert.are.equal(res.headers["x-request-id"], body.meta.request_id)
    assert.is_true(is_iso(body.meta.timestamp))
    return body
end

--- fixture() -> f: a server shared by the blocks of one spec file. Call it in the file's
--- outer describe block: it registers the hooks there. Its setup sets f.srv, f.AUD1K (1,000
--- rows), f.AUD20K, f.AUD0 (empty) and f.AUDFAIL (failing); its teardown stops the server;
--- before each test it turns faults, latency and delays off, and after each it collects
--- garbage.
function _M.fixture()
    local f = {}
    busted.setup(function()
        f.srv = assert(mock.start{ seed = 1 })
        f.AUD1K = find_audience(f.srv, function(a) return a.rows == 1000 and not a.fail end)
        f.AUD20K = find_audience(f.srv, function(a) return a.rows == 20000 end)
        f.AUD0 = find_audience(f.srv, function(a) return a.rows == 0 end)
        f.AUDFAIL = find_audience(f.srv, function(a) return a.fail end)
    end)
    busted.teardown(function()
        f.srv:stop()
    end)
    busted.before_each(function()
        f.srv:configure{ faults = false, latency_ms = 0, queued_ms = 0, running_ms = 0, gzip = true }
    end)
    busted.after_each(function()
        collectgarbage()
    end)
    return f
end

_M.parse_headers, _M.curl, _M.decode, _M.request = parse_headers, curl, decode, request
_M.runs_path, _M.create_run, _M.results = runs_path, create_run, results
_M.is_uuid, _M.is_iso, _M.find_audience, _M.assert_error = is_uuid, is_iso, find_audience, assert_error

return _M

-- spec/support/openresty_app.lua: the handlers that spec/openresty_spec.lua and
-- bench/openresty.lua run inside a real nginx (see spec/support/openresty.lua for the
-- nginx.conf that calls them). It runs on LuaJIT inside the nginx worker; its settings come
-- from the module `leadpipe_test_cfg` that the harness writes into the nginx prefix.

local leadpipe = require "leadpipe"
local json = require "leadpipe.json"
local core = require "leadpipe.core"
local cfg = require "leadpipe_test_cfg"

local _M = {}

local client -- the worker's client, made in init_worker

local function new_client(opts)
    local o = { host = "openresty", api_key = cfg.api_key, base_url = cfg.base_url, timeout = 30,
                max_retries = 0 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return leadpipe.new(o)
end

local function reply(body)
    ngx.header["Content-Type"] = "application/json"
    ngx.say(json.encode(body))
end

local function err_table(err)
    return { kind = err.kind, code = err.code, message = err.message, retryable = err.retryable }
end

-- Tries a request in a phase without cosockets; records what happened in the shared dict.
function _M.try_in_phase(name, c)
    local ok, runs, err = pcall(function()
        return (c or client):list_runs(cfg.audience)
    end)
    local result
    if not ok then result = { raised = tostring(runs) }
    elseif runs then result = { ok = true }
    else result = err_table(err) end
    ngx.shared.results:set(name, json.encode(result))
    return result
end

function _M.init()
    -- A client may be made in init_by_lua, but nothing may be sent there.
    _M.try_in_phase("init", new_client())
end

function _M.init_worker()
    client = new_client()
    _M.try_in_phase("init_worker")
end

-- GET /result?name=phase -> what try_in_phase recorded
function _M.result()
    local v = ngx.shared.results:get(ngx.var.arg_name)
    ngx.say(v or "null")
end

-- Counts the people of the test run that match the where{} of the query, with `prefetch`
-- pages in flight. -> { count =, pages = }
local function count_people(c, args)
    local where = { min_score = tonumber(args.min_score or 0) }
    if args.seniority_at_least then where.seniority_at_least = args.seniority_at_least end
    local pages = 0
    local n = 0
    for _ in c:people(cfg.audience, cfg.run, {
        where = where, limit = tonumber(args.limit or 100), prefetch = tonumber(args.prefetch or 2),
        on_page = function() pages = pages + 1 end,
    }) do
        n = n + 1
    end
    return { count = n, pages = pages }
end
_M.count_people = count_people

-- GET /people?min_score=&seniority_at_least=&prefetch=&limit=&retries=
-- With retries, a new client that retries that often (quickly) reads the run.
function _M.people()
    local args = ngx.req.get_uri_args()
    local c = client
    if args.retries then
        c = new_client({ max_retries = tonumber(args.retries), backoff_base = 0.01, backoff_max = 0.05 })
    end
    local ok, res = pcall(count_people, c, args)
    if c ~= client then c:close() end
    if not ok then
        ngx.status = 502
        return reply(leadpipe.is_error(res) and err_table(res) or { raised = tostring(res) })
    end
    reply(res)
end

-- GET /changes?aud=&from=&to=&min_score= : client:changes through the worker's client
-- -> { added =, removed =, changed =, ids = "kind id" lines, sorted }
function _M.changes()
    local args = ngx.req.get_uri_args()
    local where = args.min_score and { min_score = tonumber(args.min_score) } or nil
    local counts, ids = { added = 0, removed = 0, changed = 0 }, {}
    local ok, err = pcall(function()
        for kind, row in client:changes(args.aud, args.from, args.to, { where = where }) do
            counts[kind] = counts[kind] + 1
            ids[#ids + 1] = kind .. " " .. row.hashedEmail
        end
    end)
    if not ok then
        ngx.status = 502
        return reply(leadpipe.is_error(err) and err_table(err) or { raised = tostring(err) })
    end
    table.sort(ids)
    counts.ids = table.concat(ids, "\n")
    reply(counts)
end

-- GET /one: one list_runs through the worker's client, timed inside the worker.
function _M.one()
    local t0 = core.now()
    local runs, err = client:list_runs(cfg.audience, { limit = 1 })
    local elapsed = core.now() - t0
    if not runs then return reply(err_table(err)) end
    reply({ elapsed = elapsed, runs = #runs })
end

-- GET /runs?base=<url>&verify=0 : list_runs through a new client for that base URL.
function _M.runs()
    local args = ngx.req.get_uri_args()
    local c = new_client({ base_url = args.base or cfg.base_url, verify = args.verify ~= "0",
                           connect_timeout = 2, timeout = 5 })
    local runs, err = c:list_runs(cfg.audience)
    c:close()
    if not runs then return reply(err_table(err)) end
    reply({ runs = #runs })
end

-- GET /deadline: a wire request to /slow with a 0.2 s deadline.
function _M.deadline()
    local wire = client.requester.wire
    local t0 = core.now()
    local h = wire:send{ method = "GET", url = cfg.self_url .. "/slow", headers = {} }
    local status, msg, kind = wire:wait(h, core.now() + 0.2)
    reply({ status = status, message = msg, kind = kind, elapsed = core.now() - t0 })
end

-- GET /cancel: starts two requests to /slow, cancels them, then one more request works.
function _M.cancel()
    local wire = client.requester.wire
    local t0 = core.now()
    local a = wire:send{ method = "GET", url = cfg.self_url .. "/slow", headers = {} }
    local b = wire:send{ method = "GET", url = cfg.self_url .. "/slow", headers = {} }
    wire:cancel(a)
    wire:cancel(b)
    wire:cancel(b)
    local _, _, kind = wire:wait(a)
    local runs = client:list_runs(cfg.audience)
    reply({ kind = kind, runs = runs and #runs, elapsed = core.now() - t0 })
end

-- GET /flaky: answers with keep-alive, then reads the next request on that connection and
-- hangs up without answering (a server that dropped an idle kept-alive connection).
function _M.flaky()
    local sock = assert(ngx.req.socket(true))
    sock:send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
    local next_request = sock:receiveuntil("\r\n\r\n")
    sock:settimeout(2000)
    next_request()
    ngx.shared.results:incr("flaky_hangups", 1, 0)
end

-- GET /stale: two requests in a row to /flaky through the wire; the second finds its kept-
-- alive connection dropped and must be sent again on another one.
function _M.stale()
    local wire = client.requester.wire
    local out = {}
    for i = 1, 2 do
        local status, _, body = wire:wait(wire:send{ method = "GET", url = cfg.self_url .. "/flaky" })
        out[i] = { status = status, body = body }
    end
    reply({ out = out, hangups = ngx.shared.results:get("flaky_hangups") })
end

-- GET /pages_closed: reads one page with 3 more in flight, then closes the iterator.
function _M.pages_closed()
    local iter, _, _, closer = client:pages(cfg.audience, cfg.run, { limit = 50, prefetch = 3 })
    local page = iter()
    getmetatable(closer).__close()
    local runs = client:list_runs(cfg.audience)
    reply({ first = #page.results, runs = runs and #runs })
end

-- GET /access and /rewrite: the request runs in that phase (stored in ngx.ctx).
function _M.in_phase()
    local ok, res = pcall(count_people, client, { min_score = 50, limit = 250 })
    ngx.ctx.result = ok and res or { raised = tostring(res) }
end

function _M.ctx_result()
    reply(ngx.ctx.result or { missing = true })
end

-- GET /timer: runs a request in an ngx.timer.at callback and waits for its result.
function _M.timer()
    local key = "timer" .. ngx.now() .. math.random()
    local ok, err = ngx.timer.at(0, function(premature)
        if premature then return end
        local okc, res = pcall(count_people, client, { min_score = 50, limit = 250 })
        ngx.shared.results:set(key, json.encode(okc and res or { raised = tostring(res) }))
    end)
    if not ok then return reply({ raised = err }) end
    for _ = 1, 200 do
        local v = ngx.shared.results:get(key)
        if v then
            ngx.header["Content-Type"] = "application/json"
            return ngx.say(v)
        end
        ngx.sleep(0.05)
    end
    reply({ missing = true })
end

-- GET /raw: the same request as /one with a bare cosocket (no leadpipe), for comparison:
-- pooled connection, Content-Length body, no gzip, no JSON decode.
function _M.raw()
    local t0 = core.now()
    local host, port = cfg.base_url:match("^http://([^:/]+):(%d+)")
    local sock = ngx.socket.tcp()
    sock:settimeouts(10000, 30000, 30000)
    local ok, err = sock:connect(host, tonumber(port), { pool = "raw" })
    if not ok then return reply({ raised = err }) end
    sock:send("GET /v1/intent/audiences/" .. cfg.audience .. "/runs?limit=1 HTTP/1.1\r\nHost: "
        .. host .. "\r\nx-api-key: " .. cfg.api_key .. "\r\n\r\n")
    local len
    while true do
        local line = sock:receive("*l")
        if not line then return reply({ raised = "closed" }) end
        if line == "" then break end
        len = len or tonumber(line:lower():match("^content%-length:%s*(%d+)"))
    end
    local body = sock:receive(len)
    sock:setkeepalive()
    reply({ elapsed = core.now() - t0, bytes = body and #body })
end

-- GET /export: export.csv of the test run (a redirect to the fake's file host, streamed).
function _M.export()
    local parts = {}
    local ok, err = client:export_csv(cfg.audience, cfg.run, { sink = function(chunk)
        parts[#parts + 1] = chunk
        return true
    end })
    if not ok then return reply(err_table(err)) end
    local csv = table.concat(parts)
    reply({ bytes = #csv, md5 = ngx.md5(csv) })
end

-- GET /pid: the worker's pid (the bench reads its CPU time in /proc).
function _M.pid()
    ngx.say(ngx.worker.pid())
end

return _M

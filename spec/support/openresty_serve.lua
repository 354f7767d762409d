-- spec/support/openresty_serve.lua: the /serve/* handlers that spec/openresty_serve_spec.lua
-- and bench/openresty_serve.lua run inside a real nginx (spec/support/openresty.lua writes
-- the nginx.conf): reads of a completed run through a client made once per worker and
-- configuration (rate gate of the client or of the node, cache none, memory or shared over
-- `lua_shared_dict leadpipe`), with a reader that may pause between pages.

local leadpipe = require "leadpipe"
local json = require "leadpipe.json"
local cfg = require "leadpipe_test_cfg"

local _M = {}

local clients = {} -- "gate/cache" -> the worker's client made that way
local caches = {}  -- "memory" | "shared" -> the worker's cache

local function reply(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(json.encode(body))
end

local function err_table(err)
    if not leadpipe.is_error(err) then return { raised = tostring(err) } end
    return { kind = err.kind, code = err.code, message = err.message, rows = err.rows, offset = err.offset }
end

local function cache_of(kind)
    if kind == "none" then return nil end
    if not caches[kind] then
        caches[kind] = kind == "shared" and leadpipe.cache.shared("leadpipe", { latest_run_ttl = 5 })
            or kind == "shared_copies" and leadpipe.cache.shared("leadpipe",
                { latest_run_ttl = 5, worker_bytes = 64 * 1024 * 1024 })
            or kind == "shared_copies_1s" and leadpipe.cache.shared("leadpipe",
                { ttl = 1, worker_bytes = 64 * 1024 * 1024 })
            or leadpipe.cache.memory{ max_bytes = 256 * 1024 * 1024, latest_run_ttl = 5 }
    end
    return caches[kind]
end

-- The worker's client for ?gate=local|shared&cache=none|memory|shared&retries=N.
local function client_of(args)
    local key = (args.gate or "local") .. "/" .. (args.cache or "none") .. "/" .. (args.retries or "6")
    local c = clients[key]
    if not c then
        c = leadpipe.new{
            host = "openresty", api_key = cfg.api_key, base_url = cfg.base_url, timeout = 30,
            max_retries = tonumber(args.retries or 6), backoff_base = 0.01, backoff_max = 0.05,
            gate = args.gate == "shared" and leadpipe.gate.shared("leadpipe") or nil,
            cache = cache_of(args.cache or "none"),
        }
        clients[key] = c
    end
    return c
end

-- GET /serve/read?min_score=&limit=&prefetch=&pause=&every=&deadline=&run=&aud=&mode= (and
-- the client's options above): the rows of the run that pass min_score, counted, each
-- checked to come once (`missed`: the pages the cache did not hold); the reader sleeps
-- `pause` s after every `every`-th page. With mode=count, client:count answers instead
-- ({ count =, rows = }: no row is built).
local function read(args)
    local c = client_of(args)
    local pause, every = tonumber(args.pause or 0), tonumber(args.every or 1)
    local pages, n, unique, seen = 0, 0, 0, {}
    local t0 = ngx.now()
    local cache = caches[args.cache or "none"]
    local misses0 = cache and cache:stats().misses
    local aud, run = args.aud or cfg.audience, args.run or cfg.run
    local opts = {
        where = { min_score = tonumber(args.min_score or 0) }, limit = tonumber(args.limit or 100),
        prefetch = args.prefetch and tonumber(args.prefetch) or nil,
        deadline = args.deadline and tonumber(args.deadline) or nil,
    }
    if args.mode == "count" then
        -- the same question through client:count: rows looked over in the decoder, none built
        local ok, kept, rows = pcall(c.count, c, aud, run, opts)
        ngx.update_time()
        local res = { pid = ngx.worker.pid(), elapsed = ngx.now() - t0,
                      missed = cache and cache:stats().misses - misses0 }
        if ok then res.count, res.rows = kept, rows else res.error = err_table(kept) end
        return ok and 200 or 502, res
    end
    local ok, err = pcall(function()
        opts.on_page = function()
            pages = pages + 1
            if pause > 0 and pages % every == 1 then ngx.sleep(pause) end
        end
        for row in c:people(aud, run, opts) do
            n = n + 1
            if not seen[row.hashedEmail] then
                seen[row.hashedEmail] = true
                unique = unique + 1
            end
        end
    end)
    ngx.update_time()
    local res = { count = n, unique = unique, pages = pages, pid = ngx.worker.pid(),
                  elapsed = ngx.now() - t0, missed = cache and cache:stats().misses - misses0 }
    if not ok then res.error = err_table(err) end
    return ok and 200 or 502, res
end

-- GET /serve/latest?cache=: latest_run of the test audience (completed runs).
local function latest(args)
    local run, err = client_of(args):latest_run(args.aud or cfg.audience, { status = "completed" })
    if not run then return 502, { error = err_table(err) } end
    return 200, { id = run.id, pid = ngx.worker.pid() }
end

-- GET /serve/stats?cache=: the worker's cache counts.
local function stats(args)
    local c = cache_of(args.cache or "memory")
    return 200, { stats = c and c:stats(), pid = ngx.worker.pid() }
end

-- GET /serve/clear?cache=: cache:clear() in this worker.
local function clear(args)
    cache_of(args.cache or "memory"):clear()
    return 200, { pid = ngx.worker.pid() }
end

local HANDLERS = { ["/serve/read"] = read, ["/serve/latest"] = latest, ["/serve/stats"] = stats,
                   ["/serve/clear"] = clear }

function _M.handle()
    local h = HANDLERS[ngx.var.uri]
    if not h then return reply(404, { error = "no such handler" }) end
    local ok, status, body = pcall(h, ngx.req.get_uri_args())
    if not ok then return reply(500, { raised = tostring(status) }) end
    reply(status, body)
end

return _M

-- OpenResty handler for nginx.conf beside it: GET /leads returns the best people of the
-- audience's latest completed run.
--
-- Query arguments (all optional):
--   run=<uuid>                 read this run instead of the latest completed one
--   audience=<uuid>            default: $LEADPIPE_AUDIENCE_ID
--   top=<n>                    how many people, 1-100 (default 10)
--   min_score, max_score, seniority, seniority_at_least, department, country, topic, has
--                              filters, as in leadpipe.filter.where (lists comma-separated)
-- Answers 200 {"run":..., "matched":n, "people":[...]}, 400 for bad or unknown arguments, 502 when
-- the API fails (or the audience's newest run failed), 504 when a run takes too long or the
-- read does not end within DEADLINE seconds.
--
-- Runs cost money, so a GET never queues one when it can avoid it: it reads the newest
-- completed run (remembered per worker for RUN_TTL seconds), waits for a run that is
-- already queued or running, and queues one only when the audience has no run at all, with
-- a fixed Idempotency-Key so that workers racing to do it make one run between them. When
-- the newest run failed or was cancelled it answers 502 instead of paying for another.
--
-- One client per nginx worker, made in init_worker_by_lua: its requests go over cosockets
-- (nginx's resolver, lua_ssl_trusted_certificate and keep-alive pool apply) and every wait
-- (for the run, between retries, for each page) yields to nginx, so the worker keeps
-- serving other requests meanwhile. The pages of a completed run are read from the API
-- once and then from `lua_shared_dict leadpipe` (leadpipe.cache.shared), by every worker;
-- a 429 seen by one worker pauses them all.

-- luacheck: globals ngx (the handler sets ngx.status and response headers)

local leadpipe = require "leadpipe"
local json = require "leadpipe.json"

local filter = leadpipe.filter

local _M = {}

local LIST_KEYS = { seniority = true, department = true, country = true, topic = true, has = true }
local NUMBER_KEYS = { min_score = true, max_score = true }

local function reply(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.say(json.encode(body))
    return ngx.exit(status)
end

-- The query arguments GET /leads knows: a misspelt one (min_scroe=80) is a 400 that names
-- it and the known ones, never 200 with the filter left out.
local KNOWN = { audience = true, run = true, top = true }
for _, key in ipairs(filter.where_keys) do KNOWN[key] = true end

local function unknown_arg(args)
    local names = {}
    for name in pairs(KNOWN) do names[#names + 1] = name end
    table.sort(names)
    local bad = {}
    for name in pairs(args) do
        if not KNOWN[name] then bad[#bad + 1] = tostring(name) end
    end
    if #bad == 0 then return nil end
    table.sort(bad)
    return ("unknown query argument %q; write one of: %s"):format(bad[1], table.concat(names, ", "))
end

-- Builds a where{} table from the query arguments; nil, message on a bad one.
local function where_from(args)
    local where = {}
    for _, key in ipairs(filter.where_keys) do
        local v = args[key]
        if type(v) == "table" then v = v[#v] end -- repeated argument: the last one wins
        if v ~= nil and v ~= true then
            if NUMBER_KEYS[key] then
                v = tonumber(v)
                if not v then return nil, key .. " must be a number" end
            elseif LIST_KEYS[key] then
                local list = {}
                for item in tostring(v):gmatch("[^,]+") do
                    list[#list + 1] = key == "topic" and tonumber(item) or item
                end
                v = list
            end
            where[key] = v
        end
    end
    local ok, pred = pcall(filter.where, where)
    if not ok then return nil, (tostring(pred):gsub("^[^:]*:%d+: ", "")) end
    return pred
end

local function status_for(err)
    if err.kind == "invalid_argument" then return 400 end
    if err.kind == "timeout" then return 504 end
    return 502
end

local RUN_TTL = 300 -- seconds a worker serves the run it found before asking for a newer one
local DEADLINE = 10 -- seconds a GET may spend reading a run

local client, client_err -- this worker's client
local latest = {}        -- audience id -> { id =, at = }: the run this worker serves

--- init_worker_by_lua: makes the worker's client (no request is sent here: cosockets do
-- not work in that phase).
function _M.init_worker()
    local ok, c = pcall(function()
        return leadpipe.new{ host = "openresty", timeout = 30, cache = leadpipe.cache.shared("leadpipe") }
    end)
    if ok then
        client = c
    else
        client_err = tostring(c)
        ngx.log(ngx.ERR, "leadpipe: ", client_err)
    end
end

-- The run to serve for an audience (see the header). -> run id | nil, err
local function latest_run(audience)
    local known = latest[audience]
    if known and ngx.now() - known.at < RUN_TTL then return known.id end
    local runs, err = client:list_runs(audience, { limit = 25 }) -- newest first
    if not runs then return nil, err end
    local pending
    for _, run in ipairs(runs) do
        if run.status == "completed" then
            latest[audience] = { id = run.id, at = ngx.now() }
            return run.id
        end
        if not pending and (run.status == "queued" or run.status == "running") then pending = run end
    end
    if not pending and runs[1] then
        local run = runs[1]
        return nil, leadpipe.errors.new("run_failed", "the newest run " .. run.id .. " is " .. run.status
            .. (run.errorMessage and (": " .. run.errorMessage) or "")
            .. "; queue a new run by hand (a GET does not pay for one)", { run = run })
    end
    if not pending then
        local key = "leads-example-first-run-" .. audience
        pending, err = client:create_run(audience, { idempotency_key = key })
        if not pending then return nil, err end
    end
    local done
    done, err = client:wait_run(audience, pending.id, { timeout = 50 })
    if not done then return nil, err end
    latest[audience] = { id = pending.id, at = ngx.now() }
    return pending.id
end

function _M.handle()
    if not client then return reply(500, { error = client_err or "no leadpipe client" }) end
    local args = ngx.req.get_uri_args()
    local unknown = unknown_arg(args)
    if unknown then return reply(400, { error = unknown }) end
    local audience = args.audience or os.getenv("LEADPIPE_AUDIENCE_ID")
    local top = tonumber(args.top or 10)
    if not top or top < 1 or top > 100 or top % 1 ~= 0 then
        return reply(400, { error = "top must be an integer from 1 to 100" })
    end
    local pred, werr = where_from(args)
    if not pred then return reply(400, { error = werr }) end

    local run_id = args.run
    if not run_id then
        local err
        run_id, err = latest_run(audience)
        if not run_id then return reply(status_for(err), { error = tostring(err) }) end
    end

    local matched = 0
    local ok, best = pcall(function()
        local rows = client:people(audience, run_id, { limit = 500, filter = pred, deadline = DEADLINE })
        local kept = leadpipe.iter.map(rows, function(row)
            matched = matched + 1
            return row
        end)
        return leadpipe.iter.top(kept, top)
    end)
    if not ok then
        local err = best
        if leadpipe.is_error(err) then
            return reply(status_for(err), { error = tostring(err), run = run_id })
        end
        error(err, 0)
    end
    return reply(200, { run = run_id, matched = matched, people = json.array(best) })
end

return _M

-- OpenResty handler for nginx.conf beside it: GET /leads returns the best people of a run.
--
-- Query arguments (all optional):
--   run=<uuid>                 read this run; without it a new run is queued and awaited
--   audience=<uuid>            default: $LEADPIPE_AUDIENCE_ID
--   top=<n>                    how many people, 1-100 (default 10)
--   min_score, max_score, seniority, seniority_at_least, department, country, topic, has
--                              filters, as in leadpipe.filter.where (lists comma-separated)
-- Answers 200 {"run":..., "matched":n, "people":[...]}, 400 for bad arguments, 502 when the
-- API fails, 504 when the run takes too long.
--
-- Waiting (for the run, between retries, for each page) goes through ngx.sleep, so the
-- worker keeps serving other requests meanwhile.

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

function _M.handle()
    local args = ngx.req.get_uri_args()
    local audience = args.audience or os.getenv("LEADPIPE_AUDIENCE_ID")
    local top = tonumber(args.top or 10)
    if not top or top < 1 or top > 100 or top % 1 ~= 0 then
        return reply(400, { error = "top must be an integer from 1 to 100" })
    end
    local pred, werr = where_from(args)
    if not pred then return reply(400, { error = werr }) end

    -- One client per request: its connections live as long as the request.
    local ok, client = pcall(leadpipe.new, { host = "openresty", timeout = 30 })
    if not ok then return reply(500, { error = tostring(client) }) end

    local run_id = args.run
    if not run_id then
        local run, err = client:create_run(audience)
        if not run then return reply(status_for(err), { error = tostring(err) }) end
        run_id = run.id
        local done
        done, err = client:wait_run(audience, run_id, { timeout = 50 })
        if not done then return reply(status_for(err), { error = tostring(err), run = run_id }) end
    end

    local matched = 0
    local ok2, best = pcall(function()
        local kept = filter.map(client:people(audience, run_id, { limit = 500, filter = pred }), function(row)
            matched = matched + 1
            return row
        end)
        return filter.top(kept, top)
    end)
    client:close()
    if not ok2 then
        local err = best
        if leadpipe.is_error(err) then
            return reply(status_for(err), { error = tostring(err), run = run_id })
        end
        error(err, 0)
    end
    return reply(200, { run = run_id, matched = matched, people = json.array(best) })
end

return _M

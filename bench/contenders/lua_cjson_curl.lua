-- bench/contenders/lua_cjson_curl.lua: the benchmark job hand-written in plain Lua with
-- lua-cjson and one `curl` process per request (io.popen), no leadpipe.
--
--   lua5.4 bench/contenders/lua_cjson_curl.lua URL KEY AUDIENCE IDEMPOTENCY_KEY [filtered|all]
--
-- Creates the run with the Idempotency-Key (so every contender reads the same run), polls
-- the first page until HTTP 200, reads limit=500 pages until offset + #results >= total,
-- keeps intent.score >= 80 and seniority director/vp/c_suite ("all": every row), and
-- prints "rows=N kept=M".
local cjson = require "cjson"

local LIMIT = 500
local MAX_POLLS = 600       -- 0.1 s apart
local MAX_PAGES = 1000000
local SENIOR = { director = true, vp = true, c_suite = true }

local url, key, aud, idem, mode = arg[1], arg[2], arg[3], arg[4], arg[5] or "filtered"
if not (url and key and aud and idem) or (mode ~= "filtered" and mode ~= "all") then
    io.stderr:write("usage: lua_cjson_curl.lua URL KEY AUDIENCE IDEMPOTENCY_KEY [filtered|all]\n")
    os.exit(2)
end

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- curl(args) -> status, body. The status comes after the body, on a line of its own.
local function curl(args)
    local p = assert(io.popen("curl -sS -H " .. quote("x-api-key: " .. key)
        .. " -w '\\n%{http_code}' " .. args))
    local out = p:read("*a")
    p:close()
    local body, status = out:match("^(.*)\n(%d+)$")
    return tonumber(status), body
end

local base = url .. "/v1/intent/audiences/" .. aud .. "/runs"
local status, body = curl("-X POST -H " .. quote("Idempotency-Key: " .. idem)
    .. " -H 'Content-Type: application/json' -d '{\"runType\":\"manual\"}' " .. quote(base))
if status ~= 200 and status ~= 201 then
    error("create run: HTTP " .. tostring(status))
end
local run_id = cjson.decode(body).data.id
local results = base .. "/" .. run_id .. "/results?limit=" .. LIMIT .. "&offset="

local data
for _ = 1, MAX_POLLS do
    status, body = curl(quote(results .. "0"))
    if status == 200 then
        data = cjson.decode(body).data
        break
    end
    if status ~= 202 then error("results: HTTP " .. tostring(status)) end
    os.execute("sleep 0.1")
end
if not data then error("run not ready") end

local null = cjson.null
local rows, kept, offset = 0, 0, 0
for _ = 1, MAX_PAGES do
    local page = data.results
    local n = #page
    rows = rows + n
    if mode == "all" then
        kept = kept + n
    else
        for i = 1, n do
            local p = page[i]
            local intent = p.intent
            local score = intent ~= null and intent and intent.score
            if score and score ~= null and score >= 80 and SENIOR[p.seniority] then
                kept = kept + 1
            end
        end
    end
    if n == 0 or offset + n >= data.total then break end
    offset = offset + n
    status, body = curl(quote(results .. offset))
    if status ~= 200 then error("page at " .. offset .. ": HTTP " .. tostring(status)) end
    data = cjson.decode(body).data
end
io.stdout:write(("rows=%d kept=%d\n"):format(rows, kept))

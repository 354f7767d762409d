-- bench/contenders/floor_parallel.lua: the floor. No filter, no pipeline: create the run,
-- read the first page (for total), then fetch every other page at once with one
-- `curl --parallel` (up to 50 transfers in flight, curl's default) into memory (a tmpfs
-- directory under /dev/shm when there is one), then decode each page with lua-cjson.
--
--   lua5.4 bench/contenders/floor_parallel.lua URL KEY AUDIENCE IDEMPOTENCY_KEY [MODE]
--
-- Prints "rows=N kept=-" (it filters nothing; MODE is accepted and ignored).
local cjson = require "cjson"

local LIMIT = 500
local MAX_POLLS = 600       -- 0.1 s apart
local PARALLEL = 50

local url, key, aud, idem = arg[1], arg[2], arg[3], arg[4]
if not (url and key and aud and idem) then
    io.stderr:write("usage: floor_parallel.lua URL KEY AUDIENCE IDEMPOTENCY_KEY [MODE]\n")
    os.exit(2)
end

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    return out
end

local function curl(args)
    local out = sh("curl -sS -H " .. quote("x-api-key: " .. key) .. " -w '\\n%{http_code}' " .. args)
    local body, status = out:match("^(.*)\n(%d+)$")
    return tonumber(status), body
end

local base = url .. "/v1/intent/audiences/" .. aud .. "/runs"
local status, body = curl("-X POST -H " .. quote("Idempotency-Key: " .. idem)
    .. " -H 'Content-Type: application/json' -d '{\"runType\":\"manual\"}' " .. quote(base))
if status ~= 200 and status ~= 201 then error("create run: HTTP " .. tostring(status)) end
local run_id = cjson.decode(body).data.id
local results = base .. "/" .. run_id .. "/results?limit=" .. LIMIT .. "&offset="

local first
for _ = 1, MAX_POLLS do
    status, first = curl(quote(results .. "0"))
    if status == 200 then break end
    if status ~= 202 then error("results: HTTP " .. tostring(status)) end
    os.execute("sleep 0.1")
end
if status ~= 200 then error("run not ready") end
local total = cjson.decode(first).data.total

-- every other page in one curl --parallel, one file each in a tmpfs directory
local dir = sh("mktemp -d -p /dev/shm 2>/dev/null || mktemp -d"):match("^%s*(.-)%s*$")
assert(dir ~= "", "mktemp failed")
local bodies = { first }
local ok, err = pcall(function()
    local files, config = {}, {}
    for offset = LIMIT, total - 1, LIMIT do
        local f = dir .. "/" .. offset
        files[#files + 1] = f
        config[#config + 1] = ('url = "%s%d"\noutput = "%s"\n'):format(results, offset, f)
    end
    if #files == 0 then return end
    local cfg = dir .. "/curl.cfg"
    local h = assert(io.open(cfg, "w"))
    h:write('header = "x-api-key: ', key, '"\n', table.concat(config))
    h:close()
    local codes = sh(("curl -sS --no-progress-meter --fail --parallel --parallel-immediate "
        .. "--parallel-max %d -w '%%{http_code}\\n' -K %s"):format(PARALLEL, quote(cfg)))
    local n = 0
    for code in codes:gmatch("%d+") do
        if code ~= "200" then error("a page answered HTTP " .. code) end
        n = n + 1
    end
    if n ~= #files then error(("%d pages asked, %d answered"):format(#files, n)) end
    for i, f in ipairs(files) do
        local fh = assert(io.open(f, "rb"))
        bodies[i + 1] = fh:read("*a")
        fh:close()
    end
end)
os.execute("rm -rf " .. quote(dir))
if not ok then error(err, 0) end

local rows = 0
for i = 1, #bodies do
    rows = rows + #cjson.decode(bodies[i]).data.results
end
io.stdout:write(("rows=%d kept=-\n"):format(rows))

-- export_audience: find a saved audience by name, take its newest completed run (or queue
-- one and wait), stream the run's CSV export to a file at constant memory, and ask for a
-- stored export's signed download URL.
--
--   lua5.4 examples/export_audience.lua [NAME] [FILE]     (LUA_PATH/LUA_CPATH as in the Makefile)
--
-- NAME defaults to "medium", FILE to a new temporary file (its name is printed): nothing
-- is written where you run it unless you say where. Without LEADPIPE_API_KEY it starts the
-- fake Leadpipe API in this process and uses it; with it, the real API (and
-- LEADPIPE_BASE_URL if set).

local leadpipe = require "leadpipe"

local name, file = arg[1] or "medium", arg[2] or os.tmpname()

local function say(...)
    io.stderr:write("export_audience: ", ...)
    io.stderr:write("\n")
end

local function fail(msg)
    say(tostring(msg))
    os.exit(1)
end

local client_opts, server = {}, nil
local api_key = os.getenv("LEADPIPE_API_KEY")
if api_key == nil or api_key == "" then
    server = require("leadpipe.mock").start{ queued_ms = 200, running_ms = 200 }
    say("LEADPIPE_API_KEY is not set: using the fake Leadpipe API at ", server.url)
    client_opts = { api_key = server.api_key, base_url = server.url }
end
local client = leadpipe.new(client_opts)

-- the audience, by name
local audiences, err = client:audiences{ limit = 100 }
if not audiences then fail(err) end
local audience
for _, a in ipairs(audiences) do
    if a.name == name then audience = a end
end
if not audience then fail("no audience named " .. name) end
say("audience ", audience.id, " (", audience.status, ", ", tostring(audience.audienceSize), " people)")

-- its newest completed run, or a new one
local run = client:latest_run(audience.id, { status = "completed" })
if not run then
    run, err = client:create_run(audience.id)
    if not run then fail(err) end
    say("no completed run: queued ", run.id)
end

-- the CSV, streamed to FILE (waits for a pending run; no file is left on failure)
local r
r, err = client:export_csv(audience.id, run.id, { path = file, timeout = 600 })
if not r then fail(err) end
say(("wrote %s: %d bytes (the API caps an export at %s rows)"):format(r.path, r.bytes,
    tostring(r.row_cap)))

-- a stored export: a signed URL that needs no API key
local stored
stored, err = client:create_export(audience.id, run.id)
if not stored then fail(err) end
print(stored.downloadUrl)
say("download URL valid until ", tostring(stored.downloadUrlExpiresAt))

client:close()
if server then server:stop() end

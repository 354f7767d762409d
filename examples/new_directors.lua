-- new_directors: who is new since yesterday among directors and above with intent >= 80.
-- Compares an audience's two latest completed runs (daily runs: yesterday's and today's)
-- with client:changes, and prints the newcomers as a table, then who heated up (crossed
-- 80 since yesterday) and how many dropped out.
--
--   lua5.4 examples/new_directors.lua [MIN_SCORE]     (LUA_PATH/LUA_CPATH as in the Makefile)
--
-- Without LEADPIPE_API_KEY it starts the fake Leadpipe API in this process (its "daily"
-- audience has three completed daily runs). With LEADPIPE_API_KEY set it uses the real API
-- and the audience in LEADPIPE_AUDIENCE_ID (and LEADPIPE_BASE_URL if set).

local leadpipe = require "leadpipe"
local format = require "leadpipe.format"

local function say(...)
    io.stderr:write("new_directors: ", ...)
    io.stderr:write("\n")
end

local min_score = tonumber(arg[1] or "80")
if not min_score then
    say("MIN_SCORE must be a number, got ", tostring(arg[1]))
    os.exit(2)
end

local client_opts, audience, server = {}, os.getenv("LEADPIPE_AUDIENCE_ID"), nil
local api_key = os.getenv("LEADPIPE_API_KEY")
if api_key == nil or api_key == "" then
    local mock = require "leadpipe.mock"
    server = assert(mock.start{})
    say("LEADPIPE_API_KEY is not set: using the fake Leadpipe API at ", server.url)
    client_opts = { api_key = server.api_key, base_url = server.url }
    audience = mock.AUDIENCE.daily
elseif audience == nil or audience == "" then
    say("LEADPIPE_API_KEY is set: set LEADPIPE_AUDIENCE_ID to the daily audience to compare")
    os.exit(2)
end

local client = leadpipe.new(client_opts)
local runs, err = client:latest_runs(audience, 2)
if not runs then
    say(tostring(err))
    os.exit(1)
end
local today, yesterday = runs[1], runs[2]
say(("comparing run %s (%s) with run %s (%s)"):format(yesterday.id, tostring(yesterday.dataDate),
    today.id, tostring(today.dataDate)))

local where = { min_score = min_score, seniority_at_least = "director" }
local new, heated, gone = {}, {}, 0
for change, person, fields in client:changes(audience, yesterday.id, today.id, { where = where }) do
    if change == "added" then
        new[#new + 1] = person
    elseif change == "removed" then
        gone = gone + 1
    else
        for _, f in ipairs(fields) do
            -- heated up: the score crossed the bar since yesterday
            if f.field == "intent.score" and (f.old or 0) < min_score then
                heated[#heated + 1] = { person = person, old = f.old }
            end
        end
    end
end
client:close()
if server then server:stop() end

print(("%d new directors and above with intent >= %s since %s:"):format(#new, min_score,
    tostring(yesterday.dataDate)))
print("")
local lines = format.table_lines(new, { "fullName", "jobTitle", "company.name", "intent.score" })
for _, line in ipairs(lines) do print(line) end
print("")
print(("%d heated up past %s:"):format(#heated, min_score))
for _, h in ipairs(heated) do
    print(("  %s (%s): %s -> %s"):format(tostring(h.person.fullName), h.person.jobTitle or "no title",
        tostring(h.old or "none"), tostring(h.person.intent.score)))
end
print("")
print(("%d dropped out of the audience."):format(gone))

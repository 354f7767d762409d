-- quickstart: queue a run of a saved audience, wait for it, read every person page by page,
-- keep intent >= 80 and director or above, print the 10 best as a table and a summary.
--
--   make demo                                 (builds first, then runs this file)
--   lua5.4 examples/quickstart.lua            (with LUA_PATH/LUA_CPATH as in the Makefile)
--
-- Without LEADPIPE_API_KEY it starts the fake Leadpipe API in this process and uses it.
-- With LEADPIPE_API_KEY set it uses the real API and the audience in LEADPIPE_AUDIENCE_ID
-- (and LEADPIPE_BASE_URL if set).

local leadpipe = require "leadpipe"
local format = require "leadpipe.format"
local now = require("leadpipe.core").now

local it = leadpipe.iter

local function say(...)
    io.stderr:write("quickstart: ", ...)
    io.stderr:write("\n")
end

local function fail(msg)
    say(tostring(msg))
    os.exit(1)
end

-- ----- where to read from --------------------------------------------------------------------

local client_opts, audience, server = {}, os.getenv("LEADPIPE_AUDIENCE_ID"), nil
local api_key = os.getenv("LEADPIPE_API_KEY")
if api_key == nil or api_key == "" then
    local mock = require "leadpipe.mock"
    -- a run stays queued, then running, for a moment, as a real one does
    server = mock.start{ queued_ms = 300, running_ms = 400 }
    say("LEADPIPE_API_KEY is not set: using the fake Leadpipe API started in this process at ",
        server.url)
    client_opts = { api_key = server.api_key, base_url = server.url }
    audience = mock.AUDIENCE.medium -- 20,000 people
elseif audience == nil or audience == "" then
    say("LEADPIPE_API_KEY is set: set LEADPIPE_AUDIENCE_ID to the saved audience to run")
    os.exit(2)
end

local client = leadpipe.new(client_opts)
local started = now()

-- ----- queue a run and wait for it ----------------------------------------------------------

local run, err = client:create_run(audience)
if not run then fail(err) end
say("queued run ", run.id)

local last_state
local done
done, err = client:wait_run(audience, run.id, {
    interval = 0.25,
    on_poll = function(page)
        if page.state ~= last_state then
            last_state = page.state
            say("run ", run.id, " is ", tostring(page.state), "...")
        end
    end,
})
if not done then fail(err) end
say("run ", run.id, " completed with ", tostring(done.resultCount), " people")

-- ----- page through it, filtering as rows arrive ---------------------------------------------

local read, pages = 0, 0
local people = client:people(audience, run.id, {
    limit = 500,
    where = { min_score = 80, seniority_at_least = "director" },
    on_page = function(page)
        read = read + page.rows -- rows on the page; page.kept of them passed `where`
        pages = pages + 1
    end,
})

-- count what passes the filter on the way to top(), which keeps only the best 10
local kept = 0
local counted = it.map(people, function(row)
    kept = kept + 1
    return row
end)
local ok, best = pcall(it.top, counted, 10) -- iterators raise errors: a loop never stops silently
if not ok then fail(best) end

-- ----- show them ----------------------------------------------------------------------------

local fields = { "fullName", "jobTitle", "seniority", "company.name", "geo.countryCode", "intent.score" }
local headers = { "name", "title", "seniority", "company", "country", "score" }
for _, line in ipairs(format.table_lines(best, fields, { headers = headers, max_width = 32 })) do
    print(line)
end
print(("read %d rows in %d pages, kept %d (intent >= 80, director or above), showing top %d, %.2f s")
    :format(read, pages, kept, #best, now() - started))

client:close()
if server then server:stop() end

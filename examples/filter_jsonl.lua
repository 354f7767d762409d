-- filter_jsonl: filter people saved as JSON Lines with the same helpers the client uses.
--
--   lua5.4 examples/filter_jsonl.lua [FILE] [MIN_SCORE]
--
-- FILE defaults to examples/data/people.jsonl, a sample saved by the command line tool from
-- the fake API:
--   leadpipe results AUDIENCE RUN --max 60 > examples/data/people.jsonl
-- Keeps people with intent >= MIN_SCORE (default 70) who have a business email and are
-- manager or above, prints how many there are by country and the 5 best as a table.

local filter = require "leadpipe.filter"
local iter = require "leadpipe.iter"
local leadpipe_path = require "leadpipe.path"
local json = require "leadpipe.json"
local format = require "leadpipe.format"

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local path = arg and arg[1] or (here .. "/data/people.jsonl")
local min_score = tonumber(arg and arg[2] or "70")
if not min_score then
    io.stderr:write("filter_jsonl: MIN_SCORE must be a number\n")
    os.exit(2)
end

local file, err = io.open(path, "r")
if not file then
    io.stderr:write("filter_jsonl: ", tostring(err), "\n")
    os.exit(1)
end

-- An iterator of rows: one decoded line per call. A bad line stops with its line number.
local line_no, read = 0, 0
local function rows()
    while true do
        local line = file:read("*l")
        if line == nil then return nil end
        line_no = line_no + 1
        if line:find("%S") then
            local row, derr = json.decode(line)
            if not row then error(("%s:%d: %s"):format(path, line_no, derr), 0) end
            read = read + 1
            return row
        end
    end
end

local wanted = filter.all(
    filter.min_score(min_score),
    filter.has("businessEmail"),
    filter.seniority_at_least("manager"))

-- Count by country while the rows stream past, then keep the best 5.
local by_country = {}
local kept = 0
local counted = iter.map(iter.filter(rows, wanted), function(row)
    kept = kept + 1
    local c = leadpipe_path.get(row, "geo.countryCode") or "(none)"
    by_country[c] = (by_country[c] or 0) + 1
    return row
end)
local ok, best = pcall(iter.top, counted, 5)
file:close()
if not ok then
    io.stderr:write("filter_jsonl: ", tostring(best), "\n")
    os.exit(1)
end

print(("read %d rows from %s, kept %d (intent >= %s, business email, manager or above)")
    :format(read, path:match("[^/]*$"), kept, tostring(min_score)))

local countries = {}
for c, n in pairs(by_country) do countries[#countries + 1] = { country = c, people = n } end
table.sort(countries, function(a, b)
    if a.people ~= b.people then return a.people > b.people end
    return a.country < b.country
end)
for _, line in ipairs(format.table_lines(countries, { "country", "people" })) do print(line) end
print("")
for _, line in ipairs(format.table_lines(best,
    { "fullName", "businessEmail", "seniority", "company.name", "intent.score" })) do
    print(line)
end

-- leadpipe.cli.parser: the command line of the `leadpipe` tool, declared with lua-argparse:
-- commands, options, value checks (one line naming what the user typed), generated help and
-- "did you mean" hints.
--
--   local parser = require "leadpipe.cli.parser"
--   parser.parse(argv) -> result          (argparse's table: result.command, options by name
--                                          with "_" for "-", lists flattened)
--                      | nil, usage      ({ message =, cmd = } for a usage error)
--                      | nil, { help = text } | nil, { version = true }
--   parser.help(cmd) -> help text of the tool (cmd nil) or of a command
--   parser.COMMANDS  -> names of the commands, in help order
--
-- Nothing here prints or exits: argparse's own -h and help command would call os.exit, so
-- -h/--help and `help` are declared here and reported to the caller instead.

local argparse = require "argparse"
local args = require "leadpipe.args"

local format, find, gsub = string.format, string.find, string.gsub
local tonumber, type, ipairs = tonumber, type, ipairs
local floor, huge = math.floor, math.huge
local concat = table.concat

local _M = { _VERSION = require "leadpipe.version" }

local EPILOG = [[
Global options (any command, anywhere on the line):
  --api-key KEY      API key (default: $LEADPIPE_API_KEY; prefer the variable: a key
                     on the command line shows in the process list)
  --base-url URL     API base URL (default: $LEADPIPE_BASE_URL or https://api.aws53.cloud)
  --retries N        retries of a failed request (network, 429, 5xx), 0-10 (default 3)
  --progress, --no-progress   force the progress display on stderr on or off
Exit status: 0 ok, 1 API or network error, 2 usage error, 130 interrupted.]]

local ROOT_EPILOG = [[
Run 'leadpipe COMMAND --help' (or 'leadpipe help COMMAND') for a command's options. The
options above go anywhere on the line. Environment: LEADPIPE_API_KEY, LEADPIPE_BASE_URL,
LEADPIPE_PROGRESS=1|0.
Exit status: 0 ok, 1 API or network error, 2 usage error, 130 interrupted.]]

-- ===== value checks (convert functions: value -> converted | nil, message) =====

local function int(name, lo, hi)
    return function(v)
        local n = tonumber(v)
        if not n or n ~= floor(n) or n < lo or (hi and n > hi) then
            local range = hi and format("an integer from %d to %d", lo, hi) or format("an integer >= %d", lo)
            return nil, format("--%s must be %s, got %q", name, range, v)
        end
        return floor(n)
    end
end

local function number(name, lo)
    return function(v)
        local n = tonumber(v)
        if not n or n ~= n or n < lo or n == huge then
            return nil, format("--%s must be a number%s, got %q", name,
                lo > -huge and (" >= " .. lo) or "", v)
        end
        return n
    end
end

local function choice(name, list)
    return function(v)
        for _, c in ipairs(list) do
            if v == c then return v end
        end
        return nil, format("--%s must be one of %s, got %q", name, concat(list, ", "), v)
    end
end

local function text(name)
    return function(v)
        if v == "" then return nil, format("--%s must not be empty", name) end
        return v
    end
end

-- "a,b, c" -> { "a", "b", "c" }; empty items are an error. With ids_only, only a list of
-- numbers is split: "117796,5" is two topic ids, "Personal Finance, Budgeting" one name.
local function list(name, ids_only)
    return function(v)
        local out = {}
        if ids_only and not find(v, "^[%d%s,]+$") then
            local item = gsub(gsub(v, "^%s+", ""), "%s+$", "")
            if item == "" then return nil, format("--%s must not be empty", name) end
            return { item }
        end
        for item in (v .. ","):gmatch("([^,]*),") do
            item = gsub(gsub(item, "^%s+", ""), "%s+$", "")
            if item == "" then
                return nil, format("--%s takes a comma-separated list without empty items, got %q", name, v)
            end
            out[#out + 1] = item
        end
        return out
    end
end

-- A list of kinds of change (changes --only).
local function kinds(name)
    local split = list(name)
    return function(v)
        local l, err = split(v)
        if not l then return nil, err end
        for _, k in ipairs(l) do
            if k ~= "added" and k ~= "removed" and k ~= "changed" then
                return nil, format("--%s takes added, removed and changed, got %q", name, k)
            end
        end
        return l
    end
end

-- A positional id: 'RUN must be a UUID like ... (got "x")'.
local function uuid(argname)
    return function(v)
        local err = args.check_id("", argname, v)
        if err then return nil, (gsub(err.message, "^: ", "")) end
        return v
    end
end

-- ===== the parser =====

local LIST_OPTS = { "seniority", "department", "country", "topic", "has", "only" }

-- What -h/--help or --version asked for during a parse (argparse's own actions would exit,
-- and it turns errors raised in an action into strings, so they are recorded instead).
local asked

local function help_flag(p)
    p:flag("-h --help", "Show this help and exit."):action(function() asked = asked or { help = p } end)
end

local function ids(cmd, run_too)
    cmd:argument("AUDIENCE", "The audience id (a UUID)."):convert(uuid("AUDIENCE"))
    if run_too then cmd:argument("RUN", "The run id (a UUID)."):convert(uuid("RUN")) end
end

local function waiting(cmd, what)
    cmd:flag("--no-wait", "Fail instead of waiting when the run is not completed" .. (what or "") .. ".")
    cmd:option("--timeout", "Give up waiting for the run after SECONDS (default 600).")
        :argname("SECONDS"):convert(number("timeout", 0))
end

-- The where{} options of results and changes.
local function filters(c)
    c:option("--min-score", "Intent score >= N."):argname("N"):convert(number("min-score", -huge))
    c:option("--max-score", "Intent score <= N."):argname("N"):convert(number("max-score", -huge))
    c:option("--seniority", "Seniority is one of LIST (e.g. director,vp)."):argname("LIST")
        :count("*"):convert(list("seniority"))
    c:option("--seniority-at-least", "Seniority ranks at least LEVEL (entry < senior < manager"
        .. " < director < vp < c_suite)."):argname("LEVEL"):convert(text("seniority-at-least"))
    c:option("--department", "Department is one of LIST."):argname("LIST"):count("*")
        :convert(list("department"))
    c:option("--country", "Country code or name is one of LIST (e.g. US,CA)."):argname("LIST")
        :count("*"):convert(list("country"))
    c:option("--topic", "A matched topic has this id or name; repeat for several."):argname("TOPIC")
        :count("*"):convert(list("topic", true))
    c:option("--has", "These fields are not empty (e.g. businessEmail,phone)."):argname("LIST")
        :count("*"):convert(list("has"))
end

-- The output options of results and changes.
local function output(c)
    c:option("--format", "jsonl (default, keys sorted), json (one array), csv (RFC 4180) or table.")
        :argname("FMT"):convert(choice("format", { "jsonl", "json", "csv", "table" }))
    c:option("--fields", "Dotted paths to output, e.g. fullName,company.name,intent.score.")
        :argname("LIST"):convert(text("fields"))
    c:flag("--csv-safe", "CSV: prefix cells starting with =, +, - or @ with ' (no formulas).")
    c:option("--max", "Stop after N rows have been written."):argname("N"):convert(int("max", 0))
    c:option("--limit", "Rows per request, 1-500 (default 500)."):argname("PAGE")
        :convert(int("limit", 1, 500))
end

local function build()
    local p = argparse("leadpipe",
        "Reads Leadpipe intent audiences: queue a run, wait for it, stream its people.")
        :add_help(false):epilog(ROOT_EPILOG):require_command(false):command_target("command")
        :help_max_width(92)
    help_flag(p)
    p:flag("--version", "Print the version and exit."):action(function()
        asked = asked or { version = true }
    end)
    p:option("--api-key", "API key (default: $LEADPIPE_API_KEY)."):argname("KEY"):convert(text("api-key"))
    p:option("--base-url", "API base URL."):argname("URL"):convert(text("base-url"))
    p:option("--retries", "Retries of a failed request, 0-10 (default 3)."):argname("N")
        :convert(int("retries", 0, 10))
    p:flag("--progress", "Show progress on stderr even when it is not a terminal.")
    p:flag("--no-progress", "Never show progress.")

    local cmds = {}
    local function command(name, summary, description)
        local c = p:command(name):summary(summary):description(description or summary)
            :add_help(false):epilog(EPILOG):help_max_width(92)
        help_flag(c)
        cmds[name] = c
        return c
    end

    local c = command("audiences", "List the saved audiences.",
        "Lists the organization's saved audiences (id, name, status, size).")
    c:option("--status", "Only audiences with this status: draft, active or paused."):argname("STATUS")
        :convert(choice("status", { "draft", "active", "paused" }))
    c:option("--limit", "How many, 1-100 (default 50)."):argname("N"):convert(int("limit", 1, 100))
    c:option("--format", "table (default), jsonl, json or csv."):argname("FMT")
        :convert(choice("format", { "table", "jsonl", "json", "csv" }))

    c = command("runs", "List an audience's recent runs, newest first.")
    ids(c)
    c:option("--limit", "How many runs, 1-100 (default 25)."):argname("N"):convert(int("limit", 1, 100))
    c:option("--format", "table (default), jsonl, json or csv."):argname("FMT")
        :convert(choice("format", { "table", "jsonl", "json", "csv" }))

    c = command("run", "Queue a run of a saved audience and print its id.",
        "Queues a manual run of AUDIENCE and prints the run id on stdout. Retries send the same\n"
        .. "Idempotency-Key, so a retry never queues a second run.")
    ids(c)
    c:flag("--wait", "Then wait until the run completes; fail if it fails or is cancelled.")
    c:option("--timeout", "Give up waiting after SECONDS (default 600)."):argname("SECONDS")
        :convert(number("timeout", 0))
    c:option("--idempotency-key", "Use this key (1-120 characters) instead of a random one.")
        :argname("KEY"):convert(function(v)
            if #v < 1 or #v > 120 or find(v, "%c") then
                return nil, format("--idempotency-key must be 1 to 120 printable characters, got %d", #v)
            end
            return v
        end)

    c = command("cancel", "Cancel a queued run.",
        "Cancels a queued run and prints \"RUN STATUS\". Only a queued run can be cancelled.")
    ids(c, true)

    c = command("results", "Stream a run's people as JSONL, JSON, CSV or a table.",
        "Streams the people of a run, waiting for the run first if it is still queued or\n"
        .. "running. Progress goes to stderr when it is a terminal. Filters must all hold; a\n"
        .. "LIST is comma-separated, or the option is repeated.")
    ids(c, true)
    filters(c)
    output(c)
    waiting(c)

    c = command("changes", "Who is new, gone or changed between two runs of an audience.",
        "Compares two completed runs of AUDIENCE (by default the two latest; stderr says which)\n"
        .. "and writes each person who was added, removed or changed, with a \"change\" column\n"
        .. "(and, for changed, \"changed\": the fields that differ). People are matched by\n"
        .. "hashedEmail. Filters apply to the newer run's rows (the older run's, for removed).")
    ids(c)
    c:option("--from", "The older run (default: the second latest completed run)."):argname("RUN")
        :convert(uuid("--from RUN"))
    c:option("--to", "The newer run (default: the latest completed run)."):argname("RUN")
        :convert(uuid("--to RUN"))
    c:option("--only", "Only these kinds: added, removed, changed (comma-separated)."):argname("LIST")
        :count("*"):convert(kinds("only"))
    c:option("--compare", "Fields whose change counts (default intent.score,jobTitle,seniority,"
        .. "company.name)."):argname("LIST"):convert(text("compare"))
    filters(c)
    output(c)
    c:flag("--wait", "Wait for a run that is still queued or running (default: fail).")
    c:option("--timeout", "Give up waiting after SECONDS (default 600)."):argname("SECONDS")
        :convert(number("timeout", 0))

    c = command("stats", "Print a run's stats (fill rates, score histogram) as JSON.")
    ids(c, true)
    waiting(c)

    c = command("export", "Write a run's CSV export (export.csv) to stdout or a file.",
        "Streams the run's CSV export (capped by the API, see X-Export-Row-Cap) without\n"
        .. "holding it in memory. With --output, the file appears only when complete.")
    ids(c, true)
    c:option("-o --output", "Write to FILE instead of stdout."):argname("FILE"):convert(text("output"))
    waiting(c)

    c = command("mock", "Run the fake Leadpipe API in the foreground.",
        "Runs the fake Leadpipe API (the one the tests use) on 127.0.0.1 and prints its URL,\n"
        .. "API key and audience ids. Stops on Ctrl-C or SIGTERM. Then, e.g.:\n"
        .. "  LEADPIPE_BASE_URL=http://127.0.0.1:8080 LEADPIPE_API_KEY=<key> \\\n"
        .. "    leadpipe run <audience> --wait")
    c:option("--port", "Port to listen on (default 8080; 0 picks a free one)."):argname("N")
        :convert(int("port", 0, 65535))
    c:option("--rows", "People in the first audience."):argname("N"):convert(int("rows", 0))
    c:option("--seed", "Seed of the generated people."):argname("N"):convert(int("seed", 0))
    c:option("--queued-ms", "How long a new run stays queued."):argname("MS"):convert(int("queued-ms", 0))
    c:option("--running-ms", "How long it then stays running."):argname("MS"):convert(int("running-ms", 0))
    c:option("--duration", "Stop by itself after SECONDS."):argname("SECONDS"):convert(number("duration", 0))

    c = command("help", "Show the help of the tool or of a command.")
    c:argument("topic", "A command name."):argname("COMMAND"):args("?"):target("help_topic")
    return p, cmds
end

_M.COMMANDS = { "audiences", "runs", "run", "cancel", "results", "changes", "stats", "export", "mock",
                "help" }

local parser, commands = build()

function _M.help(cmd)
    return (cmd and commands[cmd] or parser):get_help() .. "\n"
end

-- The command named in argv (for "see 'leadpipe CMD --help'"), or nil.
local function command_in(argv)
    for _, a in ipairs(argv) do
        if commands[a] then return a end
    end
end

-- argparse's "...\nDid you mean 'x'?" on one line.
local function one_line(msg)
    return (gsub(gsub(msg, "\nDid you mean (.-)%?", " (did you mean %1?)"), "\n", "; "))
end

function _M.parse(argv)
    asked = nil
    local ok, res = parser:pparse(argv)
    local wanted = asked
    asked = nil
    if wanted and wanted.help then return nil, { help = wanted.help:get_help() .. "\n" } end
    if wanted then return nil, wanted end
    if not ok then
        return nil, { message = one_line(res), cmd = command_in(argv) }
    end
    -- flatten repeated list options: { {"vp","director"}, {"owner"} } -> one list
    for _, name in ipairs(LIST_OPTS) do
        local v = res[name]
        if type(v) == "table" then
            local flat = {}
            for _, part in ipairs(v) do
                for _, item in ipairs(part) do flat[#flat + 1] = item end
            end
            res[name] = #flat > 0 and flat or nil
        end
    end
    return res
end

return _M

-- leadpipe.cli: the `leadpipe` command line tool (bin/leadpipe is its launcher).
--
--   local cli = require "leadpipe.cli"
--   local status = cli.main(args, env)
--
-- `args` is the array of command line words (without the program name). `env` is optional
-- and replaces the process's surroundings, so that specs can run the tool in-process:
--   env.stdout, env.stderr   objects with :write(s) (default io.stdout, io.stderr)
--   env.getenv               function(name) -> value (default os.getenv)
--   env.isatty               boolean: whether to show progress on stderr (default: when
--                            `test -t 2` says stderr is a terminal and the rows do not go
--                            to a terminal too; LEADPIPE_PROGRESS=1 or 0 decides instead)
--   env.now                  monotonic clock in seconds (default leadpipe.core.now)
-- main() returns the exit status and never raises: 0 ok, 1 API or network error, 2 usage
-- error, 130 interrupted (Ctrl-C). Every failure is one line on stderr; progress goes to
-- stderr only when it is a terminal; stdout carries only the data.
--
-- Licensed under the MIT license, like the rest of leadpipe.

local type, tostring, tonumber, pairs, ipairs, error = type, tostring, tonumber, pairs, ipairs, error
local pcall, xpcall = pcall, xpcall
local format, find, sub, gsub, rep, match = string.format, string.find, string.sub, string.gsub,
    string.rep, string.match
local concat = table.concat
local floor, min = math.floor, math.min

local _M = { _VERSION = "0.1.0" }

local PROG = "leadpipe"

-- ===== help texts ==========================================================================

local GLOBAL_HELP = [[
Global options (any command):
  --api-key KEY      API key (default: $LEADPIPE_API_KEY; prefer the variable: a key
                     on the command line shows in the process list)
  --base-url URL     API base URL (default: $LEADPIPE_BASE_URL or https://api.aws53.cloud)
  --retries N        retries of a failed request (network, 429, 5xx), 0-10 (default 3)
  --progress         show progress on stderr even when it is not a terminal
  --no-progress      never show progress
  -h, --help         show help
Exit status: 0 ok, 1 API or network error, 2 usage error, 130 interrupted.]]

local HELP = {}

HELP.main = [[
Usage: leadpipe COMMAND [options]

Reads Leadpipe intent audiences: queue a run, wait for it, stream its people.

Commands:
  run AUDIENCE [--wait]          queue a run of a saved audience, print its id
  results AUDIENCE RUN [...]     stream the run's people as JSONL, CSV or a table
  runs AUDIENCE                  list the audience's recent runs
  cancel AUDIENCE RUN            cancel a queued run
  mock [--port N] [--rows N]     run the fake Leadpipe API in the foreground
  help [COMMAND]                 show help for a command

Run 'leadpipe COMMAND --help' for a command's options.
]] .. GLOBAL_HELP .. "\n"

HELP.run = [[
Usage: leadpipe run AUDIENCE [--wait] [--timeout SECONDS] [--idempotency-key KEY]

Queues a manual run of the saved audience AUDIENCE (a UUID) and prints the run id on
stdout. Retries send the same Idempotency-Key, so a retry never queues a second run.

Options:
  --wait                 then wait until the run completes (progress on stderr when it
                         is a terminal); fails if the run fails or is cancelled
  --timeout SECONDS      give up waiting after SECONDS (default 600)
  --idempotency-key KEY  use this key (1-120 characters) instead of a random one
]] .. GLOBAL_HELP .. "\n"

HELP.results = [[
Usage: leadpipe results AUDIENCE RUN [filters] [--format jsonl|csv|table] [--fields LIST]
                        [--max N] [--limit PAGE] [--no-wait] [--timeout SECONDS]

Streams the people of a run, page by page, waiting for the run first if it is still
queued or running. Progress (rows/total, pages, rows/s, ETA) goes to stderr when it is a
terminal and the rows go elsewhere (a file, a pipe) or --format is table.

Filters (all must hold; LIST is comma-separated, or repeat the option):
  --min-score N              intent score >= N
  --max-score N              intent score <= N
  --seniority LIST           seniority is one of LIST (e.g. director,vp)
  --seniority-at-least LEVEL seniority ranks at least LEVEL
                             (entry < senior < manager < director < vp < c_suite;
                             owner and partner rank with c_suite)
  --department LIST          department is one of LIST
  --country LIST             country code or name is one of LIST (e.g. US,CA)
  --topic TOPIC              a matched topic has this id or name (case-insensitive);
                             repeat it for several; a list of ids may use commas
  --has LIST                 these fields are not empty (e.g. businessEmail,phone)

Output:
  --format FMT       jsonl (default): one JSON object per line, keys sorted
                     csv: RFC 4180, CRLF line ends, a header line
                     table: aligned columns for a terminal
  --fields LIST      dotted paths to output, e.g. fullName,company.name,intent.score
                     (jsonl: the row keeps only those, nested as in the row; csv/table:
                     the columns; arrays such as intent.matchedTopics are joined by "; ")
  --max N            stop after N rows have been written
  --limit PAGE       rows per request, 1-500 (default 500)
  --no-wait          fail instead of waiting when the run is not completed
  --timeout SECONDS  give up waiting for the run after SECONDS (default 600)
]] .. GLOBAL_HELP .. "\n"

HELP.runs = [[
Usage: leadpipe runs AUDIENCE [--limit N] [--format table|jsonl|csv]

Lists the audience's most recent runs, newest first.

Options:
  --limit N      how many runs, 1-100 (default 25)
  --format FMT   table (default), jsonl (whole run objects) or csv
]] .. GLOBAL_HELP .. "\n"

HELP.cancel = [[
Usage: leadpipe cancel AUDIENCE RUN

Cancels a queued run and prints "RUN STATUS". Only a queued run can be cancelled; the API
refuses running, completed, failed and cancelled runs (exit status 1).
]] .. GLOBAL_HELP .. "\n"

HELP.mock = [[
Usage: leadpipe mock [--port N] [--rows N] [--seed N] [--queued-ms MS] [--running-ms MS]
                     [--duration SECONDS]

Runs the fake Leadpipe API (the one the tests use) on 127.0.0.1 in the foreground and
prints its URL, API key and audience ids. Stops on Ctrl-C or SIGTERM. Point the other
commands at it:
  LEADPIPE_BASE_URL=http://127.0.0.1:8080 LEADPIPE_API_KEY=<key> leadpipe run <audience> --wait

Options:
  --port N          port to listen on (default 8080; 0 picks a free one)
  --rows N          people in the first audience (default: the fake's default)
  --seed N          seed of the generated people
  --queued-ms MS    how long a new run stays queued
  --running-ms MS   how long it then stays running
  --duration SECS   stop by itself after SECS seconds
]] .. GLOBAL_HELP .. "\n"

HELP.help = HELP.main

-- ===== errors ==============================================================================

-- A usage error: exit status 2.
local function usage_error(msg, cmd)
    error({ usage = true, message = msg, cmd = cmd }, 0)
end

-- ===== option parsing ======================================================================

local function to_int(lo, hi)
    return function(v, name)
        local n = tonumber(v)
        if not n or n ~= floor(n) or n < lo or (hi and n > hi) then
            local range = hi and format("an integer from %d to %d", lo, hi)
                or format("an integer >= %d", lo)
            return nil, format("--%s must be %s, got %q", name, range, v)
        end
        return floor(n)
    end
end

local function to_number(lo)
    return function(v, name)
        local n = tonumber(v)
        if not n or n ~= n or n < lo or n == math.huge then
            return nil, format("--%s must be a number >= %s, got %q", name, tostring(lo), v)
        end
        return n
    end
end

local function to_choice(list)
    local set = {}
    for _, c in ipairs(list) do set[c] = true end
    return function(v, name)
        if not set[v] then
            return nil, format("--%s must be one of %s, got %q", name, concat(list, ", "), v)
        end
        return v
    end
end

local function to_text(v, name)
    if v == "" then return nil, format("--%s must not be empty", name) end
    return v
end

-- Splits "a,b, c" into a list, appending to `into`; empty items are an error.
-- With `ids_only`, only a list of numbers is split: "117796,5" is two topic ids, but
-- "Personal Finance, Budgeting & Saving" stays one topic name.
local function to_list(v, name, into, ids_only)
    local list = into or {}
    if ids_only and not find(v, "^[%d%s,]+$") then
        local item = gsub(gsub(v, "^%s+", ""), "%s+$", "")
        if item == "" then return nil, format("--%s must not be empty", name) end
        list[#list + 1] = item
        return list
    end
    for item in (v .. ","):gmatch("([^,]*),") do
        item = gsub(gsub(item, "^%s+", ""), "%s+$", "")
        if item == "" then
            return nil, format("--%s takes a comma-separated list without empty items, got %q", name, v)
        end
        list[#list + 1] = item
    end
    return list
end

local GLOBAL_OPTS = {
    ["api-key"] = { arg = true, check = to_text },
    ["base-url"] = { arg = true, check = to_text },
    retries = { arg = true, check = to_int(0, 10) },
    progress = {},
    ["no-progress"] = {},
    help = {},
}

local COMMAND_OPTS = {
    run = {
        wait = {},
        timeout = { arg = true, check = to_number(0) },
        ["idempotency-key"] = { arg = true, check = to_text },
    },
    results = {
        ["min-score"] = { arg = true, check = to_number(-math.huge) },
        ["max-score"] = { arg = true, check = to_number(-math.huge) },
        seniority = { arg = true, list = true },
        ["seniority-at-least"] = { arg = true, check = to_text },
        department = { arg = true, list = true },
        country = { arg = true, list = true },
        topic = { arg = true, list = true, ids_only = true },
        has = { arg = true, list = true },
        format = { arg = true, check = to_choice{ "jsonl", "csv", "table" } },
        fields = { arg = true, check = to_text },
        max = { arg = true, check = to_int(0) },
        limit = { arg = true, check = to_int(1, 500) },
        ["no-wait"] = {},
        timeout = { arg = true, check = to_number(0) },
    },
    runs = {
        limit = { arg = true, check = to_int(1, 100) },
        format = { arg = true, check = to_choice{ "table", "jsonl", "csv" } },
    },
    cancel = {},
    mock = {
        port = { arg = true, check = to_int(0, 65535) },
        rows = { arg = true, check = to_int(0) },
        seed = { arg = true, check = to_int(0) },
        ["queued-ms"] = { arg = true, check = to_int(0) },
        ["running-ms"] = { arg = true, check = to_int(0) },
        duration = { arg = true, check = to_number(0) },
    },
    help = {},
}

local POSITIONALS = {
    run = { "AUDIENCE" }, results = { "AUDIENCE", "RUN" }, runs = { "AUDIENCE" },
    cancel = { "AUDIENCE", "RUN" }, mock = {}, help = {},
}

-- Finds the command: the first word that is not an option or a global option's value.
local function find_command(args)
    local i = 1
    while i <= #args do
        local a = args[i]
        if a == "--" then return args[i + 1], i + 1 end
        if sub(a, 1, 2) == "--" then
            local name = match(a, "^%-%-([^=]+)$")
            local spec = name and GLOBAL_OPTS[name]
            if spec and spec.arg then i = i + 1 end
        elseif a == "-h" then -- luacheck: ignore 542
            -- help flag, not a command
        elseif sub(a, 1, 1) ~= "-" or a == "-" then
            return a, i
        end
        i = i + 1
    end
    return nil
end

-- Parses args for command `cmd` (at index cmd_index). Returns opts, positionals.
-- Raises a usage error on an unknown option, a missing or bad value.
local function parse(args, cmd, cmd_index)
    local specs = COMMAND_OPTS[cmd] or {}
    local opts, pos = {}, {}
    local i = 1
    local only_pos = false
    while i <= #args do
        local a = args[i]
        if i == cmd_index then -- luacheck: ignore 542
            -- the command word itself
        elseif only_pos or a == "-" or sub(a, 1, 1) ~= "-" then
            pos[#pos + 1] = a
        elseif a == "--" then
            only_pos = true
        elseif a == "-h" then
            opts.help = true
        elseif sub(a, 1, 2) == "--" then
            local name, value = match(a, "^%-%-([^=]+)=(.*)$")
            if not name then name = sub(a, 3) end
            local spec = specs[name] or GLOBAL_OPTS[name]
            if not spec then
                usage_error(format("unknown option --%s", name), cmd)
            end
            if spec.arg then
                if value == nil then
                    i = i + 1
                    value = args[i]
                    if value == nil then
                        usage_error(format("option --%s needs a value", name), cmd)
                    end
                end
                local v, err
                if spec.list then
                    v, err = to_list(value, name, opts[name], spec.ids_only)
                else
                    v, err = (spec.check or to_text)(value, name)
                end
                if v == nil then usage_error(err, cmd) end
                opts[name] = v
            else
                if value ~= nil then
                    usage_error(format("option --%s takes no value", name), cmd)
                end
                opts[name] = true
            end
        else
            usage_error(format("unknown option %s", a), cmd)
        end
        i = i + 1
    end
    return opts, pos
end

-- ===== progress ============================================================================

local function duration(s)
    s = floor(s + 0.5)
    if s < 60 then return s .. "s" end
    if s < 3600 then return format("%dm%02ds", floor(s / 60), s % 60) end
    return format("%dh%02dm", floor(s / 3600), floor(s % 3600 / 60))
end

-- A one-line progress display on a terminal, redrawn in place at most 10 times a second.
local function new_progress(out, now)
    local p = { rows = 0, pages = 0, total = nil, shown = false }
    local start, last = now(), -1
    -- rows/s counts from the last time the run was seen pending (or from the start)
    local flow_start = start

    local function draw(text, force)
        local t = now()
        if not force and t - last < 0.1 then return end
        last = t
        out:write("\r\27[K" .. text)
        if out.flush then out:flush() end
        p.shown = true
    end

    function p.waiting(_, run_id, state)
        flow_start = now()
        draw(format("run %s: %s, waiting %s", run_id, tostring(state), duration(flow_start - start)))
    end

    function p.page(_, page, force)
        p.pages = p.pages + 1
        p.rows = p.rows + #page.results
        p.total = page.total
        local elapsed = now() - flow_start
        local total = p.total or p.rows
        local frac = total > 0 and min(p.rows / total, 1) or 1
        local width = 24
        local filled = floor(frac * width + 0.5)
        local rate, eta = "-", ""
        if elapsed >= 0.05 then
            local r = p.rows / elapsed
            rate = tostring(floor(r + 0.5))
            if total > p.rows and r > 0 then eta = "  ETA " .. duration((total - p.rows) / r) end
        end
        draw(format("[%s%s] %d/%d rows  %d pages  %s rows/s%s", rep("#", filled), rep("-", width - filled),
            p.rows, total, p.pages, rate, eta), force)
    end

    function p.finish(_, text)
        if text then draw(text, true) end
        if p.shown then
            out:write("\n")
            p.shown = false
        end
    end

    return p
end

-- ===== helpers =============================================================================

local function one_line(s)
    return (gsub(gsub(tostring(s), "[\r\n]+", " "), "%s+$", ""))
end

local function is_tty(fd)
    local r = os.execute("test -t " .. fd)
    return r == true or r == 0
end

-- Whether to show progress: stderr is a terminal, and the rows do not go to that same
-- terminal as they come (a table is written at the end, so it does not count).
-- LEADPIPE_PROGRESS=1 or 0 decides instead; TERM=dumb turns it off.
local function default_progress(getenv, cmd, opts)
    local forced = getenv("LEADPIPE_PROGRESS")
    if forced == "1" then return true end
    if forced == "0" then return false end
    if getenv("TERM") == "dumb" then return false end
    if not is_tty(2) then return false end
    return cmd == "run" or opts.format == "table" or not is_tty(1)
end

-- Makes the client from --api-key/--base-url or the environment.
local function make_client(ctx)
    local opts = ctx.opts
    local key = opts["api-key"] or ctx.getenv("LEADPIPE_API_KEY")
    if key == nil or key == "" then
        usage_error("no API key: set LEADPIPE_API_KEY or pass --api-key (try 'leadpipe mock' "
            .. "for a local fake API)", ctx.cmd)
    end
    local base_url = opts["base-url"] or ctx.getenv("LEADPIPE_BASE_URL")
    if base_url == "" then base_url = nil end
    local leadpipe = require "leadpipe"
    local ok, client = pcall(leadpipe.new, { api_key = key, base_url = base_url,
        max_retries = opts.retries })
    if not ok then
        -- leadpipe.new raises invalid_argument errors: a usage problem
        if leadpipe.is_error(client) then usage_error(client.message, ctx.cmd) end
        error(client, 0)
    end
    ctx.client = client -- main() closes it
    return client, leadpipe
end

-- Raises an API error so main() reports it (kind invalid_argument -> usage error).
local function api_error(err)
    if err == nil then err = { message = "the request failed without an error object" } end
    error(err, 0)
end

local function check_write(ok, err)
    if not ok then error({ write_failed = true, message = err }, 0) end
end

-- ===== commands ============================================================================

local commands = {}

function commands.run(ctx)
    local aud = ctx.pos[1]
    local client = make_client(ctx)
    local run, err = client:create_run(aud, { idempotency_key = ctx.opts["idempotency-key"] })
    if not run then api_error(err) end
    check_write(ctx.stdout:write(tostring(run.id), "\n"))
    if ctx.stdout.flush then ctx.stdout:flush() end
    if ctx.opts.wait then
        local progress = ctx.tty and new_progress(ctx.stderr, ctx.now)
        local done
        done, err = client:wait_run(aud, run.id, {
            timeout = ctx.opts.timeout,
            on_poll = progress and function(page) progress:waiting(run.id, page.state) end or nil,
        })
        if not done then
            if progress then progress:finish() end
            api_error(err)
        end
        if progress then
            progress:finish(format("run %s: %s, %s rows", tostring(run.id),
                tostring(done.status or "completed"), tostring(done.resultCount or "?")))
        end
    end
    return 0
end

-- Builds the where{} table from the filter options.
local function where_from(opts)
    local where, any = {}, false
    local map = {
        ["min-score"] = "min_score", ["max-score"] = "max_score", seniority = "seniority",
        ["seniority-at-least"] = "seniority_at_least", department = "department",
        country = "country", topic = "topic", has = "has",
    }
    for opt, key in pairs(map) do
        if opts[opt] ~= nil then
            where[key] = opts[opt]
            any = true
        end
    end
    if where.topic then
        local topics = {}
        for i, t in ipairs(where.topic) do topics[i] = match(t, "^%d+$") and tonumber(t) or t end
        where.topic = topics
    end
    return any and where or nil
end

function commands.results(ctx)
    local opts = ctx.opts
    local aud, run_id = ctx.pos[1], ctx.pos[2]
    local filter = require "leadpipe.filter"
    local fmt = require "leadpipe.format"
    local pred
    local where = where_from(opts)
    if where then
        local ok, p = pcall(filter.where, where)
        if not ok then
            local msg = gsub(gsub(tostring(p), "^[^:]*:%d+: ", ""), "^where: ", "")
            msg = gsub(msg, "^([%w_]+)", function(key) return "--" .. gsub(key, "_", "-") end)
            usage_error(msg, ctx.cmd)
        end
        pred = p
    end
    local fields
    if opts.fields then
        local err
        fields, err = fmt.parse_fields(opts.fields)
        if not fields then usage_error("--fields: " .. err, ctx.cmd) end
    end
    local client, leadpipe = make_client(ctx)
    local writer = fmt.writer(opts.format or "jsonl", ctx.stdout, fields)
    local progress = ctx.tty and new_progress(ctx.stderr, ctx.now)
    local maxn = opts.max
    local written, read = 0, 0
    if maxn == 0 then
        check_write(writer:finish())
        return 0
    end
    local ok, perr = pcall(function()
        local pages = client:pages(aud, run_id, {
            limit = opts.limit or 500,
            wait = not opts["no-wait"],
            timeout = opts.timeout,
            prefetch = 1,
            on_poll = progress and function(page) progress:waiting(run_id, page.state) end or nil,
        })
        for page in pages do
            local results = page.results
            read = read + #results
            local stop = false
            for i = 1, #results do
                local row = results[i]
                if not pred or pred(row) then
                    check_write(writer:write(row))
                    written = written + 1
                    if maxn and written >= maxn then
                        stop = true
                        break
                    end
                end
            end
            if progress then
                progress:page(page, stop or page.offset + #results >= (page.total or 0))
            end
            if stop then break end
        end
    end)
    if progress then progress:finish() end
    if not ok then
        if leadpipe.is_error(perr) then api_error(perr) end
        error(perr, 0)
    end
    check_write(writer:finish())
    return 0
end

function commands.runs(ctx)
    local aud = ctx.pos[1]
    local client = make_client(ctx)
    local runs, err = client:list_runs(aud, { limit = ctx.opts.limit })
    if not runs then api_error(err) end
    local fmt = require "leadpipe.format"
    local fields = { "id", "status", "runType", "resultCount", "createdAt", "completedAt" }
    local format_name = ctx.opts.format or "table"
    local writer = fmt.writer(format_name, ctx.stdout, format_name ~= "jsonl" and fields or nil)
    for _, run in ipairs(runs) do check_write(writer:write(run)) end
    check_write(writer:finish())
    return 0
end

function commands.cancel(ctx)
    local aud, run_id = ctx.pos[1], ctx.pos[2]
    local client = make_client(ctx)
    local run, err = client:cancel_run(aud, run_id)
    if not run then api_error(err) end
    check_write(ctx.stdout:write(format("%s %s\n", tostring(run.id or run_id),
        tostring(run.status or "cancelled"))))
    return 0
end

function commands.mock(ctx)
    local mock = require "leadpipe.mock"
    local opts = ctx.opts
    local conf = { port = opts.port or 8080, output = ctx.stdout, duration = opts.duration }
    if opts.seed then conf.seed = opts.seed end
    if opts["queued-ms"] then conf.queued_ms = opts["queued-ms"] end
    if opts["running-ms"] then conf.running_ms = opts["running-ms"] end
    if opts.rows then
        local audiences = {}
        for i, a in ipairs(mock.AUDIENCES) do
            audiences[i] = { id = a.id, rows = a.rows, fail = a.fail, name = a.name }
        end
        audiences[1].rows = opts.rows
        conf.audiences = audiences
    end
    local ok, err = mock.serve(conf)
    if not ok then
        error({ message = "mock: " .. tostring(err) }, 0)
    end
    return 0
end

function commands.help(ctx)
    local topic = ctx.pos[1]
    if topic and not HELP[topic] then usage_error(format("unknown command %q", topic)) end
    check_write(ctx.stdout:write(HELP[topic or "main"]))
    return 0
end

-- ===== main ================================================================================

--- main(args, env) -> exit status. Never raises.
function _M.main(args, env)
    env = env or {}
    local stdout = env.stdout or io.stdout
    local stderr = env.stderr or io.stderr
    local getenv = env.getenv or os.getenv
    local argv = {}
    for i = 1, #(args or {}) do argv[i] = tostring(args[i]) end

    local ctx = { stdout = stdout, stderr = stderr, getenv = getenv }
    local function say(msg)
        stderr:write(PROG, ": ", one_line(msg), "\n")
    end

    local function body()
        local cmd, cmd_index = find_command(argv)
        if cmd and not COMMAND_OPTS[cmd] then
            usage_error(format("unknown command %q", cmd))
        end
        ctx.cmd = cmd
        local opts, pos = parse(argv, cmd, cmd_index)
        ctx.opts = opts
        if not cmd then
            if opts.help then
                check_write(stdout:write(HELP.main))
                if stdout.flush then check_write(stdout:flush()) end
                return 0
            end
            usage_error("no command given")
        end
        if opts.help then
            check_write(stdout:write(HELP[cmd]))
            if stdout.flush then check_write(stdout:flush()) end
            return 0
        end
        local want = POSITIONALS[cmd]
        if cmd == "help" then
            if #pos > 1 then usage_error("help takes at most one command name", cmd) end
        elseif #pos < #want then
            usage_error(format("missing %s", want[#pos + 1]), cmd)
        elseif #pos > #want then
            usage_error(format("unexpected argument %q", pos[#want + 1]), cmd)
        end
        ctx.pos = pos
        if opts["no-progress"] then
            ctx.tty = false
        elseif opts.progress then
            ctx.tty = true
        elseif env.isatty ~= nil then
            ctx.tty = env.isatty and true or false
        else
            ctx.tty = (cmd == "run" or cmd == "results") and default_progress(getenv, cmd, opts)
        end
        if ctx.tty then
            ctx.now = env.now or require("leadpipe.core").now
        end
        local status = commands[cmd](ctx)
        -- buffered output may only fail now (a full disk)
        if stdout.flush then check_write(stdout:flush()) end
        return status
    end

    local trace
    local ok, res = xpcall(body, function(e)
        if type(e) == "string" and not find(e, "interrupted!", 1, true) then
            trace = debug.traceback(e, 2)
        end
        return e
    end)
    if ctx.client then pcall(ctx.client.close, ctx.client) end
    if ok then return res or 0 end
    local e = res
    if type(e) == "table" and e.usage then
        local hint = e.cmd and format(" (see 'leadpipe %s --help')", e.cmd) or " (see 'leadpipe --help')"
        say(e.message .. hint)
        return 2
    end
    if type(e) == "table" and e.write_failed then
        -- a reader that went away (`| head`) needs no message; a full disk does
        if not find(tostring(e.message), "Broken pipe", 1, true) then
            say("cannot write the output: " .. tostring(e.message))
        end
        return 1
    end
    if type(e) == "string" and find(e, "interrupted!", 1, true) then
        if ctx.tty then stderr:write("\n") end
        say("interrupted")
        return 130
    end
    local is_error = type(e) == "table" and type(e.kind) == "string" and e.message ~= nil
    if is_error then
        local msg = tostring(e)
        if sub(msg, 1, #PROG + 2) == PROG .. ": " then msg = sub(msg, #PROG + 3) end
        if find(msg, "interrupted!", 1, true) then
            say("interrupted")
            return 130
        end
        local run = type(e.run) == "table" and e.run or nil
        if run and type(run.errorCode) == "string" and not find(msg, run.errorCode, 1, true) then
            msg = msg .. " (run errorCode " .. run.errorCode .. ")"
        end
        say(msg)
        return e.kind == "invalid_argument" and 2 or 1
    end
    if type(e) == "table" and e.message then
        say(e.message)
        return 1
    end
    say("internal error: " .. tostring(e))
    if trace and getenv("LEADPIPE_DEBUG") then stderr:write(trace, "\n") end
    return 1
end

-- Exposed for the specs.
_M.parse_for_tests = function(args)
    local cmd, idx = find_command(args)
    return parse(args, cmd, idx)
end
_M.where_from = where_from
_M.new_progress = new_progress

return _M

-- leadpipe.cli.commands: what each `leadpipe` command does, given the parsed command line.
--
-- Each command is commands[name](ctx) -> exit status, where ctx holds: opts (the parsed
-- line, see cli/parser.lua), stdout, stderr, getenv, tty (show progress), now (a clock for
-- the progress display; default the client's host clock), and ctx.client once made
-- (cli/init.lua closes it). Failures are raised (never printed here):
--   cli.usage(message)      a usage error (exit 2)
--   an error object         from the library (exit 1; invalid_argument: 2)
--   { write_failed = true, message = }   stdout could not be written (exit 1)

local leadpipe = require "leadpipe"
local filter = require "leadpipe.filter"
local fmt = require "leadpipe.format"
local json = require "leadpipe.json"
local parser = require "leadpipe.cli.parser"
local progress = require "leadpipe.cli.progress"

local format, match, gsub, find, sub = string.format, string.match, string.gsub, string.find, string.sub
local tostring, tonumber, pairs, ipairs, error, pcall, getmetatable =
    tostring, tonumber, pairs, ipairs, error, pcall, getmetatable

local _M = { _VERSION = require "leadpipe.version" }

local commands = {}
_M.commands = commands

function _M.usage(msg)
    error({ usage = true, message = msg }, 0)
end
local usage = _M.usage

local function check_write(ok, err)
    if not ok then error({ write_failed = true, message = err }, 0) end
    return ok
end
_M.check_write = check_write

local function write(ctx, ...)
    check_write(ctx.stdout:write(...))
end

local function flush(ctx)
    if ctx.stdout.flush then check_write(ctx.stdout:flush()) end
end

-- Raises a library error so that main() reports it.
local function api_error(err)
    error(err or { message = "the request failed without an error object" }, 0)
end

-- The library's advice in the words of the command line: what a user of the tool can write.
local CLI_WORDS = {
    { "pass wait = true to wait", "leave out --no-wait to wait" },
}

--- cli_words(message) -> the message with the library's advice about Lua options replaced
--- by the tool's own (the one home of that translation; cli/init.lua prints through it).
function _M.cli_words(msg)
    msg = tostring(msg)
    for _, w in ipairs(CLI_WORDS) do
        local i, j = find(msg, w[1], 1, true)
        if i then msg = sub(msg, 1, i - 1) .. w[2] .. sub(msg, j + 1) end
    end
    return msg
end

-- Makes the client from --api-key/--base-url/--retries or the environment. A value that
-- leadpipe.new refuses is a usage error naming where it came from, as the user wrote it.
local function make_client(ctx)
    local opts = ctx.opts
    local key = opts.api_key or ctx.getenv("LEADPIPE_API_KEY")
    if key == nil or key == "" then
        usage("no API key: set LEADPIPE_API_KEY or pass --api-key (try 'leadpipe mock' "
            .. "for a local fake API)")
    end
    local base_url = opts.base_url or ctx.getenv("LEADPIPE_BASE_URL")
    if base_url == "" then base_url = nil end
    local ok, client = pcall(leadpipe.new, { api_key = key, base_url = base_url,
        max_retries = opts.retries })
    if not ok then
        if leadpipe.is_error(client) then
            local from = {
                api_key = opts.api_key and "--api-key" or "LEADPIPE_API_KEY",
                base_url = opts.base_url and "--base-url" or "LEADPIPE_BASE_URL",
                max_retries = "--retries",
            }
            local msg = gsub(client.message, "^leadpipe%.new: ", "")
            local arg = client.argument
            if from[arg] and sub(msg, 1, #arg) == arg then msg = from[arg] .. sub(msg, #arg + 1) end
            -- the tool has no allow_insecure_http: the way out is https
            local i = find(msg, "; pass allow_insecure_http = true to accept that", 1, true)
            if i and base_url then
                msg = sub(msg, 1, i - 1) .. "; write " .. gsub(base_url, "^[Hh][Tt][Tt][Pp]://", "https://")
                    .. " instead"
            end
            usage(msg)
        end
        error(client, 0)
    end
    ctx.client = client
    -- every server text printed from here on (rows, CSV, runs, stats) is scrubbed of the key
    ctx.stdout = require("leadpipe.scrub").writer(ctx.stdout, key)
    return client
end

local function new_progress(ctx)
    return ctx.tty and progress.new(ctx.stderr, ctx.now or ctx.client.host.now) or nil
end

-- Writes rows (an array) with format.writer.
local function write_rows(ctx, rows, fields, default_fmt)
    local name = ctx.opts.format or default_fmt
    local writer = fmt.writer(name, ctx.stdout, (name == "table" or name == "csv") and fields or nil)
    for _, row in ipairs(rows) do check_write(writer:write(row)) end
    check_write(writer:finish())
end

-- ===== audiences and runs =====

function commands.audiences(ctx)
    local client = make_client(ctx)
    local list, err = client:audiences{ status = ctx.opts.status, limit = ctx.opts.limit }
    if not list then api_error(err) end
    write_rows(ctx, list, { "id", "name", "status", "audienceSize", "lastRefreshedAt" }, "table")
    return 0
end

function commands.runs(ctx)
    local client = make_client(ctx)
    local runs, err = client:list_runs(ctx.opts.AUDIENCE, { limit = ctx.opts.limit })
    if not runs then api_error(err) end
    write_rows(ctx, runs, { "id", "status", "runType", "resultCount", "createdAt", "completedAt" }, "table")
    return 0
end

function commands.run(ctx)
    local aud = ctx.opts.AUDIENCE
    local client = make_client(ctx)
    local run, err = client:create_run(aud, { idempotency_key = ctx.opts.idempotency_key })
    if not run then api_error(err) end
    write(ctx, tostring(run.id), "\n")
    flush(ctx)
    if ctx.opts.wait then
        local p = new_progress(ctx)
        local done
        done, err = client:wait_run(aud, run.id, {
            timeout = ctx.opts.timeout,
            on_poll = p and function(page) p:waiting(run.id, page.state) end or nil,
        })
        if not done then
            if p then p:finish() end
            api_error(err)
        end
        if p then
            p:finish(format("run %s: %s, %s rows", tostring(run.id),
                tostring(done.status or "completed"), tostring(done.resultCount or "?")))
        end
    end
    return 0
end

function commands.cancel(ctx)
    local client = make_client(ctx)
    local run, err = client:cancel_run(ctx.opts.AUDIENCE, ctx.opts.RUN)
    if not run then api_error(err) end
    write(ctx, format("%s %s\n", tostring(run.id or ctx.opts.RUN), tostring(run.status or "cancelled")))
    return 0
end

-- ===== results =====

local WHERE_KEYS = {
    min_score = "min_score", max_score = "max_score", seniority = "seniority",
    seniority_at_least = "seniority_at_least", department = "department", country = "country",
    topic = "topic", has = "has",
}

--- where_from(opts) -> the where{} table of the filter options, or nil when none is given.
function _M.where_from(opts)
    local where, any = {}, false
    for opt, key in pairs(WHERE_KEYS) do
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

-- Checks the where table now, so that a bad value is named as the option the user typed.
local function check_where(where)
    if not where then return end
    local ok, err = pcall(filter.where, where)
    if not ok then
        local msg = gsub(tostring(type(err) == "table" and err.message or err), "^where: ", "")
        msg = gsub(msg, "^([%w_]+)", function(key) return "--" .. gsub(key, "_", "-") end)
        usage(msg)
    end
end

-- Ends an iterator's pending requests (Lua 5.4 does it in a generic for; 5.1 does not).
local function close_iter(closer)
    local mt = closer and getmetatable(closer)
    if mt and mt.__close then mt.__close(closer) end
end

function commands.results(ctx)
    local opts = ctx.opts
    local aud, run_id = opts.AUDIENCE, opts.RUN
    local where = _M.where_from(opts)
    check_where(where)
    local fields
    if opts.fields then
        local err
        fields, err = fmt.parse_fields(opts.fields)
        if not fields then usage("--fields: " .. err) end
    end
    local client = make_client(ctx)
    local writer = fmt.writer(opts.format or "jsonl", ctx.stdout, fields, { csv_safe = opts.csv_safe })
    local maxn = opts.max
    if maxn == 0 then
        check_write(writer:finish())
        return 0
    end
    local p = new_progress(ctx)
    local written, stopped, closer = 0, false, nil
    local ok, err = pcall(function()
        local it = { client:people(aud, run_id, {
            where = where,
            limit = opts.limit or 500,
            wait = not opts.no_wait,
            timeout = opts.timeout,
            on_poll = p and function(page) p:waiting(run_id, page.state) end or nil,
            on_page = p and function(page) p:page(page) end or nil,
        }) }
        closer = it[4]
        for row in it[1] do
            check_write(writer:write(row))
            written = written + 1
            if maxn and written >= maxn then
                stopped = true
                break
            end
        end
    end)
    close_iter(closer)
    if p then
        if stopped then p:clear() else p:finish() end
    end
    if not ok then api_error(err) end
    check_write(writer:finish())
    return 0
end

-- What cli/changes.lua (the changes command) shares with the commands here.
_M.make_client, _M.new_progress, _M.check_where, _M.close_iter, _M.api_error =
    make_client, new_progress, check_where, close_iter, api_error
commands.changes = function(ctx) return require("leadpipe.cli.changes").run(ctx, _M) end

-- ===== stats and export =====

-- The waiting options of stats and export_csv from --no-wait/--timeout, progress in p.
local function wait_opts(opts, p)
    return {
        wait = not opts.no_wait, timeout = opts.timeout,
        on_poll = p and function(page) p:waiting(opts.RUN, page.state) end or nil,
    }
end

function commands.stats(ctx)
    local opts = ctx.opts
    local client = make_client(ctx)
    local p = new_progress(ctx)
    local stats, err = client:stats(opts.AUDIENCE, opts.RUN, wait_opts(opts, p))
    if p then p:finish() end
    if not stats then api_error(err) end
    write(ctx, json.encode(stats), "\n")
    return 0
end

function commands.export(ctx)
    local opts = ctx.opts
    local client = make_client(ctx)
    local p = new_progress(ctx)
    local spec = wait_opts(opts, p)
    if opts.output then
        spec.path = opts.output
    else
        spec.sink = function(chunk)
            return check_write(ctx.stdout:write(chunk))
        end
    end
    local r, err = client:export_csv(opts.AUDIENCE, opts.RUN, spec)
    if p then p:finish() end
    if not r then api_error(err) end
    return 0
end

-- ===== mock and help =====

function commands.mock(ctx)
    -- the fake API is a rock of its own (leadpipe-mock): loaded only by this command
    local mock = require "leadpipe.mock"
    local opts = ctx.opts
    local conf = { port = opts.port or 8080, output = ctx.stdout, duration = opts.duration,
                   seed = opts.seed, queued_ms = opts.queued_ms, running_ms = opts.running_ms }
    if opts.rows then
        local audiences = {}
        for i, a in ipairs(mock.AUDIENCES) do
            audiences[i] = { id = a.id, rows = a.rows, fail = a.fail, name = a.name, status = a.status,
                             daily_runs = a.daily_runs }
        end
        audiences[1].rows = opts.rows
        conf.audiences = audiences
    end
    local ok, err = mock.serve(conf)
    if not ok then error({ message = "mock: " .. tostring(err) }, 0) end
    return 0
end

function commands.help(ctx)
    local topic = ctx.opts.help_topic
    if topic and not commands[topic] then
        usage(format("unknown command %q", topic))
    end
    write(ctx, parser.help(topic))
    return 0
end

return _M

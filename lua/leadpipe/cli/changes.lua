-- leadpipe.cli.changes: the `leadpipe changes` command: who was added, removed or changed
-- between two runs of an audience (client:changes), written like `results` writes rows.
--
--   run(ctx, shared) -> exit status      ctx as in cli/commands.lua; shared: what that
--                                        module shares (make_client, new_progress, ...)
--
-- Each row gets "change" (added, removed, changed) and, for changed, "changed" (the names
-- of the fields that differ); JSON and JSONL rows also get "was": those fields' values in
-- the older run. Without --from/--to it compares the audience's two latest completed runs
-- and says which on stderr; at the end it says how many of each kind it wrote.

local progress = require "leadpipe.cli.progress"

local format, tostring, ipairs, pcall = string.format, tostring, ipairs, pcall

local _M = { _VERSION = require "leadpipe.version" }

-- "run <id> (dataDate <d>, <n> rows)"
local function describe(run)
    local parts = {}
    if run.dataDate then parts[#parts + 1] = "dataDate " .. tostring(run.dataDate) end
    if run.resultCount then parts[#parts + 1] = tostring(run.resultCount) .. " rows" end
    return "run " .. tostring(run.id) .. (#parts > 0 and (" (" .. table.concat(parts, ", ") .. ")") or "")
end

-- The row as written: the person with change, changed and (JSON formats) was.
local function annotate(json, kind, row, list, with_was)
    row.change = kind
    if list then
        local names, was = json.array({}), {}
        for i, c in ipairs(list) do
            names[i] = c.field
            was[c.field] = c.old
        end
        row.changed = names
        if with_was then row.was = was end
    end
    return row
end

function _M.run(ctx, shared)
    local opts = ctx.opts
    local aud = opts.AUDIENCE
    local fmt = require "leadpipe.format"
    local json = require "leadpipe.json"
    local usage, check_write = shared.usage, shared.check_write
    local where = shared.where_from(opts)
    shared.check_where(where)
    local fields, compare
    if opts.fields then
        local err
        fields, err = fmt.parse_fields(opts.fields)
        if not fields then usage("--fields: " .. err) end
    end
    if opts.compare then
        local err
        compare, err = fmt.parse_fields(opts.compare)
        if not compare then usage("--compare: " .. err) end
    end
    if opts.from and opts.to and opts.from:lower() == opts.to:lower() then
        usage("--from and --to name the same run: compare two different runs")
    end
    local name = opts.format or "jsonl"
    local cols = fields
    if name == "csv" or name == "table" then
        cols = { "change", "changed" }
        for _, f in ipairs(fields or fmt.default_fields[name]) do cols[#cols + 1] = f end
    elseif fields then
        cols = { "change", "changed", "was" }
        for _, f in ipairs(fields) do cols[#cols + 1] = f end
    end
    local client = shared.make_client(ctx)

    local from_id, to_id = opts.from, opts.to
    if not (from_id and to_id) then
        local runs, err = client:latest_runs(aud, 2)
        if not runs then shared.api_error(err) end
        to_id = to_id or runs[1].id
        from_id = from_id or (runs[1].id:lower() == to_id:lower() and runs[2].id or runs[1].id)
        local by_id = { [runs[1].id] = runs[1], [runs[2].id] = runs[2] }
        ctx.stderr:write(format("leadpipe: comparing %s with %s\n",
            describe(by_id[from_id] or { id = from_id }), describe(by_id[to_id] or { id = to_id })))
        if from_id:lower() == to_id:lower() then
            usage("--from and --to name the same run: compare two different runs")
        end
    end

    local writer = fmt.writer(name, ctx.stdout, cols, { csv_safe = opts.csv_safe })
    local maxn = opts.max
    if maxn == 0 then
        check_write(writer:finish())
        return 0
    end
    local p, p_step
    local counts = { added = 0, removed = 0, changed = 0 }
    local written, stopped, closer = 0, false, nil
    local with_was = name == "jsonl" or name == "json"
    local ok, err = pcall(function()
        local it = { client:changes(aud, from_id, to_id, {
            where = where, fields = compare, only = opts.only, limit = opts.limit or 500,
            wait = opts.wait or false, timeout = opts.timeout,
            on_poll = ctx.tty and function(page)
                p = p or shared.new_progress(ctx)
                p:waiting(page.run and page.run.id or "?", page.state)
            end or nil,
            on_page = ctx.tty and function(page, step, steps, run_id)
                if step ~= p_step then
                    if p then p:clear() end
                    p_step = step
                    p = progress.new(ctx.stderr, ctx.now, format("%s %d/%d:",
                        run_id == from_id and "from" or "to", step, steps))
                end
                p:page(page, page.offset + (page.rows or #page.results) >= (page.total or 0))
            end or nil,
        }) }
        closer = it[4]
        for kind, row, list in it[1] do
            check_write(writer:write(annotate(json, kind, row, list, with_was)))
            counts[kind] = counts[kind] + 1
            written = written + 1
            if maxn and written >= maxn then
                stopped = true
                break
            end
        end
    end)
    shared.close_iter(closer)
    if p then p:clear() end
    if not ok then shared.api_error(err) end
    check_write(writer:finish())
    if not stopped then
        ctx.stderr:write(format("leadpipe: %d added, %d removed, %d changed\n", counts.added,
            counts.removed, counts.changed))
    end
    return 0
end

return _M

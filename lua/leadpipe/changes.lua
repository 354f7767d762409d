-- leadpipe.changes: what changed between two runs of an audience. Adds client:changes (who
-- is added, removed or changed, people matched by hashedEmail) and client:latest_runs to
-- the Client (installed by client/init.lua).
--
-- How a diff reads (A and B are the two runs; see csrc/lp_fpset.h for the table):
--   1. A is read into a C-side table of fingerprints (core.fpset): per person 16 bytes, an
--      id fingerprint and a fingerprint of the compared fields. No row of A is built.
--   2. B streams through it: a row A lacks is built (when it passes `where`) and handed
--      out; a person whose fields differ is marked changed.
--   3. A is read again: the rows B lacked are built and handed out, and the marked ones.
-- Each pass is client:people() with a pushed-down where{} that runs the table's pass inside
-- the page decoder (core.where with fpset =), so the rows that are not wanted are never
-- built; without the page decoder (the lua-cjson build) the same passes run on decoded
-- rows (fs:visit). With "changed" among the kinds, A is `to` and B `from`: step 2 keeps the
-- changed people's old values (their `from` rows are built for it, and the compared
-- fields stored in the table's arena), and step 3 hands out their `to` rows with them.
-- With only "added", A is `from` and step 3 is not needed; with only "removed", A is `to`.
--
-- Conventions as in client.lua: bad arguments raise an invalid_argument error when the
-- iterator is made; everything else (runs that are failed, pending or of another audience,
-- the same runs' pages) is raised by the iterator, the run checks before any page is read.

local args = require "leadpipe.args"
local errors = require "leadpipe.errors"
local core = require "leadpipe.core"
local filter = require "leadpipe.filter"
local predicate = require "leadpipe.predicate"
local path = require "leadpipe.path"
local json = require "leadpipe.json"
local base = require "leadpipe.client.base"

local type, tostring, pairs, ipairs, pcall = type, tostring, pairs, ipairs, pcall
-- Every raise here is of an error object: errors.raise makes it printable on PUC Lua 5.1 too.
local error = errors.raise
local setmetatable, getmetatable = setmetatable, getmetatable
local unpack = table.unpack or unpack -- luacheck: ignore 143
local format = string.format
local get_parts, split = path.get_parts, path.split

---@alias leadpipe.ChangeKind "added"|"removed"|"changed"

--- One compared field of a changed person.
---@class leadpipe.FieldChange
---@field field string the dotted path, as given in `fields`
---@field old any from's value (nil when it had none)
---@field new any to's value (nil when it has none)

---@class leadpipe.ChangesOpts: leadpipe.WaitOpts
---@field fields? string|string[] dotted paths compared for "changed" (default changes.DEFAULT_FIELDS)
---@field only? leadpipe.ChangeKind|leadpipe.ChangeKind[] the kinds wanted (default all three)
---@field where? leadpipe.Where|leadpipe.Predicate to's rows must pass it (from's, for "removed")
---@field limit? integer rows per page, 1..500 (default 500)
---@field prefetch? integer pages in flight ahead of the reader, 0..64 (default 64)
---@field wait? boolean wait for a pending run (default false: kind "not_ready")
---@field on_page? fun(page: leadpipe.Page, step: integer, steps: integer, run_id: string) every page read

---@class leadpipe.changes
local _M = { _VERSION = require "leadpipe.version" }

--- The fields compared for "changed" when `fields` is not given.
_M.DEFAULT_FIELDS = { "intent.score", "jobTitle", "seniority", "company.name" }
--- The kinds of change, in the order a full diff hands them out (removed first).
_M.KINDS = { "added", "removed", "changed" }

local FLAGS = core.fpset_flags or {}
local MAX_FIELDS = 64

local invalid, set, first = args.invalid, args.set, args.first
local enter = base.enter
local check_id, check_int, check_number, check_function = args.check_id, args.check_int,
    args.check_number, args.check_function

local CHANGES_OPTS = set{ "fields", "only", "where", "limit", "prefetch", "wait", "timeout", "interval",
                          "max_interval", "on_poll", "on_page" }
local RUN_STATUSES = { queued = "pending", running = "pending", completed = "completed",
                       failed = "failed", cancelled = "cancelled" }

local function raise(err) error(err, 0) end


-- ===== arguments =====

local function check_fields(fname, fields)
    if fields == nil then return _M.DEFAULT_FIELDS end
    if type(fields) == "string" then fields = { fields } end
    if type(fields) ~= "table" or #fields == 0 or #fields > MAX_FIELDS then
        return nil, invalid(fname, "fields", "must be a list of 1 to " .. MAX_FIELDS
            .. " dotted paths like \"company.name\" (got " .. type(fields) .. ")")
    end
    local seen = {}
    for i = 1, #fields do
        local f = fields[i]
        if not path.valid(f) then
            return nil, invalid(fname, "fields", format("must hold dotted paths like \"company.name\" "
                .. "(item %d is %s)", i, type(f) == "string" and format("%q", f) or type(f)))
        end
        if seen[f] then return nil, invalid(fname, "fields", format("repeats %q", f)) end
        seen[f] = true
    end
    for k in pairs(fields) do
        if type(k) ~= "number" or k < 1 or k > #fields or k % 1 ~= 0 then
            return nil, invalid(fname, "fields", "must be a list (an array of strings)")
        end
    end
    return fields
end

local KIND_SET = set(_M.KINDS)

-- only -> { added =, removed =, changed = } or nil, err.
local function check_only(fname, only)
    if only == nil then return { added = true, removed = true, changed = true } end
    if type(only) == "string" then only = { only } end
    local bad = type(only) ~= "table" or #only == 0
    local want = {}
    if not bad then
        for _, k in ipairs(only) do
            if not KIND_SET[k] then bad = true end
            want[k] = true
        end
    end
    if bad then
        return nil, invalid(fname, "only", "must be \"added\", \"removed\", \"changed\" or a non-empty "
            .. "list of them (got " .. (type(only) == "string" and format("%q", only) or type(only)) .. ")")
    end
    return want
end

-- The user's where as (spec table or nil, Lua predicate or nil); raises invalid_argument.
local function check_where(fname, where)
    if where == nil then return nil, nil end
    local ok, c = pcall(filter.compile, where)
    if not ok then
        raise(invalid(fname, "where", (tostring(errors.is_error(c) and c.message or c):gsub("^where: ", ""))))
    end
    if type(where) == "table" and getmetatable(where) == nil then return where, nil end
    return nil, c.fn -- a function (or a compiled where): applied to the rows built
end

-- ===== the runs =====

local function run_error(aud, run, role)
    local status = RUN_STATUSES[run.status]
    local what = format("%s run %s of audience %s", role, tostring(run.id), aud)
    if status == "failed" then
        return errors.new("run_failed", what .. " failed"
            .. (run.errorCode and (": " .. tostring(run.errorCode)) or "")
            .. (run.errorMessage and (" (" .. tostring(run.errorMessage) .. ")") or ""),
            { code = "RUN_FAILED", run = run })
    elseif status == "cancelled" then
        return errors.new("run_cancelled", what .. " was cancelled", { code = "RUN_CANCELLED", run = run })
    end
    return errors.new("not_ready", what .. " is " .. tostring(run.status)
        .. " (pass wait = true to wait for it)", { code = "RUN_NOT_READY", retryable = true, run = run })
end

-- The run `id` of the audience, checked before any page is read: from the audience's last
-- 100 runs, else from a one-row results page (a run older than those, or not the
-- audience's). Returns the completed run (waiting for it when o.wait), or nil, err.
local function checked_run(self, aud, id, listed, role, o)
    local run = listed[id:lower()]
    if not run then
        local page, err = self:results(aud, id, { limit = 1 })
        if not page then
            if err.kind == "not_found" then
                err = errors.new("not_found", format("%s run %s is not a run of audience %s", role, id, aud),
                    { status = err.status, code = err.code or "RUN_NOT_FOUND", request_id = err.request_id })
            end
            return nil, err
        end
        run = page.run or {}
        run.id = run.id or id
        if page.state == "completed" then run.status = "completed" end
        if page.state ~= "completed" then run.status = page.state end
        if run.resultCount == nil and page.state == "completed" then run.resultCount = page.total end
    end
    if RUN_STATUSES[run.status] == "completed" then return run end
    if RUN_STATUSES[run.status] == "pending" and o.wait then
        return self:wait_run(aud, id, { timeout = o.timeout, interval = o.interval,
            max_interval = o.max_interval, on_poll = o.on_poll })
    end
    return nil, run_error(aud, run, role)
end

-- ===== the passes =====

local function count(n) return type(n) == "number" and n >= 0 and n or 0 end

-- Deep equality of two decoded values (numbers by value: 84 == 84.0).
local function same(a, b)
    if a == b then return true end
    if type(a) ~= "table" or type(b) ~= "table" then return false end
    if (getmetatable(a) == core.array_mt) ~= (getmetatable(b) == core.array_mt) then return false end
    for k, v in pairs(a) do
        if not same(v, b[k]) then return false end
    end
    for k in pairs(b) do
        if a[k] == nil then return false end
    end
    return true
end

-- The old values of a changed person, as text for the table's arena: a JSON array with,
-- for each compared field, [value] or [] when the row has none (about 60 bytes for the
-- default fields).
local function pack_old(row, parts)
    local t = {}
    for i = 1, #parts do
        local v = get_parts(row, parts[i])
        t[i] = json.array(v == nil and {} or { v })
    end
    return json.encode(t)
end

-- The compared fields that differ between from's (packed) values and to's row.
local function field_changes(packed, row, fields, parts)
    local old = packed and json.decode(packed) or {}
    local list = {}
    for i = 1, #fields do
        local was = type(old[i]) == "table" and old[i][1] or nil
        local new = get_parts(row, parts[i])
        if not same(was, new) then list[#list + 1] = { field = fields[i], old = was, new = new } end
    end
    return list
end

local function plan_of(want, from_id, to_id)
    if want.changed or (want.added and want.removed) then
        -- A = to, B = from: removed rows come out in step 2, added and changed in step 3
        return { a = to_id, b = from_id, a_role = "to", b_role = "from", b_only = want.removed and "removed",
                 a_only = want.added and "added", changed = want.changed, steps = 3 }
    elseif want.added then
        return { a = from_id, b = to_id, a_role = "from", b_role = "to", b_only = "added", steps = 2 }
    end
    return { a = to_id, b = from_id, a_role = "to", b_role = "from", b_only = "removed", steps = 2 }
end

-- The where of one pass for people(): the table's pass pushed down (native) when the core
-- has a page decoder, else a Lua predicate doing the same on each decoded row.
local function pass_where(fs, op, only, changed, spec, fields, parts)
    local nf = fields and #fields or 0
    local vals = {}
    local spec_fn = spec and filter.where(spec)
    local c = filter.compile(function(row)
        local ok = not spec_fn or spec_fn(row)
        for i = 1, nf do vals[i] = get_parts(row, parts[i]) end
        return fs:visit(op, only, changed, ok, row, nf, unpack(vals, 1, nf))
    end)
    local s = {}
    for k, v in pairs(spec or {}) do s[k] = v end
    s.fpset, s.fpset_op, s.fpset_only, s.fpset_changed, s.fpset_fields = fs, op, only, changed, fields
    c.native = predicate.native(s, filter.ranks)
    return c
end

local function table_error(run_id, role, what, n, code)
    return errors.new("http", format("%s run %s: %d %s", role, run_id, n, what), { code = code })
end

--- Adds client:changes and client:latest_runs to the Client class (called once by client.lua).
---@param client_class table the Client class of client.lua
---@return nil
function _M.install(client_class)
    ---@class leadpipe.Client
    local Client = client_class

    --- client:latest_runs(audience_id, n) -> the n newest completed runs, newest first | nil, err
    --- Among the audience's last 100 runs; n is 1..100 (default 2). Fewer than n completed:
    --- nil and an error of kind "not_found", code "NO_RUN".
    ---@param aud string audience id (UUID)
    ---@param n? integer how many (default 2)
    ---@return leadpipe.Run[]|nil runs newest first
    ---@return leadpipe.Error|nil err
    function Client:latest_runs(aud, n)
        local fname = "latest_runs"
        local _, err = enter(self, fname)
        if err then return nil, err end
        err = check_id(fname, "audience_id", aud) or check_int(fname, "n", n, 1, 100)
        if err then return nil, err end
        n = n or 2
        local runs
        runs, err = self:list_runs(aud, { limit = 100 })
        if not runs then return nil, err end
        local out = {}
        for _, run in ipairs(runs) do
            if type(run) == "table" and run.status == "completed" and #out < n then out[#out + 1] = run end
        end
        if #out < n then
            return nil, errors.new("not_found", format("audience %s has %d completed run%s (%d needed)",
                aud, #out, #out == 1 and "" or "s", n), { code = "NO_RUN" })
        end
        return out
    end

    --- client:changes(audience_id, from_run_id, to_run_id, { fields =, only =, where =, limit = 500,
    ---  prefetch =, wait = false, timeout =, on_page = }) -> iterator of change, row, fields
    --- change is "added" (in to, not in from), "removed" (in from, not in to; row is from's) or
    --- "changed" (in both, and a compared field differs; row is to's, and the third value lists
    --- the fields that changed: { field =, old =, new = }). People are matched by hashedEmail
    --- (a row without one, by its whole content). `where` applies to to's rows, and to from's
    --- for "removed". Both runs must be completed (or, with wait = true, it waits for them);
    --- the runs are checked before any page is read. Raises on bad arguments (the same run
    --- twice included); the iterator raises a leadpipe.Error. The fourth value closes it.
    ---@param aud string audience id (UUID)
    ---@param from_id string the older run (UUID)
    ---@param to_id string the newer run (UUID)
    ---@param opts? leadpipe.ChangesOpts
    ---@return fun(): leadpipe.ChangeKind|nil, leadpipe.Person|nil, leadpipe.FieldChange[]|nil iter
    ---@return nil
    ---@return nil
    ---@return table closer
    function Client:changes(aud, from_id, to_id, opts)
        local fname = "changes"
        local o, err = enter(self, fname, opts, CHANGES_OPTS)
        if not o then error(err, 2) end
        err = first(check_id(fname, "audience_id", aud), check_id(fname, "from_run_id", from_id),
            check_id(fname, "to_run_id", to_id), check_int(fname, "limit", o.limit, 1, 500),
            check_int(fname, "prefetch", o.prefetch, 0, 64), check_number(fname, "timeout", o.timeout, 0),
            check_number(fname, "interval", o.interval, 0.001),
            check_number(fname, "max_interval", o.max_interval, 0.001),
            check_function(fname, "on_poll", o.on_poll), check_function(fname, "on_page", o.on_page))
        if not err and o.wait ~= nil and type(o.wait) ~= "boolean" then
            err = invalid(fname, "wait", "must be a boolean (got " .. type(o.wait) .. ")")
        end
        if not err and from_id:lower() == to_id:lower() then
            err = invalid(fname, "to_run_id", "is the same run as from_run_id (" .. from_id .. "): "
                .. "compare two different runs of the audience")
        end
        if err then error(err, 2) end
        local fields, want
        fields, err = check_fields(fname, o.fields)
        if not err then want, err = check_only(fname, o.only) end
        if err then error(err, 2) end
        local ok, spec, user_fn = pcall(check_where, fname, o.where)
        if not ok then error(spec, 2) end
        local parts = {}
        for i = 1, #fields do parts[i] = split(fields[i]) end

        local plan = plan_of(want, from_id, to_id)
        local fs, rows, closer -- the table; the current pass's rows and closer
        local step, done, pass = 0, false, nil
        local counted = {}      -- rows read per step

        local function finish()
            done = true
            local mt = closer and getmetatable(closer)
            if mt and mt.__close then mt.__close(closer) end
            rows, closer = nil, nil
            if fs then fs:close() end
        end

        local function fail(e)
            finish()
            raise(e)
        end

        -- Step 0: both runs checked (and waited for) before any page is read.
        local function start()
            local runs, lerr = self:list_runs(aud, { limit = 100 })
            if not runs then fail(lerr) end
            local listed = {}
            for _, r in ipairs(runs) do
                if type(r) == "table" and type(r.id) == "string" then listed[r.id:lower()] = r end
            end
            local from_run, ferr = checked_run(self, aud, from_id, listed, "from", o)
            if not from_run then fail(ferr) end
            local to_run, terr = checked_run(self, aud, to_id, listed, "to", o)
            if not to_run then fail(terr) end
            local a_run = plan.a == to_id and to_run or from_run
            local b_run = plan.a == to_id and from_run or to_run
            -- A's people, and room for B's own (a few per cent of a day's run; the table grows)
            local hint = count(a_run.resultCount) + count(b_run.resultCount) / 16 + 64
            fs = core.fpset(math.floor(hint))
        end

        local function read(run_id, where, n)
            local it = { self:people(aud, run_id, {
                where = where, limit = o.limit or 500, prefetch = o.prefetch,
                timeout = o.timeout, interval = o.interval, max_interval = o.max_interval,
                on_page = function(page)
                    counted[n] = (counted[n] or 0) + (page.rows or #page.results)
                    if o.on_page then o.on_page(page, n, plan.steps, run_id) end
                end,
            }) }
            rows, closer = it[1], it[4]
        end

        -- Ends step n; raises when the table saw a contradiction (or ran out of memory).
        local function check_step(n, run_id, role)
            local st = fs:stats()
            if st.lost > 0 then
                fail(errors.new("network", "changes: out of memory for the fingerprint table",
                    { code = "internal" }))
            end
            if st.dups > 0 then
                fail(table_error(run_id, role, "rows repeat a person (hashedEmail) seen earlier in the run",
                    st.dups, "REPEATED_ROWS"))
            end
            if st.strays > 0 or (n == 3 and counted[3] ~= counted[1]) then
                fail(table_error(run_id, role, "rows differ from its first read (the run changed while "
                    .. "it was read)", st.strays > 0 and st.strays
                    or math.abs((counted[3] or 0) - (counted[1] or 0)), "RUN_CHANGED"))
            end
        end

        local function next_step()
            step = step + 1
            if step > plan.steps then return false end
            if step == 1 then
                -- A into the table: its where decides WHERE_A (only for the changed kind)
                pass = { op = "insert", run = plan.a, role = plan.a_role }
                read(plan.a, pass_where(fs, "insert", false, false, plan.changed and spec or nil,
                    plan.changed and fields or nil, parts), 1)
            elseif step == 2 then
                pass = { op = "probe", run = plan.b, role = plan.b_role, only = plan.b_only }
                read(plan.b, pass_where(fs, "probe", plan.b_only and true or false, plan.changed or false,
                    spec, plan.changed and fields or nil, parts), 2)
            else
                pass = { op = "rest", run = plan.a, role = plan.a_role, only = plan.a_only }
                read(plan.a, pass_where(fs, "rest", plan.a_only and true or false, plan.changed or false,
                    spec, nil, parts), 3)
            end
            return true
        end

        -- What a row kept by the current pass is: change, row, field changes (or nil: skip).
        local function classify(row)
            local flags = fs:flags(row) or 0
            local changed = flags % (2 * FLAGS.CHANGED) >= FLAGS.CHANGED
            if pass.op == "probe" then
                if changed then
                    -- from's row of a changed person: keep its compared fields for step 3
                    fs:put_old(row, pack_old(row, parts))
                    return nil
                end
                if pass.only and (not user_fn or user_fn(row)) then return pass.only, row end
                return nil
            end
            if user_fn and not user_fn(row) then return nil end
            if changed then
                local list = field_changes(fs:old(row), row, fields, parts)
                if #list > 0 then return "changed", row, list end
                return nil
            end
            if pass.only then return pass.only, row end
            return nil
        end

        local function iter()
            if done then return nil end
            if self.closed then fail(args.closed(fname)) end
            if not fs then
                start()
                next_step()
            end
            while true do
                local row = rows()
                if row == nil then
                    check_step(step, pass.run, pass.role)
                    if not next_step() then
                        finish()
                        return nil
                    end
                else
                    local change, r, list = classify(row)
                    if change then return change, r, list end
                end
            end
        end

        local close = setmetatable({}, { __close = function() finish() end })
        return iter, nil, nil, close
    end
end

return _M

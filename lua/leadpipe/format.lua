-- leadpipe.format: rows as JSONL, CSV (RFC 4180) or an aligned text table.
-- Used by the command line tool (leadpipe.cli) and the examples.
--
--   format.cell(value)              -> text of one value for a CSV or table cell
--   format.csv_record(values, n)    -> one CSV record, CRLF-terminated
--   format.width(text)              -> display width in terminal columns (UTF-8 aware)
--   format.table_lines(rows, fields, opts) -> array of lines (no newlines) of an aligned table
--   format.project(row, fields)     -> a new row holding only `fields` (dotted paths), nested
--   format.writer(fmt, out, fields, opts) -> { write = fn(row) -> true | nil, err, finish = fn() }
--                                     fmt: jsonl, json (one array), csv, table
--   format.parse_fields(text)       -> array of dotted paths | nil, message
--   format.default_fields           -> { csv = {...}, table = {...} }
--
-- Cells: a missing value is empty; numbers print like JSON (84, not 84.0); an array joins its
-- items with "; ", an item that is an object showing its topicName (or name) when it has
-- one and its JSON otherwise; any other object is its JSON.
--
-- Licensed under the MIT license, like the rest of leadpipe.

local json = require "leadpipe.json"
local path = require "leadpipe.path"
local args = require "leadpipe.args"

local type, tostring, ipairs, pairs = type, tostring, ipairs, pairs
local getmetatable, next = getmetatable, next
local find, gsub, byte, rep, format = string.find, string.gsub, string.byte,
    string.rep, string.format
local concat = table.concat
local get = path.get

local _M = { _VERSION = require "leadpipe.version" }

--- The columns used when --fields is not given.
_M.default_fields = {
    csv = {
        "hashedEmail", "firstName", "lastName", "fullName", "businessEmail", "personalEmail", "phone",
        "linkedinUrl", "jobTitle", "seniority", "department", "company.name", "company.domain",
        "company.industry", "geo.city", "geo.state", "geo.country", "geo.countryCode",
        "intent.score", "intent.topicOverlap", "intent.matchedTopics",
    },
    table = {
        "fullName", "jobTitle", "seniority", "company.name", "geo.countryCode", "intent.score",
    },
}

-- ===== cells ===============================================================================

local function is_array(t)
    if getmetatable(t) == json.array_mt then return true end
    local n = #t
    if n == 0 then return false end
    for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
    end
    return true
end

local function scalar_text(v)
    local t = type(v)
    if t == "string" then return v end
    if t == "number" or t == "table" then return json.encode(v) end
    if v == nil then return "" end
    return tostring(v)
end

function _M.cell(v)
    if type(v) ~= "table" then return scalar_text(v) end
    if not is_array(v) then
        if next(v) == nil then return "" end
        return json.encode(v)
    end
    local parts = {}
    for i, item in ipairs(v) do
        if type(item) == "table" and not is_array(item) then
            local label = item.topicName or item.name
            parts[i] = type(label) == "string" and label or json.encode(item)
        else
            parts[i] = scalar_text(item)
        end
    end
    return concat(parts, "; ")
end

-- ===== CSV (RFC 4180) ======================================================================

local function csv_field(s)
    if find(s, '[,"\r\n]') then
        return '"' .. gsub(s, '"', '""') .. '"'
    end
    return s
end
_M.csv_field = csv_field

--- csv_record(values, n) -> "a,b,c\r\n". values[i] may be nil (empty field); n is the count.
function _M.csv_record(values, n)
    local out = {}
    for i = 1, n or #values do
        local v = values[i]
        out[i] = csv_field(type(v) == "string" and v or _M.cell(v))
    end
    return concat(out, ",") .. "\r\n"
end

-- ===== display width =======================================================================

-- Code point ranges that take two terminal columns (East Asian wide and fullwidth, emoji).
local wide = {
    { 0x1100, 0x115F }, { 0x2E80, 0x303E }, { 0x3041, 0x33FF }, { 0x3400, 0x4DBF },
    { 0x4E00, 0x9FFF }, { 0xA000, 0xA4CF }, { 0xAC00, 0xD7A3 }, { 0xF900, 0xFAFF },
    { 0xFE30, 0xFE4F }, { 0xFF00, 0xFF60 }, { 0xFFE0, 0xFFE6 }, { 0x1F300, 0x1F64F },
    { 0x1F900, 0x1F9FF }, { 0x20000, 0x2FFFD }, { 0x30000, 0x3FFFD },
}
-- Ranges that take no column (combining marks, zero-width joiners and selectors).
local zero = {
    { 0x0300, 0x036F }, { 0x1AB0, 0x1AFF }, { 0x1DC0, 0x1DFF }, { 0x200B, 0x200F },
    { 0x20D0, 0x20FF }, { 0xFE00, 0xFE0F }, { 0xFE20, 0xFE2F },
}

local function in_ranges(cp, ranges)
    for i = 1, #ranges do
        local r = ranges[i]
        if cp < r[1] then return false end
        if cp <= r[2] then return true end
    end
    return false
end

local function char_width(ch)
    local b1 = byte(ch, 1)
    if b1 < 0x80 then return 1 end
    local cp
    local n = #ch
    if n == 2 and b1 >= 0xC2 then
        cp = (b1 - 0xC0) * 0x40 + (byte(ch, 2) - 0x80)
    elseif n == 3 and b1 >= 0xE0 then
        cp = ((b1 - 0xE0) * 0x40 + (byte(ch, 2) - 0x80)) * 0x40 + (byte(ch, 3) - 0x80)
    elseif n == 4 and b1 >= 0xF0 then
        cp = (((b1 - 0xF0) * 0x40 + (byte(ch, 2) - 0x80)) * 0x40 + (byte(ch, 3) - 0x80)) * 0x40
            + (byte(ch, 4) - 0x80)
    else
        return 1 -- invalid UTF-8: the terminal shows one replacement character per byte
    end
    if in_ranges(cp, zero) then return 0 end
    if in_ranges(cp, wide) then return 2 end
    return 1
end

local CHAR = "[%z\1-\127\194-\244][\128-\191]*"

--- width(s) -> number of terminal columns s takes (UTF-8; wide CJK = 2, combining = 0).
function _M.width(s)
    if not find(s, "[\128-\255]") then return #s end
    local w = 0
    for ch in s:gmatch(CHAR) do w = w + char_width(ch) end
    -- bytes that start no character (stray continuation bytes, 0xC0, 0xC1, 0xF5..0xFF)
    local _, stray = gsub(gsub(s, CHAR, ""), ".", "")
    return w + stray
end

-- Cuts s to at most max columns, ending with "…" when it had to cut.
local function truncate(s, max)
    if _M.width(s) <= max then return s end
    local out, w = {}, 0
    for ch in s:gmatch(CHAR) do
        local cw = char_width(ch)
        if w + cw > max - 1 then break end
        out[#out + 1] = ch
        w = w + cw
    end
    return concat(out) .. "…"
end

-- ===== table ===============================================================================

--- table_lines(rows, fields, opts) -> array of lines: header, rule, one line per row.
-- opts.max_width (default 40) caps a column; longer cells end with "…". Control characters
-- in cells become spaces. A column whose cells are all numbers is right-aligned.
function _M.table_lines(rows, fields, opts)
    local max = opts and opts.max_width or 40
    local headers = opts and opts.headers or fields
    local ncol = #fields
    local cells, widths, numeric = {}, {}, {}
    for c = 1, ncol do
        widths[c] = _M.width(truncate(headers[c], max))
        numeric[c] = true
    end
    for r, row in ipairs(rows) do
        local line = {}
        for c = 1, ncol do
            local v = get(row, fields[c])
            if v ~= nil and type(v) ~= "number" then numeric[c] = false end
            local text = truncate((gsub(_M.cell(v), "%c", " ")), max)
            line[c] = text
            local w = _M.width(text)
            if w > widths[c] then widths[c] = w end
        end
        cells[r] = line
    end
    local function render(line, align)
        local parts = {}
        for c = 1, ncol do
            local text = line[c]
            local pad = rep(" ", widths[c] - _M.width(text))
            parts[c] = (align and numeric[c]) and (pad .. text) or (text .. pad)
        end
        return (gsub(concat(parts, "  "), "%s+$", ""))
    end
    local lines = {}
    local head, rule = {}, {}
    for c = 1, ncol do
        head[c] = truncate(headers[c], max)
        rule[c] = rep("-", widths[c])
    end
    lines[1] = render(head, true)
    lines[2] = render(rule, false)
    for r = 1, #cells do lines[r + 2] = render(cells[r], true) end
    return lines
end

-- ===== projection ==========================================================================

--- project(row, fields) -> new table with only the given dotted paths, nested as in the row
-- (so jq paths stay the same). Missing values stay missing.
function _M.project(row, fields)
    local out = {}
    for _, field in ipairs(fields) do
        local v = get(row, field)
        if v ~= nil then
            local parts = path.split(field)
            local t = out
            for i = 1, #parts - 1 do
                local k = parts[i]
                if type(t[k]) ~= "table" then t[k] = {} end
                t = t[k]
            end
            t[parts[#parts]] = v
        end
    end
    return out
end

--- parse_fields("a,b,company.name") -> { "a", "b", "company.name" } | nil, message
function _M.parse_fields(text)
    if type(text) ~= "string" then return nil, "fields must be a comma-separated list" end
    local fields = {}
    for item in (text .. ","):gmatch("([^,]*),") do
        item = gsub(gsub(item, "^%s+", ""), "%s+$", "")
        if item == "" or find(item, "..", 1, true) or find(item, "^%.") or find(item, "%.$")
            or find(item, "[%s%c]") then
            return nil, format("bad field %q: use dotted paths like company.name, separated by commas",
                item)
        end
        fields[#fields + 1] = item
    end
    return fields
end

-- ===== writers =============================================================================

local formats = { jsonl = true, json = true, csv = true, table = true }
_M.formats = formats

--- writer(fmt, out, fields, opts) -> writer with :write(row) and :finish().
-- fmt is "jsonl", "json" (one JSON array, a row per line), "csv" or "table"; out has
-- :write(s) (a file or any object with one); fields
-- is an array of dotted paths or nil (jsonl: whole rows; csv/table: default_fields). jsonl
-- and csv write each row at once; table keeps the rows and writes them in finish().
-- write() and finish() return true, or nil and the message of a failed out:write.
-- opts.csv_safe (csv): a cell starting with =, +, - or @ gets a leading single quote, so a
-- spreadsheet shows it as text instead of running it as a formula (CSV injection).
function _M.writer(fmt, out, fields, opts)
    if not formats[fmt] then
        args.fail("writer", "fmt", "must be jsonl, json, csv or table, got " .. tostring(fmt))
    end
    local w = { count = 0 }
    local function emit(s)
        local ok, err = out:write(s)
        if not ok then return nil, err or "write failed" end
        return true
    end
    if fmt == "jsonl" then
        function w.write(_, row)
            w.count = w.count + 1
            return emit(json.encode(fields and _M.project(row, fields) or row) .. "\n")
        end
        function w.finish() return true end
    elseif fmt == "json" then
        function w.write(_, row)
            w.count = w.count + 1
            return emit((w.count == 1 and "[\n" or ",\n")
                .. json.encode(fields and _M.project(row, fields) or row))
        end
        function w.finish()
            return emit(w.count == 0 and "[]\n" or "\n]\n")
        end
    elseif fmt == "csv" then
        local cols = fields or _M.default_fields.csv
        local n = #cols
        local header_done = false
        local values = {}
        local csv_safe = opts and opts.csv_safe
        function w.write(_, row)
            if not header_done then
                header_done = true
                local ok, err = emit(_M.csv_record(cols, n))
                if not ok then return nil, err end
            end
            w.count = w.count + 1
            for i = 1, n do
                local text = _M.cell(get(row, cols[i]))
                if csv_safe and find(text, "^[=+%-@]") then text = "'" .. text end
                values[i] = text
            end
            return emit(_M.csv_record(values, n))
        end
        function w.finish()
            if not header_done then
                header_done = true
                return emit(_M.csv_record(cols, n))
            end
            return true
        end
    else
        local cols = fields or _M.default_fields.table
        local rows = {}
        function w.write(_, row)
            w.count = w.count + 1
            rows[#rows + 1] = row
            return true
        end
        function w.finish()
            local lines = _M.table_lines(rows, cols, opts)
            rows = {}
            return emit(concat(lines, "\n") .. "\n")
        end
    end
    return w
end

return _M

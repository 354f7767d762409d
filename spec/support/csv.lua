-- An RFC 4180 CSV parser for the specs (CSV written by the CLI and by the fake's export).

local _M = {}

--- parse(text) -> array of records (arrays of strings). Strict RFC 4180: fields may be
-- quoted ("" is a quote inside), records end with CRLF (a bare LF is accepted too), a quote
-- may only open a field and must close it before a comma or line end. Raises on bad input.
function _M.parse(text)
    local records, record, i, n = {}, {}, 1, #text
    if n == 0 then return records end
    while true do
        local field
        if text:sub(i, i) == '"' then
            local parts = {}
            local j = i + 1
            while true do
                local q = text:find('"', j, true)
                if not q then error("csv: unterminated quoted field at byte " .. i) end
                parts[#parts + 1] = text:sub(j, q - 1)
                if text:sub(q + 1, q + 1) == '"' then
                    parts[#parts + 1] = '"'
                    j = q + 2
                else
                    i = q + 1
                    break
                end
            end
            field = table.concat(parts)
        else
            local e = text:find('[,\r\n"]', i)
            if e and text:sub(e, e) == '"' then error("csv: stray quote at byte " .. e) end
            e = e or n + 1
            field = text:sub(i, e - 1)
            i = e
        end
        record[#record + 1] = field
        local c = text:sub(i, i)
        if c == "," then
            i = i + 1
        elseif c == "\r" and text:sub(i + 1, i + 1) == "\n" or c == "\n" then
            i = i + (c == "\r" and 2 or 1)
            records[#records + 1] = record
            record = {}
            if i > n then return records end
        elseif i > n then
            records[#records + 1] = record
            return records
        else
            error("csv: unexpected character after field at byte " .. i)
        end
    end
end

return _M

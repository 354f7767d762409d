-- bench/lib/stats.lua: the numbers the benchmarks report.
local table_sort = table.sort

local _M = {}

--- median(xs) -> the median of the numbers xs (left as they are), or nil when there are none.
function _M.median(xs)
    local s = {}
    for i = 1, #xs do s[i] = xs[i] end
    table_sort(s)
    local n = #s
    if n == 0 then return nil end
    if n % 2 == 1 then return s[(n + 1) / 2] end
    return (s[n / 2] + s[n / 2 + 1]) / 2
end

return _M

-- Starts the Python test servers of spec/support (core_server.py, hostile_server.py).
--
--   local srv = servers.start("hostile_server.py")  -> { url =, port =, stop = }
-- The child runs without LD_PRELOAD (make asan preloads libasan into lua; python must
-- not inherit it). Raises when the server does not start.

local _M = {}

function _M.start(script)
    local h = assert(io.popen("exec env -u LD_PRELOAD -u ASAN_OPTIONS python3 spec/support/" .. script, "r"))
    local line = h:read("*l") or ""
    local port, pid = line:match("^(%d+) (%d+)$")
    if not port then
        h:close()
        error(script .. " did not start: " .. line)
    end
    return {
        url = "http://127.0.0.1:" .. port,
        port = tonumber(port),
        stop = function()
            os.execute("kill " .. pid .. " 2>/dev/null")
            h:close()
        end,
    }
end

-- Serializes any value (tables deeply, cycles cut) so a spec can search all of it.
function _M.dump(v, seen)
    seen = seen or {}
    if type(v) ~= "table" then return tostring(v) end
    if seen[v] then return "<cycle>" end
    seen[v] = true
    local parts = { tostring(v) ~= nil and "{" }
    for k, x in pairs(v) do
        parts[#parts + 1] = _M.dump(k, seen) .. "=" .. _M.dump(x, seen) .. ","
    end
    local mt = getmetatable(v)
    if mt and mt.__tostring then parts[#parts + 1] = tostring(v) end
    return table.concat(parts) .. "}"
end

return _M

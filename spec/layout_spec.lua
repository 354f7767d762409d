-- The layout rules a newcomer relies on (STYLE.md, issue 18): docs/internals.md's layer
-- map names every Lua module under lua/leadpipe/ once; no Lua file under lua/ or bin/
-- passes 500 lines; no import circle among the Lua modules, nor among the C files of the
-- core or of the mock (who calls whose functions).

local h = require "spec.support.cli_helpers"

local MAX_LINES = 500

local function lines_of(path)
    local n = 0
    for _ in io.lines(path) do n = n + 1 end
    return n
end

local function files(cmd)
    local out = {}
    for path in h.sh(cmd):gmatch("[^\n]+") do out[#out + 1] = path end
    table.sort(out)
    return out
end

local LUA_FILES = files("find lua -name '*.lua'")

-- A cycle in graph (node -> { node = true }) as a list of nodes, or nil.
local function find_cycle(graph)
    local state, stack = {}, {}
    local function visit(node)
        state[node] = "open"
        stack[#stack + 1] = node
        local next_nodes = {}
        for to in pairs(graph[node] or {}) do next_nodes[#next_nodes + 1] = to end
        table.sort(next_nodes)
        for _, to in ipairs(next_nodes) do
            if state[to] == "open" then
                local cycle, inside = {}, false
                for _, n in ipairs(stack) do
                    if n == to then inside = true end
                    if inside then cycle[#cycle + 1] = n end
                end
                cycle[#cycle + 1] = to
                return cycle
            elseif state[to] == nil then
                local c = visit(to)
                if c then return c end
            end
        end
        stack[#stack] = nil
        state[node] = "done"
    end
    local nodes = {}
    for node in pairs(graph) do nodes[#nodes + 1] = node end
    table.sort(nodes)
    for _, node in ipairs(nodes) do
        if state[node] == nil then
            local c = visit(node)
            if c then return c end
        end
    end
end

describe("the layout", function()
    it("maps every module under lua/leadpipe/ in docs/internals.md, each once", function()
        local doc = h.read_file("docs/internals.md")
        local map = assert(doc:match("\n```\n( lua/leadpipe/.-)\n```"), "no layer map in docs/internals.md")
        local listed = {}
        for path in map:gmatch("\n?%s(lua/leadpipe/[%w_/]+%.lua)") do
            listed[path] = (listed[path] or 0) + 1
        end
        local missing, twice, stale = {}, {}, {}
        for _, path in ipairs(LUA_FILES) do
            if not listed[path] then missing[#missing + 1] = path end
        end
        for path, n in pairs(listed) do
            if n > 1 then twice[#twice + 1] = path end
            if not io.open(path) then stale[#stale + 1] = path end
        end
        table.sort(twice)
        table.sort(stale)
        assert.are.same({}, missing, "modules missing from the map")
        assert.are.same({}, twice, "modules listed more than once")
        assert.are.same({}, stale, "the map names files that do not exist")
    end)

    it("keeps every Lua file under lua/ and bin/ within " .. MAX_LINES .. " lines", function()
        local over = {}
        local all = { "bin/leadpipe" }
        for _, path in ipairs(LUA_FILES) do all[#all + 1] = path end
        for _, path in ipairs(all) do
            local n = lines_of(path)
            if n > MAX_LINES then over[#over + 1] = path .. " (" .. n .. ")" end
        end
        assert.are.same({}, over)
    end)

    it("has no import circle among the Lua modules", function()
        local file_of = {}
        for _, path in ipairs(LUA_FILES) do
            local mod = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
            file_of[mod] = path
        end
        local graph = {}
        for mod, path in pairs(file_of) do
            graph[mod] = {}
            local src = h.read_file(path)
            for dep in src:gmatch("require%s*%(?%s*[\"']([%w_%.]+)[\"']") do
                if file_of[dep] and dep ~= mod then graph[mod][dep] = true end
            end
        end
        assert.is_truthy(graph["leadpipe"]["leadpipe.client"], "the require scan found nothing")
        local cycle = find_cycle(graph)
        assert.is_nil(cycle, cycle and ("import circle: " .. table.concat(cycle, " -> ")))
    end)

    -- A C file depends on another when it names a function defined (not static) there.
    local function c_graph(dir)
        local paths = files("find " .. dir .. " -maxdepth 1 \\( -name '*.c' -o -name '*.cpp' \\)")
        local defined_in, texts = {}, {}
        for _, path in ipairs(paths) do
            local text = h.read_file(path)
            texts[path] = text
            for line in text:gmatch("[^\n]+") do
                line = line:gsub('^extern "C"%s+', "")
                if not line:find("^static") and not line:find("^%s") and not line:find("^#")
                    and not line:find("^typedef") then
                    local name = line:match("^[%a_][%w_%s%*]-[%s%*]([%a_][%w_]*)%(")
                    if name then defined_in[name] = path end
                end
            end
        end
        local graph = {}
        for _, path in ipairs(paths) do
            graph[path] = {}
            for name, def in pairs(defined_in) do
                if def ~= path and texts[path]:find("%f[%w_]" .. name .. "%f[^%w_]") then
                    graph[path][def] = true
                end
            end
        end
        return graph, defined_in
    end

    for _, dir in ipairs({ "csrc", "csrc/mock" }) do
        it("has no call circle among the C files of " .. dir, function()
            local graph, defined = c_graph(dir)
            assert.is_truthy(next(defined), "the scan found no function of " .. dir)
            local cycle = find_cycle(graph)
            assert.is_nil(cycle, cycle and ("circle: " .. table.concat(cycle, " -> ")))
        end)
    end
end)

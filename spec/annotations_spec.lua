-- The public Lua API carries LuaLS annotations (---@param, ---@return, ---@class) so that
-- editors (Neovim's lua-language-server among them) complete and check it. lua-language-server
-- is not packaged here, so this spec checks what it would read: every public function of the
-- public modules has a doc block with a typed ---@param for each of its parameters (self
-- aside; varargs are "...") and a typed ---@return (`---@return nil` for none), and no
-- ---@param names a parameter the function does not have; every public value a module
-- assigns (`_M.name = value`) is documented; the classes the API promises exist; and the
-- classes that mirror the code (leadpipe.Options, leadpipe.Where, leadpipe.ErrorKind) hold
-- exactly what the code accepts or makes.

local PUBLIC = {
    "lua/leadpipe/init.lua", "lua/leadpipe/client/init.lua", "lua/leadpipe/client/runs.lua",
    "lua/leadpipe/client/waiting.lua", "lua/leadpipe/client/results.lua",
    "lua/leadpipe/client/audiences.lua", "lua/leadpipe/client/exports.lua",
    "lua/leadpipe/filter.lua", "lua/leadpipe/iter.lua", "lua/leadpipe/path.lua",
    "lua/leadpipe/hosts.lua", "lua/leadpipe/errors.lua", "lua/leadpipe/json.lua",
    "lua/leadpipe/mock.lua",
}
-- The LuaLS definition file (---@meta): classes only, nothing that runs.
local TYPES = "lua/leadpipe/types.lua"

local function lines_of(path)
    local out = {}
    for line in io.lines(path) do out[#out + 1] = line end
    return out
end

local read = require("spec.support.shell").read_file

local function param_list(params)
    local list = {}
    for p in params:gmatch("[%w_%.]+") do list[#list + 1] = p end
    return list
end

-- Public functions: `function M.name(...)`, `function Obj:name(...)` at any indentation, and
-- `_M.name = function(...)` / `Class.name = function(...)` (a module or a capitalised class
-- table), where the name does not start with "_" and the table is not a metatable.
local function public_functions(lines)
    local found = {}
    for i, line in ipairs(lines) do
        local tbl, sep, name, params = line:match("^%s*function ([%w_]+)([.:])([%w_]+)%(([^)]*)%)")
        if not tbl then
            tbl, sep, name, params = line:match("^%s*([%w_]+)([.:])([%w_]+)%s*=%s*function%s*%(([^)]*)%)")
            if tbl and tbl ~= "_M" and not tbl:find("^%u") then tbl = nil end
        end
        if tbl and name:sub(1, 1) ~= "_" and tbl ~= "mt" then
            found[#found + 1] = { line = i, name = tbl .. sep .. name, params = param_list(params) }
        end
    end
    return found
end

-- Public values a module assigns at its top level: `_M.name = value` (not a function literal).
local function public_values(lines)
    local found = {}
    for i, line in ipairs(lines) do
        local name, rest = line:match("^_M%.([%w_]+)%s*=%s*(.*)$")
        if name and name:sub(1, 1) ~= "_" and not rest:find("^function") then
            found[#found + 1] = { line = i, name = name }
        end
    end
    return found
end

-- The comment block right above line i: its ---@ tags, and whether it has a description.
local function doc_above(lines, i)
    local tags, described = {}, false
    local j = i - 1
    while j >= 1 and lines[j]:match("^%s*%-%-") do
        local tag, rest = lines[j]:match("^%s*%-%-%-@(%w+)%s*(.*)$")
        if tag then
            tags[#tags + 1] = { tag = tag, rest = rest }
        elseif lines[j]:match("^%s*%-%-%-") then
            described = true
        end
        j = j - 1
    end
    return tags, described
end

-- The ---@field names of a class, and how often each class or alias is declared.
local function classes_of(text, fields, declared)
    local current
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        local class = line:match("^%s*%-%-%-@class%s+([%w_%.]+)")
            or line:match("^%s*%-%-%-@alias%s+([%w_%.]+)")
        if class then
            current = class
            declared[class] = (declared[class] or 0) + 1
            fields[class] = fields[class] or {}
        elseif current and line:match("^%s*%-%-%-") then
            local f = line:match("^%s*%-%-%-@field%s+([%w_]+)%??%s")
            if f then fields[current][f] = true end
            local v = line:match('^%s*%-%-%-|%s*"([%w_]+)"')
            if v then fields[current][v] = true end
        else
            current = nil
        end
    end
end

local function keys(t)
    local out = {}
    for k in pairs(t) do out[#out + 1] = k end
    table.sort(out)
    return table.concat(out, ", ")
end

local function same_set(what, got, want)
    local missing, extra = {}, {}
    for k in pairs(want) do if not got[k] then missing[k] = true end end
    for k in pairs(got) do if not want[k] then extra[k] = true end end
    assert.are.equal("", keys(missing), what .. ": missing")
    assert.are.equal("", keys(extra), what .. ": not in the code")
end

describe("LuaLS annotations", function()
    for _, path in ipairs(PUBLIC) do
        it("cover every public function and value of " .. path, function()
            local lines = lines_of(path)
            local fns, values = public_functions(lines), public_values(lines)
            assert.is_true(#fns + #values > 0, path .. " has nothing public")
            local fields, declared = {}, {}
            classes_of(table.concat(lines, "\n"), fields, declared)
            for _, fn in ipairs(fns) do
                local where = ("%s:%d %s"):format(path, fn.line, fn.name)
                local tags = doc_above(lines, fn.line)
                local params, has_return = {}, false
                for _, t in ipairs(tags) do
                    if t.tag == "param" then
                        local pname = t.rest:match("^([%w_%.]+%??)%s+%S")
                        assert.is_truthy(pname, where .. ": ---@param without a name and a type")
                        pname = pname:gsub("%?$", "")
                        assert.is_nil(params[pname], where .. ": two ---@param for '" .. pname .. "'")
                        params[pname] = true
                    elseif t.tag == "return" then
                        assert.is_truthy(t.rest:match("^%S"), where .. ": ---@return without a type")
                        has_return = true
                    end
                end
                assert.is_true(has_return, where .. ": no ---@return")
                local real = {}
                for _, p in ipairs(fn.params) do
                    real[p] = true
                    assert.is_true(params[p] == true, where .. ": no ---@param for '" .. p .. "'")
                end
                for p in pairs(params) do
                    assert.is_true(real[p] == true, where .. ": ---@param '" .. p .. "' is not a parameter")
                end
            end
            -- a value is documented by a --- line above it or a ---@field of the module's class
            local module_fields = {}
            for class, f in pairs(fields) do
                if not class:find("%u[%w_]*$") then -- a module's class: leadpipe, leadpipe.filter
                    for k in pairs(f) do module_fields[k] = true end
                end
            end
            for _, v in ipairs(values) do
                local _, described = doc_above(lines, v.line)
                assert.is_true(described or module_fields[v.name] == true,
                    ("%s:%d _M.%s: no --- description and no ---@field"):format(path, v.line, v.name))
            end
        end)
    end

    local fields, declared = {}, {}
    for _, path in ipairs(PUBLIC) do classes_of(read(path), fields, declared) end
    classes_of(read(TYPES), fields, declared)

    it("live in a ---@meta file for the data the API takes and returns", function()
        assert.are.equal("---@meta", read(TYPES):match("^[^\n]*"))
        for _, name in ipairs({ "leadpipe.Options", "leadpipe.Run", "leadpipe.Person", "leadpipe.Page",
                                "leadpipe.Audience", "leadpipe.StoredExport" }) do
            assert.is_truthy(read(TYPES):find("---@class " .. name .. "\n", 1, true), name)
        end
    end)

    -- The files that add methods to the Client (function Client:name) each declare the class
    -- once, so that LuaLS joins them; its fields are declared in the types file.
    local method_files = 0
    for _, path in ipairs(PUBLIC) do
        if read(path):find("\nfunction Client:") then method_files = method_files + 1 end
    end

    it("declare the classes and aliases of the API, each once (the Client: once per file)", function()
        for _, name in ipairs({
            "leadpipe", "leadpipe.ErrorKind", "leadpipe.Error", "leadpipe.Options", "leadpipe.Where",
            "leadpipe.Page", "leadpipe.Person", "leadpipe.Company", "leadpipe.Geo", "leadpipe.Intent",
            "leadpipe.Topic", "leadpipe.Run", "leadpipe.Audience", "leadpipe.Client", "leadpipe.Host",
            "leadpipe.Predicate", "leadpipe.Rows",
        }) do
            assert.is_truthy(declared[name], name .. " is not declared")
        end
        for name, n in pairs(declared) do
            if name ~= "leadpipe.Client" then
                assert.are.equal(1, n, name .. " is declared " .. n .. " times")
            end
        end
        assert.is_true(method_files >= 5)
        assert.are.equal(method_files + 1, declared["leadpipe.Client"])
    end)

    it("give leadpipe.Options a field for every option of leadpipe.new, and no other", function()
        local src = read("lua/leadpipe/client/init.lua")
        local list = assert(src:match("local NEW_OPTS = set(%b{})"))
        local want = {}
        for k in list:gmatch('"([%w_]+)"') do want[k] = true end
        same_set("leadpipe.Options", fields["leadpipe.Options"], want)
    end)

    it("give leadpipe.Where a field for every where{} key, and no other", function()
        local want = {}
        for k in read("lua/leadpipe/filter.lua"):gmatch('{ key = "([%w_]+)"') do want[k] = true end
        assert.is_truthy(next(want))
        same_set("leadpipe.Where", fields["leadpipe.Where"], want)
    end)

    it("list in leadpipe.ErrorKind every kind errors.new is given, and only kinds the code makes", function()
        local kinds = fields["leadpipe.ErrorKind"]
        local all = {}
        local p = io.popen("find lua/leadpipe -name '*.lua'")
        for file in p:lines() do
            local src = read(file)
            all[#all + 1] = src
            for k in src:gmatch('errors%.new%(%s*"([%w_]+)"') do
                assert.is_true(kinds[k] == true, file .. ": kind '" .. k .. "' is not in leadpipe.ErrorKind")
            end
        end
        p:close()
        local code = table.concat(all, "\n"):gsub("%-%-[^\n]*", "")
        for k in pairs(kinds) do
            assert.is_truthy(code:find('"' .. k .. '"', 1, true), "kind '" .. k .. "' appears in no code")
        end
    end)
end)

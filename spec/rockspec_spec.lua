-- The rockspec must install what the Makefile builds: every Lua module and every C source.

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

local function list(cmd)
    local out, p = {}, assert(io.popen(cmd))
    for line in p:lines() do out[#out + 1] = line end
    p:close()
    table.sort(out)
    return out
end

local function load_rockspec()
    local files = list("ls *.rockspec")
    assert.are.equal(1, #files)
    local env = {}
    local chunk = assert((loadstring or load)(read(files[1]), files[1], "t", env))
    if setfenv then setfenv(chunk, env) end
    chunk()
    return env
end

describe("the rockspec", function()
    local spec = load_rockspec()

    it("maps every Lua module under lua/leadpipe, subfolders too", function()
        local n = 0
        for _, path in ipairs(list("find lua/leadpipe -name '*.lua' | sort")) do
            local name = path:match("lua/(.-)%.lua$"):gsub("/init$", ""):gsub("/", ".")
            assert.are.equal(path, spec.build.modules[name], name)
            n = n + 1
        end
        local mapped = 0
        for _, v in pairs(spec.build.modules) do
            if type(v) == "string" then mapped = mapped + 1 end
        end
        assert.are.equal(n, mapped) -- and nothing that is not there
    end)

    it("compiles the same C sources as the Makefile", function()
        local core = spec.build.modules["leadpipe.core"].sources
        local mock = spec.build.modules["leadpipe.mockserver"].sources
        table.sort(core)
        table.sort(mock)
        assert.are.same(list("ls csrc/*.c"), core)
        local want = list("ls csrc/mock/*.c")
        want[#want + 1] = "csrc/lp_util.c" -- the option helpers the fake shares with the core
        table.sort(want)
        assert.are.same(want, mock)
    end)

    it("installs the command line tool and names its dependencies", function()
        assert.are.equal("bin/leadpipe", spec.build.install.bin.leadpipe)
        assert.are.equal("3.0", spec.rockspec_format)
        assert.is_truthy(table.concat(spec.dependencies, " "):find("lua-cjson", 1, true))
        assert.is_truthy(table.concat(spec.dependencies, " "):find("argparse", 1, true))
    end)
end)

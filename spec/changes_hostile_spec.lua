-- client:changes against runs that contradict themselves (spec/support/changes_server.py):
-- a person twice in one run, a run whose rows change between its two reads; and against
-- rows without a hashedEmail (matched by their whole content) and short pages. Nothing is handed out twice or
-- invented; each contradiction ends the loop with an error naming the run.

local leadpipe = require "leadpipe"
local core = require "leadpipe.core"
local servers = require "spec.support.servers"

local AUD = "5a1c0a4e-2b7d-4c3e-9a8f-1d2e3f4a5b6c"
local FROM = "6b4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3a"
local TO = "7c4a1f52-3b9e-4d1a-9f0e-2b7c6d5e4f3b"

describe("client:changes() on contradicting runs", function()
    local srv, nonce = nil, 0
    setup(function() srv = servers.start("changes_server.py") end)
    teardown(function() if srv then srv.stop() end end)

    local function client_for(scenario)
        nonce = nonce + 1
        return leadpipe.new{ api_key = "sk_changes_0123456789", max_retries = 0,
                             base_url = srv.url .. "/s/" .. scenario .. "/" .. nonce }
    end

    -- Every change until the loop ends or raises: { kind .. " " .. id }, err
    local function drain(scenario, opts)
        local c = client_for(scenario)
        local out, seen = {}, {}
        local ok, err = pcall(function()
            for kind, row in c:changes(AUD, FROM, TO, opts) do
                local id = row.hashedEmail or row.name
                assert(not seen[id], "handed out twice: " .. id)
                seen[id] = true
                out[#out + 1] = kind .. " " .. id
            end
        end)
        c:close()
        return out, not ok and err or nil
    end

    local function count(list, kind)
        local n = 0
        for _, s in ipairs(list) do
            if s:find("^" .. kind .. " ") then n = n + 1 end
        end
        return n
    end

    for _, native in ipairs({ true, false }) do
        local how = native and "with the page decoder" or "without the page decoder"
        local function run(...)
            local decode_page = core.decode_page
            if not native then core.decode_page = nil end
            local out, err = drain(...)
            core.decode_page = decode_page
            return out, err
        end

        it("finds the plain changes, " .. how, function()
            local out, err = run("plain", { limit = 50 })
            assert.is_nil(err)
            assert.are.equal(10, count(out, "added"))
            assert.are.equal(10, count(out, "removed"))
            assert.are.equal(10, count(out, "changed"))
        end)

        it("finds the same changes from short pages, " .. how, function()
            local out, err = run("short", { limit = 50 })
            assert.is_nil(err)
            assert.are.equal(10, count(out, "added"))
            assert.are.equal(10, count(out, "removed"))
            assert.are.equal(10, count(out, "changed"))
        end)

        it("matches rows without a hashedEmail by their content, " .. how, function()
            local out, err = run("no_id", { limit = 50 })
            assert.is_nil(err)
            assert.are.equal(10, count(out, "added"))
            assert.are.equal(10, count(out, "removed"))
            assert.are.equal(10, count(out, "changed"))
            assert.is_truthy(table.concat(out, ","):find("removed nobody 3", 1, true))
            assert.is_truthy(table.concat(out, ","):find("added nobody 201", 1, true))
        end)

        it("refuses a person repeated in to before handing anything out, " .. how, function()
            local out, err = run("dup_to", { limit = 50 })
            assert.are.same({}, out)
            assert.are.equal("REPEATED_ROWS", err.code)
            assert.is_truthy(err.message:find(TO, 1, true), err.message)
        end)

        it("refuses a person repeated in from, never handing it out twice, " .. how, function()
            local _, err = run("dup_from", { limit = 50, only = "removed" })
            assert.are.equal("REPEATED_ROWS", err.code)
            assert.is_truthy(err.message:find(FROM, 1, true), err.message)
            _, err = run("dup_from", { limit = 50 })
            assert.are.equal("REPEATED_ROWS", err.code)
        end)

        it("refuses a run whose rows changed between its two reads, " .. how, function()
            local _, err = run("shifting", { limit = 50 })
            assert.are.equal("RUN_CHANGED", err.code)
            assert.is_truthy(err.message:find(TO, 1, true), err.message)
        end)
    end
end)

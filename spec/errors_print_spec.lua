-- Error objects read well on every Lua: a script that fails through leadpipe.assert or
-- through an iterator, with nothing to catch the error, prints the real message (kind, HTTP
-- status, code, text, request id) in the suite's own standalone interpreter (PUC 5.1's
-- prints only strings); a caught error keeps its fields; errors concatenate with strings.

local leadpipe = require "leadpipe"
local errors = require "leadpipe.errors"
local mock = require "leadpipe.mock"
local h = require "spec.support.cli_helpers"
local fake = require "spec.support.fake_client"

local UNKNOWN = "00000000-0000-4000-8000-000000000000"

-- Runs `code` with `lua -e` against the fake: stdout, stderr, status.
local function run_lua(srv, code)
    return h.run_lua(code, { LEADPIPE_API_KEY = srv.api_key, LEADPIPE_BASE_URL = srv.url })
end

describe("an error nothing catches", function()
    local srv

    setup(function()
        srv = assert(mock.start{})
    end)

    teardown(function()
        srv:stop()
    end)

    it("prints the API's code and message through leadpipe.assert", function()
        local _, err, status = run_lua(srv, ('local lp = require "leadpipe"; '
            .. 'lp.assert(lp.new():create_run("%s"))'):format(UNKNOWN))
        assert.are.equal(1, status)
        assert.is_truthy(err:find("leadpipe: not_found (HTTP 404) AUDIENCE_NOT_FOUND: audience not found "
            .. "[request req_", 1, true), err)
        assert.is_nil(err:find("error object is not a string", 1, true), err)
        assert.is_nil(err:find("bad argument", 1, true), err)
    end)

    it("names the line of the leadpipe.assert that failed", function()
        local _, err = run_lua(srv, ('local lp = require "leadpipe"\n\n'
            .. 'lp.assert(lp.new():create_run("%s"))'):format(UNKNOWN))
        -- PUC 5.1 prints the text with the position; the others print the object itself
        if _VERSION == "Lua 5.1" and not rawget(_G, "jit") then
            assert.is_truthy(err:find(":3: leadpipe: not_found", 1, true), err)
        else
            assert.is_truthy(err:find("leadpipe: not_found", 1, true), err)
        end
    end)

    it("prints the API's code and message through an iterator", function()
        local _, err, status = run_lua(srv, ('local lp = require "leadpipe"; '
            .. 'for _ in lp.new():people("%s", "%s") do end'):format(srv.audience, UNKNOWN))
        assert.are.equal(1, status)
        assert.is_truthy(err:find("leadpipe: not_found (HTTP 404) RUN_NOT_FOUND: run not found [request req_",
            1, true), err)
    end)

    it("prints a bad argument of leadpipe.new and of an iterator", function()
        local _, err, status = run_lua(srv, 'require("leadpipe").new{ timeuot = 5 }')
        assert.are.equal(1, status)
        assert.is_truthy(err:find("leadpipe: invalid_argument: leadpipe.new: opts has an "
            .. "unknown option 'timeuot' (did you mean 'timeout'?)", 1, true), err)
        _, err, status = run_lua(srv, ('require("leadpipe").new():people("%s", "x")'):format(srv.audience))
        assert.are.equal(1, status)
        assert.is_truthy(err:find("people: run_id must be a UUID", 1, true), err)
        _, err, status = run_lua(srv, 'require("leadpipe").filter.where{ min_scor = 80 }')
        assert.are.equal(1, status)
        assert.is_truthy(err:find('where: "min_scor" is not a where key', 1, true), err)
    end)
end)

describe("an error that is caught", function()
    local srv, client

    setup(function() srv, client = fake.start() end)
    teardown(function() fake.stop(srv, client) end)

    local function check(err, code)
        assert.is_true(leadpipe.is_error(err), tostring(err))
        assert.are.equal("not_found", err.kind)
        assert.are.equal(code, err.code)
        assert.are.equal(404, err.status)
    end

    it("keeps its fields under pcall and xpcall, from leadpipe.assert and from an iterator", function()
        local ok, err = pcall(leadpipe.assert, client:create_run(UNKNOWN))
        assert.is_false(ok)
        check(err, "AUDIENCE_NOT_FOUND")
        ok, err = pcall(function()
            for _ in client:people(srv.audience, UNKNOWN) do end
        end)
        assert.is_false(ok)
        check(err, "RUN_NOT_FOUND")
        local seen
        ok = xpcall(function() leadpipe.assert(client:create_run(UNKNOWN)) end, function(e)
            seen = e
            return e
        end)
        assert.is_false(ok)
        check(seen, "AUDIENCE_NOT_FOUND")
    end)

    it("keeps its fields when it ends a coroutine", function()
        local co = coroutine.create(function()
            leadpipe.assert(client:create_run(UNKNOWN))
        end)
        local ok, err = coroutine.resume(co)
        assert.is_false(ok)
        check(err, "AUDIENCE_NOT_FOUND")
    end)
end)

describe("leadpipe.assert", function()
    it("returns every value it is given when the first is true", function()
        local a, b, c = leadpipe.assert("run", nil, 3)
        assert.are.equal("run", a)
        assert.is_nil(b)
        assert.are.equal(3, c)
    end)

    it("raises a message that is not an error object as assert does", function()
        local ok, err = pcall(leadpipe.assert, false, "plain text")
        assert.is_false(ok)
        assert.are.equal("plain text", err)
        ok, err = pcall(leadpipe.assert, nil)
        assert.is_false(ok)
        assert.are.equal("assertion failed!", err)
    end)
end)

describe("an error object", function()
    local err = errors.new("not_found", "run not found", { status = 404, code = "RUN_NOT_FOUND",
        request_id = "req_1" })
    local text = "leadpipe: not_found (HTTP 404) RUN_NOT_FOUND: run not found [request req_1]"

    it("concatenates with strings on either side, as its tostring", function()
        assert.are.equal(text, tostring(err))
        assert.are.equal("failed: " .. text, "failed: " .. err)
        assert.are.equal(text .. "\n", err .. "\n")
        assert.are.equal("n=" .. text .. "!", "n=" .. err .. "!")
        assert.are.equal("1 " .. text, 1 .. " " .. err)
    end)
end)

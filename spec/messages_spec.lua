-- Messages a newcomer meets on a first try: each says what is wrong with what the user
-- wrote and what to write instead, in the words of the interface the user is in (Lua
-- options in the library, flags and variables in the command line tool). One `it` per
-- message. The OpenResty example's misspelt query argument is in spec/openresty_spec.lua
-- (it needs nginx).

local leadpipe = require "leadpipe"
local mock = require "leadpipe.mock"
local h = require "spec.support.cli_helpers"
local run_cli = require("spec.support.cli_run").run_cli
local fake = require "spec.support.fake_client"

local AUD = mock.AUDIENCE

local function raised(fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "no error was raised")
    assert.is_true(leadpipe.is_error(err), tostring(err))
    return err
end

describe("the command line tool", function()
    it("answers a plain http --base-url to another host with the https URL to write", function()
        local status, out, err = run_cli({ "runs", AUD.small, "--api-key", "k", "--base-url",
            "http://api.example.com/v1" })
        assert.are.equal(2, status)
        assert.are.equal("", out)
        assert.are.equal("leadpipe: --base-url must use https:// for a host that is not loopback (the key "
            .. "would travel in clear text); write https://api.example.com/v1 instead (see 'leadpipe runs "
            .. "--help')\n", err)
    end)

    it("names LEADPIPE_BASE_URL, not --base-url, when the variable is wrong", function()
        local status, _, err = run_cli({ "runs", AUD.small }, { LEADPIPE_API_KEY = "k",
            LEADPIPE_BASE_URL = "http://api.example.com" })
        assert.are.equal(2, status)
        assert.is_truthy(err:find("^leadpipe: LEADPIPE_BASE_URL must use https://"), err)
        assert.is_truthy(err:find("write https://api.example.com instead", 1, true), err)
        assert.is_nil(err:find("--base-url must", 1, true), err)
        assert.is_nil(err:find("allow_insecure_http", 1, true), err)
        status, _, err = run_cli({ "runs", AUD.small }, { LEADPIPE_API_KEY = "k",
            LEADPIPE_BASE_URL = "ftp://example" })
        assert.are.equal(2, status)
        assert.is_truthy(err:find("^leadpipe: LEADPIPE_BASE_URL must be an http:// or https:// URL"), err)
    end)

    it("names LEADPIPE_API_KEY or --api-key when the key has a space", function()
        local status, _, err = run_cli({ "runs", AUD.small }, { LEADPIPE_API_KEY = "sk live" })
        assert.are.equal(2, status)
        assert.is_truthy(err:find("^leadpipe: LEADPIPE_API_KEY must not contain spaces"), err)
        status, _, err = run_cli({ "runs", AUD.small, "--api-key", "sk live" })
        assert.are.equal(2, status)
        assert.is_truthy(err:find("^leadpipe: %-%-api%-key must not contain spaces"), err)
    end)

    it("says to leave out --no-wait, not to pass a Lua option, for a pending run", function()
        local srv = assert(mock.start{ queued_ms = 60000 })
        finally(function() srv:stop() end)
        local client = leadpipe.new{ api_key = srv.api_key, base_url = srv.url }
        local run = leadpipe.assert(client:create_run(AUD.small))
        client:close()
        local vars = { LEADPIPE_API_KEY = srv.api_key, LEADPIPE_BASE_URL = srv.url }
        for _, cmd in ipairs({ "results", "stats", "export" }) do
            local status, _, err = run_cli({ cmd, AUD.small, run.id, "--no-wait" }, vars)
            assert.are.equal(1, status, cmd)
            assert.is_truthy(err:find("is queued (leave out --no-wait to wait for", 1, true),
                cmd .. ": " .. err)
            assert.is_nil(err:find("wait = true", 1, true), err)
        end
    end)
end)

describe("the library", function()
    local srv, client

    setup(function() srv, client = fake.start() end)
    teardown(function() fake.stop(srv, client) end)

    it("says an api_key that is not a string must be the key as a string", function()
        local err = raised(leadpipe.new, { api_key = {} })
        assert.are.equal("api_key", err.argument)
        assert.are.equal('leadpipe.new: api_key must be the key as a string, api_key = "sk_..." (got table)',
            err.message)
        err = raised(leadpipe.new, { api_key = "" })
        assert.are.equal('leadpipe.new: api_key is empty: pass the key, api_key = "sk_...", or leave api_key '
            .. "out to use LEADPIPE_API_KEY", err.message)
    end)

    it("says api_key is required only when none was given", function()
        local out, err, status = h.run_lua('local ok, e = pcall(require("leadpipe").new) print(e.message)')
        assert.are.equal(0, status, err)
        assert.are.equal('leadpipe.new: api_key is required: pass api_key = "sk_..." or set '
            .. "LEADPIPE_API_KEY\n", out)
    end)

    it("says export_csv takes one of path and sink, and how to write each", function()
        local run = leadpipe.assert(client:create_run(srv.audience))
        local _, err = client:export_csv(srv.audience, run.id, { path = os.tmpname(), sink = print })
        assert.are.equal("export_csv: opts has both path and sink; give one: path = FILE to write the CSV "
            .. "to a file, or sink = function(chunk) to receive it", err.message)
        _, err = client:export_csv(srv.audience, run.id, {})
        assert.are.equal("export_csv: opts needs path = FILE (to write the CSV to a file) or "
            .. "sink = function(chunk) (to receive it)", err.message)
    end)

    it("says to call a method with a colon when it was called with a dot", function()
        local none, err = client.create_run(srv.audience)
        assert.is_nil(none)
        assert.are.equal("invalid_argument", err.kind)
        assert.are.equal("self", err.argument)
        assert.are.equal("create_run: self is not a client: call it with a colon, client:create_run(...), "
            .. "not client.create_run(...)", err.message)
        none, err = client.audiences({ status = "active" })
        assert.is_nil(none)
        assert.is_truthy(err.message:find("client:audiences(...)", 1, true), err.message)
        none, err = client.export_csv(srv.audience, srv.audience, { path = "x" })
        assert.is_nil(none)
        assert.is_truthy(err.message:find("client:export_csv(...)", 1, true), err.message)
        err = raised(client.people, srv.audience, srv.audience)
        assert.is_truthy(err.message:find("client:people(...)", 1, true), err.message)
    end)

    it("says a where key given to people belongs under where", function()
        local run = leadpipe.assert(client:create_run(srv.audience))
        local err = raised(client.people, client, srv.audience, run.id, { min_score = 80 })
        assert.are.equal("people: opts has min_score, a key of where: write { where = { min_score = 80 } }",
            err.message)
        err = raised(client.people, client, srv.audience, run.id, { limit = 500, country = "US" })
        assert.are.equal('people: opts has country, a key of where: write { where = { country = "US" } }',
            err.message)
    end)
end)

-- Specs for the streaming request of leadpipe.core (request option stream = true and
-- req:read()) and the curl wire's stream(), against the fake API's export listener.

local core = require "leadpipe.core"
local mock = require "leadpipe.mock"
local hosts = require "leadpipe.hosts"

describe("streamed requests", function()
    local srv, session, url

    setup(function()
        srv = assert(mock.start{ export_cap = 5000 })
        local c = require("leadpipe").new{ api_key = srv.api_key, base_url = srv.url }
        local run = assert(c:create_run(mock.AUDIENCE.medium))
        assert(c:wait_run(mock.AUDIENCE.medium, run.id))
        local e = assert(c:create_export(mock.AUDIENCE.medium, run.id))
        url = e.downloadUrl
        c:close()
    end)

    teardown(function()
        srv:stop()
    end)

    before_each(function()
        session = core.session{ max_response = 64 * 1024 }
    end)

    after_each(function()
        session:close()
        collectgarbage()
    end)

    local function drive(req)
        local parts, max_piece, status = {}, 0, nil
        while true do
            session:perform()
            local chunk, st = req:read()
            if #chunk > 0 then
                parts[#parts + 1] = chunk
                if #chunk > max_piece then max_piece = #chunk end
                status = st
            end
            if req:done() then
                chunk = req:read()
                parts[#parts + 1] = chunk
                return table.concat(parts), status, max_piece
            end
            session:poll(0.2)
        end
    end

    it("hands the body out in pieces, each within max_response, the whole beyond it", function()
        local req = session:request{ url = url, stream = true }
        local body, status, max_piece = drive(req)
        assert.are.equal(200, status)
        assert.is_true(#body > 64 * 1024) -- larger than max_response as a whole
        assert.is_true(max_piece <= 64 * 1024)
        local st, headers, rest = req:response()
        assert.are.equal(200, st)
        assert.are.equal("5000", headers["x-export-row-cap"])
        assert.are.equal("", rest) -- everything was read
        local lines = select(2, body:gsub("\r\n", ""))
        assert.are.equal(5001, lines)
        req:close()
    end)

    it("gives an empty chunk without stream, and raises on a closed request", function()
        local req = session:request{ url = url .. "x" } -- a wrong signature: a small 403
        while not req:done() do
            session:perform()
            session:poll(0.1)
        end
        local chunk, status = req:read()
        assert.are.equal("", chunk)
        assert.are.equal(403, status)
        req:close()
        assert.has_error(function() req:read() end, "attempt to use a closed request")
    end)

    it("wire:stream sends a 200 body to the sink and keeps another status's body", function()
        local wire = require("leadpipe.wire.curl").new({ max_response = 4096 }, hosts.blocking)
        local n = 0
        local status, headers, body = wire:stream(wire:send{ url = url, stream = true },
            function(chunk) n = n + #chunk return true end)
        assert.are.equal(200, status)
        assert.are.equal("", body)
        assert.is_true(n > 4096)
        assert.is_string(headers["content-type"])
        status, headers, body = wire:stream(wire:send{ url = url .. "x", stream = true }, function()
            error("no sink for a 403")
        end)
        assert.are.equal(403, status)
        assert.matches("FORBIDDEN", body)
        assert.is_table(headers)
        local r1, msg, kind = wire:stream(wire:send{ url = url, stream = true },
            function() return false end)
        assert.is_nil(r1)
        assert.are.equal("aborted", kind)
        assert.is_string(msg)
        wire:close()
    end)
end)

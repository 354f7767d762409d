-- client:changes on the "openresty" host in a real nginx (spec/support/openresty.lua, one
-- worker, loopback only): the worker's shared client diffs two daily runs of the fake API
-- over cosockets, and finds what a blocking client finds. Needs build/jit.
local openresty = require "spec.support.openresty"

describe("client:changes() in nginx", function()
    if openresty.skipped() then return end

    local mock = require "leadpipe.mock"
    local fake = require "spec.support.fake_client"
    local json = require "leadpipe.json"
    local srv, ngx_srv, client, from, to

    setup(function()
        srv, client = fake.start{ seed = 11, latency_ms = 10, threads = 8 }
        local runs = assert(client:latest_runs(mock.AUDIENCE.daily, 2))
        from, to = runs[2].id, runs[1].id
        ngx_srv = openresty.start{ mock = srv, run = to }
    end)

    teardown(function()
        if ngx_srv then ngx_srv:stop() end
        fake.stop(srv, client)
    end)

    for _, min_score in ipairs({ false, 80 }) do
        it("finds what a blocking client finds" .. (min_score and ", with a where" or ""), function()
            local q = ("/changes?aud=%s&from=%s&to=%s"):format(mock.AUDIENCE.daily, from, to)
                .. (min_score and ("&min_score=" .. min_score) or "")
            local res = openresty.fetch_all({ ngx_srv.url .. q }, { limit = 60 })[1]
            assert(res and res.status == 200,
                (res and res.body or "no answer") .. "\n" .. ngx_srv:error_log())
            local got = assert(json.decode(res.body))
            local want, ids = { added = 0, removed = 0, changed = 0 }, {}
            for kind, row in client:changes(mock.AUDIENCE.daily, from, to,
                    { where = min_score and { min_score = min_score } or nil }) do
                want[kind] = want[kind] + 1
                ids[#ids + 1] = kind .. " " .. row.hashedEmail
            end
            table.sort(ids)
            assert.is_true(want.added > 0 and want.removed > 0 and want.changed > 0)
            assert.are.same({ want.added, want.removed, want.changed },
                { got.added, got.removed, got.changed })
            assert.are.equal(table.concat(ids, "\n"), got.ids)
        end)
    end
end)

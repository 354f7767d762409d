-- spec/support/core_helpers.lua: driving leadpipe.core sessions in the core specs.

local _M = {}

--- wait(s, req) -> req:response(): drives s until req is done (bounded: about 30 s).
function _M.wait(s, req)
    for _ = 1, 600 do
        s:perform()
        if req:done() then return req:response() end
        s:poll(0.05)
    end
    error("request did not finish")
end

--- wait_all(s, reqs): drives s until every request in reqs is done (bounded).
function _M.wait_all(s, reqs)
    for _ = 1, 600 do
        s:perform()
        local all = true
        for _, r in ipairs(reqs) do
            if not r:done() then all = false end
        end
        if all then return end
        s:poll(0.05)
    end
    error("requests did not finish")
end

--- fresh_session(opts, set): in a describe block, opens core.session(opts) before each test
--- and hands it to set(s); after each test closes it and calls set(nil).
function _M.fresh_session(opts, set)
    local busted = require "busted"
    local s
    busted.before_each(function()
        s = require("leadpipe.core").session(opts)
        set(s)
    end)
    busted.after_each(function()
        if s then s:close() end
        s = nil
        set(nil)
    end)
end

return _M

-- :checkhealth leadpipe_demo: does leadpipe.core load, which JSON decoder it uses, is
-- LEADPIPE_API_KEY set. Uses vim.health (0.8+) or the health#report_* functions of 0.7.

local M = {}

local function reporter()
    local h = vim.health or {}
    local function vimfn(name)
        return function(msg, advice)
            if advice then vim.fn["health#report_" .. name](msg, advice)
            else vim.fn["health#report_" .. name](msg) end
        end
    end
    return {
        start = h.start or h.report_start or vimfn("start"),
        ok = h.ok or h.report_ok or vimfn("ok"),
        info = h.info or h.report_info or vimfn("info"),
        warn = h.warn or h.report_warn or vimfn("warn"),
        error = h.error or h.report_error or vimfn("error"),
    }
end

function M.check()
    local r = reporter()
    r.start("leadpipe_demo")
    local ok, err = require("leadpipe_demo").setup_paths()
    if not ok then
        r.error("leadpipe.core does not load: " .. err,
            { "build it for LuaJIT (Neovim's Lua) in the leadpipe repository: make build LUA_VERSION=jit",
              "or set vim.g.leadpipe_root to that repository" })
        return
    end
    local core = require "leadpipe.core"
    r.ok("leadpipe.core loads: " .. tostring(core._VERSION) .. ", " .. tostring(core.curl_version))
    r.info("JSON decoder: " .. (core.decoder and tostring(core.decoder) or "cjson"))
    local key = os.getenv("LEADPIPE_API_KEY")
    if key and key ~= "" then
        r.ok("LEADPIPE_API_KEY is set")
    else
        r.warn("LEADPIPE_API_KEY is not set: :LeadpipeTop uses the fake API in-process",
            { "export LEADPIPE_API_KEY=sk_... and LEADPIPE_AUDIENCE_ID=<uuid> before starting Neovim" })
    end
end

return M

-- The "neovim" host and the example plugin in a real Neovim (0.7 or later), headless:
-- spec/support/nvim_host.lua runs the steps inside the editor and writes its findings to a
-- file, which these specs read. leadpipe.core must be built for LuaJIT (Neovim's Lua) in
-- build/jit: `make test` does that; when it is missing this spec builds it.

local BUILD = os.getenv("LEADPIPE_JIT_BUILD") or "build/jit"

local sh = require("spec.support.shell").ok

local function have_nvim()
    return sh("command -v nvim >/dev/null 2>&1")
end

local function note(fmt, ...)
    io.stderr:write("# ", fmt:format(...), "\n")
end

-- make test runs this once, in its LuaJIT suite (Neovim loads build/jit whatever Lua runs busted).
local only = os.getenv("LEADPIPE_HOST_SPECS")
local why = not have_nvim() and "nvim is not installed (apt-get install neovim)"
    or (only and only ~= "" and not (os.getenv("LEADPIPE_BUILD") or ""):find(only, 1, true)
        and "runs once, in the " .. only .. " suite of make test")
if why then
    describe("neovim host", function()
        pending(why)
    end)
    return
end

describe("the neovim host in Neovim", function()
    local R, stderr

    setup(function()
        local so = BUILD .. "/leadpipe/"
        if not sh("test -f " .. so .. "core.so -a -f " .. so .. "mockserver.so") then
            assert(sh("make --no-print-directory build LUA_VERSION=jit >/dev/null"),
                "make build LUA_VERSION=jit failed")
        end
        local out = os.tmpname()
        local err = os.tmpname()
        local cmd = ("env -u LEADPIPE_API_KEY LEADPIPE_ROOT=. LEADPIPE_BUILD=%s LEADPIPE_OUT=%s "
            .. "timeout 90 nvim --headless -u NONE -i NONE -c 'luafile spec/support/nvim_host.lua' "
            .. "</dev/null >%s 2>&1"):format(BUILD, out, err)
        sh(cmd)
        local chunk = loadfile(out)
        R = chunk and chunk() or {}
        local f = io.open(err)
        stderr = f and f:read("*a") or ""
        if f then f:close() end
        os.remove(out)
        os.remove(err)
    end)

    it("ran every step to the end", function()
        assert.is_nil(R.timed_out)
        assert.are.same({ "outside", "fetch", "idle", "error", "plugin", "health" }, R.steps,
            "nvim output:\n" .. tostring(stderr))
        for _, s in ipairs{ "outside", "fetch", "idle", "error", "plugin", "health" } do
            assert.is_nil(R[s .. "_error"])
        end
    end)

    it("sends nothing when a call is made outside hosts.run, and names the caller's line", function()
        assert.is_false(R.outside_run)
        assert.are.equal("NOT_IN_COROUTINE", R.outside_code)
        assert.truthy(R.outside_message:find("nvim_host.lua:" .. R.outside_line, 1, true))
        assert.truthy(R.outside_message:find("leadpipe.hosts.run(fn)", 1, true))
        assert.are.equal(0, R.outside_requests)
        assert.are.equal(0, R.outside_runs_created)
    end)

    it("fetches 5,000 rows once each while the editor keeps running", function()
        assert.is_nil(R.fetch_failure)
        assert.are.equal(5000, R.rows)
        assert.are.equal(5000, R.unique)
        assert.is_true(R.api_after_wait, R.api_error)
        assert.is_true(R.api_after_rows)
        assert.is_true(R.scheduled_during_rows > 0)
        note("neovim: 5000 rows in %.0f ms over %d requests; 10 ms timer: largest gap %.1f ms "
            .. "(%d ticks); %d vim.schedule callbacks ran; %d wake-ups, %d resumes",
            R.fetch_ms, R.requests, R.max_gap_ms, R.ticks, R.scheduled, R.wakeups, R.resumes)
        assert.is_true(R.max_gap_ms < 200, "largest gap " .. R.max_gap_ms .. " ms")
    end)

    it("has no wake-up of its own while a transfer is idle", function()
        assert.is_true(R.idle_ok)
        note("neovim: a 1 s request: %d wake-ups in all, %d between 500 and 950 ms",
            R.idle_wakeups_total, R.idle_wakeups_window)
        assert.are.equal(0, R.idle_wakeups_window)
    end)

    it("reports an error without on_error through vim.notify and keeps the editor running", function()
        assert.truthy(R.notify_msg:find("raised after a wait", 1, true))
        assert.are.equal(R.error_level, R.notify_level)
    end)

    it(":LeadpipeTop fills a scratch buffer with the best people", function()
        local lines = assert(R.plugin_lines, "no buffer: " .. table.concat(R.plugin_notes or {}, "; "))
        assert.truthy(lines[1]:match("^Top 10 of run %x+%-[%x-]+ %(intent >= 80, director or above%)$"))
        assert.are.equal("", lines[2])
        assert.truthy(lines[3]:find("fullName", 1, true))
        assert.truthy(lines[3]:find("intent.score", 1, true))
        assert.truthy(lines[4]:match("^%-+"))
        assert.are.equal(14, #lines)
        local prev = math.huge
        for i = 5, 14 do
            local score = tonumber(lines[i]:match("(%d+)%s*$"))
            assert.is_true(score >= 80 and score <= prev, lines[i])
            prev = score
        end
        assert.is_false(R.plugin_modifiable)
    end)

    it("loads the example from the repository root with :luafile, leadpipe found on its own", function()
        local out = os.tmpname()
        finally(function() os.remove(out) end)
        local probe = ("local ok, e = require('leadpipe_demo').setup_paths(); "
            .. "local f = io.open('%s', 'w'); f:write(tostring(ok), ' ', tostring(e), ' ', "
            .. "vim.fn.exists(':LeadpipeTop')); f:close()"):format(out)
        sh(("env -u LEADPIPE_API_KEY timeout 30 nvim --headless -u NONE -i NONE "
            .. "-c 'luafile examples/neovim/leadpipe_demo.lua' -c \"lua %s\" -c 'qa!' "
            .. "</dev/null >/dev/null 2>&1"):format(probe))
        local f = assert(io.open(out))
        local text = f:read("*a")
        f:close()
        assert.are.equal("true nil 2", text)
    end)

    it(":checkhealth leadpipe_demo reports the core, the decoder and the key", function()
        local text = table.concat(R.health_lines, "\n")
        assert.truthy(text:find("OK:? leadpipe.core loads"), text)
        assert.truthy(text:find("JSON decoder: ", 1, true), text)
        assert.truthy(text:find("LEADPIPE_API_KEY is not set", 1, true), text)
    end)
end)

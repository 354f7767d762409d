-- A short run of every libFuzzer harness in fuzz/ (make fuzz-smoke: 20,000 executions
-- each from the committed corpus). The long runs are `make fuzz`. Pending when clang with
-- libFuzzer is missing, and skipped inside `make asan` and `make valgrind`, whose subject
-- is the library itself (the harnesses are built with ASan+UBSan anyway).

local shell = require "spec.support.shell"

describe("fuzz harnesses", function()
    it("run 20,000 times each without a crash or a sanitizer report", function()
        if os.getenv("LD_PRELOAD") or os.getenv("LEADPIPE_VALGRIND") then
            pending("not inside make asan / make valgrind")
            return
        end
        local only = os.getenv("LEADPIPE_HOST_SPECS")
        if only and only ~= "" and not (os.getenv("LEADPIPE_BUILD") or ""):find(only, 1, true) then
            pending("runs once, in the " .. only .. " suite of make test")
            return
        end
        if not os.execute("command -v clang >/dev/null 2>&1") then
            pending("clang is not installed")
            return
        end
        local out = shell.output("env -u LD_PRELOAD make --no-print-directory fuzz-smoke; "
            .. "echo \"exit $?\" 2>&1")
        if out:find("fuzz: SKIP", 1, true) then
            pending("clang cannot build fuzzers here")
            return
        end
        assert.truthy(out:find("exit 0", 1, true), out)
        local ran = 0
        for name, runs in out:gmatch("\n(%w+): Done (%d+) runs") do
            assert.are.equal("20000", runs, name)
            ran = ran + 1
        end
        assert.is_true(ran >= 2, out)
        assert.truthy(out:find("\ndecode: Done", 1, true), out)
        assert.truthy(out:find("\nheaders: Done", 1, true), out)
    end)
end)

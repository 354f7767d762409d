#!/bin/sh
# Builds leadpipe and runs the whole spec suite once per Lua in TEST_LUAS (5.1 5.2 5.3 5.4
# jit), and with TEST_ASAN=1 once more against the ASan+UBSan build (make asan), then prints
# one line alone with the totals over every suite:
#     N passed, N failed            (", N skipped" when some were pending)
# Each suite's own result is shown as "lua<version>: N passed, N failed" before it.
# Exits non-zero when any suite failed or when no spec ran at all.
# Usage: test-all.sh MAKE   (run by `make test`; TEST_LUAS from the environment)
make=${1:-make}
luas=${TEST_LUAS:-5.1 5.2 5.3 5.4 jit}
passed=0 failed=0 skipped=0 status=0
case " $luas " in *" jit "*) host_suite=jit ;; *) host_suite= ;; esac
log=$(mktemp)
trap 'rm -f "$log"' EXIT
suites=$luas
[ "${TEST_ASAN:-0}" = 1 ] && suites="$suites asan"
for v in $suites; do
    if [ "$v" = asan ]; then
        echo "== Lua 5.4, C modules with ASan+UBSan"
        LEADPIPE_HOST_SPECS=$host_suite "$make" --no-print-directory asan >"$log" 2>&1
        rc=$?
        name=asan
    else
        echo "== Lua $v"
        "$make" --no-print-directory build LUA_VERSION="$v" >"$log" 2>&1 || { cat "$log"; status=1; continue; }
        # Specs in real nginx and Neovim drive their own LuaJIT, and the fuzz smoke run is
        # not about the Lua at all: they run in one suite only.
        LEADPIPE_HOST_SPECS=$host_suite "$make" --no-print-directory spec LUA_VERSION="$v" >"$log" 2>&1
        rc=$?
        name=lua$v
    fi
    grep -v '^ok [0-9]' "$log" | grep -v -E '^[0-9]+ passed, [0-9]+ failed' | grep -v '^1\.\.[0-9]*$'
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        tail -n 30 "$log"
        echo "$name: no totals line (the suite did not run)"
        status=1
        continue
    fi
    echo "$name: $line"
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p')
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + ${s:-0}))
    [ "$rc" -eq 0 ] || status=1
done
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

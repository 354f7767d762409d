#!/bin/sh
# Runs every spec under spec/ with busted (TAP output) and ends with the totals line
# "N passed, N failed" (", N skipped" when some are pending). Exits non-zero when a spec
# failed or when no spec ran at all.
# Usage: run-specs.sh BUSTED-COMMAND...   (LUA_PATH/LUA_CPATH set by the Makefile)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The specs that run lua-luv's default loop (process-wide state that the other specs' clients
# and servers can leave in a state it does not expect) get a busted process of their own.
"$@" -o TAP --exclude-pattern=luv_spec spec 2>&1 | tee "$log"
"$@" -o TAP --pattern=luv_spec spec 2>&1 | tee -a "$log"
passed=$(grep -c '^ok [0-9]' "$log" | tr -d ' ')
skipped=$(grep -c '^ok [0-9].*# SKIP' "$log" | tr -d ' ')
failed=$(grep -c '^not ok [0-9]' "$log" | tr -d ' ')
passed=$((passed - skipped))
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

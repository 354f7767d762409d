#!/bin/sh
# Runs the specs under valgrind (memcheck) and fails on any error or definite/indirect leak
# in the project's C modules. Usage: valgrind.sh BUSTED-COMMAND...
# LEADPIPE_VALGRIND_SPECS may name the spec files (default: all of spec/).
specs=${LEADPIPE_VALGRIND_SPECS:-spec}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --num-callers=30 \
    --suppressions=tools/valgrind.supp --log-file="$log" \
    "$@" -o TAP $specs
status=$?
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost' "$log"
if [ "$status" -ne 0 ]; then
    cat "$log" | head -200
    echo "valgrind: exit status $status" >&2
    exit 1
fi

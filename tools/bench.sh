#!/bin/sh
# Runs every benchmark in bench/ (bench/*.lua with the given Lua, bench/*.sh with sh).
lua=$1
status=0
for b in bench/*.lua bench/*.sh; do
    [ -f "$b" ] || continue
    echo "== $b"
    case "$b" in
        *.lua) "$lua" "$b" || status=1 ;;
        *.sh) LEADPIPE_LUA="$lua" sh "$b" || status=1 ;;
    esac
done
exit $status

#!/bin/sh
# tools/bench.sh LUA: `make bench`, the side-by-side benchmark (bench/harness.lua).
#
# Starts two fake APIs (tools/bench_server.lua, each its own process, 127.0.0.1 only): one
# without latency and one adding BENCH_LATENCY_MS (50) to every response, runs the harness
# against them, and stops them on every exit path (trap), failures and Ctrl-C included.
# LUA_PATH/LUA_CPATH must reach lua/ and the build (the Makefile sets them).
#
# Knobs: BENCH_QUICK=1 (1,000-row runs, one repetition: the smoke spec), BENCH_REPS,
# BENCH_SLOW_REPS, BENCH_STRICT=1, BENCH_HOOK_DIR, BENCH_LATENCY_MS (see bench/harness.lua);
# BENCH_LEGACY=1 also runs the older bench/client_people.lua and bench/mock_page.lua.
set -eu

lua=${1:-lua5.4}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    main=1000 latency_rows=1000 rss_small=1000 rss_large=10000
else
    main=100000 latency_rows=20000 rss_small=10000 rss_large=1000000
fi
latency_ms=${BENCH_LATENCY_MS:-50}

tmp=$(mktemp -d)
fast_pid=""
slow_pid=""
# Stops the servers: SIGTERM again every 0.1 s (one sent while a server is still being
# forked can be lost), SIGKILL after 5 s. Never waits unbounded.
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    for pid in $fast_pid $slow_pid; do
        i=0
        while kill "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_url FILE PID: prints the URL the server announced in FILE (at most 10 s).
wait_url() {
    i=0
    while [ "$i" -lt 100 ]; do
        url=$(sed -n 's/^leadpipe mock API listening on \(http:[^ ]*\)$/\1/p' "$1" 2>/dev/null || true)
        if [ -n "$url" ]; then
            echo "$url"
            return 0
        fi
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "bench: the fake API did not start:" >&2
    cat "$1" >&2
    return 1
}

: >"$tmp/fast.out"
: >"$tmp/slow.out"
"$lua" tools/bench_server.lua --rows "$main,$latency_rows,$rss_small,$rss_large" --threads 4 \
    >"$tmp/fast.out" 2>&1 &
fast_pid=$!
"$lua" tools/bench_server.lua --rows "$latency_rows" --latency-ms "$latency_ms" --threads 0 \
    >"$tmp/slow.out" 2>&1 &
slow_pid=$!
fast_url=$(wait_url "$tmp/fast.out" "$fast_pid")
slow_url=$(wait_url "$tmp/slow.out" "$slow_pid")
api_key=$(sed -n 's/^  api key *\([^ ]*\)$/\1/p' "$tmp/fast.out")

status=0
BENCH_FAST_URL=$fast_url BENCH_SLOW_URL=$slow_url BENCH_API_KEY=$api_key \
    BENCH_ROWS_MAIN=$main BENCH_ROWS_LATENCY=$latency_rows BENCH_ROWS_RSS_SMALL=$rss_small \
    BENCH_ROWS_RSS_LARGE=$rss_large BENCH_LATENCY_MS=$latency_ms \
    "$lua" bench/harness.lua "$lua" || status=$?

# The benchmarks of one part each (hosts, exports), after the side-by-side job.
if [ "${BENCH_QUICK:-0}" != 1 ]; then
    for b in bench/openresty.lua bench/serve.lua bench/export_memory.lua; do
        [ -f "$b" ] || continue
        echo
        echo "== $b"
        "$lua" "$b" || status=1
    done
fi

if [ "${BENCH_LEGACY:-0}" = 1 ]; then
    for b in bench/client_people.lua bench/mock_page.lua; do
        [ -f "$b" ] || continue
        echo
        echo "== $b"
        "$lua" "$b" || status=1
    done
fi
exit "$status"

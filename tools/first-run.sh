#!/bin/sh
# tools/first-run.sh: the README's first command, `make demo`, passes the first time on a
# fresh clone of a machine without the optional packages (libsimdjson-dev), whichever way
# `make deps` goes. CI runs it (.ci/run) before `make test`; it takes about a minute.
#
# It plays the machine without uninstalling anything: the Makefile looks for simdjson with
# `pkg-config $(SIMDJSON_PC)` or the file $(SIMDJSON_H), and runs $(DEPS_CMD) for `deps`;
# here SIMDJSON_PC names no package and SIMDJSON_H a file in a temporary directory, and the
# deps step is tools/deps.sh for every other package, plus, when this script says so,
# "installing" simdjson by making that file appear (a link to the real header).
#
#   1. deps installs simdjson after make has read the Makefile (as root on a fresh Debian):
#      the first `make demo` passes and its core has the simdjson decoder.
#   2. simdjson stays absent: `make demo` passes with the lua-cjson decoder; once simdjson
#      is installed, `make build` rebuilds the same build directory with it.
#
# Usage: sh tools/first-run.sh   (from the checkout; clones its HEAD commit)
set -eu

src=$(git rev-parse --show-toplevel)
rev=$(git -C "$src" rev-parse HEAD)
header=/usr/include/simdjson.h
[ -f "$header" ] || { echo "first-run: $header is needed to play the install" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The fake deps step: tools/deps.sh for every package but libsimdjson-dev; with
# FIRST_RUN_INSTALL=1, that one is "installed" as the header appearing.
cat >"$tmp/deps.sh" <<'EOF'
#!/bin/sh
rest=""
for p in "$@"; do [ "$p" = libsimdjson-dev ] || rest="$rest $p"; done
# shellcheck disable=SC2086  # the package names are words
sh tools/deps.sh $rest || exit 1
if [ "${FIRST_RUN_INSTALL:-0}" = 1 ]; then
    echo "first-run: installing libsimdjson-dev"
    mkdir -p "$(dirname "$FIRST_RUN_HEADER")"
    ln -sf "$FIRST_RUN_REAL_HEADER" "$FIRST_RUN_HEADER"
fi
EOF

fake_header=$tmp/include/simdjson.h
# make VARIABLES... TARGET in a clean environment (no real API key: the demo uses the fake)
make_in() {
    dir=$1
    shift
    env -u LEADPIPE_API_KEY -u LEADPIPE_BASE_URL -u LEADPIPE_AUDIENCE_ID -u SIMDJSON -u BUILD \
        FIRST_RUN_HEADER="$fake_header" FIRST_RUN_REAL_HEADER="$header" \
        make --no-print-directory -C "$dir" SIMDJSON_PC=leadpipe-first-run-absent \
        SIMDJSON_H="$fake_header" DEPS_CMD="sh $tmp/deps.sh" "$@"
}

clone() {
    rm -rf "$tmp/clone" "$tmp/include"
    git clone -q --no-checkout "$src" "$tmp/clone"
    git -C "$tmp/clone" checkout -q "$rev"
}

# decoder DIR: the decoder of DIR's build/5.4 core, and that build/ holds only that directory
decoder() {
    dirs=$(cd "$1/build" && ls)
    [ "$dirs" = 5.4 ] || { echo "first-run: build/ holds: $dirs (expected 5.4 only)" >&2; return 1; }
    (cd "$1" && LUA_CPATH="./build/5.4/?.so;;" lua5.4 -e 'print(require("leadpipe.core").decoder)')
}

check() {
    if [ "$2" != "$3" ]; then
        echo "first-run: $1: expected $3, got $2" >&2
        exit 1
    fi
    echo "first-run: $1: $2"
}

echo "== 1. make demo on a fresh clone; deps installs simdjson"
clone
FIRST_RUN_INSTALL=1 make_in "$tmp/clone" demo >"$tmp/demo.log" 2>&1 || {
    cat "$tmp/demo.log"
    echo "first-run: the first make demo failed" >&2
    exit 1
}
grep -q "first-run: installing libsimdjson-dev" "$tmp/demo.log" ||
    { cat "$tmp/demo.log"; echo "first-run: deps was not run" >&2; exit 1; }
check "decoder after the first make demo" "$(decoder "$tmp/clone")" simdjson

echo "== 2. make demo on a fresh clone; simdjson stays absent, then is installed"
clone
make_in "$tmp/clone" demo >"$tmp/demo.log" 2>&1 || {
    cat "$tmp/demo.log"
    echo "first-run: make demo without simdjson failed" >&2
    exit 1
}
check "decoder without simdjson" "$(decoder "$tmp/clone")" cjson
mkdir -p "$tmp/include"
ln -s "$header" "$fake_header"
make_in "$tmp/clone" build >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
check "decoder once simdjson is installed" "$(decoder "$tmp/clone")" simdjson
echo "first-run: ok"

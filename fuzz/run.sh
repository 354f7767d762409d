#!/bin/sh
# Builds and runs the libFuzzer harnesses of fuzz/. Usage: run.sh RUNS
# Environment (set by the Makefile): FUZZ_CC, FUZZ_FLAGS, FUZZ_LIBS, FUZZ_BUILD.
# A harness is skipped when the C function it drives is not on this branch
# (inflate_fuzz needs csrc/lp_inflate.c); everything is skipped, with status 0, when the
# compiler cannot build a fuzzer (no clang, no libFuzzer runtime).
# New inputs go to a scratch directory, never into the committed corpus; each run ends
# with libFuzzer's "Done N runs in S second(s)" line, and the summary repeats them.
runs=${1:-1000000}
cc=${FUZZ_CC:-clang}
build=${FUZZ_BUILD:-build/fuzz}
cd "$(dirname "$0")/.." || exit 1
mkdir -p "$build"
unset LD_PRELOAD

probe="$build/probe.c"
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$probe"
if ! command -v "$cc" >/dev/null 2>&1 || ! "$cc" -fsanitize=fuzzer "$probe" -o "$build/probe" 2>/dev/null; then
    echo "fuzz: SKIP ($cc with -fsanitize=fuzzer is not available)"
    exit 0
fi

# C++ sources of the core (a simdjson decoder) need clang++ and their libraries.
cxx_objs=""
cxx_libs=""
cxx_defs=""
for src in csrc/*.cpp; do
    [ -f "$src" ] || continue
    obj="$build/$(basename "$src" .cpp).o"
    # shellcheck disable=SC2086
    # (vptr checks need the C++ UBSan runtime, which the C driver does not link)
    "${cc}++" -std=c++17 $FUZZ_FLAGS -fno-sanitize=vptr -DLP_HAVE_SIMDJSON -c "$src" -o "$obj" || exit 1
    cxx_objs="$cxx_objs $obj"
    cxx_defs="-DLP_HAVE_SIMDJSON"
    cxx_libs="$(pkg-config --libs simdjson 2>/dev/null || echo -lsimdjson) -lstdc++"
done

status=0
summary=""
for harness in fuzz/*_fuzz.c; do
    name=$(basename "$harness" _fuzz.c)
    bin="$build/${name}_fuzz"
    # shellcheck disable=SC2086
    if ! "$cc" $FUZZ_FLAGS $cxx_defs -Ifuzz "$harness" csrc/*.c $cxx_objs $FUZZ_LIBS $cxx_libs -o "$bin"; then
        echo "fuzz: $name does not build" >&2
        status=1
        continue
    fi
    scratch="$build/scratch-$name"
    rm -rf "$scratch"
    mkdir -p "$scratch" "fuzz/corpus/$name"
    dict=""
    [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
    log="$build/$name.log"
    # shellcheck disable=SC2086
    "$bin" -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 $dict \
        "$scratch" "fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        tail -40 "$log" >&2
        summary="$summary
$name: FAILED (exit $rc)"
        status=1
    else
        summary="$summary
$name: $done_line"
    fi
done
echo "fuzz summary ($runs runs each):$summary"
exit $status

#!/usr/bin/env bash
# Runs every test: installs what is missing, builds (sanitizers on), then unit tests, fuzz
# corpus replay and short fuzz runs, integration tests against real servers, the formatting
# check and static analysis. Exits non-zero when anything fails.
#   tests/run.sh            everything
#   tests/run.sh unit       only the build and the unit tests
#   tests/run.sh lint       only the build and static analysis (clang-tidy, cppcheck)
#   ADW_FUZZ_SECONDS=30 tests/run.sh    longer fuzz runs (default 5 s per driver)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ONLY=${1:-all}
JOBS=$(nproc 2>/dev/null || echo 2)
export PYTHONDONTWRITEBYTECODE=1
FAILED=()
PASSED=()

step() { printf '\n== %s\n' "$*"; }
record() { # name, exit code
    if [ "$2" -eq 0 ]; then PASSED+=("$1"); else FAILED+=("$1"); echo "!! $1 failed"; fi
}

step "dependencies"
deploy/install-deps.sh --test || { echo "cannot install dependencies"; exit 1; }
# The peer comparison's node client (ws, nats, mqtt), which test_bench_peers.py runs in its tiny
# mode.
[ -f tests/bench/peers/node_modules/mqtt/package.json ] ||
    (cd tests/bench/peers && npm ci --no-audit --no-fund --loglevel=error) ||
    { echo "npm ci in tests/bench/peers failed"; exit 1; }

step "build (Debug, AddressSanitizer + UndefinedBehaviorSanitizer)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DADW_SANITIZE=ON >/dev/null &&
    cmake --build build-asan -j"$JOBS" 2>&1 | grep -E "error|warning|Error" ; rc=${PIPESTATUS[0]}
[ -x build-asan/bin/adw-ingest ] || rc=1
record build-asan "$rc"
[ "$rc" -eq 0 ] || { echo "build failed"; exit 1; }

if [ "$ONLY" != lint ]; then
    step "build (Release, as README says)"
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null &&
        cmake --build build -j"$JOBS" 2>&1 | grep -E "error|warning|Error"; record build-release "${PIPESTATUS[0]}"

    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

    step "unit tests"
    (cd build-asan && ctest --output-on-failure -j"$JOBS"); record unit $?
    [ "$ONLY" = unit ] && ONLY=done
fi

if [ "$ONLY" = all ] || [ "$ONLY" = fuzz ]; then
    step "fuzz drivers: corpus replay and ${ADW_FUZZ_SECONDS:-5} s runs"
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DADW_FUZZ=ON >/dev/null &&
        cmake --build build-fuzz -j"$JOBS" 2>&1 | grep -E "error|warning"
    rc=0
    for f in build-fuzz/fuzz/fuzz_*; do
        [ -x "$f" ] || continue
        name=$(basename "$f")
        corpus=tests/fuzz/corpus/$name
        dict=tests/fuzz/$name.dict
        work=$(mktemp -d)
        args=(-max_total_time="${ADW_FUZZ_SECONDS:-5}" -timeout=10 -rss_limit_mb=2048
              -artifact_prefix="$work/")
        [ -f "$dict" ] && args+=(-dict="$dict")
        if [ -d "$corpus" ]; then
            "$f" -runs=0 "$corpus" >/dev/null 2>&1 || { echo "!! $name: corpus replay failed"; rc=1; }
        fi
        if "$f" "${args[@]}" "$work" ${corpus:+$([ -d "$corpus" ] && echo "$corpus")} \
            >"$work/log" 2>&1; then
            echo "$name: $(grep -Eo 'Done [0-9]+ runs.*' "$work/log" | tail -1)"
        else
            echo "!! $name found a crash:"; tail -30 "$work/log"; rc=1
        fi
        rm -rf "$work"
    done
    record fuzz "$rc"
fi

if [ "$ONLY" = all ] || [ "$ONLY" = integration ]; then
    step "integration tests (real PostgreSQL, real sockets; sanitizer builds)"
    # Most files spend their time waiting (timeouts, backoffs, idle spells), so two run at once,
    # each file whole in one worker (its own PostgreSQL cluster, free ports). The files that
    # load the machine or its limits on purpose (1,000 clients, kill -9 under load, failure
    # injection, descriptor limits, a 100,000-event export's memory) then run alone.
    ALONE=(test_soak.py test_faults.py test_fiu.py test_bench.py test_gateway_descriptors.py
           test_deploy.py test_export.py test_pg_death.py
           test_storm.py test_partition.py)
    ignore=()
    for f in "${ALONE[@]}"; do ignore+=(--ignore="tests/integration/$f"); done
    ADW_BUILD_DIR=$ROOT/build-asan /usr/bin/python3 -m pytest -p no:cacheprovider -q \
        -n "${ADW_TEST_WORKERS:-2}" --dist loadfile "${ignore[@]}" tests/integration
    rc=$?
    ADW_BUILD_DIR=$ROOT/build-asan /usr/bin/python3 -m pytest -p no:cacheprovider -q \
        "${ALONE[@]/#/tests/integration/}" || rc=1
    record integration "$rc"
fi

if [ "$ONLY" = all ]; then
    step "formatting (clang-format)"
    bad=$(git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | grep -c "warning:")
    [ "$bad" -eq 0 ] || git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | grep warning: | head
    record clang-format "$([ "$bad" -eq 0 ] && echo 0 || echo 1)"
fi

if [ "$ONLY" = all ] || [ "$ONLY" = lint ]; then
    step "static analysis (clang-tidy, cppcheck)"
    # clang-tidy: the checks, and why each one turned off is off, are in .clang-tidy (and
    # tests/.clang-tidy for the unit tests); single exceptions are NOLINT comments that say
    # why. Both tools read build-asan's compile_commands.json: every C file of the build, and
    # the project's headers they include.
    log=$(mktemp)
    grep -o '"file": "[^"]*"' build-asan/compile_commands.json | cut -d'"' -f4 |
        xargs -P"$JOBS" -n4 clang-tidy -p build-asan --quiet >"$log" 2>&1
    rc=$?
    grep -vE "^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Error while processing" "$log"
    rm -f "$log"
    record clang-tidy "$rc"
    cppcheck --project=build-asan/compile_commands.json --enable=warning,performance,portability \
        --suppress=missingIncludeSystem --inline-suppr --error-exitcode=1 -q -j"$JOBS"
    record cppcheck $?
fi

step "summary"
echo "passed: ${PASSED[*]:-none}"
echo "failed: ${FAILED[*]:-none}"
echo "tests: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
[ ${#FAILED[@]} -eq 0 ]

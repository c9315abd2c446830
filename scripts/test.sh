#!/bin/sh
# Build tapegrad twice (release, and ASan+UBSan with halt_on_error) and run
# the whole test suite on both; then the threads test under ThreadSanitizer
# (tests/run_tsan.sh: a third, TSan build of just the library and that test,
# about half a minute). Ends with one line "N passed, N failed" counting
# every test of the three runs; exits non-zero if any failed.
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

status=0
run_suite() {   # $1 = build dir, rest = meson setup options
    dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        mkdir -p "$dir"
        meson setup "$dir" "$@" >"$dir/setup.log" 2>&1 || { cat "$dir/setup.log"; status=1; return; }
    fi
    ninja -C "$dir" >"$dir/build.log" 2>&1 || { tail -50 "$dir/build.log"; status=1; return; }
    meson test -C "$dir" --print-errorlogs --num-processes "$jobs" || status=1
}

run_suite build
run_suite build-san -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
tests/run_tsan.sh || status=1

python3 - build build-san build-tsan <<'PY'
import json, sys, os
passed = failed = skipped = 0
for d in sys.argv[1:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        print(f"{d}: no test log (build failed)"); failed += 1; continue
    for line in open(log):
        r = json.loads(line)
        if r.get("result") in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r.get("result") == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"FAILED: {d}: {r.get('name')} ({r.get('result')})")
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
rc=$?
[ $status -eq 0 ] && [ $rc -eq 0 ]
